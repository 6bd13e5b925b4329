//! Fan-out: hands a source's batches to every sink that reads from it.
//!
//! With one sink the batch moves without a copy; with several, every sink but the last gets a
//! split (cloned events, a share of the same acknowledgement), so the source learns of delivery
//! only when every sink finished. Pushes wait under `when_full: block`, which is how back-pressure
//! from the slowest sink reaches the source. The outputs can be replaced while the source runs
//! (config reload); a batch pushed into a queue that was just closed is handed back as failed, so
//! its source sends it again.

use std::sync::{Arc, RwLock};

use crate::batch::Batch;
use crate::queue::{ByteQueue, Pushed};

type Outputs = Vec<Arc<ByteQueue<Batch>>>;

#[derive(Clone, Default)]
pub struct Fanout {
    outputs: Arc<RwLock<Outputs>>,
}

impl Fanout {
    pub fn new(outputs: Outputs) -> Self {
        Self {
            outputs: Arc::new(RwLock::new(outputs)),
        }
    }

    /// Replaces the outputs (for every clone of this fan-out).
    pub fn set_outputs(&self, outputs: Outputs) {
        if let Ok(mut o) = self.outputs.write() {
            *o = outputs;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.outputs.read().map(|o| o.is_empty()).unwrap_or(true)
    }

    /// Sends `batch` to every output. A batch refused by a queue (full under `drop_newest`, or
    /// closed) is finished as rejected or failed respectively, so its source is told.
    pub async fn send(&self, batch: Batch) {
        let outputs: Outputs = match self.outputs.read() {
            Ok(o) => o.clone(),
            Err(_) => Vec::new(),
        };
        let Some((last, rest)) = outputs.split_last() else {
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

    fn queue() -> Arc<ByteQueue<Batch>> {
        Arc::new(ByteQueue::new(
            1 << 20,
            WhenFull::Block,
            QueueMetrics::detached(),
        ))
    }

    fn one_log() -> (Batch, tokio::sync::oneshot::Receiver<AckStatus>) {
        let (share, rx) = Ack::channel();
        let b = Batch::logs(
            vec![LogEvent {
                body: "x".into(),
                ..Default::default()
            }],
            Acks::one(share),
        );
        (b, rx)
    }

    #[tokio::test]
    async fn every_sink_gets_the_events_and_the_ack_waits_for_all() {
        let qs: Vec<_> = (0..3).map(|_| queue()).collect();
        let f = Fanout::new(qs.clone());
        let (batch, mut rx) = one_log();
        f.send(batch).await;
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

    #[tokio::test]
    async fn a_closed_output_fails_the_batch_and_new_outputs_take_over() {
        let old = queue();
        let f = Fanout::new(vec![old.clone()]);
        old.close();
        let (batch, rx) = one_log();
        f.send(batch).await;
        assert_eq!(rx.await.unwrap(), AckStatus::Failed);
        let new = queue();
        f.clone().set_outputs(vec![new.clone()]);
        let (batch, _rx) = one_log();
        f.send(batch).await;
        assert_eq!(new.len(), 1);
    }
}
