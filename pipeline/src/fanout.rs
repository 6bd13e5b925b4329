//! Fan-out: hands a source's batches to every sink that reads from it.
//!
//! With one sink the batch moves without a copy; with several, every sink but the last gets a
//! split (cloned events, a share of the same acknowledgement), so the source learns of delivery
//! only when every sink finished. Pushes wait under `when_full: block`, which is how back-pressure
//! from the slowest sink reaches the source.

use std::sync::Arc;

use crate::batch::Batch;
use crate::queue::{ByteQueue, Pushed};

#[derive(Clone, Default)]
pub struct Fanout {
    outputs: Vec<Arc<ByteQueue<Batch>>>,
}

impl Fanout {
    pub fn new(outputs: Vec<Arc<ByteQueue<Batch>>>) -> Self {
        Self { outputs }
    }

    pub fn is_empty(&self) -> bool {
        self.outputs.is_empty()
    }

    /// Sends `batch` to every output. A batch refused by a queue (full under `drop_newest`, or
    /// closed at shutdown) is finished as rejected or failed respectively, so its source is told.
    pub async fn send(&self, batch: Batch) {
        let Some((last, rest)) = self.outputs.split_last() else {
            // Nobody reads this source: nothing to deliver to, so nothing is pending.
            batch.acks.deliver();
            return;
        };
        for q in rest {
            Self::push_one(q, batch.split()).await;
        }
        Self::push_one(last, batch).await;
    }

    async fn push_one(q: &ByteQueue<Batch>, batch: Batch) {
        if let Pushed::Refused(b) = q.push(batch).await {
            if q.is_closed() {
                b.acks.fail();
            } else {
                b.acks.reject();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::{Ack, AckStatus, Acks};
    use crate::event::LogEvent;
    use crate::queue::WhenFull;
    use crate::telemetry::QueueMetrics;

    #[tokio::test]
    async fn every_sink_gets_the_events_and_the_ack_waits_for_all() {
        let qs: Vec<_> = (0..3)
            .map(|_| {
                Arc::new(ByteQueue::new(
                    1 << 20,
                    WhenFull::Block,
                    QueueMetrics::detached(),
                ))
            })
            .collect();
        let f = Fanout::new(qs.clone());
        let (share, mut rx) = Ack::channel();
        f.send(Batch::logs(
            vec![LogEvent {
                body: "x".into(),
                ..Default::default()
            }],
            Acks::one(share),
        ))
        .await;
        let mut got: Vec<Batch> = Vec::new();
        for q in &qs {
            got.push(q.pop().await.unwrap());
        }
        for b in &got {
            assert_eq!(b.len(), 1);
        }
        let mut got = got.into_iter();
        got.next().unwrap().acks.deliver();
        got.next().unwrap().acks.deliver();
        assert!(rx.try_recv().is_err(), "one sink still holds it");
        got.next().unwrap().acks.deliver();
        assert_eq!(rx.await.unwrap(), AckStatus::Delivered);
    }
}
