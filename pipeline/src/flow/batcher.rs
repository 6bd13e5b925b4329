//! The batcher: merges the batches a sink receives into requests-sized batches.
//!
//! A batch is flushed when it holds `max_events` events or `max_bytes` bytes, or when `timeout`
//! has passed since its first event arrived, or when the input closes — or, when a sender waits
//! for it ([`Batch::awaited`], an OTLP client waiting for its answer), as soon as nothing more is
//! queued: the sender's round trip is then the backend's, not the timer's, and what arrives
//! while requests are in flight is still merged (the driver takes the next batch only when a
//! request slot is free). A batch that would overflow
//! the bounds is held back for the next flush, so no flushed batch exceeds a bound unless one input
//! batch alone did (sinks split by their backend's real limits in their request builders).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use crate::config::units::{ByteSizeValue, DurationValue};
use crate::flow::batch::Batch;
use crate::flow::queue::ByteQueue;

/// `batch:` settings of a sink.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BatchSettings {
    /// Flush at this many events.
    pub max_events: usize,
    /// Flush at this many (estimated) bytes.
    pub max_bytes: ByteSizeValue,
    /// Flush this long after the first event of a batch arrived.
    pub timeout: DurationValue,
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self {
            max_events: 10_000,
            max_bytes: ByteSizeValue(2 * 1024 * 1024),
            timeout: DurationValue(Duration::from_secs(1)),
        }
    }
}

/// Pulls batches from a queue and hands out merged ones.
pub struct Batcher {
    input: Arc<ByteQueue<Batch>>,
    settings: BatchSettings,
    pending: Option<Batch>,
}

impl Batcher {
    pub fn new(input: Arc<ByteQueue<Batch>>, settings: BatchSettings) -> Self {
        Self {
            input,
            settings,
            pending: None,
        }
    }

    fn full(&self, b: &Batch) -> bool {
        b.len() >= self.settings.max_events || b.byte_size() >= self.settings.max_bytes.as_usize()
    }

    fn would_overflow(&self, current: &Batch, next: &Batch) -> bool {
        current.len() + next.len() > self.settings.max_events
            || current.byte_size() + next.byte_size() > self.settings.max_bytes.as_usize()
    }

    /// Records a batch that starts like `b` holds once full, by bytes or events.
    fn projected_records(&self, b: &Batch) -> usize {
        let records = b.events.records();
        let by_bytes = self.settings.max_bytes.as_usize() / (b.byte_size() / records.max(1)).max(1);
        by_bytes.min(self.settings.max_events).max(records)
    }

