//! Sink `file`: JSON lines, one file per signal (`logs.jsonl`, `metrics.jsonl`, `traces.jsonl`)
//! in `path`, rotated by size (`logs.jsonl` -> `logs.jsonl.1` -> ... up to `max_files`). A batch
//! is acknowledged once its lines are written and flushed to the OS (`fsync: true` waits for the
//! disk too). Writes run on a blocking thread.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use crate::component::{BuildError, QueueSettings, SinkContext, Task};
use crate::config::units::ByteSizeValue;
use crate::flow::ack::AckStatus;
use crate::flow::batcher::BatchSettings;
use crate::flow::event::{json, Events, Signal};
use crate::sink::driver;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    pub inputs: Vec<String>,
    /// Directory the files are written in.
    pub path: PathBuf,
    /// Rotate a file when it reaches this size.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: ByteSizeValue,
    /// Rotated files kept per signal.
    #[serde(default = "default_max_files")]
    pub max_files: usize,
    #[serde(default)]
    pub fsync: bool,
    #[serde(default)]
    pub batch: BatchSettings,
    #[serde(default)]
    pub queue: QueueSettings,
}

fn default_max_file_bytes() -> ByteSizeValue {
    ByteSizeValue(64 * 1024 * 1024)
}

fn default_max_files() -> usize {
    5
}

struct Output {
    file: File,
    size: u64,
}

struct Writer {
    dir: PathBuf,
    max_file_bytes: u64,
    max_files: usize,
    fsync: bool,
    outputs: [Option<Output>; 3],
}

fn slot(signal: Signal) -> usize {
    match signal {
        Signal::Logs => 0,
        Signal::Metrics => 1,
        Signal::Traces => 2,
    }
}

impl Writer {
    fn path(&self, signal: Signal) -> PathBuf {
        self.dir.join(format!("{}.jsonl", signal.as_str()))
    }

    fn open(path: &Path) -> std::io::Result<Output> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Output { file, size })
    }

    fn rotate(&mut self, signal: Signal) -> std::io::Result<()> {
        let base = self.path(signal);
        self.outputs[slot(signal)] = None;
        let numbered = |n: usize| PathBuf::from(format!("{}.{n}", base.display()));
        let _ = fs::remove_file(numbered(self.max_files));
        for n in (1..self.max_files).rev() {
            let _ = fs::rename(numbered(n), numbered(n + 1));
        }
        fs::rename(&base, numbered(1))?;
        Ok(())
    }

    fn write(&mut self, events: &Events) -> std::io::Result<()> {
        let signal = events.signal();
        let mut buf = Vec::with_capacity(events.len() * 256);
        json::write_json_lines(events, &mut buf);
        let needs_rotation = matches!(&self.outputs[slot(signal)], Some(o) if o.size > 0 && o.size + buf.len() as u64 > self.max_file_bytes);
        if needs_rotation {
            self.rotate(signal)?;
        }
        if self.outputs[slot(signal)].is_none() {
            self.outputs[slot(signal)] = Some(Self::open(&self.path(signal))?);
        }
        let fsync = self.fsync;
        let Some(out) = self.outputs[slot(signal)].as_mut() else {
            return Err(std::io::Error::other("output not open"));
        };
        out.file.write_all(&buf)?;
        out.file.flush()?;
        if fsync {
            out.file.sync_data()?;
        }
        out.size += buf.len() as u64;
        Ok(())
    }
}

pub fn build(config: &FileSinkConfig, cx: SinkContext) -> Result<Task, BuildError> {
    fs::create_dir_all(&config.path).map_err(|e| BuildError::io(&cx.name, e))?;
    let writer = Arc::new(Mutex::new(Writer {
        dir: config.path.clone(),
        max_file_bytes: config.max_file_bytes.0.max(1),
        max_files: config.max_files.max(1),
        fsync: config.fsync,
        outputs: [None, None, None],
    }));
    let metrics = cx.metrics.clone();
    tracing::info!(component = %cx.name, path = %config.path.display(), "writing JSON lines");
    Ok(Box::pin(driver::drive(
        cx,
        config.batch.clone(),
        1,
        move |events| {
            let writer = writer.clone();
            let metrics = metrics.clone();
            async move {
                let n = events.len() as u64;
                let result = tokio::task::spawn_blocking(move || match writer.lock() {
                    Ok(mut w) => w.write(&events),
                    Err(_) => Err(std::io::Error::other("writer poisoned")),
                })
                .await;
                match result {
                    Ok(Ok(())) => {
                        metrics.sent_events.inc_by(n);
                        AckStatus::Delivered
                    }
                    Ok(Err(e)) => {
                        metrics.error("write");
                        tracing::error!(component = %metrics.name, error = %e, "cannot write; the batch will be sent again");
                        AckStatus::Failed
                    }
                    Err(_) => AckStatus::Failed,
                }
            }
        },
    )))
}

crate::sink_config!(
    FileSinkConfig,
    "file",
    crate::flow::event::Signals::ALL,
    build = build
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::event::LogEvent;

    #[test]
    fn rotates_by_size_and_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer {
            dir: dir.path().to_owned(),
            max_file_bytes: 300,
            max_files: 2,
            fsync: false,
            outputs: [None, None, None],
        };
        for i in 0..20 {
            let e = Events::Logs(vec![LogEvent {
                body: format!("line {i}").into(),
                ..Default::default()
            }]);
            w.write(&e).unwrap();
        }
        assert!(dir.path().join("logs.jsonl").exists());
        assert!(dir.path().join("logs.jsonl.1").exists());
        assert!(dir.path().join("logs.jsonl.2").exists());
        assert!(!dir.path().join("logs.jsonl.3").exists());
        let current = fs::read_to_string(dir.path().join("logs.jsonl")).unwrap();
        assert!(current
            .trim_end()
            .lines()
            .last()
            .unwrap()
            .contains("\"line 19\""));
        assert!(fs::metadata(dir.path().join("logs.jsonl.1")).unwrap().len() <= 300);
    }
}
