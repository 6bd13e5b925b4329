//! One target: its labels and URL (from its job and what discovery or `static_configs` gave),
//! and its scrape loop — on a stable offset within the interval, each scrape fetched, ingested
//! into the target's [`TargetSeries`], and sent as one batch with Prometheus's own series
//! (`up`, `scrape_duration_seconds`, `scrape_samples_scraped`,
//! `scrape_samples_post_metric_relabeling`, `scrape_series_added`).

use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sextant_pipeline::flow::ack::Acks;
use sextant_pipeline::flow::batch::Batch;
use sextant_pipeline::flow::event::{
    KeyValue, Metric, MetricData, Number, NumberPoint, Origin, Resource, Scope, Text, Value,
};
use sextant_pipeline::flow::fanout::Fanout;
use sextant_pipeline::shutdown::Shutdown;
use sextant_pipeline::telemetry::{ComponentMetrics, LogLimiter};

use super::client::ScrapeClient;
use super::config::Job;
use super::relabel::{relabel, Labels};
use super::series::{Dropped, SeriesSettings, TargetSeries};

/// A body this large or larger is ingested on a blocking thread, not on the runtime's.
const BLOCKING_BODY: usize = 256 * 1024;

/// A target to scrape.
#[derive(Clone, Debug)]
pub struct Target {
    pub job: Arc<Job>,
    /// Its final labels (`job`, `instance`, and what relabelling kept; no `__` labels).
    pub labels: Labels,
    pub url: String,
    pub origin: Arc<Origin>,
}

impl Target {
    /// A target from the labels discovery gave (`__address__` and the rest), after the job's
    /// `relabel_configs`; `None` when relabelling drops it.
    pub fn resolve(job: &Arc<Job>, discovered: &[(Text, Text)]) -> Option<Target> {
        let c = &job.config;
        let mut labels: Labels = vec![
            (Text::from("job"), Text::from(job.name.as_str())),
            (Text::from("__scheme__"), Text::from(c.scheme.as_str())),
            (
                Text::from("__metrics_path__"),
                Text::from(c.metrics_path.as_str()),
            ),
            (
                Text::from("__scrape_interval__"),
                Text::from(humantime::format_duration(job.interval).to_string()),
            ),
            (
                Text::from("__scrape_timeout__"),
                Text::from(humantime::format_duration(job.timeout).to_string()),
            ),
        ];
        for (name, values) in &c.params {
            if let Some(first) = values.first() {
                labels.push((
                    Text::from(format!("__param_{name}")),
                    Text::from(first.as_str()),
                ));
            }
        }
        for (n, v) in discovered {
            match labels.iter_mut().find(|(ln, _)| ln == n) {
                Some(l) => l.1 = v.clone(),
                None => labels.push((n.clone(), v.clone())),
            }
        }
        if !relabel(&job.relabel, &mut labels) {
            return None;
        }
        let get = |name: &str| {
            labels
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.to_string())
        };
        let address = get("__address__")?;
        let scheme = get("__scheme__").unwrap_or_else(|| "http".into());
        let path = get("__metrics_path__").unwrap_or_else(|| "/metrics".into());
        let mut query = String::new();
        for (name, values) in &c.params {
            let from_label = get(&format!("__param_{name}"));
            for (i, v) in values.iter().enumerate() {
                let v = if i == 0 {
                    from_label.clone().unwrap_or_else(|| v.clone())
                } else {
                    v.clone()
                };
                query.push(if query.is_empty() { '?' } else { '&' });
                query.push_str(&encode(name));
                query.push('=');
                query.push_str(&encode(&v));
            }
        }
        if !labels.iter().any(|(n, _)| n == "instance") {
            labels.push((Text::from("instance"), Text::from(address.as_str())));
        }
        labels.retain(|(n, _)| !n.starts_with("__"));
        labels.sort_unstable();
        let url = format!("{scheme}://{address}{path}{query}");
        let instance = get_from(&labels, "instance");
        let (host, port) = match address.rsplit_once(':') {
            Some((h, p)) => (
                h.trim_matches(['[', ']']).to_string(),
                p.parse::<i64>().ok(),
            ),
            None => (address.clone(), None),
        };
        let mut resource = vec![
            KeyValue::new("service.name", get_from(&labels, "job")),
            KeyValue::new("service.instance.id", instance),
            KeyValue::new("server.address", host),
            KeyValue::new("url.scheme", scheme),
        ];
        if let Some(port) = port {
            resource.push(KeyValue::new("server.port", port));
        }
        let origin = Arc::new(Origin {
            resource: Resource {
                attributes: resource,
                ..Default::default()
            },
            scope: Scope {
                name: "sextant/prometheus_scrape".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                ..Default::default()
            },
        });
        Some(Target {
            job: job.clone(),
            labels,
            url,
            origin,
        })
    }

    /// Where in each interval this target is scraped: stable for a target, spread over targets.
    pub fn offset(&self) -> Duration {
        let hash = foldhash::fast::FixedState::with_seed(7).hash_one((&self.job.name, &self.url));
        let interval = self.job.interval.as_millis().max(1) as u64;
        Duration::from_millis(hash % interval)
    }
}

