//! Acknowledgements across the agent -> collector hop with disk buffers, real processes on
//! loopback: a file's checkpoint advances once the next durable place has its lines, and a
//! `kill -9` of either side loses nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use std::time::Duration;

use crate::common::hop::*;
use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_checkpoints_once_the_collector_buffered_and_a_kill_9_of_the_collector_loses_nothing(
) {
    let hop = Hop::new();
    let moto_port = free_port();
    let collector_cfg = collector_config(
        hop.dir.path(),
        hop.collector_admin,
        hop.otlp,
        &format!(
            r#"    cloudwatch:
      type: aws_cloudwatch_logs
      inputs: [otlp]
      log_group: /sextant/hop
      log_stream: app
      aws: {{ region: us-east-1, endpoint: "http://127.0.0.1:{moto_port}" }}
      batch: {{ timeout: 200ms }}
      request: {{ timeout: 5s, initial_backoff: 100ms, max_backoff: 500ms }}
      queue: {{ disk: {{ max_bytes: 64MiB, max_segment_bytes: 1MiB, fsync_interval: 100ms }} }}"#
        ),
    );
    let agent_cfg = hop.agent(hop.otlp, REQUEST);
    let store = hop.store.clone();
    let size = append_lines(&hop.app_log, 0..3000);

    // CloudWatch Logs is down the whole time the agent sends: the collector's disk buffer takes
    // the lines, and that is what lets the agent's checkpoint reach the end of the file.
    let mut collector = start_sextant("collector", &collector_cfg, &hop.path("c1.log"));
    let mut agent = start_sextant("agent", &agent_cfg, &hop.path("a1.log"));
    assert!(
        eventually(Duration::from_secs(30), || committed_offset(&store) == size),
        "the agent's checkpoint should reach {size} once the collector has the lines on disk, is {}",
        committed_offset(&store)
    );
    assert!(
        metric(
            hop.collector_admin,
            "sextant_buffer_bytes",
            &["component=\"cloudwatch\""]
        ) > 0.0
    );

    // kill -9 of the collector with everything in its buffer; it comes back, and so does
    // CloudWatch Logs: every line arrives, in order, once.
    collector.kill9();
    let _collector = start_sextant("collector", &collector_cfg, &hop.path("c2.log"));
    let _moto = start_moto(moto_port);
    let client = cwl_client(moto_port).await;
    let expected = expected_lines(0..3000);
    let got = wait_for_stream(&client, "/sextant/hop", "app", expected.len()).await;
    assert_eq!(got, expected, "every line, in order, exactly once");
    agent.terminate(Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_of_the_agent_with_its_buffer_full_and_no_collector_loses_nothing() {
    let hop = Hop::new();
    let (app_log, out) = (hop.app_log.clone(), hop.out.clone());
    let (otlp, agent_admin) = (hop.otlp, hop.agent_admin);
    let collector_cfg = hop.collector_to_files();
    let agent_cfg = hop.agent(otlp, &format!("{REQUEST}\n      {DISK}"));
    let store = hop.store.clone();
    let size = append_lines(&app_log, 0..5000);

    // No collector: the agent's disk buffer takes the lines, and the checkpoint follows it.
    let mut agent = start_sextant("agent", &agent_cfg, &hop.path("a1.log"));
    assert!(
        eventually(Duration::from_secs(30), || committed_offset(&store) == size),
        "checkpoint should reach {size} once the agent's buffer has the lines, is {}",
        committed_offset(&store)
    );
    agent.kill9();

    // The agent comes back first, then the collector: the buffer is replayed, nothing lost.
    let mut agent = start_sextant("agent", &agent_cfg, &hop.path("a2.log"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut collector = start_sextant("collector", &collector_cfg, &hop.path("c1.log"));
    let expected = expected_lines(0..5000);
    let got = wait_delivered(&out, expected.len());
    assert_eq!(got, expected, "every line once, in order");
    assert_eq!(
        metric_or_zero(
            agent_admin,
            "sextant_component_errors_total",
            &["error_type=\"buffer_corrupted\""]
        ),
        0.0
    );
    agent.terminate(Duration::from_secs(10));
    collector.terminate(Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_buffer_is_counted_skipped_and_the_rest_delivered() {
    let hop = Hop::new();
    let (app_log, out) = (hop.app_log.clone(), hop.out.clone());
    let (otlp, agent_admin) = (hop.otlp, hop.agent_admin);
    let collector_cfg = hop.collector_to_files();
    let agent_cfg = hop.agent(otlp, &format!("{REQUEST}\n      {DISK}"));
    let store = hop.store.clone();

    // No collector: every line goes to the agent's buffer, in many small records.
    let mut agent = start_sextant("agent", &agent_cfg, &hop.path("a1.log"));
    let mut size = 0;
    for chunk in 0..40 {
        size = append_lines(&app_log, chunk * 100..(chunk + 1) * 100);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(
        eventually(Duration::from_secs(30), || committed_offset(&store) == size),
        "the buffer has every line"
    );
    agent.terminate(Duration::from_secs(10));

    // Damage: bytes flipped in the middle of the first segment, the last one cut short.
    let buffer = hop.path("agent-data/agent/to_collector/buffer");
    let mut segments: Vec<_> = std::fs::read_dir(&buffer)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg") && p.metadata().unwrap().len() > 0)
        .collect();
    segments.sort();
    assert!(!segments.is_empty());
    let first = &segments[0];
    let mut bytes = std::fs::read(first).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 8] {
        *b ^= 0xa5;
    }
    std::fs::write(first, &bytes).unwrap();
    let last = segments.last().unwrap();
    let len = last.metadata().unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(last)
        .unwrap()
        .set_len(len - 10)
        .unwrap();

    // The agent starts anyway and delivers everything it can still read, in order.
    let mut agent = start_sextant("agent", &agent_cfg, &hop.path("a2.log"));
    let mut collector = start_sextant("collector", &collector_cfg, &hop.path("c.log"));
    assert!(
        eventually(Duration::from_secs(30), || {
            metric_or_zero(
                agent_admin,
                "sextant_component_errors_total",
                &["error_type=\"buffer_corrupted\""],
            ) >= 1.0
                && metric_or_zero(
                    agent_admin,
                    "sextant_component_errors_total",
                    &["error_type=\"buffer_torn_tail\""],
                ) >= 1.0
        }),
        "both kinds of damage are counted"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = delivered_lines(&out);
    let index = |l: &String| -> usize { l.split(' ').nth(1).unwrap().parse().unwrap() };
    let numbers: Vec<usize> = got.iter().map(index).collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1]),
        "in order, none twice"
    );
    let missing = 4000 - numbers.len();
    assert!(
        missing > 0 && missing <= 600,
        "only the damaged records are lost: {missing} lines missing"
    );
    agent.terminate(Duration::from_secs(10));
    collector.terminate(Duration::from_secs(10));
}

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Appends `n` lines of about 200 bytes numbered from `from`.
fn append_long_lines(path: &std::path::Path, from: usize, n: usize) -> u64 {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap(),
    );
    for i in from..from + n {
        writeln!(f, "line {i:08} {}", "x".repeat(180)).unwrap();
    }
    f.flush().unwrap();
    std::fs::metadata(path).unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_pauses_the_file_with_memory_flat_and_drops_nothing() {
    let hop = Hop::new();
    let agent_cfg = hop.agent(
        hop.otlp,
        // Four requests in flight, in lanes (ordering: per_resource): the file's order holds
        // across the outage.
        "request: { timeout: 5s, initial_backoff: 100ms, max_backoff: 500ms, concurrency: 4 }\n      ordering: per_resource\n      queue: { max_bytes: 1MiB, when_full: block, disk: { max_bytes: 2MiB, max_segment_bytes: 256KiB, fsync_interval: 100ms } }",
    );
    let mut written = append_long_lines(&hop.app_log, 0, 50_000);
    let mut agent = start_sextant("agent", &agent_cfg, &hop.path("a1.log"));

    // No collector: the buffer fills, then the file waits on disk (its checkpoint stops short).
    // Settled: the same for a whole second (a loaded machine can stall the agent for a poll).
    let (mut last, mut same) = (0, 0);
    let settled = eventually(Duration::from_secs(30), || {
        let now = committed_offset(&hop.store);
        same = if now > 0 && now == last { same + 1 } else { 0 };
        last = now;
        std::thread::sleep(Duration::from_millis(200));
        same >= 5
    });
    assert!(settled, "the checkpoint stops moving");
    let paused_at = committed_offset(&hop.store);
    assert!(
        paused_at < written / 2,
        "paused at {paused_at} of {written}: sources wait for the buffer"
    );
    let before = rss(agent.pid());

    // Ten more megabytes arrive: nothing more is read, memory does not follow the input.
    written = append_long_lines(&hop.app_log, 50_000, 50_000);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss(agent.pid());
    eprintln!(
        "agent RSS with the buffer full: {} KiB, after 10 MB more input: {} KiB",
        before >> 10,
        after >> 10
    );
    assert_eq!(committed_offset(&hop.store), paused_at, "still paused");
    assert!(
        after < before + 8 * 1024 * 1024,
        "resident memory stayed flat: {} MiB before, {} MiB after {} MiB more input",
        before >> 20,
        after >> 20,
        written >> 21
    );
    let buffer_bytes = metric(hop.agent_admin, "sextant_buffer_bytes", &[]);
    assert!(
        buffer_bytes <= 2.0 * 1024.0 * 1024.0 + 256.0 * 1024.0,
        "the buffer kept its bound: {buffer_bytes}"
    );
    assert_eq!(
        metric(
            hop.agent_admin,
            "sextant_component_dropped_events_total",
            &[]
        ),
        0.0
    );

    // The collector comes: every line, once, in order.
    let mut collector = start_sextant("collector", &hop.collector_to_files(), &hop.path("c1.log"));
    let got = wait_delivered(&hop.out, 100_000);
    assert_eq!(got.len(), 100_000);
    let first_wrong = got
        .iter()
        .enumerate()
        .find(|(i, l)| !l.starts_with(&format!("line {i:08} ")))
        .map(|(i, l)| (i, l[..13].to_string()));
    assert_eq!(first_wrong, None, "every line once, in order");
    assert!(eventually(Duration::from_secs(20), || committed_offset(
        &hop.store
    ) == written));
    agent.terminate(Duration::from_secs(10));
    collector.terminate(Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_and_restart_with_disk_buffers_on_both_sides_sends_nothing_twice() {
    let hop = Hop::new();
    // The collector's sink holds what it read from its buffer in a batch for 30 s: it is
    // written by the flush at shutdown, after the buffer's writer has stopped.
    let collector_cfg = collector_config(
        hop.dir.path(),
        hop.collector_admin,
        hop.otlp,
        &format!(
            "    files:\n      type: file\n      inputs: [otlp]\n      path: {}\n      batch: {{ timeout: 30s, max_events: 1000000, max_bytes: 512MiB }}\n      {DISK}\n",
            hop.out.display()
        ),
    );
    let agent_cfg = hop.agent(hop.otlp, &format!("{REQUEST}\n      {DISK}"));
    let size = append_lines(&hop.app_log, 0..20_000);
    let mut collector = start_sextant("collector", &collector_cfg, &hop.path("c1.log"));
    let mut agent = start_sextant("agent", &agent_cfg, &hop.path("a1.log"));
    // The agent's checkpoint reaches the end once its buffer has the lines; its buffer is
    // read out once the collector's buffer has them.
    assert!(
        eventually(Duration::from_secs(30), || committed_offset(&hop.store)
            == size
            && metric(
                hop.agent_admin,
                "sextant_buffer_bytes",
                &["component=\"to_collector\""]
            ) == 0.0),
        "the agent's lines never reached the collector's buffer"
    );
    assert!(
        delivered_lines(&hop.out).is_empty(),
        "still in the sink's batch"
    );
    // Ctrl-C, as the README says: the sink flushes its batch while stopping. Reading the
    // buffer ends with the stop (what is on disk stays for the next start), so what arrives
    // now is what the sink had taken from its buffer: usually everything, on a busy machine
    // a prefix, each line once and in order; the rest comes after the restart.
    assert!(collector.terminate(Duration::from_secs(15)));
    assert!(agent.terminate(Duration::from_secs(15)));
    let expected = expected_lines(0..20_000);
    let first = delivered_lines(&hop.out);
    assert!(first.len() <= expected.len(), "{} lines", first.len());
    assert_eq!(first[..], expected[..first.len()], "in order, once");
    // Both again, with nothing new to send: nothing arrives twice.
    let _collector = start_sextant("collector", &collector_cfg, &hop.path("c2.log"));
    let _agent = start_sextant("agent", &agent_cfg, &hop.path("a2.log"));
    wait_http_ok(
        &format!("http://127.0.0.1:{}/readyz", hop.collector_admin),
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_secs(2));
    // Only a collector that had handed everything to its sink before the stop starts with an
    // empty buffer; after a prefix (a busy machine; a clean-clone CI run) the rest is there,
    // delivered first, and must still arrive once.
    let log = std::fs::read_to_string(hop.path("c2.log")).unwrap();
    if first.len() == expected.len() {
        assert!(!log.contains("holds data from before"), "{log}");
    }
    // Neither buffer counts anything (acknowledged records in a live segment are not held),
    // the collector's unless lines were left in it at the stop.
    let mut buffers = vec![(hop.agent_admin, "to_collector")];
    if first.len() == expected.len() {
        buffers.push((hop.collector_admin, "files"));
    }
    for (admin, sink) in buffers {
        let label = format!("component=\"{sink}\"");
        assert_eq!(
            metric(admin, "sextant_buffer_bytes", &[&label]),
            0.0,
            "{sink}: bytes counted in the buffer after everything was delivered"
        );
    }
    // The sink's batch timeout is 30 s: anything replayed would still be in it. Stop to see.
    drop(_agent);
    let mut collector = _collector;
    assert!(collector.terminate(Duration::from_secs(15)));
    assert_eq!(
        delivered_lines(&hop.out),
        expected,
        "nothing sent twice (or lost) after a clean stop"
    );
}
