//! How the lines of a file become events. A [`FileFormat`] gives each file its resource (what
//! the path says about where the lines come from) and a [`LineDecoder`] (per file, since some
//! formats carry state across lines: CRI partial lines, docker's split records).
//!
//! A decoder may hold an unfinished record across lines; the tailer then checkpoints only up to
//! the start of the first held line, so a restart re-reads the whole record.

pub mod cri;
pub mod docker;
pub mod json;
pub mod multiline;
#[cfg(test)]
mod tests;
pub mod time;

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use super::config::InvalidUtf8;
use super::lines::Line;
use crate::flow::event::{KeyValue, LogEvent, Origin, RecordAttributes, Resource, Text, Value};
use crate::telemetry::{ComponentMetrics, LogLimiter};

/// What a decoder needs besides the line.
pub struct DecodeContext<'a> {
    pub origin: &'a Arc<Origin>,
    /// When the line was read (nanoseconds since the epoch).
    pub now: u64,
    pub metrics: &'a ComponentMetrics,
    pub invalid_utf8: InvalidUtf8,
    pub max_record_bytes: usize,
    pub limiter: &'a LogLimiter,
}

impl DecodeContext<'_> {
    /// Text of a line, by the `invalid_utf8` policy.
    pub fn text(&self, bytes: &[u8]) -> Value {
        match std::str::from_utf8(bytes) {
            Ok(s) => Value::Str(s.into()),
            Err(_) => {
                self.metrics.error("invalid_utf8");
                match self.invalid_utf8 {
                    InvalidUtf8::Lossy => Value::Str(String::from_utf8_lossy(bytes).into()),
                    InvalidUtf8::Bytes => Value::Bytes(bytes.to_vec()),
                }
            }
        }
    }

    /// An event for `body` with this file's origin.
    pub fn event(
        &self,
        time_unix_nano: u64,
        body: Value,
        attributes: RecordAttributes,
    ) -> LogEvent {
        LogEvent {
            origin: self.origin.clone(),
            time_unix_nano,
            observed_time_unix_nano: self.now,
            body,
            attributes,
            ..Default::default()
        }
    }

    /// A line that is not in the expected format: counted, logged at a rate limit, and passed
    /// through raw with a `parse_error` attribute. Returns what the decoder holds afterwards (a
    /// record it was merging is still held).
    pub fn pass_through(
        &self,
        line: &Line<'_>,
        reason: &'static str,
        error: &'static str,
        was_holding: bool,
        out: &mut Vec<LogEvent>,
    ) -> Held {
        self.metrics.discarded(reason, 1);
        if let Some(suppressed) = self.limiter.allow() {
            tracing::warn!(component = %self.metrics.name, reason, suppressed, "line not in the expected format; passed through raw with a parse_error attribute");
        }
        let mut attributes = vec![KeyValue::new("parse_error", error)];
        if line.split {
            attributes.push(split_attribute());
        }
        out.push(self.event(self.now, self.text(line.bytes), attributes.into()));
        if was_holding {
            Held::Continues
        } else {
            Held::No
        }
    }
}

/// Whether a decoder holds an unfinished record after a line, and since when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// Nothing held: everything up to this line's end is in emitted events.
    No,
    /// A record is held that began on an earlier line.
    Continues,
    /// A record is held that began on this line (what came before is all emitted).
    FromThisLine,
}

impl Held {
    /// `FromThisLine` if nothing was held before this line, else `Continues`.
    pub fn holding(was_holding: bool) -> Held {
        if was_holding {
            Held::Continues
        } else {
            Held::FromThisLine
        }
    }
}

/// Turns one file's lines into events.
pub trait LineDecoder: Send {
    /// Decodes a line (or a part of an over-long line) and says what it holds afterwards.
    fn decode(&mut self, line: Line<'_>, cx: &DecodeContext<'_>, out: &mut Vec<LogEvent>) -> Held;
    /// Emits a held record whose time is up (multiline's flush timeout); returns whether
    /// anything is still held. Called while the decoder holds something.
    fn flush_expired(&mut self, _cx: &DecodeContext<'_>, _out: &mut Vec<LogEvent>) -> bool {
        true
    }
    /// Forgets any held record (the file is re-read from a checkpoint, or was truncated).
    fn reset(&mut self);
}

/// A kind of file.
pub trait FileFormat: Send + Sync {
    /// Resource attributes of a file's events (beyond `host.name`, `log.file.path/name`).
    fn resource(&self, path: &Path) -> Vec<KeyValue>;
    fn decoder(&self, path: &Path) -> Box<dyn LineDecoder>;
    /// Moves whenever what [`resource`](Self::resource) or [`disposition`](Self::disposition)
    /// answer may have changed (metadata learnt from an API); the tailer then asks again.
    fn generation(&self) -> u64 {
        0
    }
    /// What to do with a file's content now; `waited` is how long the file has been known.
    /// Asked when the file opens, when the generation moves, and every round while `Wait`.
    fn disposition(&self, _path: &Path, _waited: std::time::Duration) -> Disposition {
        Disposition::Read
    }
}

