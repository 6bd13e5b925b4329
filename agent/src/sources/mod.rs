//! Sources only a node has.

pub mod container_insights;
pub mod host_metrics;
pub mod kubernetes_logs;
pub mod prometheus_scrape;
