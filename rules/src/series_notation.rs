//! Prometheus's series notation, shared by PromQL test files (`load`, expected results) and
//! promtool's rule unit tests (`input_series`): `metric{label="value"} 1+2x3 _ stale -1x2`,
//! and the durations of its commands (see `crate::duration`).
//!
//! Expansion is Prometheus 2.42's: `a+bxn` is the n+1 values a, a+b, ... (accumulated, so
//! float drift matches), `axn` is a repeated n+1 times, `_xn` is n omitted samples, `stale` is a
//! stale marker.

pub use crate::duration::parse_duration;
use crate::labels::Labels;
use crate::promql::value::stale_marker;

/// One position of an expanded sequence: a value (a stale marker is a value), or none.
pub type SequenceValue = Option<f64>;

/// A series description: labels and its expanded values.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesDescription {
    pub labels: Labels,
    pub values: Vec<SequenceValue>,
}

/// Parses `metric{labels} values...`.
pub fn parse_series(line: &str) -> Result<SeriesDescription, String> {
    let (labels, rest) = parse_series_labels(line.trim())?;
    Ok(SeriesDescription {
        labels,
        values: parse_values(rest)?,
    })
}

/// Parses the label part of a series description (a metric name, a `{...}` set, or both),
/// returning the rest of the line.
pub fn parse_series_labels(text: &str) -> Result<(Labels, &str), String> {
    let mut labels = Labels::new();
    let name_end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(text.len());
    if name_end > 0 {
        labels.set(
            crate::labels::METRIC_NAME.to_string(),
            text[..name_end].to_string(),
        );
    }
    let mut rest = &text[name_end..];
    if let Some(body) = rest.strip_prefix('{') {
        rest = body;
        loop {
            rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let name_len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if name_len == 0 {
                return Err(format!("expected a label name at {rest:?}"));
            }
            let name = &rest[..name_len];
            rest = rest[name_len..].trim_start();
            rest = rest
                .strip_prefix('=')
                .ok_or_else(|| format!("expected '=' after label {name}"))?
                .trim_start();
            let (value, after) = parse_quoted(rest)?;
            labels.set(name.to_string(), value);
            rest = after.trim_start();
            if let Some(after) = rest.strip_prefix(',') {
                rest = after;
            } else if !rest.starts_with('}') {
                return Err(format!("expected ',' or '}}' after label {name}"));
            }
        }
    } else if name_end == 0 {
        return Err(format!("expected a metric name or '{{' at {text:?}"));
    }
    Ok((labels, rest))
}

/// A double- or single-quoted string with Go's escapes; returns it and the rest.
pub fn parse_quoted(text: &str) -> Result<(String, &str), String> {
    let mut chars = text.char_indices();
    let quote = match chars.next() {
        Some((_, q @ ('"' | '\'' | '`'))) => q,
        _ => return Err(format!("expected a quoted string at {text:?}")),
    };
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c == quote => return Ok((out, &text[i + c.len_utf8()..])),
            '\\' if quote != '`' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                Some((_, '\'')) => out.push('\''),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err(format!("unterminated string {text:?}"))
}

/// Parses and expands a whitespace-separated value sequence.
pub fn parse_values(text: &str) -> Result<Vec<SequenceValue>, String> {
    let mut values = Vec::new();
    for item in text.split_whitespace() {
        expand_item(item, &mut values).map_err(|e| format!("bad sequence item {item:?}: {e}"))?;
    }
    Ok(values)
}

fn expand_item(item: &str, out: &mut Vec<SequenceValue>) -> Result<(), String> {
    if item == "_" {
        out.push(None);
        return Ok(());
    }
    if let Some(times) = item.strip_prefix("_x") {
        let n = parse_count(times)?;
        out.extend(std::iter::repeat_n(None, n));
        return Ok(());
    }
    if item == "stale" {
        out.push(Some(stale_marker()));
        return Ok(());
    }
    // `x` is always repetition here, as promtool lexes it: `0x10` is ten more zeros, and a
    // hexadecimal value (`0x1f`) is not a sequence item.
    let (head, times) = match item.rfind('x') {
        Some(i) => (&item[..i], Some(parse_count(&item[i + 1..])?)),
        None => (item, None),
    };
    let Some(times) = times else {
        out.push(Some(parse_number(head)?));
        return Ok(());
    };
    // `a+b` or `a-b`: the sign after the first character that is not an exponent's.
    let bytes = head.as_bytes();
    let split = (1..bytes.len())
        .find(|&i| (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E'));
    let (start, delta) = match split {
        Some(i) => (parse_number(&head[..i])?, parse_number(&head[i..])?),
        None => (parse_number(head)?, 0.0),
    };
    let mut value = start;
    out.push(Some(value));
    for _ in 0..times {
        value += delta;
        out.push(Some(value));
    }
    Ok(())
}

fn parse_count(text: &str) -> Result<usize, String> {
    text.parse::<usize>()
        .map_err(|_| format!("bad repetition count {text:?}"))
}

/// A number as PromQL writes it: decimal, exponent, `Inf`, `NaN` (any case), signed.
pub fn parse_number(text: &str) -> Result<f64, String> {
    let (sign, body) = match text.as_bytes().first() {
        Some(b'-') => (-1.0, &text[1..]),
        Some(b'+') => (1.0, &text[1..]),
        _ => (1.0, text),
    };
    let value = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16)
            .map(|v| v as f64)
            .map_err(|_| format!("bad number {text:?}"))?
    } else {
        match body.to_ascii_lowercase().as_str() {
            "inf" | "infinity" => f64::INFINITY,
            "nan" => f64::NAN,
            _ if body.starts_with(|c: char| c.is_ascii_digit() || c == '.') => body
                .parse::<f64>()
                .map_err(|_| format!("bad number {text:?}"))?,
            _ => return Err(format!("bad number {text:?}")),
        }
    };
    Ok(sign * value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_repeated_is_zeros_not_a_hexadecimal_number() {
        let zeros = parse_values("1 0x3").unwrap();
        assert_eq!(
            zeros,
            vec![Some(1.0), Some(0.0), Some(0.0), Some(0.0), Some(0.0)]
        );
        assert!(parse_values("0x1f").is_err(), "promtool refuses it too");
    }

    #[test]
    fn sequences_expand_as_prometheus_does() {
        let s = parse_series(
            r#"http_requests{job="api", path="/a\"b"} 1+2x3 _ _x2 stale -1x1 5-1x2 1e3"#,
        )
        .unwrap();
        assert_eq!(
            s.labels.to_string(),
            r#"http_requests{job="api", path="/a\"b"}"#
        );
        let shown: Vec<String> = s
            .values
            .iter()
            .map(|v| match v {
                None => "_".into(),
                Some(v) if crate::promql::value::is_stale_marker(*v) => "stale".into(),
                Some(v) => v.to_string(),
            })
            .collect();
        assert_eq!(shown.join(" "), "1 3 5 7 _ _ _ stale -1 -1 5 4 3 1000");
    }

    #[test]
    fn label_only_and_name_only_descriptions() {
        assert_eq!(parse_series("{} 1").unwrap().labels, Labels::new());
        assert_eq!(
            parse_series(r#"{__name__="a",b="c",} 1"#)
                .unwrap()
                .labels
                .to_string(),
            r#"a{b="c"}"#
        );
        assert!(parse_series("{a=b} 1").is_err());
        assert!(parse_series("x 1+").is_err());
    }
}
