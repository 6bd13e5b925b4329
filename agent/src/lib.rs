//! `sextant-agent`: what only a node has. [`sources::kubernetes_logs`] collects every container
//! log on the node, with pod metadata from one node-scoped watch of the Kubernetes API; the
//! shared `file`, `otlp` and `xray_udp` sources come from the pipeline crate.
//! [`sources::prometheus_scrape`] scrapes Prometheus endpoints (this node's pods and kubelet
//! among them), reading their bodies with [`exposition`]; [`sources::host_metrics`] gathers the
//! node's own metrics as node_exporter names them; [`sources::container_insights`] gives the
//! CloudWatch agent's pod and node metrics. [`kubernetes`] holds the one pod watch they share.
//! [`config`] lists the agent's components.

// No unsafe code but the vector compares of `exposition::scan`, which allow it for themselves.
#![deny(unsafe_code)]

pub mod config;
pub mod exposition;
pub mod kubernetes;
pub mod sources;
#[cfg(test)]
mod test_support;
