//! The send path of every network sink, written once.
//!
//! A sink supplies three things: an [`Encoder`] (a batch's events into requests, at the
//! backend's limits), a [`Service`] (one call to the backend, and what its errors mean), and its
//! config. [`run`] does the rest:
//! - the batch loop ([`crate::sink::driver`], or per-resource lanes, [`crate::sink::lanes`]);
//! - encoding on a blocking thread, off the async workers, one batch at a time (see
//!   [`crate::sink::driver::Building`]): batches wait in the queue as events, in flight as
//!   encoded requests;
//! - each request through [`crate::sink::request::call_with_retry`]: timeout, retry with the backend's
//!   hints, rate limit, adaptive concurrency;
//! - counting, per request: sent events and bytes when accepted, events the backend refused
//!   inside an accepted request by their reason, a request refused for good as
//!   `dropped{reason="refused"}`. So `sent + dropped` of a sink adds up to what it received and
//!   delivered or gave up, whichever units its requests count (log events, datums, documents);
//! - refused events to the dead-letter file, when the sink has one;
//! - logging at a rate limit: refusals at `warn`/`error` with the backend's reason, a request
//!   handed back after retries at `warn`;
//! - the batch's acknowledgement: delivered when every request was accepted, rejected when one
//!   was refused for good, failed (sent again by its source) when one was not delivered;
//! - the backend health check at start ([`crate::sink::healthcheck`]), unless `healthcheck: false`.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;

use crate::component::{SinkContext, Task};
use crate::flow::ack::AckStatus;
use crate::flow::batcher::BatchSettings;
use crate::flow::event::Events;
use crate::shutdown::Shutdown;
use crate::sink::dead_letter::DeadLetter;
use crate::sink::driver::Building;
use crate::sink::request::{call_with_retry, CallError, RequestGate, RequestSettings, Retry};
use crate::telemetry::{ComponentMetrics, LogLimiter};

/// One request to a backend, as the sender counts it.
pub trait Request: Send + Sync + 'static {
    /// The events (or datums, or documents) it carries.
    fn events(&self) -> usize;
    /// Its size on the wire.
    fn bytes(&self) -> usize;
    /// Where it goes, for logs (a log group and stream); empty when the sink has one target.
    fn target(&self) -> String {
        String::new()
    }
    /// `events[range]` as records for the dead-letter file.
    fn dead_letter(&self, range: Range<usize>) -> Vec<serde_json::Value> {
        let _ = range;
        Vec::new()
    }
}

/// Events a backend refused inside a request it accepted (too old, unprocessed).
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    /// The `reason` label of `sextant_component_dropped_events_total`.
    pub reason: &'static str,
    /// Which of the request's events.
    pub events: Range<usize>,
    /// What the backend said, for the log.
    pub detail: String,
}

/// A backend's answer to a request it accepted.
pub trait Accepted: Send {
    /// Events it refused all the same.
    fn refusals(&self) -> Vec<Refusal> {
        Vec::new()
    }
}

impl Accepted for () {}

/// One call to a backend, and what its errors mean.
pub trait Service: Send + Sync + 'static {
    type Request: Request;
    type Response: Accepted;
    type Error: std::fmt::Display + Send;
    /// The backend's name in logs ("CloudWatch Logs").
    const BACKEND: &'static str;

    fn call(
        &self,
        request: &Self::Request,
    ) -> impl Future<Output = Result<Self::Response, Self::Error>> + Send;

    /// Retry or not, and after how long (the sink's `retry.rs`).
    fn classify(&self, error: &Self::Error) -> Retry;

    /// A cheap check that the backend answers and the credentials work.
    fn healthcheck(&self) -> impl Future<Output = Result<(), String>> + Send {
        async { Ok(()) }
    }
}

/// Requests to send for one batch, in groups: a group's requests go one after another, in
/// order, stopping at the first that is not delivered; groups go in parallel.
pub type Groups<R> = Vec<Vec<R>>;

