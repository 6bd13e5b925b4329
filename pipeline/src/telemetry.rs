//! Self-telemetry: every metric Sextant exports about itself is named here and nowhere else.
//!
//! Components get a [`ComponentMetrics`] (counters with `component`, `kind` and `role` labels, bound once
//! at build time so the hot path is an atomic add), queues a [`QueueMetrics`]. The registry is
//! process-wide and served by the admin listener's `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Metric names, in one place.
pub mod names {
    pub const RECEIVED_EVENTS: &str = "sextant_component_received_events_total";
    pub const RECEIVED_BYTES: &str = "sextant_component_received_bytes_total";
    pub const SENT_EVENTS: &str = "sextant_component_sent_events_total";
    pub const SENT_BYTES: &str = "sextant_component_sent_bytes_total";
    pub const DROPPED_EVENTS: &str = "sextant_component_dropped_events_total";
    pub const FAILED_EVENTS: &str = "sextant_component_failed_events_total";
    pub const ERRORS: &str = "sextant_component_errors_total";
    pub const RETRIES: &str = "sextant_component_retries_total";
    pub const RESTARTS: &str = "sextant_component_restarts_total";
    pub const DISCARDED_EVENTS: &str = "sextant_events_discarded_total";
    pub const REQUEST_DURATION: &str = "sextant_component_request_duration_seconds";
    pub const BATCH_EVENTS: &str = "sextant_batch_events";
    pub const BATCH_BYTES: &str = "sextant_batch_bytes";
    pub const QUEUE_EVENTS: &str = "sextant_queue_events";
    pub const QUEUE_BYTES: &str = "sextant_queue_bytes";
    pub const QUEUE_BLOCKED_SECONDS: &str = "sextant_queue_blocked_seconds_total";
    pub const CHECKPOINT_OFFSET_BYTES: &str = "sextant_checkpoint_committed_bytes_total";
    pub const OPEN_FILES: &str = "sextant_files_open";
    pub const UNREAD_BYTES: &str = "sextant_source_unread_bytes";
    pub const BUFFER_BYTES: &str = "sextant_buffer_bytes";
    pub const BUFFER_MAX_BYTES: &str = "sextant_buffer_max_bytes";
    pub const SPILLED_EVENTS: &str = "sextant_component_spilled_events_total";
    pub const CONCURRENCY_LIMIT: &str = "sextant_component_concurrency_limit";
    pub const METADATA_MISSING_EVENTS: &str = "sextant_metadata_missing_events_total";
    pub const SKIPPED_BYTES: &str = "sextant_source_skipped_bytes_total";
    pub const COMPONENT_UP: &str = "sextant_component_up";
    pub const COMPONENT_HEALTHY: &str = "sextant_component_healthcheck_ok";
    pub const RULE_EVALUATION_FAILURES: &str = "sextant_rule_evaluation_failures_total";
}

struct Families {
    registry: Registry,
    received_events: IntCounterVec,
    received_bytes: IntCounterVec,
    sent_events: IntCounterVec,
    sent_bytes: IntCounterVec,
    dropped: IntCounterVec,
    failed: IntCounterVec,
    errors: IntCounterVec,
    retries: IntCounterVec,
    restarts: IntCounterVec,
    discarded: IntCounterVec,
    request_duration: HistogramVec,
    batch_events: HistogramVec,
    batch_bytes: HistogramVec,
    queue_events: IntGaugeVec,
    queue_bytes: IntGaugeVec,
    queue_blocked: prometheus::CounterVec,
    checkpoint_bytes: IntCounterVec,
    open_files: IntGaugeVec,
    unread_bytes: IntGaugeVec,
    up: IntGaugeVec,
    healthy: IntGaugeVec,
    metadata_missing: IntCounterVec,
    skipped_bytes: IntCounterVec,
    buffer_bytes: IntGaugeVec,
    buffer_max_bytes: IntGaugeVec,
    spilled_events: IntCounterVec,
    concurrency_limit: IntGaugeVec,
    rule_failures: IntCounterVec,
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c =
        IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|_| unreachable_metric());
    let _ = r.register(Box::new(c.clone()));
    c
}

fn gauge(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g =
        IntGaugeVec::new(Opts::new(name, help), labels).unwrap_or_else(|_| unreachable_metric());
    let _ = r.register(Box::new(g.clone()));
    g
}

