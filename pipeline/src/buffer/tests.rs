//! The disk buffer on real files: order, acknowledgement-driven release, replay after reopen,
//! damage (torn tails, flipped bytes, truncation), full buffers, and the async stage.

use std::sync::Arc;
use std::time::Duration;

use super::segments::{Damage, Segments};
use super::*;
use crate::config::units::{ByteSizeValue, DurationValue};
use crate::flow::ack::Ack;
use crate::flow::event::{Events, LogEvent};
use crate::flow::queue::WhenFull;
use crate::shutdown::ShutdownTrigger;
use crate::telemetry::QueueMetrics;

const SEGMENT: u64 = 64 * 1024;

fn payload(i: usize) -> Vec<u8> {
    format!("record {i:05} ").repeat(100).into_bytes()
}

fn index_of(p: &[u8]) -> usize {
    std::str::from_utf8(&p[7..12]).unwrap().parse().unwrap()
}

fn seg_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

/// Reads every record there is, acknowledging each; returns their indexes and the damage.
fn drain(s: &mut Segments) -> (Vec<usize>, Damage) {
    let mut damage = Damage::default();
    let mut out = Vec::new();
    while let Some(r) = s.next(&mut damage).unwrap() {
        out.push(index_of(&r.payload));
        s.resolve(r.id, true);
    }
    (out, damage)
}

#[test]
fn records_come_back_in_order_and_a_reopen_replays_only_the_unacknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, problem) = Segments::open(dir.path(), 1 << 30, SEGMENT).unwrap();
    assert_eq!(problem, None);
    for i in 0..100 {
        s.append(&payload(i), 1).unwrap().unwrap();
    }
    assert!(
        seg_files(dir.path()).len() >= 3,
        "records span several segments"
    );
    let mut damage = Damage::default();
    let read: Vec<_> = (0..60)
        .map(|_| s.next(&mut damage).unwrap().unwrap())
        .collect();
    assert_eq!(
        read.iter()
            .map(|r| index_of(&r.payload))
            .collect::<Vec<_>>(),
        (0..60).collect::<Vec<_>>()
    );
    // Acknowledge 0..50 out of order; 50..60 stay in flight.
    let before = s.total_bytes();
    for r in read[..50].iter().rev() {
        s.resolve(r.id, true);
    }
    assert!(
        s.total_bytes() < before,
        "a wholly acknowledged segment is deleted"
    );
    let before = s.total_bytes();
    s.sync().unwrap();
    drop(s);
    let (mut s, _) = Segments::open(dir.path(), 1 << 30, SEGMENT).unwrap();
    assert_eq!(s.total_bytes(), before);
    let (again, damage) = drain(&mut s);
    assert_eq!(again, (50..100).collect::<Vec<_>>());
    assert_eq!(damage, Damage::default());
    // Everything acknowledged: only the active segment is left.
    s.append(&payload(100), 1).unwrap().unwrap();
    let (last, _) = drain(&mut s);
    assert_eq!(last, vec![100]);
    assert!(seg_files(dir.path()).len() <= 2);
}

#[test]
fn a_failed_delivery_is_read_again_before_anything_new() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = Segments::open(dir.path(), 1 << 30, SEGMENT).unwrap();
    for i in 0..3 {
        s.append(&payload(i), 1).unwrap().unwrap();
    }
    let mut d = Damage::default();
    let r0 = s.next(&mut d).unwrap().unwrap();
    let r1 = s.next(&mut d).unwrap().unwrap();
    s.resolve(r0.id, false);
    s.resolve(r1.id, true);
    let (rest, _) = drain(&mut s);
    assert_eq!(rest, vec![0, 2]);
}

