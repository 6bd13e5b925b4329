//! Agent and collector as two processes: their configs, the lines they carry, and what the
//! collector delivered (tests of the agent -> collector hop).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{http_get, metric_sum};

/// The agent sink's retry settings in these tests.
pub const REQUEST: &str = "request: { timeout: 5s, initial_backoff: 100ms, max_backoff: 500ms }";
/// A small disk buffer, fsynced every 100 ms.
pub const DISK: &str =
    "queue: { disk: { max_bytes: 64MiB, max_segment_bytes: 1MiB, fsync_interval: 100ms } }";

/// Appends `line {i} across the hop` lines; returns the file's size.
pub fn append_lines(path: &Path, range: std::ops::Range<usize>) -> u64 {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for i in range {
        writeln!(f, "line {i} across the hop").unwrap();
    }
    f.flush().unwrap();
    std::fs::metadata(path).unwrap().len()
}

/// An agent tailing `<dir>/logs/*.log` into an OTLP sink to the collector; `extra` is YAML
/// lines of that sink (each after the first indented by six spaces).
pub fn agent_config(dir: &Path, admin: u16, otlp: u16, extra: &str) -> PathBuf {
    let path = dir.join("agent.yaml");
    std::fs::write(
        &path,
        format!(
            r#"
data_dir: {data}
admin: {{ address: "127.0.0.1:{admin}" }}
drain_deadline: 5s
agent:
  sources:
    app:
      type: file
      include: ["{logs}/*.log"]
      tail: {{ glob_interval: 100ms, checkpoint_interval: 100ms }}
  sinks:
    to_collector:
      type: otlp
      inputs: [app]
      endpoint: http://127.0.0.1:{otlp}
      batch: {{ timeout: 100ms }}
      {extra}
"#,
            data = dir.join("agent-data").display(),
            logs = dir.join("logs").display(),
        ),
    )
    .unwrap();
    path
}

pub fn collector_config(dir: &Path, admin: u16, otlp: u16, sink: &str) -> PathBuf {
    let path = dir.join("collector.yaml");
    std::fs::write(
        &path,
        format!(
            r#"
data_dir: {data}
admin: {{ address: "127.0.0.1:{admin}" }}
drain_deadline: 5s
collector:
  sources:
    otlp:
      type: otlp
      address: 127.0.0.1:{otlp}
  sinks:
{sink}
"#,
            data = dir.join("collector-data").display(),
        ),
    )
    .unwrap();
    path
}

/// A metric of the process whose admin port is `admin` (see [`metric_sum`]: a series that does
/// not exist fails the test); -1 while the process does not answer.
pub fn metric(admin: u16, name: &str, labels: &[&str]) -> f64 {
    http_get(&format!("http://127.0.0.1:{admin}/metrics"))
        .map(|(_, m)| metric_sum(&m, name, labels))
        .unwrap_or(-1.0)
}

/// [`metric`] for a series that may rightly not exist yet (an error type never counted): 0.
pub fn metric_or_zero(admin: u16, name: &str, labels: &[&str]) -> f64 {
    http_get(&format!("http://127.0.0.1:{admin}/metrics"))
        .map(|(_, m)| super::metric_sum_or_zero(&m, name, labels))
        .unwrap_or(-1.0)
}

/// Lines of the collector's file sink output (current and rotated files), in file order.
pub fn delivered_lines(out: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for name in ["logs.jsonl.2", "logs.jsonl.1", "logs.jsonl"] {
        let Ok(text) = std::fs::read_to_string(out.join(name)) else {
            continue;
        };
        for l in text.lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(l) {
                if let Some(b) = v["body"].as_str() {
                    lines.push(b.to_owned());
                }
            }
        }
    }
    lines
}

/// The lines `append_lines` wrote for `range`.
pub fn expected_lines(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("line {i} across the hop")).collect()
}

/// A collector `file` sink into `out`, flushing fast (the collector answers after it wrote).
pub fn file_sink(out: &Path) -> String {
    format!(
        "    files:\n      type: file\n      inputs: [otlp]\n      path: {}\n      max_file_bytes: 512MiB\n      batch: {{ timeout: 50ms }}\n",
        out.display()
    )
}

/// Waits up to 60 s for at least `n` lines in the collector's output; what it holds then.
pub fn wait_delivered(out: &Path, n: usize) -> Vec<String> {
    let ok = super::eventually(std::time::Duration::from_secs(60), || {
        delivered_lines(out).len() >= n
    });
    let got = delivered_lines(out);
    assert!(ok, "only {} of {n} lines arrived", got.len());
    got
}

/// One hop's worth of test state: a temp dir with `logs/app.log`, a collector output dir, and
/// the ports of the OTLP receiver and both admin listeners.
pub struct Hop {
    pub dir: tempfile::TempDir,
    pub app_log: PathBuf,
    pub out: PathBuf,
    pub otlp: u16,
    pub agent_admin: u16,
    pub collector_admin: u16,
    /// The agent file source's checkpoint store.
    pub store: PathBuf,
}

impl Hop {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("logs")).unwrap();
        Self {
            app_log: dir.path().join("logs/app.log"),
            out: dir.path().join("out"),
            store: dir.path().join("agent-data/agent/app/checkpoints.json"),
            otlp: super::free_port(),
            agent_admin: super::free_port(),
            collector_admin: super::free_port(),
            dir,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A collector writing what it receives into `out`.
    pub fn collector_to_files(&self) -> PathBuf {
        collector_config(
            self.dir.path(),
            self.collector_admin,
            self.otlp,
            &file_sink(&self.out),
        )
    }

    /// An agent sending to `port` (the collector's, or a proxy's), `extra` in its sink.
    pub fn agent(&self, port: u16, extra: &str) -> PathBuf {
        agent_config(self.dir.path(), self.agent_admin, port, extra)
    }
}