    /// The next batch to send; `None` when the input is closed and everything was handed out.
    pub async fn next(&mut self) -> Option<Batch> {
        let mut current = match self.pending.take() {
            Some(b) => b,
            None => self.input.pop().await?,
        };
        let deadline = Instant::now() + self.settings.timeout.0;
        let mut reserved = false;
        while !self.full(&current) {
            let next = match self.input.try_pop() {
                Some(b) => b,
                None if current.awaited => break,
                None => match tokio::time::timeout_at(deadline, self.input.pop()).await {
                    Ok(Some(b)) => b,
                    Ok(None) | Err(_) => break,
                },
            };
            if self.would_overflow(&current, &next) {
                self.pending = Some(next);
                break;
            }
            if !reserved {
                reserved = true;
                current
                    .events
                    .reserve_total(self.projected_records(&current));
            }
            if let Err(other_signal) = current.merge(next) {
                self.pending = Some(other_signal);
                break;
            }
        }
        Some(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::ack::Acks;
    use crate::flow::event::{Events, LogEvent, Span};
    use crate::flow::queue::WhenFull;
    use crate::telemetry::QueueMetrics;
    use proptest::prelude::*;

    fn logs(n: usize, bytes_each: usize) -> Batch {
        Batch::with_size(
            Events::Logs(vec![LogEvent::default(); n]),
            Acks::none(),
            n * bytes_each,
        )
    }

    fn setup(
        max_events: usize,
        max_bytes: u64,
        timeout_ms: u64,
    ) -> (Arc<ByteQueue<Batch>>, Batcher) {
        let q = Arc::new(ByteQueue::new(
            usize::MAX / 2,
            WhenFull::Block,
            QueueMetrics::detached(),
        ));
        let b = Batcher::new(
            q.clone(),
            BatchSettings {
                max_events,
                max_bytes: ByteSizeValue(max_bytes),
                timeout: DurationValue(Duration::from_millis(timeout_ms)),
            },
        );
        (q, b)
    }

    #[tokio::test(start_paused = true)]
    async fn an_awaited_batch_is_flushed_once_nothing_more_is_queued_not_after_the_timeout() {
        let (q, mut b) = setup(10_000, 1 << 20, 1000);
        q.push(logs(3, 10).awaited()).await;
        q.push(logs(2, 10)).await;
        let start = Instant::now();
        let first = b.next().await.unwrap();
        assert_eq!(first.len(), 5, "what was queued is merged");
        assert!(first.awaited);
        assert_eq!(start.elapsed(), Duration::ZERO, "no timer waited");
        // A batch nobody waits for still waits for more, up to the timeout.
        q.push(logs(1, 10)).await;
        let second = b.next().await.unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(start.elapsed(), Duration::from_millis(1000));
    }

    #[tokio::test(start_paused = true)]
    async fn flushes_on_count_then_on_timeout() {
        let (q, mut b) = setup(10, 1 << 20, 1000);
        for _ in 0..5 {
            q.push(logs(3, 10)).await;
        }
        let first = b.next().await.unwrap();
        assert_eq!(first.len(), 9, "the fourth batch of 3 would overflow 10");
        let second = b.next().await.unwrap();
        assert_eq!(second.len(), 6);
        let start = Instant::now();
        q.push(logs(1, 10)).await;
        let third = b.next().await.unwrap();
        assert_eq!(third.len(), 1);
        assert!(
            start.elapsed() >= Duration::from_millis(1000),
            "a lone event waits for the timeout"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn signals_are_never_mixed() {
        let (q, mut b) = setup(100, 1 << 20, 10);
        q.push(logs(2, 10)).await;
        q.push(Batch::spans(vec![Span::default()], Acks::none()))
            .await;
        q.push(logs(2, 10)).await;
        assert_eq!(
            b.next().await.unwrap().events.signal(),
            crate::flow::event::Signal::Logs
        );
        assert_eq!(
            b.next().await.unwrap().events.signal(),
            crate::flow::event::Signal::Traces
        );
        assert_eq!(b.next().await.unwrap().len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn returns_none_after_close_and_drain() {
        let (q, mut b) = setup(100, 1 << 20, 10);
        q.push(logs(2, 10)).await;
        q.close();
        assert_eq!(b.next().await.unwrap().len(), 2);
        assert!(b.next().await.is_none());
    }

    proptest! {
        #[test]
        fn a_flushed_batch_never_exceeds_its_bounds(
            sizes in proptest::collection::vec((1usize..50, 1usize..200), 1..60),
            max_events in 20usize..200,
            max_bytes in 2_000u64..20_000,
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
            rt.block_on(async {
                let (q, mut b) = setup(max_events, max_bytes, 5);
                let total: usize = sizes.iter().map(|(n, _)| n).sum();
                for (n, each) in &sizes {
                    q.push(logs(*n, *each)).await;
                }
                q.close();
                let mut seen = 0;
                while let Some(batch) = b.next().await {
                    seen += batch.len();
                    let single_input = sizes.iter().any(|(n, e)| *n == batch.len() && n * e == batch.byte_size());
                    prop_assert!(
                        single_input || (batch.len() <= max_events && batch.byte_size() as u64 <= max_bytes),
                        "batch of {} events / {} bytes", batch.len(), batch.byte_size()
                    );
                }
                prop_assert_eq!(seen, total);
                Ok(())
            })?;
        }
    }
}
