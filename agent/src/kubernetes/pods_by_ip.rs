//! The agent's [`PodResolver`]: this node's pods by IP, for the sources that receive from
//! applications (`otlp`, `xray_udp`), so that what a pod sends carries the same `k8s.*`
//! resource attributes as its logs (see `sextant_pipeline::sources::pod_association`).
//!
//! Contract:
//! - The pods are the agent's one watch of this node's pods ([`super::node_pods`]).
//! - A pod's attributes: `k8s.namespace.name`, `k8s.pod.name`, `k8s.pod.uid`, `k8s.node.name`,
//!   the owner workload, and labels and annotations as configured — the same as its logs get
//!   from `kubernetes_logs`, container excepted (an IP names a pod, not a container).
//! - Indexed by every IP in `status.podIPs` (and `status.podIP`) of the live pods that are not
//!   `hostNetwork` (they share the node's IP, so it names none of them) and have not finished
//!   (`Succeeded`/`Failed` pods keep an IP that a new pod may already have). The index is
//!   rebuilt when the watch's generation moves, on the first lookup after it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use sextant_pipeline::component::BuildError;
use sextant_pipeline::flow::event::KeyValue;
use sextant_pipeline::sources::pod_association::{PeerPods, PodAssociationConfig, PodResolver};
use sextant_pipeline::telemetry::ComponentMetrics;

use super::node_pods::{self, NodePods};
use crate::sources::kubernetes_logs::metadata::pod_metadata;

/// The agent's resolver: a watch of this node's pods where the API and the node are known.
#[derive(Debug, Default)]
pub struct AgentPods;

impl PodResolver for AgentPods {
    fn resolve(
        &self,
        config: &PodAssociationConfig,
        metrics: &ComponentMetrics,
    ) -> Result<Option<Arc<dyn PeerPods>>, BuildError> {
        let component = metrics.name.as_str();
        let Some(source) =
            super::api_source(config.enabled, config.kubeconfig.as_ref(), component)?
        else {
            return Ok(None);
        };
        let node = node_name(config.node_name.as_deref());
        let Some(node) = node else {
            if config.enabled == Some(true) {
                return Err(BuildError::invalid(
                    component,
                    "pod_association needs this node's name: set pod_association.node_name or $NODE_NAME (from the downward API)",
                ));
            }
            tracing::warn!(component, "pod association is off: this node's name is unknown (set $NODE_NAME from the downward API)");
            return Ok(None);
        };
        let pods = node_pods::shared(&source, &node, Duration::ZERO, metrics);
        Ok(Some(Arc::new(PodsByIp::new(pods, node, config))))
    }
}

fn node_name(configured: Option<&str>) -> Option<String> {
    configured
        .map(str::to_owned)
        .or_else(|| std::env::var("NODE_NAME").ok())
        .filter(|n| !n.is_empty())
}

/// This node's pods by IP, with their resource attributes.
pub struct PodsByIp {
    pods: Arc<NodePods>,
    node: String,
    labels: bool,
    annotations: bool,
    /// The index and the watch generation it was built at.
    index: RwLock<(Option<u64>, ByIp)>,
}

type ByIp = HashMap<IpAddr, Arc<[KeyValue]>>;

impl PodsByIp {
    pub fn new(pods: Arc<NodePods>, node: String, config: &PodAssociationConfig) -> Self {
        Self {
            pods,
            node,
            labels: config.labels,
            annotations: config.annotations,
            index: RwLock::new((None, HashMap::new())),
        }
    }

    fn rebuild(&self, generation: u64) {
        let mut index = HashMap::new();
        for pod in self.pods.live() {
            if !associable(&pod) {
                continue;
            }
            let attributes: Arc<[KeyValue]> = self.attributes(&pod).into();
            for ip in ips(&pod) {
                index.insert(ip, attributes.clone());
            }
        }
        let mut slot = self.index.write().unwrap_or_else(|e| e.into_inner());
        *slot = (Some(generation), index);
    }

    fn attributes(&self, pod: &Pod) -> Vec<KeyValue> {
        let meta = &pod.metadata;
        let mut attributes = Vec::new();
        let named = [
            ("k8s.namespace.name", meta.namespace.as_deref()),
            ("k8s.pod.name", meta.name.as_deref()),
            ("k8s.pod.uid", meta.uid.as_deref()),
            ("k8s.node.name", Some(self.node.as_str())),
        ];
        for (key, value) in named {
            if let Some(v) = value {
                attributes.push(KeyValue::new(key, v));
            }
        }
        attributes.extend(pod_metadata(pod, self.labels, self.annotations).attributes);
        attributes
    }
}

impl PeerPods for PodsByIp {
    fn attributes_of(&self, ip: IpAddr) -> Option<Arc<[KeyValue]>> {
        let generation = self.pods.generation();
        {
            let index = self.index.read().unwrap_or_else(|e| e.into_inner());
            if index.0 == Some(generation) {
                return index.1.get(&ip).cloned();
            }
        }
        self.rebuild(generation);
        let index = self.index.read().unwrap_or_else(|e| e.into_inner());
        index.1.get(&ip).cloned()
    }
}

/// Whether `pod`'s IP names it alone and still (see the module doc).
fn associable(pod: &Pod) -> bool {
    let host_network = pod
        .spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false);
    let finished = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|p| p == "Succeeded" || p == "Failed");
    !host_network && !finished
}

fn ips(pod: &Pod) -> Vec<IpAddr> {
    let Some(status) = &pod.status else {
        return Vec::new();
    };
    let mut ips: Vec<IpAddr> = status
        .pod_ips
        .iter()
        .flatten()
        .map(|p| p.ip.as_str())
        .chain(status.pod_ip.as_deref())
        .filter_map(|ip| ip.parse().ok())
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

#[cfg(test)]
#[path = "pods_by_ip_tests.rs"]
mod tests;
