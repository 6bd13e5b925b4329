//! Sources only a node has.

pub mod container_insights;
pub mod host_metrics;
pub mod kubernetes_logs;
pub mod prometheus_scrape;

use sextant_pipeline::flow::ack::Acks;
use sextant_pipeline::flow::batch::Batch;
use sextant_pipeline::flow::event::{Metric, MetricData};
use sextant_pipeline::flow::fanout::Fanout;
use sextant_pipeline::telemetry::ComponentMetrics;

/// Sends one collection of metrics as a batch, counting its points received and sent. Nothing
/// could replay a collection, so it is not acknowledged back; the send waits for room.
pub(crate) async fn send_metrics(out: &Fanout, counters: &ComponentMetrics, metrics: Vec<Metric>) {
    let points: usize = metrics
        .iter()
        .filter_map(|m| m.data.as_ref())
        .map(MetricData::point_count)
        .sum();
    counters.received_events.inc_by(points as u64);
    out.send(Batch::metrics(metrics, Acks::none())).await;
    counters.sent_events.inc_by(points as u64);
}

/// Every `period` until shutdown; a tick missed (a slow collection) is skipped, not caught up.
pub(crate) struct Every(tokio::time::Interval);

impl Every {
    pub fn new(period: std::time::Duration) -> Self {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        Self(ticks)
    }

    /// Waits for the next tick; `false` once `shutdown` says stop.
    pub async fn tick(&mut self, shutdown: &sextant_pipeline::shutdown::Shutdown) -> bool {
        tokio::select! {
            () = shutdown.stopped() => false,
            _ = self.0.tick() => true,
        }
    }
}
