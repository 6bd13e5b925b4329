//! Sources only a node has.

pub mod kubernetes_logs;
pub mod prometheus_scrape;