/// A batch's events into requests.
pub trait Encoder: Send + Sync + 'static {
    type Request: Request;
    /// Runs on a blocking thread. Counts what it leaves out (too large, invalid) in `metrics`.
    /// `Err` is the batch's status without sending anything: `Rejected` for events this sink
    /// can never send, `Failed` to have the batch sent again.
    fn encode(
        &self,
        events: Events,
        metrics: &ComponentMetrics,
    ) -> Result<Groups<Self::Request>, AckStatus>;
}

/// How batches reach the sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drive {
    /// Up to this many batches at once (1: in order, for sinks whose encoding keeps state).
    Batches(usize),
    /// Per-resource lanes ([`crate::sink::lanes`]): each resource's batches in order.
    Lanes(usize),
}

/// A sink's requests to its backend; see the module doc.
pub struct Sender<S: Service> {
    service: S,
    settings: RequestSettings,
    gate: RequestGate,
    metrics: ComponentMetrics,
    shutdown: Shutdown,
    dead_letter: Option<Arc<DeadLetter>>,
    refusals: LogLimiter,
    handed_back: LogLimiter,
}

impl<S: Service> Sender<S> {
    pub fn new(service: S, settings: &RequestSettings, cx: &SinkContext) -> Self {
        Self {
            service,
            settings: settings.clone(),
            gate: RequestGate::for_settings(settings, &cx.metrics),
            metrics: cx.metrics.clone(),
            shutdown: cx.shutdown.clone(),
            dead_letter: None,
            refusals: LogLimiter::default(),
            handed_back: LogLimiter::default(),
        }
    }

    /// Refused events go to this file.
    pub fn with_dead_letter(mut self, dead_letter: Option<Arc<DeadLetter>>) -> Self {
        self.dead_letter = dead_letter;
        self
    }

    pub fn service(&self) -> &S {
        &self.service
    }

    /// Sends one request until it is accepted, refused for good, given up or aborted; counts
    /// and logs the outcome (see the module doc).
    pub async fn send(&self, request: &S::Request) -> AckStatus {
        let m = &self.metrics;
        let outcome = call_with_retry(
            &self.settings,
            &self.gate,
            m,
            &self.shutdown,
            |e| self.service.classify(e),
            || self.service.call(request),
        )
        .await;
        let events = request.events();
        match outcome {
            Ok(response) => {
                let mut refused = 0;
                for r in response.refusals() {
                    let range = r.events.start.min(events)..r.events.end.min(events);
                    let n = range.len();
                    if n == 0 {
                        continue;
                    }
                    refused += n;
                    m.dropped(r.reason, n as u64);
                    if let Some(suppressed) = self.refusals.allow() {
                        tracing::warn!(component = %m.name, target = %request.target(), reason = r.reason, events = n, detail = %r.detail, suppressed, "{} refused events", S::BACKEND);
                    }
                    self.keep(r.reason, request, range).await;
                }
                m.sent_events.inc_by((events - refused.min(events)) as u64);
                m.sent_bytes.inc_by(request.bytes() as u64);
                m.delivered();
                AckStatus::Delivered
            }
            Err(CallError::Permanent(e)) => {
                m.dropped("refused", events as u64);
                if let Some(suppressed) = self.refusals.allow() {
                    tracing::error!(component = %m.name, target = %request.target(), events, error = %e, suppressed, "{} refused a request for good", S::BACKEND);
                }
                self.keep("refused", request, 0..events).await;
                AckStatus::Rejected
            }
            Err(e) => {
                if let Some(suppressed) = self.handed_back.allow() {
                    tracing::warn!(component = %m.name, error = %e, suppressed, "request not delivered; its batch goes back to its sources");
                }
                AckStatus::Failed
            }
        }
    }

    /// Keeps `request`'s `range` in the dead-letter file, if there is one.
    async fn keep(&self, reason: &'static str, request: &S::Request, range: Range<usize>) {
        if let Some(dl) = &self.dead_letter {
            let records = request.dead_letter(range);
            if !records.is_empty() {
                dl.write(reason, records).await;
            }
        }
    }

