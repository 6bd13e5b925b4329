//! Log group and stream name templates: literal text with `{attribute}` placeholders, rendered
//! per event and then made acceptable to CloudWatch Logs (documented rules, never a refused
//! request): group names keep `[A-Za-z0-9_./#-]`, stream names lose `:` and `*`; other characters
//! become `_`; both are cut to 512 bytes; an empty result becomes the missing value.

use sextant_pipeline::flow::event::LogEvent;

#[derive(Clone, Debug, PartialEq)]
enum Part {
    Literal(String),
    Attribute(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

const MAX_NAME_BYTES: usize = 512;

impl Template {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let Some(close) = rest[open..].find('}') else {
                return Err(format!("unclosed '{{' in {text:?}"));
            };
            let key = rest[open + 1..open + close].trim();
            if key.is_empty() {
                return Err(format!("empty placeholder in {text:?}"));
            }
            parts.push(Part::Attribute(key.to_owned()));
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        if parts.is_empty() {
            return Err("the name is empty".into());
        }
        Ok(Self { parts })
    }

    /// Renders for one event; `missing` fills placeholders the event has no value for.
    pub fn render(&self, event: &LogEvent, missing: &str) -> String {
        self.render_with(|k| event.attribute(k), missing)
    }

    /// The name with each placeholder filled by `lookup` (or `missing`).
    pub fn render_with<'a>(
        &self,
        lookup: impl Fn(&str) -> Option<&'a sextant_pipeline::flow::event::Value>,
        missing: &str,
    ) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Literal(l) => out.push_str(l),
                Part::Attribute(k) => match lookup(k) {
                    Some(v) => out.push_str(&v.to_text()),
                    None => out.push_str(missing),
                },
            }
        }
        out
    }
}

fn cut(mut s: String) -> String {
    if s.len() > MAX_NAME_BYTES {
        let mut end = MAX_NAME_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// A valid log group name; the bool says whether anything had to change.
pub fn sanitize_group(name: String, missing: &str) -> (String, bool) {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/' | '.' | '#');
    if !name.is_empty() && name.len() <= MAX_NAME_BYTES && name.chars().all(ok) {
        return (name, false);
    }
    let fixed: String = name.chars().map(|c| if ok(c) { c } else { '_' }).collect();
    let fixed = if fixed.is_empty() {
        missing.to_owned()
    } else {
        fixed
    };
    (cut(fixed), true)
}

/// A valid log stream name.
pub fn sanitize_stream(name: String, missing: &str) -> (String, bool) {
    let bad = |c: char| c == ':' || c == '*';
    if !name.is_empty() && name.len() <= MAX_NAME_BYTES && !name.contains(bad) {
        return (name, false);
    }
    let fixed: String = name.chars().map(|c| if bad(c) { '_' } else { c }).collect();
    let fixed = if fixed.is_empty() {
        missing.to_owned()
    } else {
        fixed
    };
    (cut(fixed), true)
}
