//! Log records into SNS messages that SNS accepts by construction (pure):
//!
//! - topic: the record's `sns.topic_arn` attribute, else the sink's `topic_arn`; neither is
//!   counted `no_topic` and dropped;
//! - subject: `sns.subject`, in printable ASCII under 100 characters;
//! - body: a string body as it is, any other body as JSON; an empty one is dropped (`empty`);
//!   cut on a UTF-8 boundary (counted `message_truncated`) so that it and the attributes fit
//!   SNS's 256 KiB;
//! - message attributes: the record's other attributes with scalar values, as Strings, up to
//!   SNS's 10, named as SNS allows (others counted `attribute_dropped`);
//! - FIFO topics: `sns.message_group_id` (else `sextant`) and `sns.deduplication_id` (else the
//!   SHA-256 of the body).
//!
//! The `prometheus_rules` source's notifications set every `sns.` attribute.

use sha2::{Digest, Sha256};

use sextant_pipeline::flow::event::{LogEvent, Value};
use sextant_rules::notify::message::{printable, SNS_MAX_BYTES, SUBJECT_MAX_CHARS};

/// SNS's limit on message attributes.
const MAX_ATTRIBUTES: usize = 10;

#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub topic_arn: String,
    pub subject: Option<String>,
    pub body: String,
    pub attributes: Vec<(String, String)>,
    pub message_group_id: Option<String>,
    pub deduplication_id: Option<String>,
}

impl Message {
    /// Its size as SNS counts it: body plus attribute names, types and values.
    pub fn sns_bytes(&self) -> usize {
        self.body.len() + attributes_bytes(&self.attributes)
    }
}

fn attributes_bytes(attributes: &[(String, String)]) -> usize {
    attributes
        .iter()
        .map(|(k, v)| k.len() + "String".len() + v.len())
        .sum()
}

#[derive(Debug, Default, PartialEq)]
pub struct BuildStats {
    pub no_topic: u64,
    pub empty: u64,
    pub truncated: u64,
    pub attributes_dropped: u64,
}

