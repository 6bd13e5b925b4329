//! `sextant-agent`: what only a node has. [`sources::kubernetes_logs`] collects every container
//! log on the node, with pod metadata from one node-scoped watch of the Kubernetes API; the
//! shared `file`, `otlp` and `xray_udp` sources come from the pipeline crate.
//! [`sources::prometheus_scrape`] scrapes Prometheus endpoints, reading their bodies with
//! [`exposition`]. Host metrics are still to come. [`config`] lists the agent's components.

#![forbid(unsafe_code)]

pub mod config;
pub mod exposition;
pub mod kubernetes;
pub mod sources;
#[cfg(test)]
mod test_support;