#[test]
fn flipped_bytes_a_truncated_segment_and_a_torn_tail_are_skipped_and_the_rest_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = Segments::open(dir.path(), 1 << 30, SEGMENT).unwrap();
    for i in 0..100 {
        s.append(&payload(i), 1).unwrap().unwrap();
    }
    s.sync().unwrap();
    drop(s);
    let files = seg_files(dir.path());
    let record_len = 16 + payload(0).len();
    // Segment 0: a flipped byte inside its 3rd record.
    let mut bytes = std::fs::read(&files[0]).unwrap();
    bytes[2 * record_len + 100] ^= 0xff;
    std::fs::write(&files[0], &bytes).unwrap();
    // Segment 1: cut in the middle of a record (what a crash mid-write leaves).
    let len1 = std::fs::metadata(&files[1]).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&files[1])
        .unwrap()
        .set_len(len1 - 500)
        .unwrap();
    // Segment 2: garbage over its first record's header.
    let mut bytes = std::fs::read(&files[2]).unwrap();
    bytes[..8].copy_from_slice(b"garbage!");
    std::fs::write(&files[2], &bytes).unwrap();

    let (mut s, problem) = Segments::open(dir.path(), 1 << 30, SEGMENT).unwrap();
    assert_eq!(problem, None);
    let (got, damage) = drain(&mut s);
    let per_segment = SEGMENT as usize / record_len;
    let lost = [2, 2 * per_segment - 1, 2 * per_segment];
    let expected: Vec<usize> = (0..100).filter(|i| !lost.contains(i)).collect();
    assert_eq!(got, expected, "each damaged record skipped, nothing else");
    assert_eq!(damage.corrupted_bytes, 2 * record_len as u64);
    assert_eq!(damage.torn_tail_bytes, record_len as u64 - 500);
}

#[test]
fn a_damaged_ledger_replays_everything_rather_than_refusing_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = Segments::open(dir.path(), 1 << 30, SEGMENT).unwrap();
    for i in 0..5 {
        s.append(&payload(i), 1).unwrap().unwrap();
    }
    s.sync().unwrap();
    drop(s);
    std::fs::write(dir.path().join("ledger.json"), b"{not json").unwrap();
    let (mut s, problem) = Segments::open(dir.path(), 1 << 30, SEGMENT).unwrap();
    assert!(problem.is_some());
    assert_eq!(drain(&mut s).0, (0..5).collect::<Vec<_>>());
}

#[test]
fn a_full_buffer_refuses_until_space_is_freed_or_drops_the_oldest_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, _) = Segments::open(dir.path(), 4 * SEGMENT, SEGMENT).unwrap();
    let mut n = 0;
    while s.append(&payload(n), 2).is_ok() {
        n += 1;
    }
    assert!(matches!(s.append(&payload(n), 2), Err(AppendError::Full)));
    assert!(s.total_bytes() <= 4 * SEGMENT);
    let per_segment = (SEGMENT as usize) / (16 + payload(0).len());
    let dropped = s.drop_oldest().unwrap();
    assert_eq!(
        dropped,
        2 * per_segment as u64,
        "events of the dropped segment"
    );
    s.append(&payload(n), 2).unwrap().unwrap();
    let (got, _) = drain(&mut s);
    assert_eq!(got, (per_segment..=n).collect::<Vec<_>>());
}

fn log_batch(i: usize, pad: usize, acks: crate::flow::ack::Acks) -> Batch {
    let e = LogEvent {
        body: format!("line {i}").into(),
        attributes: vec![crate::flow::event::KeyValue::new("pad", "x".repeat(pad))].into(),
        ..Default::default()
    };
    Batch::new(Events::Logs(vec![e]), acks)
}

fn body(b: &Batch) -> String {
    match &b.events {
        Events::Logs(l) => l[0].body.to_text().into_owned(),
        _ => String::new(),
    }
}

type Stage = (
    Arc<ByteQueue<Batch>>,
    Arc<ByteQueue<Batch>>,
    ComponentMetrics,
    crate::shutdown::ShutdownTrigger,
    tokio::task::JoinHandle<()>,
);