/// SNS's rule for attribute names.
fn valid_attribute_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !name.to_ascii_lowercase().starts_with("aws.")
        && !name.to_ascii_lowercase().starts_with("amazon.")
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::Str(s) => Some(s.to_string()),
        Value::Int(i) => Some(i.to_string()),
        Value::Double(d) => Some(d.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub fn build(
    record: &LogEvent,
    default_topic: Option<&str>,
    stats: &mut BuildStats,
) -> Option<Message> {
    let attribute = |key: &str| {
        record
            .attributes
            .iter()
            .find(|kv| &*kv.key == key)
            .and_then(|kv| text_of(&kv.value))
    };
    let Some(topic_arn) = attribute("sns.topic_arn").or_else(|| default_topic.map(str::to_string))
    else {
        stats.no_topic += 1;
        return None;
    };
    let mut body = match &record.body {
        Value::Str(s) => s.to_string(),
        Value::Empty => String::new(),
        other => other.to_json().to_string(),
    };
    if body.is_empty() {
        stats.empty += 1;
        return None;
    }
    let mut attributes = Vec::new();
    for kv in &record.attributes {
        if kv.key.starts_with("sns.") {
            continue;
        }
        match text_of(&kv.value) {
            Some(v)
                if !v.is_empty()
                    && valid_attribute_name(&kv.key)
                    && attributes.len() < MAX_ATTRIBUTES =>
            {
                attributes.push((kv.key.to_string(), v));
            }
            _ => stats.attributes_dropped += 1,
        }
    }
    // Attributes are small by nature; ones that leave the body no room go first.
    while attributes_bytes(&attributes) > SNS_MAX_BYTES / 2 {
        attributes.pop();
        stats.attributes_dropped += 1;
    }
    let budget = SNS_MAX_BYTES - attributes_bytes(&attributes);
    if body.len() > budget {
        let mut end = budget;
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        body.truncate(end);
        stats.truncated += 1;
    }
    let fifo = topic_arn.ends_with(".fifo");
    let subject = attribute("sns.subject")
        .map(|s| printable(&s, SUBJECT_MAX_CHARS))
        .filter(|s| !s.trim().is_empty());
    let message_group_id = fifo.then(|| {
        attribute("sns.message_group_id")
            .map(|g| printable(&g, 128))
            .unwrap_or_else(|| "sextant".to_string())
    });
    let deduplication_id = fifo.then(|| {
        attribute("sns.deduplication_id")
            .map(|d| printable(&d, 128))
            .unwrap_or_else(|| {
                Sha256::digest(body.as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            })
    });
    Some(Message {
        topic_arn,
        subject,
        body,
        attributes,
        message_group_id,
        deduplication_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sextant_pipeline::flow::event::KeyValue;

    fn record(body: Value, attributes: Vec<KeyValue>) -> LogEvent {
        LogEvent {
            body,
            attributes: attributes.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_record_becomes_a_message_with_its_attributes() {
        let mut stats = BuildStats::default();
        let r = record(
            Value::Str("hello".into()),
            vec![
                KeyValue::new("sns.subject", "[FIRING:1] Lag\nnow"),
                KeyValue::new("severity", "critical"),
                KeyValue::new("count", 3i64),
                KeyValue::new("AWS.reserved", "x"),
                KeyValue::new("empty", ""),
            ],
        );
        let m = build(&r, Some("arn:aws:sns:eu-west-1:1:t"), &mut stats).unwrap();
        assert_eq!(m.topic_arn, "arn:aws:sns:eu-west-1:1:t");
        assert_eq!(m.subject.as_deref(), Some("[FIRING:1] Lag?now"));
        assert_eq!(m.body, "hello");
        assert_eq!(
            m.attributes,
            [
                ("severity".to_string(), "critical".to_string()),
                ("count".to_string(), "3".to_string())
            ]
        );
        assert_eq!((m.message_group_id, m.deduplication_id), (None, None));
        assert_eq!(stats.attributes_dropped, 2);
    }

    #[test]
    fn without_a_topic_or_a_body_nothing_is_sent_and_it_is_counted() {
        let mut stats = BuildStats::default();
        assert!(build(&record(Value::Str("x".into()), vec![]), None, &mut stats).is_none());
        assert!(build(
            &record(Value::Empty, vec![]),
            Some("arn:aws:sns:r:1:t"),
            &mut stats
        )
        .is_none());
        assert_eq!((stats.no_topic, stats.empty), (1, 1));
    }

    #[test]
    fn a_multibyte_body_over_the_limit_is_cut_on_a_character_boundary() {
        let mut stats = BuildStats::default();
        let r = record(
            Value::Str("€".repeat(100_000).into()),
            vec![KeyValue::new("status", "firing")],
        );
        let m = build(&r, Some("arn:aws:sns:r:1:t"), &mut stats).unwrap();
        assert!(m.sns_bytes() <= SNS_MAX_BYTES);
        assert!(m.sns_bytes() > SNS_MAX_BYTES - 3);
        assert!(m.body.chars().all(|c| c == '€'));
        assert_eq!(stats.truncated, 1);
    }

    #[test]
    fn a_fifo_topic_gets_group_and_deduplication_ids() {
        let mut stats = BuildStats::default();
        let fifo = "arn:aws:sns:r:1:t.fifo";
        let plain = build(
            &record(Value::Str("a".into()), vec![]),
            Some(fifo),
            &mut stats,
        )
        .unwrap();
        assert_eq!(plain.message_group_id.as_deref(), Some("sextant"));
        assert_eq!(plain.deduplication_id.as_ref().map(String::len), Some(64));
        let given = build(
            &record(
                Value::Str("a".into()),
                vec![
                    KeyValue::new("sns.message_group_id", "g1"),
                    KeyValue::new("sns.deduplication_id", "d1"),
                ],
            ),
            Some(fifo),
            &mut stats,
        )
        .unwrap();
        assert_eq!(
            (
                given.message_group_id.as_deref(),
                given.deduplication_id.as_deref()
            ),
            (Some("g1"), Some("d1"))
        );
    }
}