fn histogram(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: Vec<f64>,
) -> HistogramVec {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
        .unwrap_or_else(|_| unreachable_metric());
    let _ = r.register(Box::new(h.clone()));
    h
}

/// Metric definitions are constants; building them cannot fail unless this file has a typo,
/// which the unit tests below catch. Abort loudly in that case rather than run blind.
#[allow(clippy::panic)]
fn unreachable_metric() -> ! {
    panic!("invalid metric definition in telemetry.rs")
}

/// The labels of every component metric: `role` keeps the agent's and the collector's
/// same-named components apart in `sextant run`.
const CL: &[&str] = &["component", "kind", "role"];
/// [`CL`] and a reason or error type.
const CL_REASON: &[&str] = &["component", "kind", "role", "reason"];
/// The labels of a sink's input queue.
const QL: &[&str] = &["component", "role"];

static FAMILIES: LazyLock<Families> = LazyLock::new(|| {
    let r = Registry::new();
    // process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, … as every
    // Prometheus client exports them: the dashboards' CPU and memory panels.
    #[cfg(target_os = "linux")]
    let _ = r.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    ));
    let exp = |start: f64, factor: f64, n: usize| {
        prometheus::exponential_buckets(start, factor, n).unwrap_or_default()
    };
    Families {
        received_events: counter(
            &r,
            names::RECEIVED_EVENTS,
            "Events a component took in.",
            CL,
        ),
        received_bytes: counter(
            &r,
            names::RECEIVED_BYTES,
            "Bytes a component took in (wire or file bytes).",
            CL,
        ),
        sent_events: counter(
            &r,
            names::SENT_EVENTS,
            "Events a component delivered downstream.",
            CL,
        ),
        sent_bytes: counter(&r, names::SENT_BYTES, "Bytes a sink sent on the wire.", CL),
        dropped: counter(
            &r,
            names::DROPPED_EVENTS,
            "Events dropped on purpose (when_full: drop_newest, permanent refusals).",
            CL_REASON,
        ),
        failed: counter(
            &r,
            names::FAILED_EVENTS,
            "Events a sink could not deliver and handed back for resending.",
            CL,
        ),
        errors: counter(
            &r,
            names::ERRORS,
            "Errors by type.",
            &["component", "kind", "role", "error_type"],
        ),
        retries: counter(&r, names::RETRIES, "Requests retried.", CL),
        rule_failures: counter(
            &r,
            names::RULE_EVALUATION_FAILURES,
            "Evaluations of a rule that failed (`rule_group` is `file;group`, as Prometheus names it).",
            &["component", "role", "rule_group", "rule"],
        ),
        restarts: counter(
            &r,
            names::RESTARTS,
            "Times the component was restarted after a panic or fatal error.",
            CL,
        ),
        discarded: counter(
            &r,
            names::DISCARDED_EVENTS,
            "Malformed input skipped, by reason.",
            CL_REASON,
        ),
        request_duration: histogram(
            &r,
            names::REQUEST_DURATION,
            "Latency of a sink's requests.",
            CL,
            exp(0.001, 2.0, 16),
        ),
        batch_events: histogram(
            &r,
            names::BATCH_EVENTS,
            "Events per batch a sink sent.",
            CL,
            exp(1.0, 4.0, 10),
        ),
        batch_bytes: histogram(
            &r,
            names::BATCH_BYTES,
            "Estimated bytes per batch a sink sent.",
            CL,
            exp(256.0, 4.0, 10),
        ),
        queue_events: gauge(
            &r,
            names::QUEUE_EVENTS,
            "Events waiting in a component's input queue.",
            QL,
        ),
        queue_bytes: gauge(
            &r,
            names::QUEUE_BYTES,
            "Bytes waiting in a component's input queue.",
            QL,
        ),
        queue_blocked: {
            let c = prometheus::CounterVec::new(
                Opts::new(
                    names::QUEUE_BLOCKED_SECONDS,
                    "Time producers spent waiting for room in a full queue.",
                ),
                QL,
            )
            .unwrap_or_else(|_| unreachable_metric());
            let _ = r.register(Box::new(c.clone()));
            c
        },
        checkpoint_bytes: counter(
            &r,
            names::CHECKPOINT_OFFSET_BYTES,
            "File bytes whose delivery was acknowledged and checkpointed.",
            CL,
        ),
        open_files: gauge(&r, names::OPEN_FILES, "Files a source holds open.", CL),
        unread_bytes: gauge(
            &r,
            names::UNREAD_BYTES,
            "Bytes in the files a source follows beyond what it has read: how far it is behind.",
            CL,
        ),
        up: gauge(
            &r,
            names::COMPONENT_UP,
            "1 when a component started and is healthy.",
            CL,
        ),
        healthy: gauge(
            &r,
            names::COMPONENT_HEALTHY,
            "1 when a sink's backend check passed (or it delivered since), 0 while it fails.",
            CL,
        ),
        metadata_missing: counter(
            &r,
            names::METADATA_MISSING_EVENTS,
            "Events sent without metadata that should have been there (its API down or slow).",
            CL,
        ),
        concurrency_limit: gauge(
            &r,
            names::CONCURRENCY_LIMIT,
            "A sink's adaptive limit of requests in flight.",
            CL,
        ),
        buffer_bytes: gauge(
            &r,
            names::BUFFER_BYTES,
            "Bytes a sink's disk buffer holds.",
            CL,
        ),
        buffer_max_bytes: gauge(
            &r,
            names::BUFFER_MAX_BYTES,
            "The most bytes a sink's disk buffer may hold (queue.disk.max_bytes).",
            CL,
        ),
        spilled_events: counter(
            &r,
            names::SPILLED_EVENTS,
            "Events a sink without a disk buffer wrote to its spill buffer because memory was above its hard limit.",
            CL,
        ),
        skipped_bytes: counter(
            &r,
            names::SKIPPED_BYTES,
            "Input bytes skipped on purpose without being read, by reason.",
            CL_REASON,
        ),
        registry: r,
    }
});

