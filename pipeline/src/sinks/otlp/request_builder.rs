//! Pure: events in, an OTLP/HTTP request body out (protobuf, optionally gzip). CPU-heavy for big
//! batches, so the sink runs it on a blocking thread.

use std::io::Write;

use bytes::Bytes;
use prost::Message;

use super::config::Compression;
use crate::event::{otlp, Events};

/// A request ready to send.
#[derive(Debug)]
pub struct OtlpRequest {
    pub path: &'static str,
    pub body: Bytes,
    pub gzip: bool,
    /// Protobuf bytes before compression, for the compression-ratio metric.
    pub raw_len: usize,
}

pub fn build(events: Events, compression: Compression) -> std::io::Result<OtlpRequest> {
    let (path, raw) = match events {
        Events::Logs(l) => ("/v1/logs", otlp::logs_to_proto(l).encode_to_vec()),
        Events::Metrics(m) => ("/v1/metrics", otlp::metrics_to_proto(m).encode_to_vec()),
        Events::Spans(s) => ("/v1/traces", otlp::spans_to_proto(s).encode_to_vec()),
    };
    let raw_len = raw.len();
    let (body, gzip) = match compression {
        Compression::None => (Bytes::from(raw), false),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(raw.len() / 4),
                flate2::Compression::fast(),
            );
            enc.write_all(&raw)?;
            (Bytes::from(enc.finish()?), true)
        }
    };
    Ok(OtlpRequest {
        path,
        body,
        gzip,
        raw_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::LogEvent;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use std::io::Read;

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
        let req = build(events, Compression::Gzip).unwrap();
        assert_eq!(req.path, "/v1/logs");
        assert!(req.body.len() < req.raw_len);
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&req.body[..])
            .read_to_end(&mut raw)
            .unwrap();
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