/// The buffer stage on `dir` (`max_bytes`, 256 KiB segments, 20 ms fsync) between an input
/// and an output queue of 1 MiB.
/// A sink that delivers everything: the bodies of the first `n` batches the stage hands it.
async fn deliver_bodies(output: &ByteQueue<Batch>, n: usize) -> Vec<String> {
    let mut got = Vec::new();
    while got.len() < n {
        let b = tokio::time::timeout(Duration::from_secs(10), output.pop())
            .await
            .expect("records flow")
            .unwrap();
        got.push(body(&b));
        b.acks.deliver();
    }
    got
}

fn start_stage(dir: &std::path::Path, max_bytes: u64, name: &str) -> Stage {
    start_stage_in(dir, max_bytes, name, Mode::Always)
}

fn start_stage_in(dir: &std::path::Path, max_bytes: u64, name: &str, mode: Mode) -> Stage {
    let queue = || {
        Arc::new(ByteQueue::new(
            1 << 20,
            WhenFull::Block,
            QueueMetrics::detached(),
        ))
    };
    let (input, output) = (queue(), queue());
    let settings = DiskBufferSettings {
        max_bytes: ByteSizeValue(max_bytes),
        max_segment_bytes: ByteSizeValue(256 << 10),
        fsync_interval: DurationValue(Duration::from_millis(20)),
        ..Default::default()
    };
    let metrics = ComponentMetrics::new("test", name, "test");
    let (trigger, shutdown) = ShutdownTrigger::new();
    let stage = spawn(
        &settings,
        dir,
        input.clone(),
        output.clone(),
        metrics.clone(),
        shutdown,
        mode,
    )
    .unwrap();
    (input, output, metrics, trigger, stage)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stage_acknowledges_sources_after_fsync_blocks_when_full_and_delivers_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output, metrics, trigger, stage) =
        start_stage(dir.path(), 2 << 20, "buffer_stage_test");
    // Big batches: the buffer (2 MiB) fills long before 400 of ~20 KiB are in.
    let mut source_acks = Vec::new();
    let pusher = {
        let input = input.clone();
        tokio::spawn(async move { push_logs(&input, 0..400).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!pusher.is_finished(), "a full buffer holds the source back");
    assert!(metrics.buffer_bytes.get() <= 2 << 20);
    assert_eq!(
        metrics.buffer_max_bytes.get(),
        2 << 20,
        "its bound, for alerts"
    );
    let got = deliver_bodies(&output, 400).await;
    source_acks.extend(pusher.await.unwrap());
    assert_eq!(
        got,
        (0..400).map(|i| format!("line {i}")).collect::<Vec<_>>()
    );
    for rx in source_acks {
        assert_eq!(rx.await.unwrap(), AckStatus::Delivered);
    }
    input.close();
    trigger.stop();
    stage.await.unwrap();
    // All acknowledged: at most the active segment is left, and a restart replays nothing.
    assert!(seg_files(dir.path()).len() <= 2);
    let (mut s, _) = Segments::open(dir.path(), 2 << 20, 256 << 10).unwrap();
    assert_eq!(drain(&mut s).0, Vec::<usize>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_larger_than_a_segment_is_split_into_records_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output, metrics, trigger, stage) =
        start_stage(dir.path(), 4 << 20, "buffer_split_test");
    // 100 events of 10 kB (1 MB, four segments' worth) and, in the middle, one of 300 kB that
    // no segment can hold.
    let events: Vec<LogEvent> = (0..101)
        .map(|i| LogEvent {
            body: format!("line {i}").into(),
            attributes: vec![crate::flow::event::KeyValue::new(
                "pad",
                "x".repeat(if i == 50 { 300_000 } else { 10_000 }),
            )]
            .into(),
            ..Default::default()
        })
        .collect();
    let (share, rx) = Ack::channel();
    input
        .push(Batch::new(
            Events::Logs(events),
            crate::flow::ack::Acks::one(share),
        ))
        .await;
    let mut got = Vec::new();
    let mut records = 0;
    while got.len() < 100 {
        let b = tokio::time::timeout(Duration::from_secs(10), output.pop())
            .await
            .expect("records flow")
            .unwrap();
        records += 1;
        if let Events::Logs(l) = &b.events {
            got.extend(l.iter().map(|e| e.body.to_text().into_owned()));
        }
        b.acks.deliver();
    }
    let want: Vec<String> = (0..101)
        .filter(|i| *i != 50)
        .map(|i| format!("line {i}"))
        .collect();
    assert_eq!(got, want, "every event that fits, in order");
    assert!(records >= 4, "split into {records} records");
    assert_eq!(
        rx.await.unwrap(),
        AckStatus::Delivered,
        "the source is acknowledged once all parts are durable"
    );
    let dropped = metrics.dropped_total("too_large_for_buffer");
    assert_eq!(dropped, 1, "only the event no segment can hold");
    input.close();
    trigger.stop();
    stage.await.unwrap();
}

/// Pushes batches `range` (20 kB each) with acknowledgement receivers for their sources.
async fn push_logs(
    input: &ByteQueue<Batch>,
    range: std::ops::Range<usize>,
) -> Vec<tokio::sync::oneshot::Receiver<AckStatus>> {
    let mut acks = Vec::new();
    for i in range {
        let (share, rx) = Ack::channel();
        input
            .push(log_batch(i, 20_000, crate::flow::ack::Acks::one(share)))
            .await;
        acks.push(rx);
    }
    acks
}

/// Gives the stage time to take what it can from `input` (up to a second).
async fn settle(input: &ByteQueue<Batch>) {
    for _ in 0..100 {
        if input.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spill_stage_keeps_batches_in_memory_until_spilling_and_order_across_both() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output, metrics, trigger, stage) =
        start_stage_in(dir.path(), 8 << 20, "spill_stage_test", Mode::Spill);
    // Under the hard limit: 40 batches (~800 kB) go straight to the sink's queue (1 MiB), and
    // their sources wait for the sink, not for a disk.
    let mut in_memory = push_logs(&input, 0..40).await;
    settle(&input).await;
    assert_eq!(output.len(), 40);
    assert!(
        in_memory[0].try_recv().is_err(),
        "no answer before the sink's"
    );
    assert_eq!(metrics.spilled_events.get(), 0);
    assert_eq!(metrics.buffer_bytes.get(), 0, "nothing on disk");
    // 20 more fill the sink's queue: the stage waits with one in hand, then spilling starts
    // and it and the rest go to disk, acknowledged to their sources once fsynced.
    let pushed = push_logs(&input, 40..60).await;
    settle(&input).await;
    let queued_in_memory = output.len();
    assert!((45..60).contains(&queued_in_memory), "{queued_in_memory}");
    crate::memory::set_spilling_for_test(true);
    settle(&input).await;
    let spilled = 60 - queued_in_memory;
    assert_eq!(metrics.spilled_events.get(), spilled as u64);
    assert!(metrics.buffer_bytes.get() > 0);
    for rx in pushed.into_iter().skip(queued_in_memory - 40) {
        let status = tokio::time::timeout(Duration::from_secs(5), rx).await;
        assert_eq!(status.unwrap().unwrap(), AckStatus::Delivered, "durable");
    }
    // Spilling stops while spilled records wait to be read: new batches follow them through
    // the disk, so the sink sees everything in order.
    crate::memory::set_spilling_for_test(false);
    let after = push_logs(&input, 60..70).await;
    settle(&input).await;
    assert_eq!(metrics.spilled_events.get(), (spilled + 10) as u64);
    for rx in after {
        assert_eq!(rx.await.unwrap(), AckStatus::Delivered);
    }
    let got = deliver_bodies(&output, 70).await;
    assert_eq!(
        got,
        (0..70).map(|i| format!("line {i}")).collect::<Vec<_>>()
    );
    for rx in in_memory {
        assert_eq!(rx.await.unwrap(), AckStatus::Delivered, "after the sink");
    }
    // The spill read out: memory again.
    settle(&input).await;
    let last = push_logs(&input, 70..75).await;
    settle(&input).await;
    assert_eq!(metrics.spilled_events.get(), (spilled + 10) as u64);
    assert_eq!(output.len(), 5);
    drop(last);
    input.close();
    trigger.stop();
    stage.await.unwrap();
}