/// Registers a process-wide metric defined elsewhere (the memory gauges) in the registry that
/// `/metrics` renders.
pub fn register(metric: Box<dyn prometheus::core::Collector>) {
    let _ = FAMILIES.registry.register(metric);
}

/// The text exposition of every self-metric.
pub fn render() -> String {
    let mut buf = Vec::new();
    let families = FAMILIES.registry.gather();
    if TextEncoder::new().encode(&families, &mut buf).is_err() {
        return String::new();
    }
    String::from_utf8(buf).unwrap_or_default()
}

/// The counters of one component, bound to its labels.
#[derive(Clone)]
pub struct ComponentMetrics {
    pub name: String,
    pub kind: &'static str,
    /// `agent` or `collector`.
    pub role: Arc<str>,
    pub received_events: IntCounter,
    pub received_bytes: IntCounter,
    pub sent_events: IntCounter,
    pub sent_bytes: IntCounter,
    pub failed_events: IntCounter,
    pub retries: IntCounter,
    /// Restarts after a panic or fatal error (see [`crate::runtime::topology`]'s supervision).
    pub restarts: IntCounter,
    pub request_duration: Histogram,
    pub batch_events: Histogram,
    pub batch_bytes: Histogram,
    pub checkpointed_bytes: IntCounter,
    pub open_files: IntGauge,
    /// Bytes of the followed files not read yet (a file source's lag).
    pub unread_bytes: IntGauge,
    /// Events sent without metadata that should have been there (an API down or slow).
    pub metadata_missing_events: IntCounter,
    /// Bytes in this sink's disk buffer.
    pub buffer_bytes: IntGauge,
    /// The bound of this sink's disk buffer (`queue.disk.max_bytes`).
    pub buffer_max_bytes: IntGauge,
    /// Events spilled to disk above the memory hard limit.
    pub spilled_events: IntCounter,
    /// The adaptive concurrency limit of this sink's requests.
    pub concurrency_limit: IntGauge,
    up: IntGauge,
    /// Its backend's health check failed and nothing was delivered since (see
    /// [`crate::sink::healthcheck`]).
    unhealthy: Arc<std::sync::atomic::AtomicBool>,
}

