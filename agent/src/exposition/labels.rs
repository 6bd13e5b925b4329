//! Names and label sets: checked and unescaped when a series is first seen.

use sextant_pipeline::flow::event::Text;

/// Whether `name` is a metric name, `[a-zA-Z_:][a-zA-Z0-9_:]*` (and so ASCII).
#[inline]
pub fn valid_metric_name_bytes(name: &[u8]) -> bool {
    name.first().is_some_and(|c| !c.is_ascii_digit())
        && super::scan::find(name, 0, super::scan::NotMetricName) == name.len()
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
pub fn valid_metric_name(name: &str) -> bool {
    valid_metric_name_bytes(name.as_bytes())
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`
pub fn valid_label_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_')
}

/// A label set's text between the braces, as pairs in written order. Label names must be valid
/// and distinct, values UTF-8 with `\\`, `\"` and `\n` unescaped (other escapes are kept as
/// written, as Prometheus does); a trailing comma is allowed.
pub fn parse_labels(text: &[u8], out: &mut Vec<(Text, Text)>) -> Result<(), &'static str> {
    out.clear();
    let mut s = text;
    loop {
        s = skip_spaces(s);
        if s.is_empty() {
            return Ok(());
        }
        let name_end = s
            .iter()
            .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_'))
            .unwrap_or(s.len());
        let name =
            std::str::from_utf8(&s[..name_end]).map_err(|_| "a label name that is not UTF-8")?;
        if !valid_label_name(name) {
            return Err("an invalid label name");
        }
        s = skip_spaces(&s[name_end..]);
        s = s.strip_prefix(b"=").ok_or("a label without '='")?;
        s = skip_spaces(s);
        s = s
            .strip_prefix(b"\"")
            .ok_or("a label value without quotes")?;
        let mut value = Vec::new();
        let mut i = 0;
        loop {
            match s.get(i) {
                None => return Err("a label value without its closing quote"),
                Some(b'"') => break,
                Some(b'\\') => {
                    match s.get(i + 1) {
                        Some(b'\\') => value.push(b'\\'),
                        Some(b'"') => value.push(b'"'),
                        Some(b'n') => value.push(b'\n'),
                        Some(&other) => value.extend_from_slice(&[b'\\', other]),
                        None => return Err("a label value without its closing quote"),
                    }
                    i += 2;
                }
                Some(&b) => {
                    value.push(b);
                    i += 1;
                }
            }
        }
        let value = String::from_utf8(value).map_err(|_| "a label value that is not UTF-8")?;
        if out.iter().any(|(n, _)| n == name) {
            return Err("a label name repeated in one series");
        }
        out.push((Text::from(name), Text::from(value)));
        s = skip_spaces(&s[i + 1..]);
        match s.first() {
            None => return Ok(()),
            Some(b',') => s = &s[1..],
            Some(_) => return Err("labels not separated by ','"),
        }
    }
}

fn skip_spaces(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    &s[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(text: &str) -> Result<Vec<(String, String)>, &'static str> {
        let mut out = Vec::new();
        parse_labels(text.as_bytes(), &mut out)?;
        Ok(out
            .into_iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect())
    }

    #[test]
    fn label_sets_unescape_and_refuse_what_prometheus_refuses() {
        assert_eq!(labels("").unwrap(), vec![]);
        assert_eq!(
            labels(r#"a="1",b = "x\"y\\z\nw", c="\t","#).unwrap(),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x\"y\\z\nw".into()),
                ("c".into(), "\\t".into())
            ]
        );
        assert_eq!(
            labels(r#"a="1",a="2""#),
            Err("a label name repeated in one series")
        );
        assert_eq!(labels(r#"1a="1""#), Err("an invalid label name"));
        assert_eq!(labels(r#"a=1"#), Err("a label value without quotes"));
        assert_eq!(labels(r#"a="1" b="2""#), Err("labels not separated by ','"));
        assert_eq!(
            labels(r#"a="1"#),
            Err("a label value without its closing quote")
        );
        assert!(valid_metric_name("node:cpu_seconds:rate5m"));
        assert!(!valid_metric_name("0abc"));
        assert!(!valid_label_name("a:b"));
    }
}
