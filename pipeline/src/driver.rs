//! The loop every sink runs: batcher -> up to `concurrency` requests in flight -> acknowledge.
//!
//! A sink supplies `process`, which turns one batch's events into backend calls (through
//! [`crate::request::call_with_retry`]) and says how it ended. The driver finishes the batch's
//! acknowledgements with that status and keeps the counters: sent on `Delivered`, dropped
//! (`rejected`) on `Rejected`, failed on `Failed`. It returns when the input is closed and
//! drained and every request has finished.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::ack::AckStatus;
use crate::batch::Batch;
use crate::batcher::{BatchSettings, Batcher};
use crate::component::SinkContext;
use crate::event::Events;

pub async fn drive<F, Fut>(cx: SinkContext, batch: BatchSettings, concurrency: usize, process: F)
where
    F: Fn(Events) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = AckStatus> + Send + 'static,
{
    let metrics = cx.metrics.clone();
    let mut batcher = Batcher::new(cx.input, batch);
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let process = Arc::new(process);
    let mut tasks = JoinSet::new();
    metrics.set_up(true);
    // A request slot first, then the batch: what arrives while every slot is busy is merged
    // into the next batch instead of waiting as many small ones.
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let Some(b) = batcher.next().await else {
            break;
        };
        metrics.received_events.inc_by(b.len() as u64);
        metrics.batch_sent(b.len(), b.byte_size());
        let Batch {
            events, acks, held, ..
        } = b;
        let n = events.len() as u64;
        let counters = metrics.clone();
        let process = process.clone();
        tasks.spawn(async move {
            let status = process(events).await;
            match status {
                AckStatus::Delivered => counters.sent_events.inc_by(n),
                AckStatus::Rejected => counters.dropped("rejected", n),
                AckStatus::Failed => counters.failed_events.inc_by(n),
            }
            acks.finish(status);
            drop((permit, held));
        });
        while let Some(joined) = tasks.try_join_next() {
            request_ended(&metrics, joined);
        }
    }
    while let Some(joined) = tasks.join_next().await {
        request_ended(&metrics, joined);
    }
    metrics.set_up(false);
}

/// A request task that panicked dropped its batch, which fails its acknowledgement (its
/// sources send it again); the panic is logged and counted, and the sink goes on.
fn request_ended(
    metrics: &crate::telemetry::ComponentMetrics,
    joined: Result<(), tokio::task::JoinError>,
) {
    if let Err(e) = joined {
        if e.is_panic() {
            metrics.error("panic");
            tracing::error!(component = %metrics.name, error = %e, "a request panicked; its batch goes back to its sources");
        }
    }
}

/// Runs `call` on every item, at most `concurrency` at once, and returns the worst status (a
/// task that panicked counts as failed): a sink's requests for one batch, sent in parallel.
pub async fn settle_all<T, F, Fut>(
    concurrency: usize,
    items: impl IntoIterator<Item = T>,
    call: F,
) -> AckStatus
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = AckStatus> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for item in items {
        let permits = permits.clone();
        let call = call(item);
        tasks.spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return AckStatus::Failed;
            };
            call.await
        });
    }
    let mut status = AckStatus::Delivered;
    while let Some(r) = tasks.join_next().await {
        status = status.max(r.unwrap_or(AckStatus::Failed));
    }
    status
}