    /// Sends one batch's groups (see [`Groups`]), `request.concurrency` requests at once; the
    /// batch's status is the worst of its requests'.
    pub async fn send_groups(self: &Arc<Self>, groups: Groups<S::Request>) -> AckStatus {
        crate::sink::driver::settle_all(self.settings.concurrency, groups, |group| {
            let sender = self.clone();
            async move {
                let mut status = AckStatus::Delivered;
                for request in &group {
                    status = status.max(sender.send(request).await);
                    if status == AckStatus::Failed {
                        break;
                    }
                }
                status
            }
        })
        .await
    }

    /// Encodes `events` on a blocking thread and sends them; `building` is let go once they are
    /// requests.
    pub async fn process<E>(
        self: &Arc<Self>,
        encoder: &Arc<E>,
        events: Events,
        building: Option<Building>,
    ) -> AckStatus
    where
        E: Encoder<Request = S::Request>,
    {
        let (encoder, metrics) = (encoder.clone(), self.metrics.clone());
        let encoded = tokio::task::spawn_blocking(move || {
            let groups = encoder.encode(events, &metrics);
            // A blocking-pool thread never parks as a worker does: under memory pressure it
            // gives what the encoding freed back here.
            crate::memory::give_back_while_pressed();
            groups
        })
        .await;
        drop(building);
        match encoded {
            Ok(Ok(groups)) => self.send_groups(groups).await,
            Ok(Err(status)) => status,
            Err(e) => {
                self.metrics.error("encode");
                tracing::error!(component = %self.metrics.name, error = %e, "encoding a batch failed");
                AckStatus::Failed
            }
        }
    }

    fn spawn_healthcheck(self: &Arc<Self>) {
        let sender = self.clone();
        crate::sink::healthcheck::spawn(self.metrics.clone(), self.shutdown.clone(), move || {
            let sender = sender.clone();
            Box::pin(async move { sender.service.healthcheck().await })
        });
    }
}

