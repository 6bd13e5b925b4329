//! `forward_only: true`: a collector of a pool that evaluates nothing and passes on, of the
//! metrics it taps, only the points the rules' selectors can match (the window store's filter,
//! [`sextant_rules::window::forward`]) — for `otlp` sinks, one per ruler, with their durable
//! queues, so each ruler of the pair receives every sample its rules read. The filter follows
//! the rule files (SIGHUP, or a change seen within 5 s), as the rulers' stores do.

use std::time::Duration;

use sextant_pipeline::component::{SourceContext, Task};
use sextant_pipeline::flow::event::Events;
use sextant_rules::rule_files::RuleGroup;
use sextant_rules::window::forward::{select, Selected};
use sextant_rules::window::SelectorFilter;

use super::{fingerprint, hangup, load, PrometheusRulesConfig};

fn filter_of(groups: &[RuleGroup]) -> SelectorFilter {
    SelectorFilter::new(groups.iter().flat_map(|g| g.rules.iter().map(|r| &r.expr)))
}

pub(super) fn task(
    config: PrometheusRulesConfig,
    groups: Vec<RuleGroup>,
    cx: SourceContext,
) -> Task {
    Box::pin(async move {
        let Some(tap) = cx.taps.clone() else {
            return;
        };
        let mut filter = std::sync::Arc::new(filter_of(&groups));
        let mut files = fingerprint(&config.rule_files);
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
                    let f = filter.clone();
                    let Ok((metrics, selected)) = tokio::task::spawn_blocking(move || {
                        let mut selected = Selected::default();
                        (select(&f, metrics, &mut selected), selected)
                    }).await else {
                        tracing::error!(component = %cx.name, "the rule filter panicked; stopping it");
                        break;
                    };
                    if selected.left_out > 0 {
                        cx.metrics.discarded("not_selected", selected.left_out);
                    }
                    if !metrics.is_empty() {
                        sextant_pipeline::sources::send_metrics(&cx.out, &cx.metrics, metrics).await;
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
                        filter = std::sync::Arc::new(filter_of(&groups));
                        tracing::info!(component = %cx.name, "rule files reloaded; forwarding what they read");
                    }
                    Err(errors) => {
                        cx.metrics.error("rule_reload");
                        tracing::error!(component = %cx.name, %errors, "rule files refused; the forwarding filter stays");
                    }
                }
            }
        }
        cx.metrics.set_up(false);
    })
}
