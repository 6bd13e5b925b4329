//! Source `prometheus_rules` (collector): evaluates Prometheus rule files over the metrics
//! that pass through the collector, and sends the results on like any source's metrics.
//!
//! - Input: a copy of the metric batches of the sources named in `inputs` (a tap: outside
//!   their delivery, dropped and counted as `tap_full` when this source falls behind), mapped to
//!   Prometheus series by the shared mapping, into the window store — only the series some
//!   rule's selector can match, for as long as the rules look back.
//! - Evaluation: each group every `interval` (its own or `evaluation_interval`), at multiples
//!   of it; recording rules' series and alerting rules' `ALERTS`/`ALERTS_FOR_STATE` go back
//!   into the store and out to the sinks that name this source, stale markers when a series
//!   goes. A rule that fails is counted (`rule_evaluation` errors, and per rule in
//!   `sextant_rule_evaluation_failures_total{rule_group="file;group", rule}`), logged at a rate limit with
//!   its group and error, and skipped; the others run on time.
//! - Rule files load at start-up (a bad one stops the start with every problem named) and
//!   again on SIGHUP and when a file changes (checked every 5 seconds); a set that does not
//!   load is refused, logged, counted (`rule_reload` errors), and the running rules stay.
//!   Rules that survive a reload keep their alerts.

pub mod config;
mod engine;
mod output;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sextant_pipeline::component::{BuildError, SourceConfig, SourceContext, Taps, Task};
use sextant_pipeline::flow::event::{Events, Signals};
use sextant_pipeline::telemetry::LogLimiter;
use sextant_rules::evaluator::Settings;
use sextant_rules::promql::EvalOptions;
use sextant_rules::rule_files::{load_globs, RuleGroup};

pub use config::PrometheusRulesConfig;
use engine::Engine;

impl SourceConfig for PrometheusRulesConfig {
    fn kind(&self) -> &'static str {
        "prometheus_rules"
    }

    fn signals(&self) -> Signals {
        Signals::METRICS
    }

    fn validate(&self, name: &str) -> Result<(), BuildError> {
        config::validate(self, name)
    }

    fn taps(&self) -> Option<Taps<'_>> {
        Some(Taps {
            sources: &self.inputs,
            signals: Signals::METRICS,
            max_bytes: usize::try_from(self.input_max_bytes.0).unwrap_or(usize::MAX),
        })
    }

    fn build(&self, cx: SourceContext) -> Result<Task, BuildError> {
        build(self, cx)
    }
}

/// Loads the rule files, every problem in one error.
fn load(config: &PrometheusRulesConfig) -> Result<Vec<RuleGroup>, String> {
    load_globs(&config.rule_files, Path::new(".")).map_err(|errors| errors.join("\n"))
}

/// What the rule files are now: paths, modification times and sizes.
fn fingerprint(patterns: &[String]) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    let mut files: Vec<_> = patterns
        .iter()
        .filter_map(|p| glob::glob(p).ok())
        .flat_map(|paths| paths.filter_map(Result::ok))
        .map(|path| {
            let meta = std::fs::metadata(&path).ok();
            let modified = meta.as_ref().and_then(|m| m.modified().ok());
            (path, modified, meta.map_or(0, |m| m.len()))
        })
        .collect();
    files.sort();
    files
}

/// The next SIGHUP (never, where it cannot be watched).
async fn hangup(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            if signal.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn build(config: &PrometheusRulesConfig, cx: SourceContext) -> Result<Task, BuildError> {
    let groups = load(config).map_err(|e| BuildError::at(&cx.name, "rule_files", e))?;
    let Some(tap) = cx.taps.clone() else {
        return Err(BuildError::invalid(
            &cx.name,
            "no input queue: inputs name no source",
        ));
    };
    let settings = Settings {
        external_labels: config.external_labels.clone(),
        external_url: config.external_url.clone(),
        options: EvalOptions {
            lookback_delta_ms: i64::try_from(config.lookback_delta.0.as_millis())
                .unwrap_or(i64::MAX),
            default_subquery_step_ms: i64::try_from(config.evaluation_interval.0.as_millis())
                .unwrap_or(60_000),
            max_samples: config.query_max_samples,
        },
    };
    let interval_ms = i64::try_from(config.evaluation_interval.0.as_millis()).unwrap_or(60_000);
    let max_bytes = usize::try_from(config.max_bytes.0).unwrap_or(usize::MAX);
    let config = config.clone();
    Ok(Box::pin(async move {
        let mut engine = Some(Engine::new(groups, settings, interval_ms, max_bytes));
        let limiter = LogLimiter::default();
        let mut files = fingerprint(&config.rule_files);
        let mut ticks = tokio::time::interval(Duration::from_secs(1));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut file_checks = tokio::time::interval(Duration::from_secs(5));
        file_checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut hangups =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        cx.metrics.set_up(true);
        loop {
            let reload = tokio::select! {
                () = cx.shutdown.stopped() => break,
                batch = tap.pop() => {
                    let Some(batch) = batch else { break };
                    let Events::Metrics(metrics) = batch.events else { continue };
                    let Some(mut e) = engine.take() else { break };
                    let Ok((back, ingested)) = tokio::task::spawn_blocking(move || {
                        let ingested = e.ingest(&metrics);
                        (e, ingested)
                    }).await else {
                        tracing::error!(component = %cx.name, "rule engine panicked while ingesting; stopping it");
                        break;
                    };
                    engine = Some(back);
                    cx.metrics.dropped("out_of_order", ingested.out_of_order);
                    cx.metrics.dropped("window_full", ingested.over_limit);
                    cx.metrics.dropped("not_representable", ingested.unmapped);
                    false
                }
                _ = ticks.tick() => {
                    let Some(mut e) = engine.take() else { break };
                    let now = now_ms();
                    let Ok((back, evaluated)) = tokio::task::spawn_blocking(move || {
                        let evaluated = e.tick(now);
                        (e, evaluated)
                    }).await else {
                        tracing::error!(component = %cx.name, "rule engine panicked while evaluating; stopping it");
                        break;
                    };
                    engine = Some(back);
                    for failure in evaluated.failures {
                        cx.metrics.rule_failed(&failure.file, &failure.group, &failure.rule);
                        if let Some(suppressed) = limiter.allow() {
                            tracing::warn!(component = %cx.name, file = failure.file, group = failure.group, rule = failure.rule, error = failure.error, suppressed, "rule evaluation failed");
                        }
                    }
                    for (t, samples) in evaluated.results {
                        if !samples.is_empty() {
                            sextant_pipeline::sources::send_metrics(&cx.out, &cx.metrics, output::to_metrics(samples, t)).await;
                        }
                    }
                    false
                }
                _ = file_checks.tick() => {
                    let now = fingerprint(&config.rule_files);
                    let changed = now != files;
                    files = now;
                    changed
                }
                _ = hangup(&mut hangups) => true,
            };
            if reload {
                match load(&config) {
                    Ok(groups) => {
                        if let Some(e) = engine.as_mut() {
                            e.reload(groups);
                        }
                        tracing::info!(component = %cx.name, "rule files reloaded");
                    }
                    Err(errors) => {
                        cx.metrics.error("rule_reload");
                        tracing::error!(component = %cx.name, %errors, "rule files refused; the running rules stay");
                    }
                }
            }
        }
        if let Some(e) = engine {
            tracing::debug!(component = %cx.name, series = e.store().series_count(), "rule engine stopped");
        }
        cx.metrics.set_up(false);
    }))
}
