//! `sextant-agent`: what only a node has. Today the agent runs the shared `file` and `otlp`
//! sources; the Kubernetes-aware sources (`kubernetes_logs`, `prometheus_scrape`,
//! `host_metrics`, `xray_udp`) and enrichment arrive here. [`config`] lists its components.

pub mod config;
