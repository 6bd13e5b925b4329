//! OTLP/gRPC on Sextant's own HTTP/2 stack: unary calls only, which is all OTLP uses, so the
//! OTLP receiver and exporter share one TLS, balancing, acknowledgement and memory-limit path for
//! both protocols instead of running a second server and client.
//!
//! What this module owns is the gRPC wire contract (grpc/PROTOCOL-HTTP2.md): a message is
//! framed as one compressed-flag byte, a 4-byte big-endian length and the bytes (gzip when the
//! flag is set and `grpc-encoding` says so); the outcome travels in the `grpc-status` and
//! `grpc-message` trailers (or headers, in a trailers-only answer); a retry delay travels as a
//! `google.rpc.RetryInfo` inside the base64 `google.rpc.Status` of `grpc-status-details-bin`.

use std::io::Write;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use prost::Message;

pub const CONTENT_TYPE: &str = "application/grpc";

/// gRPC status codes that OTLP uses.
pub mod code {
    pub const OK: u32 = 0;
    pub const CANCELLED: u32 = 1;
    pub const UNKNOWN: u32 = 2;
    pub const INVALID_ARGUMENT: u32 = 3;
    pub const DEADLINE_EXCEEDED: u32 = 4;
    pub const NOT_FOUND: u32 = 5;
    pub const RESOURCE_EXHAUSTED: u32 = 8;
    pub const ABORTED: u32 = 10;
    pub const OUT_OF_RANGE: u32 = 11;
    pub const UNIMPLEMENTED: u32 = 12;
    pub const INTERNAL: u32 = 13;
    pub const UNAVAILABLE: u32 = 14;
    pub const DATA_LOSS: u32 = 15;
}

/// The OTLP service method behind an HTTP/2 path, and back.
pub fn otlp_path(signal: crate::flow::event::Signal) -> &'static str {
    match signal {
        crate::flow::event::Signal::Logs => {
            "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
        }
        crate::flow::event::Signal::Metrics => {
            "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
        }
        crate::flow::event::Signal::Traces => {
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
        }
    }
}

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Message)]
struct Any {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// Bytes of a frame's header: the compressed flag and the message's length.
pub const FRAME_HEADER: usize = 5;

/// Frames one message, gzipped when `gzip`.
pub fn frame(message: &[u8], gzip: bool) -> std::io::Result<Bytes> {
    let mut out = vec![0; FRAME_HEADER];
    if gzip {
        out.reserve(message.len() / 4);
        let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
        enc.write_all(message)?;
        out = enc.finish()?;
    } else {
        out.extend_from_slice(message);
    }
    frame_written(out, gzip)
}

/// Frames a message written after [`FRAME_HEADER`] bytes left free at the front of `buf`,
/// in place.
pub fn frame_written(mut buf: Vec<u8>, compressed: bool) -> std::io::Result<Bytes> {
    let len = buf
        .len()
        .checked_sub(FRAME_HEADER)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "no room for the frame header, or a message over 4 GiB",
            )
        })?;
    buf[0] = u8::from(compressed);
    buf[1..FRAME_HEADER].copy_from_slice(&len.to_be_bytes());
    Ok(Bytes::from(buf))
}

/// The one message of a unary body: whether its compressed flag is set, and its bytes (still
/// compressed per `grpc-encoding` if so; see [`crate::net::inflate`]).
pub fn unframe(body: &Bytes) -> Result<(bool, Bytes), String> {
    if body.len() < 5 {
        return Err("body shorter than a gRPC frame header".into());
    }
    let compressed = body[0] == 1;
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    if body.len() < 5 + len {
        return Err("gRPC frame longer than the body".into());
    }
    if body.len() != 5 + len {
        return Err("a unary call carries exactly one message".into());
    }
    Ok((compressed, body.slice(5..)))
}

/// The outcome of a call as its trailers carry it.
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    pub code: u32,
    pub message: String,
    /// From `google.rpc.RetryInfo`, if the server sent one.
    pub retry_delay: Option<Duration>,
}

impl Status {
    pub fn ok() -> Self {
        Self {
            code: code::OK,
            message: String::new(),
            retry_delay: None,
        }
    }