/// Runs a network sink: batches from `cx.input`, encoded by `encoder`, sent by `sender`; checks
/// the backend first when `healthcheck`. See the module doc.
pub fn run<S, E>(
    cx: SinkContext,
    batch: BatchSettings,
    drive: Drive,
    healthcheck: bool,
    encoder: E,
    sender: Sender<S>,
) -> Task
where
    S: Service,
    E: Encoder<Request = S::Request>,
{
    let (sender, encoder) = (Arc::new(sender), Arc::new(encoder));
    if healthcheck {
        sender.spawn_healthcheck();
    }
    let process = move |events, building| {
        let (sender, encoder) = (sender.clone(), encoder.clone());
        async move { sender.process(&encoder, events, building).await }
    };
    match drive {
        Drive::Batches(n) => Box::pin(crate::sink::driver::drive_building(
            cx,
            batch,
            n,
            move |events, building| process(events, Some(building)),
        )),
        // A lane has one request at a time: nothing waits to be built.
        Drive::Lanes(n) => Box::pin(crate::sink::lanes::drive_in_lanes(
            cx,
            batch,
            n,
            move |events| process(events, None),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::units::DurationValue;
    use std::time::Duration;

    /// A request of `n` events whose answer is chosen by its `plan`.
    struct Planned {
        n: usize,
        plan: &'static str,
    }

    impl Request for Planned {
        fn events(&self) -> usize {
            self.n
        }
        fn bytes(&self) -> usize {
            self.n * 10
        }
        fn dead_letter(&self, range: Range<usize>) -> Vec<serde_json::Value> {
            range.map(|i| serde_json::json!({ "i": i })).collect()
        }
    }

    struct Refused(Vec<Refusal>);

    impl Accepted for Refused {
        fn refusals(&self) -> Vec<Refusal> {
            self.0.clone()
        }
    }

    /// Answers as each request's plan says: `ok`, `partial` (the first 2 events too old),
    /// `refuse` (for good) or `unavailable` (always transient).
    struct Fake;

    impl Service for Fake {
        type Request = Planned;
        type Response = Refused;
        type Error = String;
        const BACKEND: &'static str = "the fake";

        async fn call(&self, request: &Planned) -> Result<Refused, String> {
            match request.plan {
                "ok" => Ok(Refused(Vec::new())),
                "partial" => Ok(Refused(vec![Refusal {
                    reason: "too_old",
                    events: 0..2,
                    detail: String::new(),
                }])),
                other => Err(other.to_owned()),
            }
        }

        fn classify(&self, error: &String) -> Retry {
            match error.as_str() {
                "refuse" => Retry::Permanent { kind: "invalid" },
                _ => Retry::Transient {
                    kind: "unavailable",
                    after: None,
                },
            }
        }
    }

    fn sender(name: &str, dead_letter: Option<Arc<DeadLetter>>) -> Arc<Sender<Fake>> {
        let (input, shutdown) = (
            Arc::new(crate::flow::queue::ByteQueue::new(
                1 << 20,
                crate::flow::queue::WhenFull::Block,
                crate::telemetry::QueueMetrics::detached(),
            )),
            Shutdown::never(),
        );
        let cx = SinkContext {
            name: name.into(),
            data_dir: std::env::temp_dir(),
            input,
            shutdown,
            metrics: ComponentMetrics::new("test", name, "test"),
        };
        let settings = RequestSettings {
            max_attempts: Some(2),
            initial_backoff: DurationValue(Duration::from_millis(1)),
            ..Default::default()
        };
        Arc::new(Sender::new(Fake, &settings, &cx).with_dead_letter(dead_letter))
    }

    fn req(n: usize, plan: &'static str) -> Planned {
        Planned { n, plan }
    }

    #[tokio::test]
    async fn each_request_is_counted_once_as_sent_or_dropped_and_the_batch_gets_the_worst_status() {
        let dir = tempfile::tempdir().unwrap();
        let name = "sender_test_counts";
        let metrics = ComponentMetrics::new("test", name, "test");
        let dl = DeadLetter::open(
            &crate::sink::dead_letter::DeadLetterConfig {
                path: dir.path().join("dead.jsonl"),
                max_file_bytes: crate::config::units::ByteSizeValue(1 << 20),
            },
            metrics.clone(),
        )
        .unwrap();
        let s = sender(name, Some(dl));

        let all_ok = s
            .send_groups(vec![vec![req(3, "ok")], vec![req(4, "ok")]])
            .await;
        assert_eq!(all_ok, AckStatus::Delivered);
        assert_eq!(metrics.sent_events.get(), 7);
        assert_eq!(metrics.sent_bytes.get(), 70);

        let partial = s.send_groups(vec![vec![req(5, "partial")]]).await;
        assert_eq!(partial, AckStatus::Delivered, "accepted, with refusals");
        assert_eq!(metrics.sent_events.get(), 10, "5 less the 2 refused");
        assert_eq!(metrics.dropped_total("too_old"), 2);

        let refused = s
            .send_groups(vec![vec![req(6, "refuse")], vec![req(1, "ok")]])
            .await;
        assert_eq!(refused, AckStatus::Rejected);
        assert_eq!(metrics.dropped_total("refused"), 6);
        assert_eq!(metrics.sent_events.get(), 11);

        // A group stops at its first request not delivered: the one after is not sent.
        let failed = s
            .send_groups(vec![vec![req(2, "unavailable"), req(9, "ok")]])
            .await;
        assert_eq!(failed, AckStatus::Failed);
        assert_eq!(metrics.sent_events.get(), 11, "nothing of a failed group");
        assert_eq!(metrics.retries.get(), 1, "two attempts");

        let kept = std::fs::read_to_string(dir.path().join("dead.jsonl")).unwrap();
        let reasons: Vec<(String, i64)> = kept
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["reason"].as_str().unwrap().to_owned(),
                    v["record"]["i"].as_i64().unwrap(),
                )
            })
            .collect();
        let mut want = vec![("too_old".to_owned(), 0), ("too_old".to_owned(), 1)];
        want.extend((0..6).map(|i| ("refused".to_owned(), i)));
        assert_eq!(reasons, want);
    }
}
