//! A batch's events as a record payload: one byte for the signal, then the OTLP protobuf export
//! request, the lossless form the event model already converts to and from.

use prost::Message;

use crate::flow::event::otlp;
use crate::flow::event::Events;
use opentelemetry_proto::tonic::collector::{
    logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest,
    trace::v1::ExportTraceServiceRequest,
};

const LOGS: u8 = 1;
const METRICS: u8 = 2;
const SPANS: u8 = 3;

pub fn encode(events: Events) -> Vec<u8> {
    let (tag, body) = match events {
        // Log records written straight from the events (the same bytes as prost's), after one
        // byte left for the signal: no message structs, and attributes kept as JSON text are
        // written from the text.
        Events::Logs(l) => {
            let mut out = otlp::wire::encode(&l, 1);
            if let Some(signal) = out.first_mut() {
                *signal = LOGS;
            }
            return out;
        }
        Events::Metrics(m) => (METRICS, otlp::metrics_to_proto(m).encode_to_vec()),
        Events::Spans(s) => (SPANS, otlp::spans_to_proto(s).encode_to_vec()),
    };
    let mut out = Vec::with_capacity(body.len() + 1);
    out.push(tag);
    out.extend_from_slice(&body);
    out
}

/// The events of a payload; `None` if it does not decode (counted by the caller).
pub fn decode(payload: &[u8]) -> Option<Events> {
    let (tag, body) = payload.split_first()?;
    Some(match *tag {
        LOGS => Events::Logs(
            otlp::logs_from_proto(ExportLogsServiceRequest::decode(body).ok()?).records,
        ),
        METRICS => Events::Metrics(
            otlp::metrics_from_proto(ExportMetricsServiceRequest::decode(body).ok()?).records,
        ),
        SPANS => Events::Spans(
            otlp::spans_from_proto(ExportTraceServiceRequest::decode(body).ok()?).records,
        ),
        _ => return None,
    })
}
