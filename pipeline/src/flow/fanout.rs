//! Fan-out: hands a source's batches to every sink that reads from it and sends their signal.
//!
//! Signals are routed, not filtered: each output declares the signals its sink sends, and a
//! batch goes only to those outputs, before any queue or disk buffer, so no sink stores or
//! counts what it cannot send. A batch whose signal no output takes (a receiver's signal that no
//! sink sends; the receiver refuses those up front, see [`Fanout::accepts`]) is refused for good;
//! one that finds no output at all is failed, never delivered: its source keeps it.
//!
//! With one sink the batch moves without a copy; with several, every sink but the last gets a
//! split (cloned events, a share of the same acknowledgement), so the source learns of delivery
//! only when every sink finished. Pushes wait under `when_full: block`, which is how back-pressure
//! from the slowest sink reaches the source. The outputs can be replaced while the source runs
//! (config reload); a batch pushed into a queue that was just closed is handed back as failed, so
//! its source sends it again.
//!
//! Taps are outputs outside the delivery guarantee: a source that evaluates what passes (the
//! collector's rules) gets a copy of each batch of its signals without a share of the
//! acknowledgement, pushed without waiting; when its queue is full the copy is dropped and
//! counted (`tap_full`), and the sinks' delivery is neither slowed nor failed by it.

use std::sync::{Arc, RwLock};

use crate::flow::ack::Acks;
use crate::flow::batch::Batch;
use crate::flow::event::{Signal, Signals};
use crate::flow::queue::{ByteQueue, Pushed};
use crate::telemetry::ComponentMetrics;

/// A sink's input as a source sees it.
#[derive(Clone)]
pub struct Output {
    /// The signals the sink sends.
    pub signals: Signals,
    pub queue: Arc<ByteQueue<Batch>>,
}

type Outputs = Vec<Output>;

/// A tapping source's input: copies of the batches of `signals`, dropped (and counted in
/// `metrics`) when `queue` is full.
#[derive(Clone)]
pub struct Tap {
    pub signals: Signals,
    pub queue: Arc<ByteQueue<Batch>>,
    pub metrics: ComponentMetrics,
}

#[derive(Clone, Default)]
pub struct Fanout {
    outputs: Arc<RwLock<Outputs>>,
    taps: Arc<RwLock<Vec<Tap>>>,
}

impl Fanout {
    /// Outputs that take every signal.
    pub fn new(queues: Vec<Arc<ByteQueue<Batch>>>) -> Self {
        Self::routed(
            queues
                .into_iter()
                .map(|queue| Output {
                    signals: Signals::ALL,
                    queue,
                })
                .collect(),
        )
    }

    pub fn routed(outputs: Outputs) -> Self {
        Self {
            outputs: Arc::new(RwLock::new(outputs)),
            taps: Arc::default(),
        }
    }

    /// How full the fullest output queue is, from 0 to 1: what a receiver's retry hint grows
    /// with.
    pub fn backlog(&self) -> f64 {
        self.outputs
            .read()
            .map(|o| {
                o.iter()
                    .map(|out| out.queue.bytes() as f64 / out.queue.max_bytes().max(1) as f64)
                    .fold(0.0, f64::max)
                    .min(1.0)
            })
            .unwrap_or(0.0)
    }

    /// Whether some output takes `signal` (or there is no output at all yet).
    pub fn accepts(&self, signal: Signal) -> bool {
        self.outputs
            .read()
            .map(|o| o.is_empty() || o.iter().any(|out| out.signals.contains(signal)))
            .unwrap_or(true)
    }

    /// Replaces the outputs (for every clone of this fan-out).
    pub fn set_outputs(&self, outputs: Outputs) {
        if let Ok(mut o) = self.outputs.write() {
            *o = outputs;
        }
    }

    /// Replaces the taps (for every clone of this fan-out).
    pub fn set_taps(&self, taps: Vec<Tap>) {
        if let Ok(mut t) = self.taps.write() {
            *t = taps;
        }
    }

