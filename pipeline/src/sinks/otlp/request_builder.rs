//! Pure: events in, an OTLP request body out: protobuf, for OTLP/HTTP optionally gzip or zstd,
//! for OTLP/gRPC one framed message, optionally gzip. CPU-heavy for big batches, so the sink
//! runs it on a blocking thread.
//!
//! Memory is the point here as much as CPU, since every request being built holds its batch:
//! log records are written straight from the events ([`otlp::wire`]) into one buffer of the
//! message's exact size (with the gRPC frame's header in front, so framing copies nothing),
//! the events are dropped before compressing, and a compressed body keeps only its own bytes
//! (compressors allocate for the worst case, the size of the input). zstd reuses one context
//! and one output buffer per thread.

use std::cell::RefCell;
use std::io::Write;

use bytes::Bytes;
use prost::Message;

use super::config::{Compression, Protocol};
use crate::flow::event::{otlp, Events};
use crate::net::grpc::{frame, frame_written, FRAME_HEADER};

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
    let path = match signal {
        crate::flow::event::Signal::Logs => "/v1/logs",
        crate::flow::event::Signal::Metrics => "/v1/metrics",
        crate::flow::event::Signal::Traces => "/v1/traces",
    };
    let request = |path, body, encoding| OtlpRequest {
        path,
        body,
        encoding,
        protocol,
        events: count,
    };
    if protocol == Protocol::Grpc {
        let path = crate::net::grpc::otlp_path(signal);
        // gRPC compresses with gzip only (the receivers' common ground).
        return Ok(if compression == Compression::Gzip {
            request(path, frame(&message(events, 0), true)?, Some("gzip"))
        } else {
            request(
                path,
                frame_written(message(events, FRAME_HEADER), false)?,
                None,
            )
        });
    }
    let raw = message(events, 0);
    Ok(match compression {
        Compression::None => request(path, Bytes::from(raw), None),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(raw.len() / 4),
                flate2::Compression::fast(),
            );
            enc.write_all(&raw)?;
            drop(raw);
            request(path, exact(enc.finish()?), Some("gzip"))
        }
        Compression::Zstd => request(path, zstd_compress(&raw)?, Some("zstd")),
    })
}

/// The export request's protobuf after `front` free bytes; the events are gone on return.
fn message(events: Events, front: usize) -> Vec<u8> {
    fn prost_after(front: usize, message: impl Message) -> Vec<u8> {
        let mut buf = Vec::with_capacity(front + message.encoded_len());
        buf.resize(front, 0);
        message.encode_raw(&mut buf);
        buf
    }
    match events {
        Events::Logs(l) => otlp::wire::encode(&l, front),
        Events::Metrics(m) => prost_after(front, otlp::metrics_to_proto(m)),
        Events::Spans(s) => prost_after(front, otlp::spans_to_proto(s)),
    }
}

thread_local! {
    /// A zstd context per encoding thread (making one per request costs about as much as
    /// compressing a small batch), and the room its output needs at worst, kept for the next.
    static ZSTD: RefCell<Option<(zstd::bulk::Compressor<'static>, Vec<u8>)>> =
        const { RefCell::new(None) };
}

fn zstd_compress(raw: &[u8]) -> std::io::Result<Bytes> {
    ZSTD.with_borrow_mut(|slot| {
        let (compressor, out) = match slot {
            Some(c) => c,
            None => slot.insert((zstd::bulk::Compressor::new(1)?, Vec::new())),
        };
        out.clear();
        out.reserve(zstd::zstd_safe::compress_bound(raw.len()));
        compressor.compress_to_buffer(raw, out)?;
        Ok(Bytes::copy_from_slice(out))
    })
}

/// A body that holds only its bytes: it waits in memory for as long as its request is in flight.
fn exact(mut body: Vec<u8>) -> Bytes {
    body.shrink_to_fit();
    Bytes::from(body)
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
