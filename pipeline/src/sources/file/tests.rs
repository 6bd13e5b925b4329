//! The file source against real files on disk: content, counts, checkpoints that advance only on
//! acknowledgement, rotation, truncation and restart.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::batch::Batch;
use crate::config::units::DurationValue;
use crate::queue::{ByteQueue, WhenFull};
use crate::shutdown::ShutdownTrigger;
use crate::telemetry::QueueMetrics;

struct Harness {
    queue: Arc<ByteQueue<Batch>>,
    trigger: ShutdownTrigger,
    task: tokio::task::JoinHandle<()>,
}

fn config(dir: &Path) -> FileSourceConfig {
    FileSourceConfig {
        include: vec![format!("{}/*.log", dir.display())],
        tail: TailSettings {
            glob_interval: DurationValue(Duration::from_millis(50)),
            checkpoint_interval: DurationValue(Duration::from_millis(50)),
            rotate_wait: DurationValue(Duration::from_millis(200)),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn start(name: &str, config: &FileSourceConfig, state: &Path) -> Harness {
    let queue = Arc::new(ByteQueue::new(
        1 << 24,
        WhenFull::Block,
        QueueMetrics::detached(),
    ));
    let (trigger, shutdown) = ShutdownTrigger::new();
    let cx = SourceContext {
        name: name.into(),
        data_dir: state.to_owned(),
        out: Fanout::new(vec![queue.clone()]),
        shutdown,
        metrics: ComponentMetrics::new(name, "file"),
    };
    let task = tokio::spawn(build(config, cx).unwrap());
    Harness {
        queue,
        trigger,
        task,
    }
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn bodies(b: &Batch) -> Vec<String> {
    match &b.events {
        Events::Logs(l) => l.iter().map(|e| e.body.to_text().into_owned()).collect(),
        _ => Vec::new(),
    }
}

/// Collects lines until `n` arrived, acknowledging each batch delivered when `ack` is true.
async fn collect(h: &Harness, n: usize, ack: bool) -> Vec<String> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while out.len() < n {
        let b = tokio::time::timeout_at(deadline, h.queue.pop())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} lines arrived: {out:?}", out.len()))
            .unwrap();
        out.extend(bodies(&b));
        if ack {
            b.acks.deliver();
        } else {
            b.acks.fail();
        }
    }
    out
}

fn committed_offset(state: &Path) -> u64 {
    let text = fs::read_to_string(state.join("checkpoints.json")).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v["files"]
        .as_array()
        .map(|f| f.iter().map(|e| e["offset"].as_u64().unwrap_or(0)).sum())
        .unwrap_or(0)
}

/// Stops the source; what is still queued is dropped (failed), as an aborted sink would.
async fn stop(mut h: Harness) {
    h.trigger.stop();
    loop {
        tokio::select! {
            r = &mut h.task => { r.unwrap(); return; }
            b = h.queue.pop() => drop(b),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tails_lines_and_checkpoints_only_after_acknowledgement() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "one\ntwo\nthr");
    let h = start("file_test_ack", &config(dir.path()), state.path());

    // Not acknowledged: the batch is held, the checkpoint stays at 0.
    let first = h.queue.pop().await.unwrap();
    assert_eq!(bodies(&first), vec!["one", "two"]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        committed_offset(state.path()),
        0,
        "no ack yet: nothing may be committed"
    );

    first.acks.deliver();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        committed_offset(state.path()),
        8,
        "\"one\\ntwo\\n\" is 8 bytes; the partial line is not covered"
    );

    append(&log, "ee\nfour\n");
    assert_eq!(collect(&h, 2, true).await, vec!["three", "four"]);
    stop(h).await;
    assert_eq!(committed_offset(state.path()), 19);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_at_the_checkpoint_and_resends_only_the_unacknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(
        &log,
        &(0..100).map(|i| format!("line {i}\n")).collect::<String>(),
    );
    let h = start("file_test_restart_1", &config(dir.path()), state.path());
    assert_eq!(collect(&h, 100, true).await.len(), 100);
    tokio::time::sleep(Duration::from_millis(150)).await;
    append(&log, "line 100\nline 101\n");
    // Read but not delivered (as if the sink was aborted with them in flight).
    let unacked = collect(&h, 2, false).await;
    assert_eq!(unacked, vec!["line 100", "line 101"]);
    stop(h).await;

    let h = start("file_test_restart_2", &config(dir.path()), state.path());
    append(&log, "line 102\n");
    let again = collect(&h, 3, true).await;
    assert_eq!(
        again,
        vec!["line 100", "line 101", "line 102"],
        "only the unacknowledged lines come again"
    );
    stop(h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_rotation_reads_the_old_file_to_its_end_then_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "a1\na2\n");
    let h = start("file_test_rotate", &config(dir.path()), state.path());
    assert_eq!(collect(&h, 2, true).await, vec!["a1", "a2"]);
    // Rotate: rename away (out of the glob), keep writing to the old descriptor's file, new file.
    let rotated = dir.path().join("app.log.1");
    fs::rename(&log, &rotated).unwrap();
    append(&rotated, "a3\n");
    append(&log, "b1\n");
    let mut got = collect(&h, 2, true).await;
    got.sort();
    assert_eq!(got, vec!["a3", "b1"]);
    stop(h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copytruncate_is_detected_and_the_file_is_read_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "old line one\nold line two\n");
    let h = start("file_test_truncate", &config(dir.path()), state.path());
    assert_eq!(collect(&h, 2, true).await.len(), 2);
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    append(&log, "new\n");
    assert_eq!(collect(&h, 1, true).await, vec!["new"]);
    stop(h).await;
    // After a restart the truncated file is known by its new content: nothing is read again.
    let h = start("file_test_truncate_2", &config(dir.path()), state.path());
    append(&log, "newer\n");
    assert_eq!(collect(&h, 1, true).await, vec!["newer"]);
    stop(h).await;
}

/// Collects `n` lines, acknowledging each batch, checking at every batch that no more than
/// `max_open` files are open.
async fn collect_checking_open(
    h: &Harness,
    n: usize,
    metrics: &ComponentMetrics,
    max_open: i64,
) -> Vec<String> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while out.len() < n {
        let b = tokio::time::timeout_at(deadline, h.queue.pop())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} lines arrived", out.len()))
            .unwrap();
        assert!(
            metrics.open_files.get() <= max_open,
            "{} files open",
            metrics.open_files.get()
        );
        out.extend(bodies(&b));
        b.acks.deliver();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_files_with_a_hundred_descriptors_are_all_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    for f in 0..1000 {
        append(
            &dir.path().join(format!("f{f:04}.log")),
            &(0..5)
                .map(|i| format!("file {f} line {i}\n"))
                .collect::<String>(),
        );
    }
    let mut cfg = config(dir.path());
    cfg.tail.max_open_files = 100;
    let h = start("file_test_thousand", &cfg, state.path());
    let metrics = ComponentMetrics::new("file_test_thousand", "file");
    let mut got = collect_checking_open(&h, 5000, &metrics, 100).await;
    got.sort();
    let mut want: Vec<String> = (0..1000)
        .flat_map(|f| (0..5).map(move |i| format!("file {f} line {i}")))
        .collect();
    want.sort();
    assert_eq!(got, want, "every line of every file, once");
    // Files let go to make room are followed again: a line appended to the first file arrives.
    append(&dir.path().join("f0000.log"), "file 0 line 5\n");
    assert_eq!(
        collect_checking_open(&h, 1, &metrics, 100).await,
        vec!["file 0 line 5"]
    );
    stop(h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_rotation_at_20_per_second_while_writing_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    // Rotated names stay in the glob (as kubernetes_logs follows `0.log.*`).
    cfg.include = vec![format!("{}/app.log*", dir.path().display())];
    cfg.tail.glob_interval = DurationValue(Duration::from_millis(20));
    let h = start("file_test_fast_rotation", &cfg, state.path());
    let log = dir.path().join("app.log");
    let writer = {
        let dir = dir.path().to_owned();
        std::thread::spawn(move || {
            let mut n = 0;
            for rotation in 0..40 {
                let started = std::time::Instant::now();
                let mut f = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap();
                // Write for ~50 ms, then rotate: 20 rotations per second.
                while started.elapsed() < Duration::from_millis(50) {
                    writeln!(f, "line {n}").unwrap();
                    n += 1;
                    if n % 20 == 0 {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
                drop(f);
                fs::rename(&log, dir.join(format!("app.log.{rotation}"))).unwrap();
            }
            n
        })
    };
    let total = writer.join().unwrap();
    assert!(total > 1000, "the writer wrote {total} lines");
    let got = collect(&h, total, true).await;
    let mut seen = vec![0u32; total];
    for line in &got {
        let i: usize = line.strip_prefix("line ").unwrap().parse().unwrap();
        seen[i] += 1;
    }
    let missing: Vec<_> = (0..total).filter(|i| seen[*i] == 0).collect();
    let repeated: Vec<_> = (0..total).filter(|i| seen[*i] > 1).collect();
    assert!(
        missing.is_empty() && repeated.is_empty(),
        "missing {missing:?}, repeated {repeated:?}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(h.queue.is_empty(), "nothing more than the lines written");
    stop(h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_file_still_open_is_read_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "one\n");
    let h = start("file_test_delete", &config(dir.path()), state.path());
    assert_eq!(collect(&h, 1, true).await, vec!["one"]);
    // The writer still holds it open and writes after the unlink.
    let mut writer = OpenOptions::new().append(true).open(&log).unwrap();
    fs::remove_file(&log).unwrap();
    writer.write_all(b"two\nthree\n").unwrap();
    drop(writer);
    assert_eq!(collect(&h, 2, true).await, vec!["two", "three"]);
    stop(h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_rotated_while_stopped_are_found_by_identity_not_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.include = vec![format!("{}/app.log*", dir.path().display())];
    let log = dir.path().join("app.log");
    append(&log, "a1\na2\n");
    let h = start("file_test_rotated_while_stopped_1", &cfg, state.path());
    assert_eq!(collect(&h, 2, true).await, vec!["a1", "a2"]);
    stop(h).await;
    // While stopped: more lines, then rotation, then a new file.
    append(&log, "a3\n");
    fs::rename(&log, dir.path().join("app.log.1")).unwrap();
    append(&log, "b1\n");
    let h = start("file_test_rotated_while_stopped_2", &cfg, state.path());
    let mut got = collect(&h, 2, true).await;
    got.sort();
    assert_eq!(
        got,
        vec!["a3", "b1"],
        "the rotated file resumes at its checkpoint; a1, a2 are not read again"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(h.queue.is_empty());
    stop(h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_padding_after_copytruncate_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "first\n");
    let h = start("file_test_nul", &config(dir.path()), state.path());
    assert_eq!(collect(&h, 1, true).await, vec!["first"]);
    // A writer without O_APPEND keeps its offset after the truncation: the gap reads as NULs.
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let mut f = OpenOptions::new().write(true).open(&log).unwrap();
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start(4096)).unwrap();
    f.write_all(b"after truncation\n").unwrap();
    drop(f);
    assert_eq!(collect(&h, 1, true).await, vec!["after truncation"]);
    let text = crate::telemetry::render();
    assert!(text.contains("sextant_events_discarded_total{component=\"file_test_nul\",kind=\"file\",reason=\"nul_bytes\"}"), "NUL run counted");
    stop(h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_first_seen_short_gets_its_full_fingerprint_as_it_grows() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    append(&log, "a\n");
    let h = start(
        "file_test_fingerprint_growth",
        &config(dir.path()),
        state.path(),
    );
    assert_eq!(collect(&h, 1, true).await, vec!["a"]);
    let long: String = (0..50).map(|i| format!("line {i}\n")).collect();
    append(&log, &long);
    assert_eq!(collect(&h, 50, true).await.len(), 50);
    stop(h).await;
    let text = fs::read_to_string(state.path().join("checkpoints.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let entry = &v["files"][0];
    assert_eq!(
        entry["fingerprint_len"], 256,
        "the fingerprint grew to fingerprint_bytes"
    );
    assert_eq!(
        entry["offset"].as_u64().unwrap(),
        fs::metadata(&log).unwrap().len(),
        "the offset did not move back"
    );
    // The grown fingerprint still identifies the file: a restart reads nothing again.
    let h = start(
        "file_test_fingerprint_growth_2",
        &config(dir.path()),
        state.path(),
    );
    append(&log, "after\n");
    assert_eq!(collect(&h, 1, true).await, vec!["after"]);
    stop(h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_that_are_not_files_are_counted_once_and_the_rest_keeps_flowing() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
    append(&a, "a1\na2\n");
    append(&b, "b1\n");
    let h = start("file_test_not_files", &config(dir.path()), state.path());
    let mut first = collect(&h, 3, true).await;
    first.sort();
    assert_eq!(first, ["a1", "a2", "b1"]);
    // a.log becomes a directory; a FIFO and a dangling link appear (the tests run as root, for
    // whom no mode bits make a file unreadable, so these stand for what cannot be read).
    fs::remove_file(&a).unwrap();
    fs::create_dir(&a).unwrap();
    let fifo = dir.path().join("pipe.log");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    std::os::unix::fs::symlink(dir.path().join("missing"), dir.path().join("dangling.log"))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 2..=50 {
        append(&b, &format!("b{i}\n"));
    }
    let rest = collect(&h, 49, true).await;
    assert_eq!(rest, (2..=50).map(|i| format!("b{i}")).collect::<Vec<_>>());
    // Several scans later, still counted once per path.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = crate::telemetry::render();
    let count = |error_type: &str| -> f64 {
        text.lines()
            .filter(|l| {
                l.starts_with("sextant_component_errors_total")
                    && l.contains("component=\"file_test_not_files\"")
                    && l.contains(&format!("error_type=\"{error_type}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!(count("not_a_file"), 2.0, "the directory and the FIFO");
    assert_eq!(count("stat"), 1.0, "the dangling link");
    stop(h).await;
}
