//! Dead-letter files: where a sink writes what its backend refused for good, so that a refused
//! record is counted, logged at a rate limit, and kept for someone to look at, not silently gone.
//!
//! One JSON object per line: `{"time_unix_nano":..,"sink":..,"reason":..,"record":{..}}`, the
//! record in whatever shape the sink sent it. Bounded: past `max_file_bytes` the file is rotated
//! to `<path>.1` (one old file kept). A write that fails is counted and logged; it never stops
//! the sink.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::component::BuildError;
use crate::config::units::ByteSizeValue;
use crate::telemetry::{ComponentMetrics, LogLimiter};

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// The file to append to (its directory is created).
    pub path: PathBuf,
    /// Rotate to `<path>.1` past this size.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: ByteSizeValue,
}

fn default_max_file_bytes() -> ByteSizeValue {
    ByteSizeValue(64 * 1024 * 1024)
}

struct Output {
    file: File,
    size: u64,
}

pub struct DeadLetter {
    config: DeadLetterConfig,
    output: Mutex<Option<Output>>,
    metrics: ComponentMetrics,
    errors: LogLimiter,
}

impl DeadLetter {
    /// Opens the file now, so a path that cannot be written is a start-up error.
    pub fn open(
        config: &DeadLetterConfig,
        metrics: ComponentMetrics,
    ) -> Result<Arc<Self>, BuildError> {
        let io = |e| BuildError::io(&metrics.name, e);
        if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let output = Self::open_file(&config.path).map_err(io)?;
        Ok(Arc::new(Self {
            config: config.clone(),
            output: Mutex::new(Some(output)),
            metrics,
            errors: LogLimiter::default(),
        }))
    }

    fn open_file(path: &PathBuf) -> std::io::Result<Output> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Output { file, size })
    }

    fn write_blocking(&self, reason: &str, records: &[serde_json::Value]) -> std::io::Result<()> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let mut buf = Vec::new();
        for record in records {
            let line = serde_json::json!({"time_unix_nano": now, "sink": self.metrics.name, "reason": reason, "record": record});
            serde_json::to_writer(&mut buf, &line).map_err(std::io::Error::other)?;
            buf.push(b'\n');
        }
        let mut guard = self
            .output
            .lock()
            .map_err(|_| std::io::Error::other("dead-letter lock poisoned"))?;
        if guard
            .as_ref()
            .is_some_and(|o| o.size > 0 && o.size + buf.len() as u64 > self.config.max_file_bytes.0)
        {
            *guard = None;
            let rotated = PathBuf::from(format!("{}.1", self.config.path.display()));
            std::fs::rename(&self.config.path, rotated)?;
        }
        if guard.is_none() {
            *guard = Some(Self::open_file(&self.config.path)?);
        }
        let Some(out) = guard.as_mut() else {
            return Err(std::io::Error::other("dead-letter file not open"));
        };
        out.file.write_all(&buf)?;
        out.file.flush()?;
        out.size += buf.len() as u64;
        Ok(())
    }

    /// Appends `records`, refused for `reason`.
    pub async fn write(self: &Arc<Self>, reason: &'static str, records: Vec<serde_json::Value>) {
        if records.is_empty() {
            return;
        }
        let this = self.clone();
        let result =
            tokio::task::spawn_blocking(move || this.write_blocking(reason, &records)).await;
        if let Err(e) = result.map_err(std::io::Error::other).and_then(|r| r) {
            self.metrics.error("dead_letter_write");
            if let Some(suppressed) = self.errors.allow() {
                tracing::error!(component = %self.metrics.name, error = %e, suppressed, "cannot write the dead-letter file");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appends_json_lines_and_rotates_past_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let config = DeadLetterConfig {
            path: dir.path().join("dlq/refused.jsonl"),
            max_file_bytes: ByteSizeValue(400),
        };
        let dl = DeadLetter::open(
            &config,
            ComponentMetrics::new("test", "dead_letter_test", "test"),
        )
        .unwrap();
        for i in 0..10 {
            dl.write(
                "too_old",
                vec![serde_json::json!({"message": format!("m{i}")})],
            )
            .await;
        }
        let current = std::fs::read_to_string(&config.path).unwrap();
        let rotated = std::fs::read_to_string(dir.path().join("dlq/refused.jsonl.1")).unwrap();
        assert!(current.len() <= 400 && rotated.len() <= 400);
        let last: serde_json::Value =
            serde_json::from_str(current.lines().last().unwrap()).unwrap();
        assert_eq!(last["record"]["message"], "m9");
        assert_eq!(last["reason"], "too_old");
        assert_eq!(last["sink"], "dead_letter_test");
    }

    #[test]
    fn an_unwritable_path_is_a_start_up_error() {
        let config = DeadLetterConfig {
            path: PathBuf::from("/proc/sextant-cannot-write/x.jsonl"),
            max_file_bytes: default_max_file_bytes(),
        };
        assert!(DeadLetter::open(
            &config,
            ComponentMetrics::new("test", "dead_letter_bad", "test")
        )
        .is_err());
    }
}