impl ComponentMetrics {
    pub fn new(role: &str, name: &str, kind: &'static str) -> Self {
        let f = &*FAMILIES;
        let l = [name, kind, role];
        Self {
            name: name.to_owned(),
            kind,
            role: role.into(),
            received_events: f.received_events.with_label_values(&l),
            received_bytes: f.received_bytes.with_label_values(&l),
            sent_events: f.sent_events.with_label_values(&l),
            sent_bytes: f.sent_bytes.with_label_values(&l),
            failed_events: f.failed.with_label_values(&l),
            retries: f.retries.with_label_values(&l),
            restarts: f.restarts.with_label_values(&l),
            request_duration: f.request_duration.with_label_values(&l),
            batch_events: f.batch_events.with_label_values(&l),
            batch_bytes: f.batch_bytes.with_label_values(&l),
            checkpointed_bytes: f.checkpoint_bytes.with_label_values(&l),
            open_files: f.open_files.with_label_values(&l),
            unread_bytes: f.unread_bytes.with_label_values(&l),
            metadata_missing_events: f.metadata_missing.with_label_values(&l),
            buffer_bytes: f.buffer_bytes.with_label_values(&l),
            buffer_max_bytes: f.buffer_max_bytes.with_label_values(&l),
            spilled_events: f.spilled_events.with_label_values(&l),
            concurrency_limit: f.concurrency_limit.with_label_values(&l),
            up: f.up.with_label_values(&l),
            unhealthy: Arc::default(),
        }
    }

    /// Events dropped on purpose, by reason.
    pub fn dropped(&self, reason: &str, n: u64) {
        FAMILIES
            .dropped
            .with_label_values(&[&self.name, self.kind, &self.role, reason])
            .inc_by(n);
    }

    /// Events dropped so far for `reason`.
    pub fn dropped_total(&self, reason: &str) -> u64 {
        FAMILIES
            .dropped
            .with_label_values(&[&self.name, self.kind, &self.role, reason])
            .get()
    }

    /// Malformed input skipped, by reason (`sextant_events_discarded_total`).
    pub fn discarded(&self, reason: &str, n: u64) {
        FAMILIES
            .discarded
            .with_label_values(&[&self.name, self.kind, &self.role, reason])
            .inc_by(n);
    }

    /// Input skipped on purpose without being read, by reason (an excluded pod's log).
    pub fn skipped_bytes(&self, reason: &str, n: u64) {
        FAMILIES
            .skipped_bytes
            .with_label_values(&[&self.name, self.kind, &self.role, reason])
            .inc_by(n);
    }

    /// An error of a given type (`timeout`, `throttled`, `http_503`, ...).
    pub fn error(&self, error_type: &str) {
        FAMILIES
            .errors
            .with_label_values(&[&self.name, self.kind, &self.role, error_type])
            .inc();
    }

    /// A rule's evaluation failed (also counted as a `rule_evaluation` error).
    pub fn rule_failed(&self, file: &str, group: &str, rule: &str) {
        self.error("rule_evaluation");
        FAMILIES
            .rule_failures
            .with_label_values(&[
                self.name.as_str(),
                &self.role,
                &format!("{file};{group}"),
                rule,
            ])
            .inc();
    }

    pub fn set_up(&self, up: bool) {
        self.up.set(i64::from(up));
    }

    pub fn is_up(&self) -> bool {
        self.up.get() == 1
    }

    /// Records a backend health check's outcome.
    pub fn set_healthy(&self, healthy: bool) {
        self.unhealthy
            .store(!healthy, std::sync::atomic::Ordering::Relaxed);
        FAMILIES
            .healthy
            .with_label_values(&[self.name.as_str(), self.kind, &self.role])
            .set(i64::from(healthy));
    }

    /// A delivery proves the backend healthy (once a check had said otherwise).
    pub fn delivered(&self) {
        if self.unhealthy.load(std::sync::atomic::Ordering::Relaxed) {
            self.set_healthy(true);
        }
    }

    /// Whether its backend's health check failed (and nothing was delivered since).
    pub fn is_unhealthy(&self) -> bool {
        self.unhealthy.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records one batch sent.
    pub fn batch_sent(&self, events: usize, bytes: usize) {
        self.batch_events.observe(events as f64);
        self.batch_bytes.observe(bytes as f64);
    }
}

/// The gauges of one queue.
#[derive(Clone)]
pub struct QueueMetrics {
    events: Option<IntGauge>,
    bytes: Option<IntGauge>,
    blocked: Option<prometheus::Counter>,
    dropped: Option<IntCounter>,
}

impl QueueMetrics {
    pub fn new(role: &str, component: &str) -> Self {
        let f = &*FAMILIES;
        let l = [component, role];
        Self {
            events: Some(f.queue_events.with_label_values(&l)),
            bytes: Some(f.queue_bytes.with_label_values(&l)),
            blocked: Some(f.queue_blocked.with_label_values(&l)),
            dropped: Some(
                f.dropped
                    .with_label_values(&[component, "queue", role, "queue_full"]),
            ),
        }
    }

