//! Pure: events in, an OTLP request body out: protobuf, for OTLP/HTTP optionally gzip or zstd,
//! for OTLP/gRPC one framed message, optionally gzip. CPU-heavy for big batches, so the sink
//! runs it on a blocking thread.

use std::io::Write;

use bytes::Bytes;
use prost::Message;

use super::config::{Compression, Protocol};
use crate::flow::event::{otlp, Events};

/// A request ready to send.
#[derive(Debug)]
pub struct OtlpRequest {
    pub path: &'static str,
    pub body: Bytes,
    /// The `Content-Encoding` (HTTP) or `grpc-encoding` (gRPC) of the body, if compressed.
    pub encoding: Option<&'static str>,
    pub protocol: Protocol,
    /// Records it carries.
    pub events: usize,
}

impl crate::sink::sender::Request for OtlpRequest {
    fn events(&self) -> usize {
        self.events
    }
    fn bytes(&self) -> usize {
        self.body.len()
    }
}

pub fn build(
    events: Events,
    compression: Compression,
    protocol: Protocol,
) -> std::io::Result<OtlpRequest> {
    let signal = events.signal();
    let count = events.len();
    let (path, raw) = match events {
        Events::Logs(l) => ("/v1/logs", otlp::logs_to_proto(l).encode_to_vec()),
        Events::Metrics(m) => ("/v1/metrics", otlp::metrics_to_proto(m).encode_to_vec()),
        Events::Spans(s) => ("/v1/traces", otlp::spans_to_proto(s).encode_to_vec()),
    };
    if protocol == Protocol::Grpc {
        let gzip = compression == Compression::Gzip;
        return Ok(OtlpRequest {
            path: crate::net::grpc::otlp_path(signal),
            body: crate::net::grpc::frame(&raw, gzip)?,
            encoding: gzip.then_some("gzip"),
            protocol,
            events: count,
        });
    }
    let (body, encoding) = match compression {
        Compression::None => (Bytes::from(raw), None),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(raw.len() / 4),
                flate2::Compression::fast(),
            );
            enc.write_all(&raw)?;
            (Bytes::from(enc.finish()?), Some("gzip"))
        }
        Compression::Zstd => (Bytes::from(zstd::bulk::compress(&raw, 1)?), Some("zstd")),
    };
    Ok(OtlpRequest {
        path,
        body,
        encoding,
        protocol,
        events: count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::event::LogEvent;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use std::io::Read;

    #[test]
    fn zstd_body_decodes_back_and_beats_gzip_on_logs() {
        let events = || {
            Events::Logs(
                (0..1000)
                    .map(|i| LogEvent {
                        body: format!("GET /api/v1/orders/{i} 200 {}ms user=u-{}", i % 97, i % 50)
                            .into(),
                        ..Default::default()
                    })
                    .collect(),
            )
        };
        let z = build(events(), Compression::Zstd, Protocol::Http).unwrap();
        let g = build(events(), Compression::Gzip, Protocol::Http).unwrap();
        assert_eq!(z.encoding, Some("zstd"));
        let raw = zstd::stream::decode_all(&z.body[..]).unwrap();
        let decoded = ExportLogsServiceRequest::decode(&raw[..]).unwrap();
        assert_eq!(
            decoded.resource_logs[0].scope_logs[0].log_records.len(),
            1000
        );
        assert!(
            z.body.len() < g.body.len(),
            "zstd {} vs gzip {}",
            z.body.len(),
            g.body.len()
        );
    }

    #[test]
    fn gzip_body_decodes_back_to_the_same_records() {
        let events = Events::Logs(
            (0..100)
                .map(|i| LogEvent {
                    body: format!("line {i}").into(),
                    ..Default::default()
                })
                .collect(),
        );
        let req = build(events, Compression::Gzip, Protocol::Http).unwrap();
        assert_eq!(req.path, "/v1/logs");
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&req.body[..])
            .read_to_end(&mut raw)
            .unwrap();
        assert!(req.body.len() < raw.len());
        let decoded = ExportLogsServiceRequest::decode(&raw[..]).unwrap();
        let records = &decoded.resource_logs[0].scope_logs[0].log_records;
        assert_eq!(records.len(), 100);
        assert_eq!(
            records[42].body.as_ref().and_then(|b| b.value.clone()),
            Some(
                opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                    "line 42".into()
                )
            )
        );
    }
}
