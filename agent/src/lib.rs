//! `sextant-agent`: what only a node has. [`sources::kubernetes_logs`] collects every container
//! log on the node; the shared `file` and `otlp` sources come from the pipeline crate. Scraping,
//! host metrics, X-Ray UDP and Kubernetes API enrichment are still to come. [`config`] lists the
//! agent's components.

pub mod config;
pub mod sources;
