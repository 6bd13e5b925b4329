//! Sources only a node has.

pub mod container_insights;
pub mod host_metrics;
pub mod kubernetes_logs;
pub mod prometheus_scrape;

pub(crate) use sextant_pipeline::sources::send_metrics;

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
