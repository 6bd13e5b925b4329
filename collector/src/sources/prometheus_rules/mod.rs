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
//! - With `alerting:`, each group's alerts go to the notifier after its evaluation (see
//!   [`sextant_rules::notify`]); the notifications due leave as log records (one batch each,
//!   for an `aws_sns` sink), and the answer is awaited: delivered (or durable in the sink's disk
//!   buffer) or refused for good (dead-lettered by the sink; counted `notification_refused`)
//!   enters the notification log; not delivered (counted `notification_not_delivered`) is tried
//!   again at the group's next flush. The silences file is read at start (a bad one stops the start) and when it
//!   changes (a bad one is refused, counted `silences_reload`, and the old silences stay).
//! - The alerts and the notification log are saved to `<data_dir>/alerts.json` after each
//!   tick that ran something and restored at start ([`state`]).
//! - With `forward_only: true` nothing is evaluated: the points the rules can read are passed
//!   on to the sinks that name the source (the rulers' `otlp` sinks; see [`forward`]).
//! - With `lease:` (a ruler pair), only the ruler holding the Lease ([`lease`]) sends
//!   notifications and rule results; the other evaluates the same and keeps its notification
//!   log as if it had sent them (its notifications are settled as told without leaving), so a
//!   takeover does not tell again what the leader told.

pub mod config;
mod engine;
#[cfg(test)]
pub(crate) mod fake_leases;
mod forward;
pub mod lease;
#[cfg(test)]
mod lease_tests;
mod notify;
mod output;
mod state;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sextant_pipeline::component::{BuildError, SourceConfig, SourceContext, Taps, Task};
use sextant_pipeline::flow::ack::{Ack, AckStatus, Acks};
use sextant_pipeline::flow::batch::Batch;
use sextant_pipeline::flow::event::{Events, Signals};
use sextant_pipeline::telemetry::LogLimiter;
use sextant_rules::evaluator::Settings;
use sextant_rules::notify::dispatch::Notification;
use sextant_rules::notify::silence::Silences;
use sextant_rules::promql::EvalOptions;
use sextant_rules::rule_files::{load_globs, RuleGroup};

pub use config::PrometheusRulesConfig;
use engine::Engine;

impl SourceConfig for PrometheusRulesConfig {
    fn kind(&self) -> &'static str {
        "prometheus_rules"
    }

    fn signals(&self) -> Signals {
        if self.alerting.is_some() && !self.forward_only {
            Signals::METRICS.union(Signals::LOGS)
        } else {
            Signals::METRICS
        }
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

/// The silences file, if any.
fn load_silences(config: &PrometheusRulesConfig) -> Result<Silences, String> {
    match config
        .alerting
        .as_ref()
        .and_then(|a| a.silences_file.as_ref())
    {
        None => Ok(Silences::default()),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
            Silences::parse(&text).map_err(|e| format!("{path}: {e}"))
        }
    }
}

/// Sends a notification's record as a batch of its own; its answer comes back on `settled`.
async fn send_notification(
    cx: &SourceContext,
    notification: Notification,
    record: sextant_pipeline::flow::event::LogEvent,
    settled: &tokio::sync::mpsc::UnboundedSender<(Notification, bool)>,
) {
    let (share, answer) = Ack::channel();
    cx.metrics.received_events.inc();
    cx.out
        .send(Batch::logs(vec![record], Acks::one(share)))
        .await;
    cx.metrics.sent_events.inc();
    let settled = settled.clone();
    let metrics = cx.metrics.clone();
    tokio::spawn(async move {
        // Refused for good is final too: the sink counted and dead-lettered it, and sending it
        // again at every group interval would only refill the dead-letter file.
        let status = answer.await.unwrap_or(AckStatus::Failed);
        match status {
            AckStatus::Delivered => {}
            AckStatus::Rejected => metrics.error("notification_refused"),
            AckStatus::Failed => metrics.error("notification_not_delivered"),
        }
        let _ = settled.send((notification, status.is_final()));
    });
}