    pub fn new(code: u32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_delay: None,
        }
    }

    pub fn with_retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = Some(delay);
        self
    }

    /// As trailers (`grpc-status`, `grpc-message`, `grpc-status-details-bin`).
    pub fn to_headers(&self) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("grpc-status", http::HeaderValue::from(self.code));
        if !self.message.is_empty() {
            if let Ok(v) = http::HeaderValue::from_str(&percent_encode(&self.message)) {
                h.insert("grpc-message", v);
            }
        }
        if self.retry_delay.is_some() {
            let encoded =
                base64::engine::general_purpose::STANDARD_NO_PAD.encode(self.to_rpc_status());
            if let Ok(v) = http::HeaderValue::from_str(&encoded) {
                h.insert("grpc-status-details-bin", v);
            }
        }
        h
    }

    /// As an encoded `google.rpc.Status` (with a `RetryInfo` when there is a delay): what
    /// `grpc-status-details-bin` carries, and the body of an OTLP/HTTP error answer.
    pub fn to_rpc_status(&self) -> Vec<u8> {
        let details = self
            .retry_delay
            .map(|delay| Any {
                type_url: RETRY_INFO_TYPE.into(),
                value: RetryInfo {
                    retry_delay: Some(ProtoDuration {
                        seconds: delay.as_secs() as i64,
                        nanos: delay.subsec_nanos() as i32,
                    }),
                }
                .encode_to_vec(),
            })
            .into_iter()
            .collect();
        RpcStatus {
            code: self.code as i32,
            message: self.message.clone(),
            details,
        }
        .encode_to_vec()
    }

    /// From trailers (or the headers of a trailers-only answer); `None` without `grpc-status`.
    pub fn from_headers(h: &http::HeaderMap) -> Option<Self> {
        let code = h.get("grpc-status")?.to_str().ok()?.trim().parse().ok()?;
        let message = h
            .get("grpc-message")
            .and_then(|v| v.to_str().ok())
            .map(percent_decode)
            .unwrap_or_default();
        let retry_delay = h
            .get("grpc-status-details-bin")
            .and_then(|v| {
                let s = v.to_str().ok()?.trim_end_matches('=');
                base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(s)
                    .ok()
            })
            .and_then(|b| RpcStatus::decode(&b[..]).ok())
            .and_then(|s| {
                s.details
                    .iter()
                    .filter(|d| d.type_url == RETRY_INFO_TYPE)
                    .find_map(|d| RetryInfo::decode(&d.value[..]).ok()?.retry_delay)
            })
            .map(|d| Duration::new(d.seconds.max(0) as u64, d.nanos.max(0) as u32));
        Some(Self {
            code,
            message,
            retry_delay,
        })
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Buf;

    #[test]
    fn frames_round_trip_plain_and_gzipped() {
        let message = b"hello otlp".repeat(100);
        for gzip in [false, true] {
            let framed = frame(&message, gzip).unwrap_or_default();
            assert_eq!(framed[0], u8::from(gzip));
            let (compressed, payload) = unframe(&framed).unwrap_or_default();
            assert_eq!(compressed, gzip);
            let back = if gzip {
                crate::net::inflate::inflate(
                    crate::net::inflate::Encoding::Gzip,
                    &payload,
                    1 << 20,
                    &mut |_| true,
                )
                .map(|mut c| c.copy_to_bytes(c.len()))
                .unwrap_or_default()
            } else {
                payload
            };
            assert_eq!(&back[..], &message[..]);
        }
        assert!(
            unframe(&Bytes::from_static(&[0, 0, 0, 0, 9, 1])).is_err(),
            "truncated"
        );
        let two = [
            frame(b"a", false).unwrap_or_default(),
            frame(b"b", false).unwrap_or_default(),
        ]
        .concat();
        assert!(unframe(&Bytes::from(two)).is_err(), "unary: one message");
    }

    #[test]
    fn status_with_retry_info_round_trips_through_trailers() {
        let s = Status::new(code::UNAVAILABLE, "busy: 100% full")
            .with_retry_delay(Duration::from_millis(1500));
        let h = s.to_headers();
        assert_eq!(
            h.get("grpc-message").and_then(|v| v.to_str().ok()),
            Some("busy: 100%25 full")
        );
        assert_eq!(Status::from_headers(&h), Some(s));
        assert_eq!(Status::from_headers(&http::HeaderMap::new()), None);
    }
}
