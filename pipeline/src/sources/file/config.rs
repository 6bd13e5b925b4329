//! `type: file` settings, and the `tail:` settings every file-reading source shares.

use std::time::Duration;

use serde::Deserialize;

use super::format::LineFormat;
use crate::component::BuildError;
use crate::config::units::{ByteSizeValue, DurationValue};

/// Where to start in a file that has no checkpoint and was there when the source first started.
/// Files that appear later are always read from their beginning.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ReadFrom {
    #[default]
    Beginning,
    End,
}

/// What to do with bytes that are not UTF-8.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum InvalidUtf8 {
    /// Replace invalid sequences with U+FFFD (counted as `invalid_utf8` errors).
    #[default]
    Lossy,
    /// Keep the line as a bytes body.
    Bytes,
}

/// How files are followed: `tail:` of the `file` and `kubernetes_logs` sources.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TailSettings {
    pub read_from: ReadFrom,
    /// How often to look for new, rotated and deleted files.
    pub glob_interval: DurationValue,
    /// Longer lines are split into parts of this size, each but the last marked
    /// `sextant.split: true`; also the bound on a merged (partial-line) record.
    pub max_line_bytes: ByteSizeValue,
    /// Bytes read from one file before moving to the next (fairness between busy files).
    pub max_read_bytes: ByteSizeValue,
    /// Files held open at once; more wait for a slot.
    pub max_open_files: usize,
    /// Bytes at the start of a file that, with device and inode, identify it.
    pub fingerprint_bytes: usize,
    /// How often acknowledged offsets are written to disk.
    pub checkpoint_interval: DurationValue,
    /// How long a rotated or deleted file is still read after it was found gone.
    pub rotate_wait: DurationValue,
    pub invalid_utf8: InvalidUtf8,
    /// Wake on inotify events (new lines and files at once); polling remains the fallback.
    pub inotify: bool,
}

impl Default for TailSettings {
    fn default() -> Self {
        Self {
            read_from: ReadFrom::Beginning,
            glob_interval: DurationValue(Duration::from_secs(1)),
            max_line_bytes: ByteSizeValue(256 * 1024),
            max_read_bytes: ByteSizeValue(256 * 1024),
            max_open_files: 1024,
            fingerprint_bytes: 256,
            checkpoint_interval: DurationValue(Duration::from_secs(1)),
            rotate_wait: DurationValue(Duration::from_secs(2)),
            invalid_utf8: InvalidUtf8::Lossy,
            inotify: true,
        }
    }
}

impl TailSettings {
    pub fn validate(&self, name: &str) -> Result<(), BuildError> {
        if self.max_line_bytes.0 == 0 || self.max_read_bytes.0 == 0 || self.max_open_files == 0 {
            return Err(BuildError::invalid(
                name,
                "tail: max_line_bytes, max_read_bytes and max_open_files must be above 0",
            ));
        }
        Ok(())
    }
}

/// Checks glob patterns.
pub fn validate_globs<'a>(
    name: &str,
    patterns: impl IntoIterator<Item = &'a String>,
) -> Result<(), BuildError> {
    for p in patterns {
        glob::Pattern::new(p)
            .map_err(|e| BuildError::invalid(name, format!("bad glob {p:?}: {e}")))?;
    }
    Ok(())
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FileSourceConfig {
    /// Glob patterns of files to tail (required).
    pub include: Vec<String>,
    /// Glob patterns of files to leave alone.
    pub exclude: Vec<String>,
    /// `plain` (one event per line), `cri` or `docker` (container runtime formats).
    pub format: LineFormat,
    /// Parse messages that are JSON objects into attributes.
    pub parse_json: bool,
    /// With `parse_json`, keep the whole message as the body (else its `message`/`msg` field).
    pub keep_original: bool,
    /// Join records that span lines (stack traces).
    pub multiline: Option<super::format::multiline::MultilineConfig>,
    pub tail: TailSettings,
}

impl FileSourceConfig {
    pub fn validate(&self, name: &str) -> Result<(), BuildError> {
        if self.include.is_empty() {
            return Err(BuildError::invalid(
                name,
                "include is empty: name at least one glob pattern",
            ));
        }
        validate_globs(name, self.include.iter().chain(&self.exclude))?;
        if let Some(m) = &self.multiline {
            m.compile()
                .map_err(|e| BuildError::invalid(name, format!("multiline: {e}")))?;
        }
        self.tail.validate(name)
    }
}

crate::source_config!(
    FileSourceConfig,
    "file",
    crate::flow::event::Signals::LOGS,
    super::build,
    FileSourceConfig::validate
);
