//! OTLP ids as X-Ray writes them. An X-Ray trace id is `1-{8 hex}-{24 hex}`: the version, then
//! the 128-bit id split after 32 bits. X-Ray once required those 32 bits to be the trace's start
//! in epoch seconds (so W3C random ids were refused, and other exporters drop them); since
//! October 2023 it accepts any value there, so every OTLP id converts, unchanged in its bits: the
//! trace id in X-Ray is the one in the logs, read with dashes.

use sextant_pipeline::flow::event::{SpanId, TraceId};

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xf)] as char);
    }
}

/// `1-{first 4 bytes}-{last 12 bytes}`, lowercase hex.
pub fn trace_id(id: &TraceId) -> String {
    let mut out = String::with_capacity(35);
    out.push_str("1-");
    push_hex(&mut out, &id[..4]);
    out.push('-');
    push_hex(&mut out, &id[4..]);
    out
}

/// 16 lowercase hex digits.
pub fn segment_id(id: &SpanId) -> String {
    let mut out = String::with_capacity(16);
    push_hex(&mut out, id);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_their_bits_whether_or_not_they_start_with_a_timestamp() {
        let xray_style = [
            0x58, 0x40, 0x65, 0x20, 0xa0, 0x06, 0x64, 0x91, 0x27, 0xe3, 0x71, 0x90, 0x3a, 0x2d,
            0xe9, 0x79,
        ];
        assert_eq!(trace_id(&xray_style), "1-58406520-a006649127e371903a2de979");
        // A W3C random id: the first 32 bits are no time at all.
        let w3c = [
            0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e,
            0x47, 0x36,
        ];
        assert_eq!(trace_id(&w3c), "1-4bf92f35-77b34da6a3ce929d0e0e4736");
        assert_eq!(
            segment_id(&[0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]),
            "00f067aa0ba902b7"
        );
    }
}