fn get_from(labels: &Labels, name: &str) -> String {
    labels
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What a scrape loop reports to.
#[derive(Clone)]
pub struct LoopContext {
    pub component: String,
    pub out: Fanout,
    pub metrics: ComponentMetrics,
    pub shutdown: Shutdown,
    pub failures: Arc<LogLimiter>,
}

/// Scrapes `target` until shutdown (or until `stop` says the target is gone, when its series
/// are marked stale).
pub async fn run(target: Target, client: ScrapeClient, cx: LoopContext, stop: Shutdown) {
    let job = target.job.clone();
    let settings = SeriesSettings {
        honor_labels: job.config.honor_labels,
        honor_timestamps: job.config.honor_timestamps,
        sample_limit: job.config.sample_limit,
        label_limit: job.config.label_limit,
        label_name_length_limit: job.config.label_name_length_limit,
        label_value_length_limit: job.config.label_value_length_limit,
        metric_relabel: job.metric_relabel.clone(),
    };
    // A target's cache, new; also after a bug made reading a body panic.
    let fresh = || Box::new(TargetSeries::new(settings.clone(), target.labels.clone()));
    let mut series = fresh();
    // The first scrape at the target's offset within the interval, counted from the epoch, so
    // restarts keep the spacing.
    let interval_ms = job.interval.as_millis().max(1) as i64;
    let offset_ms = target.offset().as_millis() as i64;
    let now = now_ms();
    let mut first = now - now.rem_euclid(interval_ms) + offset_ms;
    if first < now {
        first += interval_ms;
    }
    let start = tokio::time::Instant::now() + Duration::from_millis((first - now) as u64);
    let mut ticks = tokio::time::interval_at(start, job.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let limit = job.config.body_size_limit.as_usize();
    loop {
        tokio::select! {
            () = cx.shutdown.stopped() => return,
            () = stop.stopped() => break,
            _ = ticks.tick() => {}
        }
        let began = Instant::now();
        let scraped_at = now_ms();
        let fetched = tokio::select! {
            () = cx.shutdown.stopped() => return,
            r = client.fetch(&target.url, job.timeout, limit) => r,
        };
        let result = match fetched {
            Ok(f) => {
                cx.metrics.received_bytes.inc_by(f.body.len() as u64);
                if f.body.len() >= BLOCKING_BODY {
                    let mut moved = series;
                    match tokio::task::spawn_blocking(move || {
                        let r = moved.ingest(&f.body, f.format, scraped_at);
                        (moved, r)
                    })
                    .await
                    {
                        Ok((back, r)) => {
                            series = back;
                            r.map_err(|e| (e.reason(), e.to_string()))
                        }
                        // Only a panic in ingest gets here: the scrape fails, and the target
                        // goes on with an empty cache (its series start anew).
                        Err(e) => {
                            tracing::error!(component = %cx.component, url = %target.url, error = %e, "reading a scrape panicked; the target's series start anew");
                            series = fresh();
                            Err(("panic", e.to_string()))
                        }
                    }
                } else {
                    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        series.ingest(&f.body, f.format, scraped_at)
                    }));
                    match read {
                        Ok(r) => r.map_err(|e| (e.reason(), e.to_string())),
                        // As above: a bug must not stop the target.
                        Err(_) => {
                            tracing::error!(component = %cx.component, url = %target.url, "reading a scrape panicked; the target's series start anew");
                            series = fresh();
                            Err(("panic", "reading the body panicked".to_string()))
                        }
                    }
                }
            }
            Err(e) => Err((e.reason(), e.to_string())),
        };
        let duration = began.elapsed().as_secs_f64();
        let failed = result.is_err();
        let mut dropped = Dropped::default();
        let mut metrics = series.emit(&target.origin, failed, scraped_at, &mut dropped);
        let stats = match result {
            Ok(stats) => {
                if stats.duplicates > 0 {
                    cx.metrics
                        .discarded("duplicate_series", stats.duplicates as u64);
                }
                stats
            }
            Err((reason, message)) => {
                cx.metrics.error(reason);
                if let Some(suppressed) = cx.failures.allow() {
                    tracing::warn!(component = %cx.component, job = %job.name, url = %target.url, reason, error = %message, suppressed, "scrape failed");
                }
                Default::default()
            }
        };
        for (reason, n) in [
            ("histogram_without_inf", dropped.histogram_without_inf),
            ("histogram_not_cumulative", dropped.histogram_not_cumulative),
            ("gauge_histogram", dropped.gauge_histogram),
        ] {
            if n > 0 {
                cx.metrics.discarded(reason, n as u64);
            }
        }
        let report = [
            ("up", if failed { 0.0 } else { 1.0 }),
            ("scrape_duration_seconds", duration),
            ("scrape_samples_scraped", stats.scraped as f64),
            (
                "scrape_samples_post_metric_relabeling",
                stats.post_relabel as f64,
            ),
            ("scrape_series_added", stats.added as f64),
        ];
        let attributes: Vec<KeyValue> = target
            .labels
            .iter()
            .filter(|(n, _)| n != "job" && n != "instance")
            .map(|(n, v)| KeyValue {
                key: n.clone(),
                value: Value::Str(v.clone()),
            })
            .collect();
        let time_unix_nano = u64::try_from(scraped_at).unwrap_or(0) * 1_000_000;
        for (name, value) in report {
            metrics.push(Metric {
                origin: target.origin.clone(),
                name: name.into(),
                description: String::new(),
                unit: String::new(),
                metadata: Vec::new(),
                data: Some(MetricData::Gauge(vec![NumberPoint {
                    attributes: attributes.clone(),
                    time_unix_nano,
                    value: Some(Number::Double(value)),
                    ..Default::default()
                }])),
            });
        }
        crate::sources::send_metrics(&cx.out, &cx.metrics, metrics).await;
    }
    // The target went away: its series are stale.
    let mut dropped = Dropped::default();
    let stale = series.emit(&target.origin, true, now_ms(), &mut dropped);
    if !stale.is_empty() {
        cx.out.send(Batch::metrics(stale, Acks::none())).await;
    }
}