    /// Hands a copy of `batch` to every tap that takes its signal, without waiting.
    fn tap(&self, batch: &Batch) {
        let signal = batch.events.signal();
        let Ok(taps) = self.taps.read() else { return };
        for tap in taps.iter().filter(|t| t.signals.contains(signal)) {
            let copy = Batch::with_size(batch.events.clone(), Acks::none(), batch.byte_size());
            if let Pushed::Refused(dropped) = tap.queue.try_push(copy) {
                tap.metrics.dropped("tap_full", dropped.len() as u64);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.outputs.read().map(|o| o.is_empty()).unwrap_or(true)
    }

    /// Sends `batch` to every output. A batch refused by a queue (full under `drop_newest`, or
    /// closed) is finished as rejected or failed respectively, so its source is told.
    pub async fn send(&self, batch: Batch) {
        self.tap(&batch);
        let signal = batch.events.signal();
        let (any, outputs): (bool, Vec<Arc<ByteQueue<Batch>>>) = match self.outputs.read() {
            Ok(o) => (
                !o.is_empty(),
                o.iter()
                    .filter(|out| out.signals.contains(signal))
                    .map(|out| out.queue.clone())
                    .collect(),
            ),
            Err(_) => (false, Vec::new()),
        };
        let Some((last, rest)) = outputs.split_last() else {
            if any {
                // No sink sends this signal: refused for good, never stored.
                batch.acks.reject();
            } else {
                // Nobody reads this source (validation refuses that; a moment of a reload at
                // most): not delivered, so its source keeps it and sends it again.
                batch.acks.fail();
            }
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
    use crate::flow::ack::{Ack, AckStatus, Acks};
    use crate::flow::event::LogEvent;
    use crate::flow::queue::WhenFull;
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
        f.clone().set_outputs(vec![Output {
            signals: Signals::ALL,
            queue: new.clone(),
        }]);
        let (batch, _rx) = one_log();
        f.send(batch).await;
        assert_eq!(new.len(), 1);
    }
}

#[cfg(test)]
mod routing_tests {
    use super::*;
    use crate::flow::ack::{Ack, AckStatus, Acks};
    use crate::flow::event::{LogEvent, Span};
    use crate::flow::queue::WhenFull;
    use crate::telemetry::QueueMetrics;

    fn output(signals: Signals) -> Output {
        Output {
            signals,
            queue: Arc::new(ByteQueue::new(
                1 << 20,
                WhenFull::Block,
                QueueMetrics::detached(),
            )),
        }
    }

    #[tokio::test]
    async fn each_sink_gets_only_the_signals_it_sends_and_an_unwanted_signal_is_refused() {
        let (logs, traces, all) = (
            output(Signals::LOGS),
            output(Signals::TRACES),
            output(Signals::ALL),
        );
        let f = Fanout::routed(vec![logs.clone(), traces.clone(), all.clone()]);
        let (share, rx) = Ack::channel();
        f.send(Batch::logs(vec![LogEvent::default()], Acks::one(share)))
            .await;
        let (share, _) = Ack::channel();
        f.send(Batch::spans(vec![Span::default()], Acks::one(share)))
            .await;
        assert_eq!(
            (logs.queue.len(), traces.queue.len(), all.queue.len()),
            (1, 1, 2)
        );
        let (a, b) = (
            logs.queue.pop().await.unwrap(),
            all.queue.pop().await.unwrap(),
        );
        assert_eq!(a.events.signal(), Signal::Logs);
        assert_eq!(b.events.signal(), Signal::Logs);
        a.acks.deliver();
        b.acks.deliver();
        assert_eq!(
            rx.await.unwrap(),
            AckStatus::Delivered,
            "both sinks that take logs"
        );

        // No output at all: failed (the source keeps it), never delivered.
        let (share, rx) = Ack::channel();
        Fanout::routed(Vec::new())
            .send(Batch::logs(vec![LogEvent::default()], Acks::one(share)))
            .await;
        assert_eq!(rx.await.unwrap(), AckStatus::Failed);

        let only_logs = Fanout::routed(vec![output(Signals::LOGS)]);
        assert!(only_logs.accepts(Signal::Logs));
        assert!(!only_logs.accepts(Signal::Metrics));
        let (share, rx) = Ack::channel();
        only_logs
            .send(Batch::spans(vec![Span::default()], Acks::one(share)))
            .await;
        assert_eq!(rx.await.unwrap(), AckStatus::Rejected);
    }
}