/// Whether a file is read now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Read it; its resource is complete.
    Read,
    /// Read it, though its resource lacks metadata that should be there (an API is down or
    /// slow): its events are counted in `sextant_metadata_missing_events_total`.
    ReadIncomplete,
    /// Not yet: its metadata is expected shortly. Lines wait on disk.
    Wait,
    /// Never: its content is skipped (checkpointed without being read), e.g. an excluded pod.
    Skip,
}

/// The line format of the generic `file` source.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LineFormat {
    /// One event per line, as is.
    #[default]
    Plain,
    /// Container runtime (CRI) log lines: `<time> <stream> <P|F> <message>`.
    Cri,
    /// Docker json-file lines: `{"log":..,"stream":..,"time":..}`.
    Docker,
}

/// Options for messages that are themselves JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JsonMessages {
    /// Parse a message that is a JSON object into attributes.
    pub parse: bool,
    /// Keep the original message as the body (else the body is its `message`/`msg` field when
    /// there is one).
    pub keep_original: bool,
}

/// A format for the generic file source: no path metadata, one of the line formats, and
/// optionally multiline joining.
pub struct GenericFormat {
    pub line: LineFormat,
    pub json: JsonMessages,
    pub multiline: Option<Arc<multiline::MultilineRules>>,
}

impl FileFormat for GenericFormat {
    fn resource(&self, _path: &Path) -> Vec<KeyValue> {
        Vec::new()
    }

    fn decoder(&self, _path: &Path) -> Box<dyn LineDecoder> {
        let inner: Box<dyn LineDecoder> = match self.line {
            LineFormat::Plain => Box::new(PlainDecoder { json: self.json }),
            LineFormat::Cri => Box::new(cri::CriDecoder::new(self.json)),
            LineFormat::Docker => Box::new(docker::DockerDecoder::new(self.json)),
        };
        multiline::wrap(inner, self.multiline.as_ref())
    }
}

const fn iostream(stream: &'static str) -> KeyValue {
    KeyValue {
        key: Text::const_new("log.iostream"),
        value: Value::Str(Text::const_new(stream)),
    }
}

const SPLIT: KeyValue = KeyValue {
    key: Text::const_new("sextant.split"),
    value: Value::Bool(true),
};

static STDOUT: [KeyValue; 1] = [iostream("stdout")];
static STDERR: [KeyValue; 1] = [iostream("stderr")];
static STDOUT_SPLIT: [KeyValue; 2] = [iostream("stdout"), SPLIT];
static STDERR_SPLIT: [KeyValue; 2] = [iostream("stderr"), SPLIT];
static SPLIT_ONLY: [KeyValue; 1] = [SPLIT];

/// The attributes a record from a line starts with: `log.iostream` when the format has a
/// stream (`"stdout"` or `"stderr"`; `"stderr"` is told apart, anything else is stdout), and
/// `sextant.split` when it is a part of an over-long line. Built at compile time, so no string
/// is copied per line, and shared by records that keep their message as text.
pub fn line_attributes(stream: Option<&'static str>, split: bool) -> &'static [KeyValue] {
    match (stream, split) {
        (None, false) => &[],
        (None, true) => &SPLIT_ONLY,
        (Some("stderr"), false) => &STDERR,
        (Some("stderr"), true) => &STDERR_SPLIT,
        (Some(_), false) => &STDOUT,
        (Some(_), true) => &STDOUT_SPLIT,
    }
}

/// Marks a part of an over-long line.
pub fn split_attribute() -> KeyValue {
    SPLIT
}

/// One line, one event.
pub struct PlainDecoder {
    pub json: JsonMessages,
}

impl LineDecoder for PlainDecoder {
    fn decode(&mut self, line: Line<'_>, cx: &DecodeContext<'_>, out: &mut Vec<LogEvent>) -> Held {
        let leading = line_attributes(None, line.split);
        let (body, attributes) = json::message_body(line.bytes, self.json, cx, leading);
        out.push(cx.event(cx.now, body, attributes));
        Held::No
    }

    fn reset(&mut self) {}
}

/// The resource of a file: host and path, then what the format adds.
pub fn file_resource(host: &str, path: &Path, extra: Vec<KeyValue>) -> Resource {
    let mut attributes = vec![
        KeyValue::new("host.name", host),
        KeyValue::new("log.file.path", path.display().to_string()),
        KeyValue::new(
            "log.file.name",
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
    ];
    attributes.extend(extra);
    Resource {
        attributes,
        ..Default::default()
    }
}
