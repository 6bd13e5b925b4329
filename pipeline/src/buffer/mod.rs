//! The crash-safe disk buffer: a stage between a sink's input queue and the sink, so that what
//! the sources sent survives restarts, crashes and long backend outages.
//!
//! Contract:
//! - A batch taken from the input is written to the buffer's segment files ([`segments`]) and
//!   its acknowledgement goes back to the source only after the data is on disk (fsync). Group
//!   commit: at once if the last fsync is `fsync_interval` old, else with everything else written
//!   in that interval (`0s` syncs every batch). File checkpoints and OTLP answers therefore never
//!   run ahead of what a crash would keep.
//! - The sink reads records in order. A record is released (and its segment deleted once all its
//!   records are) only when the sink delivered it or refused it for good; a failed delivery is
//!   read again. After a crash, reading resumes at the oldest unacknowledged record. The ledger
//!   is written as acknowledgements come, and once more when the stage's last reference goes
//!   (after the sink's final flush at shutdown), so a clean stop resends nothing.
//! - All file I/O (writes, fsyncs, rolls, reads, deletions, the ledger) runs on the buffer's own
//!   thread (`io.rs`), never on the async workers or in an acknowledgement callback.
//! - `sextant_buffer_bytes` is what is not yet acknowledged, not the files' size;
//!   `sextant_buffer_max_bytes` is its bound (`max_bytes`), for alerts on a buffer filling.
//! - Bounded by `max_bytes` on disk. `when_full: block` stops taking from the input, so the
//!   input queue fills and sources pause (files wait on disk, receivers answer retry-later);
//!   `drop_oldest` deletes the oldest segment, counting its events as dropped (`buffer_full`).
//! - Damage in the files (a torn tail after a crash, flipped bytes, a truncated segment) is
//!   counted (`sextant_component_errors_total{error_type="buffer_corrupted"|"buffer_torn_tail"}`,
//!   bytes in `sextant_source_skipped_bytes_total`), logged at a rate limit and skipped; the
//!   records around it are delivered, and the buffer never refuses to start because of it.
//! - [`Mode::Spill`] (a sink without `queue.disk` in a process with a memory hard limit, see
//!   [`crate::memory`]): batches go straight to the sink in memory, with their sources'
//!   acknowledgements, and through the disk as above only while the process spills, or while
//!   spilled records wait to be read (so that order holds). A batch waiting for room in the
//!   sink's queue when spilling starts is spilled instead. At shutdown, what the sink's queue no
//!   longer takes is spilled too, and delivered after the restart.

pub(crate) mod codec;
mod io;
pub(crate) mod record;
pub(crate) mod segments;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub use crate::config::disk_buffer::{DiskBufferSettings, DiskWhenFull};
use crate::config::error::BuildError;
use crate::flow::ack::{Ack, AckStatus, Acks};
use crate::flow::batch::Batch;
use crate::flow::event::Events;
use crate::flow::queue::{ByteQueue, Pushed};
use crate::shutdown::Shutdown;
use crate::telemetry::{ComponentMetrics, LogLimiter};

use io::{Disk, View};
use segments::{AppendError, Damage, Segments};

/// What the stage does with the batches it takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `queue.disk`: every batch goes through the disk.
    Always,
    /// Memory first; the disk only while the process spills (see the module doc).
    Spill,
}

/// What the writer, the reader and the acknowledgements share.
struct Shared {
    disk: Disk,
    metrics: ComponentMetrics,
    log: LogLimiter,
}

impl Shared {
    fn report(&self, damage: &Damage) {
        for (kind, bytes) in [
            ("buffer_corrupted", damage.corrupted_bytes),
            ("buffer_torn_tail", damage.torn_tail_bytes),
        ] {
            if bytes > 0 {
                self.metrics.error(kind);
                self.metrics.skipped_bytes(kind, bytes);
                if let Some(suppressed) = self.log.allow() {
                    tracing::warn!(component = %self.metrics.name, bytes, suppressed, "disk buffer: {kind}; skipped, the records around it are kept");
                }
            }
        }
    }

    fn view(&self) -> &View {
        &self.disk.view
    }
}

