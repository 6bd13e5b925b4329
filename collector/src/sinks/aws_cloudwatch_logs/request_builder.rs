//! Pure: log events in, PutLogEvents requests out, within CloudWatch Logs' limits, which the
//! test server does not enforce (so tests assert on what this builds):
//! - at most 10,000 events and 1,048,576 bytes per request, counting each event's message as its
//!   UTF-8 bytes plus 26;
//! - events in one request sorted by time and spanning at most 24 hours;
//! - an event larger than the limit is truncated to fit, ending with a marker, and counted.
//!
//! Events are grouped by rendered (group, stream); each stream's requests keep time order.

use std::collections::HashMap;

use sextant_pipeline::flow::event::LogEvent;

use super::encoding::EncodingSettings;
use super::template::{sanitize_group, sanitize_stream, Template};

pub const MAX_REQUEST_BYTES: usize = 1_048_576;
pub const MAX_REQUEST_EVENTS: usize = 10_000;
pub const EVENT_OVERHEAD_BYTES: usize = 26;
/// The largest message of one event.
pub const MAX_MESSAGE_BYTES: usize = MAX_REQUEST_BYTES - EVENT_OVERHEAD_BYTES;
pub const MAX_SPAN_MS: i64 = 24 * 3600 * 1000;
pub const TRUNCATION_MARKER: &str = "...[truncated by sextant]";

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    pub group: String,
    pub stream: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct InputEvent {
    pub timestamp_ms: i64,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PutRequest {
    pub key: StreamKey,
    pub events: Vec<InputEvent>,
    /// Bytes as CloudWatch counts them.
    pub bytes: usize,
}

impl sextant_pipeline::sink::sender::Request for PutRequest {
    fn events(&self) -> usize {
        self.events.len()
    }
    fn bytes(&self) -> usize {
        self.bytes
    }
    fn target(&self) -> String {
        format!("{}/{}", self.key.group, self.key.stream)
    }
    fn dead_letter(&self, range: std::ops::Range<usize>) -> Vec<serde_json::Value> {
        self.events
            .get(range)
            .unwrap_or_default()
            .iter()
            .map(|e| serde_json::json!({"log_group": self.key.group, "log_stream": self.key.stream, "timestamp": e.timestamp_ms, "message": e.message}))
            .collect()
    }
}

#[derive(Debug, Default, PartialEq)]
pub struct BuildStats {
    pub truncated: u64,
    pub names_fixed: u64,
}

pub struct Builder<'a> {
    pub group: &'a Template,
    pub stream: &'a Template,
    pub missing: &'a str,
    pub encoding: &'a EncodingSettings,
}

fn truncate(mut message: String) -> String {
    let mut end = MAX_MESSAGE_BYTES - TRUNCATION_MARKER.len();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message.truncate(end);
    message.push_str(TRUNCATION_MARKER);
    message
}

impl Builder<'_> {
    pub fn build(&self, events: Vec<LogEvent>) -> (Vec<PutRequest>, BuildStats) {
        let mut stats = BuildStats::default();
        let mut streams: HashMap<StreamKey, Vec<InputEvent>> = HashMap::new();
        let mut order: Vec<StreamKey> = Vec::new();
        for e in events {
            let (group, g_fixed) =
                sanitize_group(self.group.render(&e, self.missing), self.missing);
            let (stream, s_fixed) =
                sanitize_stream(self.stream.render(&e, self.missing), self.missing);
            stats.names_fixed += u64::from(g_fixed || s_fixed);
            let mut message = self.encoding.encode(&e);
            if message.len() > MAX_MESSAGE_BYTES {
                message = truncate(message);
                stats.truncated += 1;
            }
            let timestamp_ms = (e.effective_time_unix_nano() / 1_000_000) as i64;
            let key = StreamKey { group, stream };
            streams
                .entry(key.clone())
                .or_insert_with(|| {
                    order.push(key);
                    Vec::new()
                })
                .push(InputEvent {
                    timestamp_ms,
                    message,
                });
        }
        let mut requests = Vec::new();
        for key in order {
            let Some(mut events) = streams.remove(&key) else {
                continue;
            };
            events.sort_by_key(|e| e.timestamp_ms);
            let mut current = PutRequest {
                key: key.clone(),
                events: Vec::new(),
                bytes: 0,
            };
            for ev in events {
                let size = ev.message.len() + EVENT_OVERHEAD_BYTES;
                let full = current.events.len() >= MAX_REQUEST_EVENTS
                    || current.bytes + size > MAX_REQUEST_BYTES
                    || current
                        .events
                        .first()
                        .is_some_and(|first| ev.timestamp_ms - first.timestamp_ms > MAX_SPAN_MS);
                if full && !current.events.is_empty() {
                    requests.push(std::mem::replace(
                        &mut current,
                        PutRequest {
                            key: key.clone(),
                            events: Vec::new(),
                            bytes: 0,
                        },
                    ));
                }
                current.bytes += size;
                current.events.push(ev);
            }
            if !current.events.is_empty() {
                requests.push(current);
            }
        }
        (requests, stats)
    }
}
