//! What a log record becomes as a CloudWatch Logs message (`encoding:` of the sink).
//!
//! - `codec: json` (the default): one JSON object per record — every record attribute under its
//!   own key, the body under `body_key` (`message`) unless it is already one of the attributes
//!   (`message`, `msg`: a parsed JSON line's message field), the resource attributes listed in
//!   `resource_attributes`, and `severity`, `trace_id`, `span_id` when the record has them. A
//!   container's JSON line whose fields became attributes thus reaches CloudWatch whole, as it
//!   was written, where Logs Insights finds `level`, `user_id` and the rest as fields. A key is
//!   written once: the body's, then the record's, then the resource's.
//! - `codec: text`: the body as text, or with `message_key` the one field of that name (the
//!   record's attribute, else its resource's; the body when the record has neither).
//!
//! Pure (no I/O): the request builder calls it for every record.

use serde::Deserialize;
use serde_json::{Map, Value as Json};

use sextant_pipeline::component::BuildError;
use sextant_pipeline::flow::event::{find_attribute, LogEvent, Value};

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Codec {
    #[default]
    Json,
    Text,
}

/// `encoding:` of an `aws_cloudwatch_logs` sink.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EncodingSettings {
    pub codec: Codec,
    /// json: the key the body goes under.
    pub body_key: String,
    /// json: resource attributes added to every object (e.g. `k8s.pod.name`).
    pub resource_attributes: Vec<String>,
    /// text: the field sent instead of the body.
    pub message_key: Option<String>,
}

impl Default for EncodingSettings {
    fn default() -> Self {
        Self {
            codec: Codec::Json,
            body_key: "message".into(),
            resource_attributes: Vec::new(),
            message_key: None,
        }
    }
}

impl EncodingSettings {
    /// Settings of one codec given to the other are refused, not ignored.
    pub fn validate(&self, key: &str) -> Result<(), BuildError> {
        match self.codec {
            Codec::Json if self.message_key.is_some() => Err(BuildError::at(
                key,
                "encoding.message_key",
                "is for codec: text (json sends every field)",
            )),
            Codec::Text if !self.resource_attributes.is_empty() => Err(BuildError::at(
                key,
                "encoding.resource_attributes",
                "is for codec: json",
            )),
            Codec::Json if self.body_key.is_empty() => {
                Err(BuildError::at(key, "encoding.body_key", "is empty"))
            }
            _ => Ok(()),
        }
    }

    /// The message for `event`.
    pub fn encode(&self, event: &LogEvent) -> String {
        match self.codec {
            Codec::Text => match self.message_key.as_deref().and_then(|k| event.attribute(k)) {
                Some(field) => field.to_text().into_owned(),
                None => event.body.to_text().into_owned(),
            },
            Codec::Json => self.json(event).to_string(),
        }
    }

    fn json(&self, event: &LogEvent) -> Json {
        let mut object = Map::with_capacity(event.attributes.len() + 4);
        let body_is_a_field = ["message", "msg", self.body_key.as_str()]
            .into_iter()
            .any(|k| find_attribute(&event.attributes, k) == Some(&event.body));
        if !body_is_a_field && !matches!(event.body, Value::Empty) {
            object.insert(self.body_key.clone(), event.body.to_json());
        }
        for kv in &event.attributes {
            object
                .entry(kv.key.to_string())
                .or_insert_with(|| kv.value.to_json());
        }
        for key in &self.resource_attributes {
            if let Some(v) = event.origin.resource_attribute(key) {
                object.entry(key.clone()).or_insert_with(|| v.to_json());
            }
        }
        if !event.severity_text.is_empty() {
            object
                .entry("severity")
                .or_insert_with(|| Json::String(event.severity_text.clone()));
        }
        if let Some(id) = &event.trace_id {
            object
                .entry("trace_id")
                .or_insert_with(|| Json::String(hex(id)));
        }
        if let Some(id) = &event.span_id {
            object
                .entry("span_id")
                .or_insert_with(|| Json::String(hex(id)));
        }
        Json::Object(object)
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