/// Opens the buffer in `dir` and runs it between `input` and `output` until `input` is closed
/// and drained (writing) and `shutdown` stops (reading). What is on disk then stays for the
/// next start.
pub fn spawn(
    settings: &DiskBufferSettings,
    dir: &Path,
    input: Arc<ByteQueue<Batch>>,
    output: Arc<ByteQueue<Batch>>,
    metrics: ComponentMetrics,
    shutdown: Shutdown,
    mode: Mode,
) -> Result<tokio::task::JoinHandle<()>, BuildError> {
    let (segments, problem) =
        Segments::open(dir, settings.max_bytes.0, settings.max_segment_bytes.0)
            .map_err(|e| BuildError::io(&metrics.name, e))?;
    if let Some(problem) = problem {
        metrics.error("buffer_ledger");
        tracing::warn!(component = %metrics.name, "{problem}");
    }
    let held = segments.unacknowledged_bytes();
    if held > 0 {
        tracing::info!(component = %metrics.name, bytes = held, "disk buffer holds data from before; delivering it first");
    }
    metrics.buffer_bytes.set(held as i64);
    metrics
        .buffer_max_bytes
        .set(i64::try_from(settings.max_bytes.0).unwrap_or(i64::MAX));
    let disk =
        Disk::start(segments, metrics.clone()).map_err(|e| BuildError::io(&metrics.name, e))?;
    let shared = Arc::new(Shared {
        disk,
        metrics,
        log: LogLimiter::default(),
    });
    let writer = tokio::spawn(write_loop(
        shared.clone(),
        input,
        output.clone(),
        settings.clone(),
        mode,
    ));
    let reader = tokio::spawn(read_loop(shared, output, shutdown));
    Ok(tokio::spawn(async move {
        let _ = tokio::join!(writer, reader);
    }))
}

async fn write_loop(
    shared: Arc<Shared>,
    input: Arc<ByteQueue<Batch>>,
    output: Arc<ByteQueue<Batch>>,
    settings: DiskBufferSettings,
    mode: Mode,
) {
    // Group commit: a write is synced at once if the last fsync is at least `fsync_interval`
    // old, else at the end of that interval together with whatever else came meanwhile. A
    // lightly loaded buffer acknowledges in about one fsync's time; a busy one fsyncs at most
    // once per interval.
    let interval = settings.fsync_interval.0;
    let mut pending: Vec<Acks> = Vec::new();
    let mut last_sync = tokio::time::Instant::now() - interval;
    loop {
        let due = last_sync + interval;
        tokio::select! {
            b = input.pop() => {
                let Some(batch) = b else { break };
                let batch = match mode {
                    Mode::Always => batch,
                    Mode::Spill => match pass_in_memory(&shared, &output, batch).await {
                        Some(batch) => {
                            shared.metrics.spilled_events.inc_by(batch.len() as u64);
                            batch
                        }
                        None => continue,
                    },
                };
                write_batch(&shared, batch, &mut pending, settings.when_full).await;
                if tokio::time::Instant::now() >= last_sync + interval {
                    sync(&shared, &mut pending).await;
                    last_sync = tokio::time::Instant::now();
                }
            }
            () = tokio::time::sleep_until(due), if !pending.is_empty() => {
                sync(&shared, &mut pending).await;
                last_sync = tokio::time::Instant::now();
            }
            // The ledger moves as the sink acknowledges: persist it now and then.
            () = tokio::time::sleep(interval.max(Duration::from_millis(100))), if pending.is_empty() => {
                sync(&shared, &mut pending).await;
            }
        }
    }
    sync(&shared, &mut pending).await;
}

/// `Mode::Spill`: hands `batch` to the sink in memory unless the process is spilling or spilled
/// records wait to be read; gives it back to be spilled otherwise, and when spilling starts
/// while it waits for room or the sink's queue has closed (shutdown).
async fn pass_in_memory(shared: &Shared, output: &ByteQueue<Batch>, batch: Batch) -> Option<Batch> {
    if crate::memory::spilling() || !shared.view().read_out() {
        return Some(batch);
    }
    match output
        .push_until(batch, crate::memory::spilling_started())
        .await
    {
        Pushed::Queued => None,
        Pushed::Refused(batch) => Some(batch),
    }
}

async fn write_batch(
    shared: &Shared,
    batch: Batch,
    pending: &mut Vec<Acks>,
    when_full: DiskWhenFull,
) {
    let Batch { events, acks, .. } = batch;
    let limit = shared.view().max_payload_len;
    let mut records = Vec::new();
    let unstorable = records_within(events, limit, &mut records);
    if unstorable > 0 {
        shared.metrics.dropped("too_large_for_buffer", unstorable);
        if let Some(suppressed) = shared.log.allow() {
            tracing::error!(component = %shared.metrics.name, events = unstorable, limit, suppressed, "events larger than queue.disk.max_segment_bytes; dropped");
        }
    }
    // The batch is acknowledged once all its records are written (and synced).
    for (payload, n) in records {
        if !write_record(shared, payload, n, pending, when_full).await {
            acks.finish(AckStatus::Failed);
            return;
        }
    }
    pending.push(acks);
}

