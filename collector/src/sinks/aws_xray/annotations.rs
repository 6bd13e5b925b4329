//! Annotations and metadata. X-Ray indexes annotations for filter expressions and refuses a
//! document whose annotations break its rules, so Sextant applies them first:
//! - keys: letters, digits and `_` only (other characters become `_`), at most 500 characters;
//! - values: strings (cut at 1000 characters), finite numbers and booleans; an attribute of any
//!   other type (arrays, maps, bytes, empty) goes to metadata instead;
//! - at most 50 annotations a document; the ones past it go to metadata.
//!
//! Metadata (not indexed) keeps every other attribute under the `default` namespace, as JSON.

use serde_json::{Map, Value as Json};

use sextant_pipeline::flow::event::{KeyValue, Value};

pub const MAX_ANNOTATIONS: usize = 50;
pub const MAX_KEY_LEN: usize = 500;
pub const MAX_STRING_LEN: usize = 1000;

/// What applying the rules had to change, for the caller to count.
#[derive(Debug, Default, PartialEq)]
pub struct AnnotationStats {
    /// Keys or values that had to be fixed.
    pub fixed: u64,
    /// Attributes meant as annotations that went to metadata (type or count).
    pub demoted: u64,
}

/// An annotation key X-Ray accepts.
pub fn annotation_key(key: &str, stats: &mut AnnotationStats) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    let ok =
        key.len() <= MAX_KEY_LEN && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        return Some(key.to_string());
    }
    stats.fixed += 1;
    Some(
        key.chars()
            .take(MAX_KEY_LEN)
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect(),
    )
}

fn annotation_value(v: &Value, stats: &mut AnnotationStats) -> Option<Json> {
    Some(match v {
        Value::Str(s) if s.chars().count() > MAX_STRING_LEN => {
            stats.fixed += 1;
            Json::String(s.chars().take(MAX_STRING_LEN).collect())
        }
        Value::Str(s) => Json::String(s.to_string()),
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Double(d) => Json::Number(serde_json::Number::from_f64(*d)?),
        _ => return None,
    })
}

/// Splits `attributes` into annotations (those `indexed` says) and metadata.
pub fn split(
    attributes: &[KeyValue],
    indexed: impl Fn(&str) -> bool,
    stats: &mut AnnotationStats,
) -> (Map<String, Json>, Map<String, Json>) {
    let mut annotations = Map::new();
    let mut metadata = Map::new();
    for kv in attributes {
        if indexed(&kv.key) {
            if annotations.len() < MAX_ANNOTATIONS {
                if let (Some(key), Some(value)) = (
                    annotation_key(&kv.key, stats),
                    annotation_value(&kv.value, stats),
                ) {
                    annotations.entry(key).or_insert(value);
                    continue;
                }
            }
            stats.demoted += 1;
        }
        metadata
            .entry(kv.key.to_string())
            .or_insert_with(|| kv.value.to_json());
    }
    (annotations, metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_follow_xrays_rules_and_the_rest_is_metadata() {
        let attributes = vec![
            KeyValue::new("customer.tier", "gold"),
            KeyValue::new("retries", 3i64),
            KeyValue::new("tags", Value::Array(vec![Value::from("a")])),
            KeyValue::new("long", "x".repeat(1200)),
            KeyValue::new("debug.payload", "{...}"),
        ];
        let mut stats = AnnotationStats::default();
        let (a, m) = split(&attributes, |k| k != "debug.payload", &mut stats);
        assert_eq!(a["customer_tier"], "gold");
        assert_eq!(a["retries"], 3);
        assert_eq!(a["long"].as_str().map(str::len), Some(1000));
        assert!(!a.contains_key("tags"));
        assert_eq!(m["tags"], serde_json::json!(["a"]));
        assert_eq!(m["debug.payload"], "{...}");
        assert_eq!(
            stats,
            AnnotationStats {
                fixed: 2,
                demoted: 1
            }
        );

        let many: Vec<KeyValue> = (0..60)
            .map(|i| KeyValue::new(format!("k{i}"), i as i64))
            .collect();
        let mut stats = AnnotationStats::default();
        let (a, m) = split(&many, |_| true, &mut stats);
        assert_eq!((a.len(), m.len(), stats.demoted), (50, 10, 10));
    }
}
