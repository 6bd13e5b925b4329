//! `queue.disk:` settings: a sink's crash-safe disk buffer (see `crate::buffer`), also the
//! spill buffers' settings under `memory.spill`.

use std::time::Duration;

use serde::Deserialize;

use super::error::BuildError;
use super::units::{ByteSizeValue, DurationValue};

/// `queue.disk:` of a sink.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DiskBufferSettings {
    /// Bytes the buffer may hold on disk.
    pub max_bytes: ByteSizeValue,
    pub when_full: DiskWhenFull,
    /// Most fsyncs per this interval: a write waits at most this long to be made durable (and
    /// its source acknowledged), and a quiet buffer syncs at once; `0s`: every batch.
    pub fsync_interval: DurationValue,
    /// Size of one segment file; a larger batch is split into records that fit.
    pub max_segment_bytes: ByteSizeValue,
}

impl Default for DiskBufferSettings {
    fn default() -> Self {
        Self {
            max_bytes: ByteSizeValue(1 << 30),
            when_full: DiskWhenFull::Block,
            fsync_interval: DurationValue(Duration::from_millis(100)),
            max_segment_bytes: ByteSizeValue(16 << 20),
        }
    }
}

impl DiskBufferSettings {
    /// Checks the settings at `key` (`collector.sinks.<name>.queue.disk`).
    pub fn validate(&self, key: &str) -> Result<(), BuildError> {
        let (max, segment) = (self.max_bytes.0, self.max_segment_bytes.0);
        if segment < 64 * 1024 {
            return Err(BuildError::at(
                key,
                "max_segment_bytes",
                "must be at least 64KiB",
            ));
        }
        if max < 2 * segment {
            return Err(BuildError::at(
                key,
                "max_bytes",
                format!("({max} bytes) must be at least twice max_segment_bytes ({segment} bytes)"),
            ));
        }
        Ok(())
    }
}

/// What a full disk buffer does.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DiskWhenFull {
    /// Stop taking input: back-pressure to the sources. Nothing is lost.
    #[default]
    Block,
    /// Delete the oldest segment to make room, counting its events as dropped.
    DropOldest,
}