/// `events` as record payloads of at most `limit` bytes, halving what is too large; returns how
/// many events are each too large on their own (they cannot be kept).
fn records_within(events: Events, limit: usize, out: &mut Vec<(Vec<u8>, u32)>) -> u64 {
    let n = events.len() as u32;
    let payload = codec::encode(events);
    if payload.len() <= limit {
        out.push((payload, n));
        return 0;
    }
    // Rare (a batch over a segment): get the events back and halve them.
    let Some(events) = codec::decode(&payload) else {
        return u64::from(n);
    };
    match events.halve() {
        Ok((first, second)) => {
            records_within(first, limit, out) + records_within(second, limit, out)
        }
        Err(single) => single.len() as u64,
    }
}

/// Appends one record, waiting for room under `block`; false if the disk failed (the batch goes
/// back to its source).
async fn write_record(
    shared: &Shared,
    payload: Vec<u8>,
    n: u32,
    pending: &mut Vec<Acks>,
    when_full: DiskWhenFull,
) -> bool {
    let mut payload = payload;
    loop {
        // Listening before the attempt: room freed after a `Full` answer wakes the wait below.
        let space = shared.view().space.notified();
        tokio::pin!(space);
        space.as_mut().enable();
        let (appended, back) = shared.disk.append(payload, n).await;
        payload = back;
        match appended {
            Ok(Ok(())) => return true,
            Ok(Err(e)) => {
                shared.metrics.error("buffer_write");
                if let Some(suppressed) = shared.log.allow() {
                    tracing::error!(component = %shared.metrics.name, error = %e, suppressed, "disk buffer write failed; the batch goes back to its source");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                return false;
            }
            Err(AppendError::TooLarge) => {
                // records_within keeps every record under the segment size.
                shared.metrics.error("buffer_write");
                return false;
            }
            Err(AppendError::Full) => match when_full {
                DiskWhenFull::DropOldest => match shared.disk.drop_oldest().await {
                    Ok(events) => shared.metrics.dropped("buffer_full", events),
                    Err(e) => {
                        shared.metrics.error("buffer_write");
                        tracing::error!(component = %shared.metrics.name, error = %e, "cannot drop the oldest segment");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                },
                DiskWhenFull::Block => {
                    // What waits must not keep its sources waiting for a sync.
                    sync(shared, pending).await;
                    let _ = tokio::time::timeout(Duration::from_secs(1), space).await;
                }
            },
        }
    }
}

/// Makes what was written durable, then acknowledges its sources. With nothing pending, writes
/// the ledger only (the sink's acknowledgements move it).
async fn sync(shared: &Shared, pending: &mut Vec<Acks>) {
    let synced = shared.disk.sync(!pending.is_empty()).await;
    let status = match synced {
        Ok(()) => AckStatus::Delivered,
        Err(e) => {
            shared.metrics.error("buffer_sync");
            if let Some(suppressed) = shared.log.allow() {
                tracing::error!(component = %shared.metrics.name, error = %e, suppressed, "disk buffer fsync failed; batches go back to their sources");
            }
            AckStatus::Failed
        }
    };
    for acks in pending.drain(..) {
        acks.finish(status);
    }
}

async fn read_loop(shared: Arc<Shared>, output: Arc<ByteQueue<Batch>>, shutdown: Shutdown) {
    loop {
        if shutdown.is_stopping() {
            break;
        }
        let readable = shared.view().readable.notified();
        tokio::pin!(readable);
        readable.as_mut().enable();
        let (next, damage) = shared.disk.next().await;
        shared.report(&damage);
        match next {
            Ok(Some(rec)) => {
                let id = rec.id;
                let Some(events) = codec::decode(&rec.payload) else {
                    shared.view().reader_holding.store(false, Ordering::Release);
                    shared.report(&Damage {
                        corrupted_bytes: id.end - id.start,
                        ..Default::default()
                    });
                    shared.disk.resolve(id, true);
                    continue;
                };
                let owner = shared.clone();
                let ack = Ack::new(move |status| owner.disk.resolve(id, status.is_final()));
                let batch = Batch::new(events, Acks::one(ack));
                let handed = tokio::select! {
                    pushed = output.push(batch) => matches!(pushed, Pushed::Queued),
                    () = shutdown.stopped() => false,
                };
                shared.view().reader_holding.store(false, Ordering::Release);
                if !handed {
                    break;
                }
            }
            Ok(None) => {
                tokio::select! {
                    () = &mut readable => {}
                    () = shutdown.stopped() => break,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            Err(e) => {
                shared.metrics.error("buffer_read");
                if let Some(suppressed) = shared.log.allow() {
                    tracing::error!(component = %shared.metrics.name, error = %e, suppressed, "disk buffer read failed; retrying");
                }
                tokio::select! {
                    () = shutdown.stopped() => break,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
    output.close();
}