    /// Metrics that go nowhere, for tests and benches.
    pub fn detached() -> Self {
        Self {
            events: None,
            bytes: None,
            blocked: None,
            dropped: None,
        }
    }

    pub(crate) fn set_depth(&self, events: usize, bytes: usize) {
        if let (Some(e), Some(b)) = (&self.events, &self.bytes) {
            e.set(events as i64);
            b.set(bytes as i64);
        }
    }

    pub(crate) fn blocked(&self, d: Duration) {
        if let Some(c) = &self.blocked {
            c.inc_by(d.as_secs_f64());
        }
    }

    pub(crate) fn dropped(&self, n: usize) {
        if let Some(c) = &self.dropped {
            c.inc_by(n as u64);
        }
    }
}

/// Lets one log line through per interval and counts the ones it held back, so malformed input
/// is logged without flooding: `if let Some(suppressed) = limiter.allow() { warn!(suppressed, ..) }`.
#[derive(Debug)]
pub struct LogLimiter {
    interval_ms: u64,
    last_ms: AtomicU64,
    suppressed: AtomicU64,
}

static PROCESS_START: LazyLock<Instant> = LazyLock::new(Instant::now);

impl LogLimiter {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval_ms: interval.as_millis() as u64,
            last_ms: AtomicU64::new(u64::MAX),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when a line may be logged now; `n` lines were held back since the last one.
    pub fn allow(&self) -> Option<u64> {
        let now = PROCESS_START.elapsed().as_millis() as u64;
        let last = self.last_ms.load(Ordering::Relaxed);
        if last != u64::MAX && now.saturating_sub(last) < self.interval_ms {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if self
            .last_ms
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}

impl Default for LogLimiter {
    fn default() -> Self {
        Self::new(Duration::from_secs(10))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_families_register_and_render() {
        let m = ComponentMetrics::new("test", "telemetry_test", "test");
        m.received_events.inc_by(3);
        m.discarded("invalid_utf8", 2);
        let text = render();
        assert!(text.contains(
            "sextant_component_received_events_total{component=\"telemetry_test\",kind=\"test\",role=\"test\"} 3"
        ));
        assert!(text.contains(
            "sextant_events_discarded_total{component=\"telemetry_test\",kind=\"test\",reason=\"invalid_utf8\",role=\"test\"} 2"
        ));
    }

    #[test]
    fn the_process_metrics_are_exported_with_the_resident_memory_of_this_process() {
        let text = render();
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
                .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
        };
        let resident = value("process_resident_memory_bytes");
        let own = crate::memory::resident_bytes().expect("VmRSS") as f64;
        assert!(
            (resident - own).abs() < own * 0.5,
            "resident {resident} vs VmRSS {own}"
        );
        assert!(value("process_cpu_seconds_total") >= 0.0);
        assert!(value("process_open_fds") >= 3.0);
    }

    #[test]
    fn limiter_lets_one_through_per_interval_and_counts_the_rest() {
        let l = LogLimiter::new(Duration::from_secs(3600));
        assert_eq!(l.allow(), Some(0));
        assert_eq!(l.allow(), None);
        assert_eq!(l.allow(), None);
        assert_eq!(l.suppressed.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn same_named_components_of_the_two_roles_count_apart() {
        let agent = ComponentMetrics::new("agent", "telemetry_test_roles", "otlp");
        let collector = ComponentMetrics::new("collector", "telemetry_test_roles", "otlp");
        agent.received_events.inc_by(5);
        collector.received_events.inc_by(7);
        collector.dropped("refused", 2);
        let text = render();
        for line in [
            r#"sextant_component_received_events_total{component="telemetry_test_roles",kind="otlp",role="agent"} 5"#,
            r#"sextant_component_received_events_total{component="telemetry_test_roles",kind="otlp",role="collector"} 7"#,
            r#"sextant_component_dropped_events_total{component="telemetry_test_roles",kind="otlp",reason="refused",role="collector"} 2"#,
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }
}
