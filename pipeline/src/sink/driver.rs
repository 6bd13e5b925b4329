//! The loop every sink runs: batcher -> up to `concurrency` requests in flight -> acknowledge.
//! A batch is taken from the queue only when a request slot is free and the previous batch has
//! become requests ([`Building`]).
//!
//! A sink supplies `process`, which sends one batch's events (a network sink through
//! [`crate::sink::sender`]) and says how it ended. The driver finishes the batch's acknowledgements
//! with that status and counts what it received and, on `Failed`, the events handed back to
//! their sources. What was sent or dropped is counted where it is known: per request by the
//! sender, by the local sinks themselves. It returns when the input is closed and drained and
//! every request has finished.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::component::SinkContext;
use crate::flow::ack::AckStatus;
use crate::flow::batch::Batch;
use crate::flow::batcher::{BatchSettings, Batcher};
use crate::flow::event::Events;

pub async fn drive<F, Fut>(cx: SinkContext, batch: BatchSettings, concurrency: usize, process: F)
where
    F: Fn(Events) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = AckStatus> + Send + 'static,
{
    drive_building(cx, batch, concurrency, move |events, building| {
        drop(building);
        process(events)
    })
    .await;
}

/// A batch on its way to becoming requests. The driver takes the next batch from the queue only
/// once the last one's `Building` is dropped, which a sink does when it has built its requests:
/// with several requests in flight, the batches taken meanwhile would otherwise wait as whole
/// events (the largest form of a batch) for the encoder instead of in the queue, which bounds
/// them, or merged in the batcher.
pub struct Building(#[allow(dead_code)] OwnedSemaphorePermit);

/// [`drive`] for a sink that builds requests: `process` gets the batch's [`Building`].
pub async fn drive_building<F, Fut>(
    cx: SinkContext,
    batch: BatchSettings,
    concurrency: usize,
    process: F,
) where
    F: Fn(Events, Building) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = AckStatus> + Send + 'static,
{
    let metrics = cx.metrics.clone();
    let mut batcher = Batcher::new(cx.input, batch);
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let building = Arc::new(Semaphore::new(1));
    let process = Arc::new(process);
    let mut tasks = JoinSet::new();
    metrics.set_up(true);
    // A request slot first, then the batch: what arrives while every slot is busy is merged
    // into the next batch instead of waiting as many small ones.
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let Ok(built) = building.clone().acquire_owned().await else {
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
            // A panic in `process` fails the batch (its acknowledgements drop): counted here.
            let mut failed = CountFailed(Some((counters, n)));
            let status = process(events, Building(built)).await;
            if status != AckStatus::Failed {
                failed.0 = None;
            }
            drop(failed);
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

/// Counts a batch's events as failed when dropped armed: on `Failed`, and on a panic.
struct CountFailed(Option<(crate::telemetry::ComponentMetrics, u64)>);

impl Drop for CountFailed {
    fn drop(&mut self) {
        if let Some((metrics, n)) = self.0.take() {
            metrics.failed_events.inc_by(n);
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::ack::{Ack, Acks};
    use crate::flow::event::LogEvent;
    use crate::flow::queue::{ByteQueue, WhenFull};
    use crate::shutdown::Shutdown;
    use crate::telemetry::{ComponentMetrics, QueueMetrics};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn context(name: &str) -> (Arc<ByteQueue<Batch>>, SinkContext) {
        let input = Arc::new(ByteQueue::new(
            1 << 20,
            WhenFull::Block,
            QueueMetrics::detached(),
        ));
        let cx = SinkContext {
            name: name.into(),
            data_dir: std::env::temp_dir(),
            input: input.clone(),
            shutdown: Shutdown::never(),
            metrics: ComponentMetrics::new("test", name, "test"),
        };
        (input, cx)
    }

    fn one(body: &str) -> (Batch, tokio::sync::oneshot::Receiver<AckStatus>) {
        let (share, rx) = Ack::channel();
        let event = LogEvent {
            body: body.into(),
            ..Default::default()
        };
        (Batch::logs(vec![event], Acks::one(share)).awaited(), rx)
    }

    fn body(events: &Events) -> String {
        match events {
            Events::Logs(l) => l[0].body.to_text().into_owned(),
            _ => String::new(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_outcome_finishes_its_batch_and_is_counted_and_a_panic_fails_only_its_batch() {
        let (input, cx) = context("driver_test_outcomes");
        let metrics = cx.metrics.clone();
        let mut answers = Vec::new();
        for b in ["deliver", "reject", "fail", "panic", "deliver again"] {
            let (batch, rx) = one(b);
            input.push(batch).await;
            answers.push(rx);
        }
        input.close();
        let one_each = crate::flow::batcher::BatchSettings {
            max_events: 1,
            ..Default::default()
        };
        drive(cx, one_each, 1, |events| async move {
            match body(&events).as_str() {
                "reject" => AckStatus::Rejected,
                "fail" => AckStatus::Failed,
                #[allow(clippy::panic)] // the failure under test
                "panic" => panic!("a request panicked"),
                _ => AckStatus::Delivered,
            }
        })
        .await;
        let mut got = Vec::new();
        for rx in answers {
            got.push(rx.await.unwrap());
        }
        use AckStatus::*;
        assert_eq!(got, [Delivered, Rejected, Failed, Failed, Delivered]);
        assert_eq!(metrics.received_events.get(), 5);
        assert_eq!(
            metrics.failed_events.get(),
            2,
            "the failed batch and the panicked one"
        );
        assert!(
            !metrics.is_up(),
            "down once its input is closed and drained"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_more_requests_in_flight_than_its_concurrency() {
        let (input, cx) = context("driver_test_concurrency");
        let mut answers = Vec::new();
        for i in 0..12 {
            let (batch, rx) = one(&i.to_string());
            input.push(batch).await;
            answers.push(rx);
        }
        input.close();
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let settings = crate::flow::batcher::BatchSettings {
            max_events: 1,
            ..Default::default()
        };
        let (n, m) = (now.clone(), most.clone());
        drive(cx, settings, 3, move |_events| {
            let (n, m) = (n.clone(), m.clone());
            async move {
                let in_flight = n.fetch_add(1, Ordering::SeqCst) + 1;
                m.fetch_max(in_flight, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                n.fetch_sub(1, Ordering::SeqCst);
                AckStatus::Delivered
            }
        })
        .await;
        for rx in answers {
            assert_eq!(rx.await.unwrap(), AckStatus::Delivered);
        }
        assert_eq!(most.load(Ordering::SeqCst), 3);
    }

    /// Requests overlap, but the batches taken from the queue become requests one at a time:
    /// none waits out of the queue as events while another is being built.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_is_taken_only_once_the_last_one_is_built_while_requests_overlap() {
        let (input, cx) = context("driver_test_building");
        let mut answers = Vec::new();
        for i in 0..6 {
            let (batch, rx) = one(&i.to_string());
            input.push(batch).await;
            answers.push(rx);
        }
        input.close();
        let settings = crate::flow::batcher::BatchSettings {
            max_events: 1,
            ..Default::default()
        };
        let counters: [Arc<AtomicUsize>; 4] = Default::default();
        let c = counters.clone();
        drive_building(cx, settings, 4, move |_events, building| {
            let [taken, most_taken, in_flight, most_in_flight] = c.clone();
            async move {
                most_taken.fetch_max(taken.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                most_in_flight.fetch_max(
                    in_flight.fetch_add(1, Ordering::SeqCst) + 1,
                    Ordering::SeqCst,
                );
                tokio::time::sleep(Duration::from_millis(20)).await; // building
                taken.fetch_sub(1, Ordering::SeqCst);
                drop(building);
                tokio::time::sleep(Duration::from_millis(60)).await; // sending
                in_flight.fetch_sub(1, Ordering::SeqCst);
                AckStatus::Delivered
            }
        })
        .await;
        for rx in answers {
            assert_eq!(rx.await.unwrap(), AckStatus::Delivered);
        }
        let [_, most_taken, _, most_in_flight] = &counters;
        assert_eq!(
            most_taken.load(Ordering::SeqCst),
            1,
            "batches out of the queue, not yet requests"
        );
        assert!(
            most_in_flight.load(Ordering::SeqCst) >= 2,
            "requests still overlap: {}",
            most_in_flight.load(Ordering::SeqCst)
        );
    }
}
