//! Multiline joining: stack traces and other records that span lines become one event.
//!
//! A line *continues* the record being built when it matches `continuation_pattern`, or when a
//! `start_pattern` is set and it does not match it; any other line starts a new record. Presets
//! give the continuation rules for Java, Python and Go stack traces. A record is emitted when the
//! next one starts, when it reaches `max_line_bytes`, or `timeout` after its last line (so the
//! last record of a quiet file is not held forever). Joined lines are separated by `\n`; the
//! record keeps its first line's time and attributes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use regex::Regex;
use serde::Deserialize;

use crate::config::units::DurationValue;
use crate::flow::event::{LogEvent, Value};

use super::super::lines::Line;
use super::{DecodeContext, Held, LineDecoder};

/// Built-in rules for common stack traces.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// `\tat com.x.Y(Y.java:1)`, `... 5 more`, `Caused by:`, `Suppressed:`.
    Java,
    /// `Traceback (most recent call last):`, indented frames, and the closing `XError: ...`.
    Python,
    /// `goroutine 1 [running]:`, `main.main()`, tab-indented file lines, blank lines of a panic.
    Go,
}

impl Preset {
    fn continuation(self) -> &'static str {
        match self {
            Preset::Java => {
                r"^(\s+at\s|\s+\.\.\.\s\d+\s+(more|common frames omitted)|\s*Caused by:|\s*Suppressed:)"
            }
            Preset::Python => {
                r"^(\s|Traceback \(most recent call last\):|During handling of the above exception|The above exception was the direct cause|[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)(:.*)?$)"
            }
            Preset::Go => {
                r"^(\s|$|goroutine \d+ \[|created by |[\w./*()-]+\(.*\)$|exit status \d+$)"
            }
        }
    }
}

/// `multiline:` settings.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MultilineConfig {
    #[serde(default)]
    pub preset: Option<Preset>,
    /// A line matching this starts a record (lines that do not, continue it).
    #[serde(default)]
    pub start_pattern: Option<String>,
    /// A line matching this continues the record (with a preset, in addition to its rules).
    #[serde(default)]
    pub continuation_pattern: Option<String>,
    /// Emit a record this long after its last line if no new record started.
    #[serde(default = "default_timeout")]
    pub timeout: DurationValue,
}

fn default_timeout() -> DurationValue {
    DurationValue(Duration::from_secs(1))
}

/// Compiled rules.
#[derive(Debug)]
pub struct MultilineRules {
    start: Option<Regex>,
    continuation: Vec<Regex>,
    timeout: Duration,
}

impl MultilineConfig {
    pub fn compile(&self) -> Result<MultilineRules, String> {
        let re = |p: &str| Regex::new(p).map_err(|e| format!("bad pattern {p:?}: {e}"));
        let mut continuation = Vec::new();
        if let Some(p) = self.preset {
            continuation.push(re(p.continuation())?);
        }
        if let Some(p) = &self.continuation_pattern {
            continuation.push(re(p)?);
        }
        let start = self.start_pattern.as_deref().map(re).transpose()?;
        if start.is_none() && continuation.is_empty() {
            return Err(
                "multiline needs a preset, a start_pattern or a continuation_pattern".into(),
            );
        }
        Ok(MultilineRules {
            start,
            continuation,
            timeout: self.timeout.0,
        })
    }
}

impl MultilineRules {
    fn continues(&self, line: &str) -> bool {
        self.continuation.iter().any(|r| r.is_match(line))
            || self.start.as_ref().is_some_and(|s| !s.is_match(line))
    }
}

/// Wraps `inner` in a joiner when there are rules.
pub fn wrap(
    inner: Box<dyn LineDecoder>,
    rules: Option<&Arc<MultilineRules>>,
) -> Box<dyn LineDecoder> {
    match rules {
        Some(rules) => Box::new(MultilineDecoder {
            inner,
            inner_holding: false,
            rules: rules.clone(),
            pending: None,
            last_line: Instant::now(),
            scratch: Vec::new(),
        }),
        None => inner,
    }
}

pub struct MultilineDecoder {
    inner: Box<dyn LineDecoder>,
    inner_holding: bool,
    rules: Arc<MultilineRules>,
    pending: Option<LogEvent>,
    last_line: Instant,
    scratch: Vec<LogEvent>,
}

impl LineDecoder for MultilineDecoder {
    fn decode(&mut self, line: Line<'_>, cx: &DecodeContext<'_>, out: &mut Vec<LogEvent>) -> Held {
        let inner_was_holding = self.inner_holding;
        let inner = self.inner.decode(line, cx, &mut self.scratch);
        self.inner_holding = inner != Held::No;
        let mut started_here = false;
        for event in self.scratch.drain(..) {
            self.last_line = Instant::now();
            let joins = match (&mut self.pending, &event.body) {
                (Some(p), Value::Str(text)) if self.rules.continues(text) => match &mut p.body {
                    Value::Str(body) if body.len() + 1 + text.len() <= cx.max_record_bytes => {
                        body.push('\n');
                        body.push_str(text);
                        true
                    }
                    _ => false,
                },
                _ => false,
            };
            if !joins {
                if let Some(p) = self.pending.take() {
                    out.push(p);
                }
                self.pending = Some(event);
                started_here = !inner_was_holding;
            }
        }
        match (self.pending.is_some(), inner) {
            (false, h) => h,
            (true, Held::Continues) => Held::Continues,
            (true, _) if started_here => Held::FromThisLine,
            (true, _) => Held::Continues,
        }
    }

    fn flush_expired(&mut self, cx: &DecodeContext<'_>, out: &mut Vec<LogEvent>) -> bool {
        if self.pending.is_some() && self.last_line.elapsed() >= self.rules.timeout {
            out.extend(self.pending.take());
        }
        let inner = self.inner_holding && self.inner.flush_expired(cx, out);
        self.pending.is_some() || inner
    }

    fn reset(&mut self) {
        self.inner.reset();
        self.inner_holding = false;
        self.pending = None;
        self.scratch.clear();
    }
}
