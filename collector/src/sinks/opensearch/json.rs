//! A JSON writer for documents, straight into the bulk body: strings escaped with a fast path
//! for the common text that needs none, event values as JSON, RFC 3339 timestamps. No
//! intermediate `serde_json::Value`: the bulk encoder's throughput is the point.

use sextant_pipeline::flow::event::{KeyValue, Value};

/// Whether a byte must be escaped inside a JSON string.
#[inline]
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// `"text"`, escaped.
pub fn push_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !needs_escape(b) {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            other => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(other >> 4) as usize]);
                out.push(HEX[(other & 0xf) as usize]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// `"key":`.
pub fn push_key(out: &mut Vec<u8>, key: &str) {
    push_str(out, key);
    out.push(b':');
}

/// A number as JSON (non-finite ones, which JSON lacks, as strings).
pub fn push_f64(out: &mut Vec<u8>, v: f64) {
    use std::io::Write as _;
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else {
        push_str(out, &v.to_string());
    }
}

pub fn push_u64(out: &mut Vec<u8>, v: u64) {
    use std::io::Write as _;
    let _ = write!(out, "{v}");
}

/// An event value: strings, numbers, booleans, arrays and maps as themselves; bytes as base64;
/// nothing as `null`.
pub fn push_value(out: &mut Vec<u8>, value: &Value) {
    use std::io::Write as _;
    match value {
        Value::Empty => out.extend_from_slice(b"null"),
        Value::Str(s) => push_str(out, s),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Double(d) => push_f64(out, *d),
        Value::Bytes(b) => {
            use base64::Engine;
            push_str(out, &base64::engine::general_purpose::STANDARD.encode(b));
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_value(out, item);
            }
            out.push(b']');
        }
        Value::Map(pairs) => push_object(out, pairs, |k| k),
    }
}

/// `{"key":value,...}` of attributes, each key written as `key_of` makes it.
pub fn push_object<'a>(
    out: &mut Vec<u8>,
    pairs: &'a [KeyValue],
    key_of: impl Fn(&'a str) -> &'a str,
) {
    out.push(b'{');
    for (i, kv) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_key(out, key_of(&kv.key));
        push_value(out, &kv.value);
    }
    out.push(b'}');
}

/// Nanoseconds since the epoch as RFC 3339 UTC with nanoseconds, quoted.
pub fn push_time(out: &mut Vec<u8>, nanos: u64, clock: &mut SecondCache) {
    out.push(b'"');
    out.extend_from_slice(clock.prefix(nanos / 1_000_000_000));
    use std::io::Write as _;
    let _ = write!(out, ".{:09}Z\"", nanos % 1_000_000_000);
}

/// The `YYYY-MM-DDTHH:MM:SS` of the last second asked for (a batch's events share seconds).
#[derive(Default)]
pub struct SecondCache {
    second: Option<u64>,
    text: [u8; 19],
}

impl SecondCache {
    pub fn prefix(&mut self, second: u64) -> &[u8] {
        if self.second != Some(second) {
            let (y, m, d) = civil_from_days((second / 86_400) as i64);
            let rest = second % 86_400;
            let text = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
                rest / 3600,
                rest / 60 % 60,
                rest % 60
            );
            self.text.copy_from_slice(&text.as_bytes()[..19]);
            self.second = Some(second);
        }
        &self.text
    }

    /// `YYYY`, `MM`, `DD`, `HH` of `second` (for index names).
    pub fn date_parts(&mut self, second: u64) -> [&str; 4] {
        let text = self.prefix(second);
        let part = |r: std::ops::Range<usize>| std::str::from_utf8(&text[r]).unwrap_or("");
        [part(0..4), part(5..7), part(8..10), part(11..13)]
    }
}

/// The civil date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_as_json_and_read_back() {
        for text in [
            "plain",
            "quote \" and \\ slash",
            "line\nbreak\ttab\r\u{1}",
            "ünïcödé ✓",
        ] {
            let mut out = Vec::new();
            push_str(&mut out, text);
            let back: String = serde_json::from_slice(&out).unwrap();
            assert_eq!(back, text);
        }
    }

    #[test]
    fn times_are_rfc3339_utc_with_nanoseconds() {
        let mut clock = SecondCache::default();
        let mut out = Vec::new();
        // 2026-12-03T02:45:06.000000123Z; 2024-02-29 (a leap day); the epoch.
        push_time(&mut out, 1_796_265_906_000_000_123, &mut clock);
        push_time(&mut out, 1_709_164_800_500_000_000, &mut clock);
        push_time(&mut out, 0, &mut clock);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"2026-12-03T02:45:06.000000123Z\"\"2024-02-29T00:00:00.500000000Z\"\"1970-01-01T00:00:00.000000000Z\""
        );
        assert_eq!(clock.date_parts(1_796_265_906), ["2026", "12", "03", "02"]);
    }
}
