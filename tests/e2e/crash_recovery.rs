//! `kill -9` of the agent in the middle of a large file, then a restart: every line is delivered
//! at least once, and every line delivered twice lies past the checkpoint that was on disk at the
//! moment of the kill (it was in flight, unacknowledged), never before it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use crate::common::*;

const LINES: usize = 300_000;
/// "line 0000042\n": fixed width, so a line's offset is its index times this.
const LINE_BYTES: usize = 13;

fn indexes(out: &Path) -> Vec<usize> {
    let mut v = Vec::new();
    for f in ["logs.jsonl.1", "logs.jsonl"] {
        let text = std::fs::read_to_string(out.join(f)).unwrap_or_default();
        for l in text.lines() {
            // A line torn by the kill is not JSON: skip it (it is in flight, not delivered).
            if let Ok(v2) = serde_json::from_str::<serde_json::Value>(l) {
                if let Some(b) = v2["body"].as_str() {
                    v.push(b.strip_prefix("line ").unwrap().parse().unwrap());
                }
            }
        }
    }
    v
}

#[test]
fn kill_9_in_the_middle_of_a_file_loses_nothing_and_repeats_only_what_was_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    let mut f = std::fs::File::create(dir.path().join("logs/big.log")).unwrap();
    let mut text = String::with_capacity(LINES * LINE_BYTES);
    for i in 0..LINES {
        text.push_str(&format!("line {i:07}\n"));
    }
    f.write_all(text.as_bytes()).unwrap();
    drop(f);
    let out = dir.path().join("out");
    let cfg = dir.path().join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            "data_dir: {d}/data\nadmin: {{ address: \"127.0.0.1:{admin}\" }}\nagent:\n  sources:\n    app:\n      type: file\n      include: [\"{d}/logs/*.log\"]\n      tail: {{ checkpoint_interval: 100ms, max_read_bytes: 64KiB }}\n  sinks:\n    out:\n      type: file\n      inputs: [app]\n      path: {out}\n      fsync: true\n      max_file_bytes: 1GiB\n      batch: {{ max_events: 2000, timeout: 50ms }}\n      queue: {{ max_bytes: 2MiB }}\n",
            d = dir.path().display(),
            admin = free_port(),
            out = out.display()
        ),
    )
    .unwrap();
    let store = dir.path().join("data/agent/app/checkpoints.json");

    let mut agent = start_sextant("agent", &cfg, &dir.path().join("agent1.log"));
    // Kill once part of the file is delivered and checkpointed, but not all of it.
    let total_bytes = (LINES * LINE_BYTES) as u64;
    assert!(
        eventually(Duration::from_secs(30), || committed_offset(&store) > 0),
        "some lines should be checkpointed"
    );
    agent.kill9();
    let at_kill = committed_offset(&store);
    let before = indexes(&out);
    assert!(
        at_kill > 0 && at_kill % LINE_BYTES as u64 == 0,
        "checkpoints fall on line ends: {at_kill}"
    );
    let committed_lines = (at_kill / LINE_BYTES as u64) as usize;
    eprintln!("killed with {committed_lines} of {LINES} lines checkpointed ({at_kill} of {total_bytes} bytes), {} delivered", before.len());
    let mut seen = vec![0u32; LINES];
    for &i in &before {
        seen[i] += 1;
    }
    assert!(
        (0..committed_lines).all(|i| seen[i] == 1),
        "every checkpointed line was delivered, once"
    );

    let mut agent = start_sextant("agent", &cfg, &dir.path().join("agent2.log"));
    assert!(
        eventually(Duration::from_secs(60), || committed_offset(&store)
            == total_bytes),
        "after restart the whole file is delivered and checkpointed ({} of {total_bytes})",
        committed_offset(&store)
    );
    assert!(agent.terminate(Duration::from_secs(15)));
    let after = indexes(&out);
    let mut seen = vec![0u32; LINES];
    for &i in &after {
        seen[i] += 1;
    }
    let missing = seen.iter().filter(|c| **c == 0).count();
    assert_eq!(missing, 0, "every line at least once");
    let repeated: Vec<usize> = (0..LINES).filter(|i| seen[*i] > 1).collect();
    assert!(
        repeated.iter().all(|i| *i >= committed_lines),
        "a line before the checkpoint at the kill was sent again: {:?}",
        repeated.iter().find(|i| **i < committed_lines)
    );
    assert!(seen.iter().all(|c| *c <= 2), "no line more than twice");
    eprintln!(
        "{} lines were in flight at the kill and delivered twice",
        repeated.len()
    );
}
