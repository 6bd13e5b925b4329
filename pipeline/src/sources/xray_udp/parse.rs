//! One X-Ray daemon datagram to spans: `{"format":"json","version":1}` on the first line, one
//! segment (or independent subsegment) document after it, as the X-Ray SDKs send them.
//!
//! The document itself is kept byte for byte in the attribute `aws.xray.raw_segment` of its
//! span (the `aws_xray` sink sends it unchanged); everything else in it becomes OpenTelemetry
//! span fields ([`super::segment`]), nested subsegments child spans.

use std::sync::Arc;

use serde::Deserialize;

use crate::flow::event::{KeyValue, Origin, Span, TraceId, Value};

/// The attribute that carries the original document.
pub const RAW_SEGMENT_ATTRIBUTE: &str = "aws.xray.raw_segment";

#[derive(Deserialize)]
struct HeaderLine {
    format: String,
    version: u32,
}

pub(super) fn hex_bytes<const N: usize>(hex: &str) -> Option<[u8; N]> {
    if hex.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// `1-{8 hex}-{24 hex}` to the 16 bytes OTLP uses.
pub fn trace_id(xray: &str) -> Option<TraceId> {
    let mut parts = xray.split('-');
    if parts.next()? != "1" {
        return None;
    }
    let (time, random) = (parts.next()?, parts.next()?);
    if parts.next().is_some() || time.len() != 8 || random.len() != 24 {
        return None;
    }
    hex_bytes::<16>(&format!("{time}{random}"))
}

/// Epoch seconds (as X-Ray writes them, microsecond precision at best) to nanoseconds, rounded
/// to the microsecond so that `.271` does not become `.270999908`.
pub(super) fn nanos(seconds: f64) -> u64 {
    if seconds.is_finite() && seconds > 0.0 {
        (seconds * 1e6).round() as u64 * 1000
    } else {
        0
    }
}

/// The spans of one datagram (the document's, then its nested subsegments'), or why it is not
/// a segment.
pub fn datagram(bytes: &[u8], origin: &Arc<Origin>) -> Result<Vec<Span>, &'static str> {
    let newline = memchr::memchr(b'\n', bytes).ok_or("no_header")?;
    let header: HeaderLine = serde_json::from_slice(&bytes[..newline]).map_err(|_| "bad_header")?;
    if header.format != "json" || header.version != 1 {
        return Err("unsupported_format");
    }
    let raw = std::str::from_utf8(&bytes[newline + 1..])
        .map_err(|_| "not_utf8")?
        .trim();
    let doc: serde_json::Value = serde_json::from_str(raw).map_err(|_| "bad_document")?;
    super::segment::spans(
        &doc,
        KeyValue::new(RAW_SEGMENT_ATTRIBUTE, Value::from(raw)),
        origin,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemon_datagram_becomes_a_span_carrying_its_document_unchanged() {
        let doc = r#"{"name":"legacy","id":"70de5b6f19ff9a0a","trace_id":"1-581cf771-a006649127e371903a2de979","start_time":1478293361.271,"end_time":1478293361.449,"http":{"request":{"method":"GET"}}}"#;
        let datagram_bytes = format!("{{\"format\":\"json\",\"version\":1}}\n{doc}");
        let origin = Arc::new(Origin::default());
        let spans = datagram(datagram_bytes.as_bytes(), &origin).map_err(|e| e.to_string());
        let span = spans.unwrap_or_default().remove(0);
        assert_eq!(span.name, "legacy");
        assert_eq!(span.trace_id[..4], [0x58, 0x1c, 0xf7, 0x71]);
        assert_eq!(
            span.span_id,
            [0x70, 0xde, 0x5b, 0x6f, 0x19, 0xff, 0x9a, 0x0a]
        );
        assert_eq!(span.kind, crate::flow::event::SpanKind::Server);
        assert_eq!(span.start_time_unix_nano / 1_000_000, 1_478_293_361_271);
        assert_eq!(span.attributes[0].value.as_str(), Some(doc));
        for (bad, why) in [
            (&b"{\"format\":\"json\",\"version\":1}"[..], "no_header"),
            (b"{\"format\":\"xml\",\"version\":1}\n{}", "unsupported_format"),
            (b"{\"format\":\"json\",\"version\":1}\n{\"name\":", "bad_document"),
            (b"{\"format\":\"json\",\"version\":1}\n{\"name\":\"a\",\"id\":\"70de5b6f19ff9a0a\",\"trace_id\":\"2-1-2\",\"start_time\":1}", "bad_trace_id"),
        ] {
            assert_eq!(datagram(bad, &origin).err(), Some(why));
        }
    }
}