fn build(config: &PrometheusRulesConfig, cx: SourceContext) -> Result<Task, BuildError> {
    let groups = load(config).map_err(|e| BuildError::at(&cx.name, "rule_files", e))?;
    if config.forward_only {
        if cx.taps.is_none() {
            return Err(BuildError::invalid(
                &cx.name,
                "no input queue: inputs name no source",
            ));
        }
        return Ok(forward::task(config.clone(), groups, cx));
    }
    let notifier = config::notifier(config, &cx.name)?;
    let election = config
        .lease
        .as_ref()
        .map(|lease| lease.prepare(&cx.name))
        .transpose()?;
    let silences =
        load_silences(config).map_err(|e| BuildError::at(&cx.name, "alerting.silences_file", e))?;
    let silences_file: Vec<String> = config
        .alerting
        .iter()
        .filter_map(|a| a.silences_file.clone())
        .collect();
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
    let state_path = cx.data_dir.join(state::FILE_NAME);
    let restore_grace_ms = i64::try_from(config.restore_grace.0.as_millis()).unwrap_or(i64::MAX);
    Ok(Box::pin(async move {
        let mut start = Engine::new(groups, settings, interval_ms, max_bytes, notifier);
        start.set_silences(silences);
        match state::load(&state_path) {
            Ok(None) => {}
            Ok(Some(saved)) => {
                let restored =
                    start.restore_state(saved, now_ms().saturating_add(restore_grace_ms));
                tracing::info!(component = %cx.name, alerts = restored.alerts, orphaned = restored.orphaned, "alert state restored");
            }
            Err(error) => {
                cx.metrics.error("state_restore");
                let aside = state_path.with_extension("json.unreadable");
                let _ = std::fs::rename(&state_path, &aside);
                tracing::error!(component = %cx.name, %error, aside = %aside.display(), "alert state unreadable; set aside, the rules start fresh");
            }
        }
        let mut engine = Some(start);
        let leading = lease::Leading::default();
        match election {
            Some(election) => {
                tokio::spawn(lease::run(
                    election,
                    leading.clone(),
                    cx.metrics.clone(),
                    cx.shutdown.clone(),
                ));
            }
            None => leading.set_alone(),
        }
        let (settled_tx, mut settled_rx) = tokio::sync::mpsc::unbounded_channel();
        let limiter = LogLimiter::default();
        let mut files = fingerprint(&config.rule_files);
        let mut silence_files = fingerprint(&silences_file);
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
                    let mut settled = Vec::new();
                    while let Ok(answer) = settled_rx.try_recv() {
                        settled.push(answer);
                    }
                    let path = state_path.clone();
                    let leads = leading.now();
                    let Ok((back, evaluated, saved)) = tokio::task::spawn_blocking(move || {
                        let settled_any = !settled.is_empty();
                        let evaluated = e.tick(now, settled, leads);
                        let saved = if settled_any || !evaluated.results.is_empty() {
                            e.save_state(&path, now)
                        } else {
                            Ok(())
                        };
                        (e, evaluated, saved)
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
                    if let Err(error) = saved {
                        cx.metrics.error("state_save");
                        if let Some(suppressed) = limiter.allow() {
                            tracing::error!(component = %cx.name, %error, suppressed, "alert state not saved");
                        }
                    }
                    if evaluated.unroutable > 0 {
                        cx.metrics.error("notification_unroutable");
                    }
                    for (t, samples) in evaluated.results {
                        if !samples.is_empty() && leads {
                            sextant_pipeline::sources::send_metrics(&cx.out, &cx.metrics, output::to_metrics(samples, t)).await;
                        }
                    }
                    for (notification, record) in evaluated.notifications {
                        send_notification(&cx, notification, record, &settled_tx).await;
                    }
                    false
                }
                _ = file_checks.tick() => {
                    let now = fingerprint(&silences_file);
                    if now != silence_files {
                        silence_files = now;
                        match load_silences(&config) {
                            Ok(silences) => {
                                if let Some(e) = engine.as_mut() {
                                    e.set_silences(silences);
                                }
                                tracing::info!(component = %cx.name, "silences reloaded");
                            }
                            Err(errors) => {
                                cx.metrics.error("silences_reload");
                                tracing::error!(component = %cx.name, %errors, "silences file refused; the silences in force stay");
                            }
                        }
                    }
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
            let (alerts, groups) = e.notifier_counts();
            tracing::debug!(component = %cx.name, series = e.store().series_count(), notifier_alerts = alerts, notifier_groups = groups, "rule engine stopped");
        }
        cx.metrics.set_up(false);
    }))
}
