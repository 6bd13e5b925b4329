//! The Kubernetes API as the agent uses it: one watch of this node's pods
//! ([`node_pods::NodePods`]), shared by every component that needs pods — `kubernetes_logs` for
//! metadata, `prometheus_scrape` for discovery — so an agent lists and watches its pods once.

#[cfg(test)]
pub(crate) mod fake_api;
pub mod node_pods;
pub mod pods_by_ip;

use std::path::PathBuf;

use sextant_pipeline::component::BuildError;

pub use sextant_pipeline::net::kube_api::{api_source, client, ApiSource};

/// Where the API is and this node's name, for a component that cannot work without them
/// (`needed_by` says which feature, for the error): the API from `kubeconfig` or the in-cluster
/// service account, the node from `node_name` or `$NODE_NAME`.
pub fn this_node(
    kubeconfig: Option<&PathBuf>,
    node_name: Option<&str>,
    needed_by: &str,
    component: &str,
) -> Result<(ApiSource, String), BuildError> {
    let source = api_source(Some(true), kubeconfig, component)
        .ok()
        .flatten()
        .ok_or_else(|| {
            BuildError::invalid(
                component,
                format!("{needed_by} needs the Kubernetes API: run in a cluster, or set kubernetes.kubeconfig"),
            )
        })?;
    let node = node_name
        .map(str::to_owned)
        .or_else(|| std::env::var("NODE_NAME").ok())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            BuildError::invalid(
                component,
                format!("{needed_by} works on this node's pods only and needs its name: set kubernetes.node_name or $NODE_NAME (from the downward API)"),
            )
        })?;
    Ok((source, node))
}

/// This node's name and pods (see [`this_node`]).
pub fn this_node_pods(
    kubeconfig: Option<&PathBuf>,
    node_name: Option<&str>,
    needed_by: &str,
    metrics: &sextant_pipeline::telemetry::ComponentMetrics,
) -> Result<(String, std::sync::Arc<node_pods::NodePods>), BuildError> {
    let (source, node) = this_node(kubeconfig, node_name, needed_by, metrics.name.as_str())?;
    let pods = node_pods::shared(&source, &node, std::time::Duration::ZERO, metrics);
    Ok((node, pods))
}

/// The EC2 instance id of node `node`, from its `spec.providerID` (`aws:///<zone>/<id>`);
/// `None` for a node that is not an EC2 instance.
pub async fn node_instance_id(source: &ApiSource, node: &str) -> Result<Option<String>, String> {
    let api: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client(source).await?);
    let node = api.get(node).await.map_err(|e| e.to_string())?;
    let provider_id = node.spec.and_then(|s| s.provider_id).unwrap_or_default();
    Ok(instance_id_of(&provider_id))
}

/// The instance id in an AWS provider id (`aws:///us-west-2a/i-0abc…`).
fn instance_id_of(provider_id: &str) -> Option<String> {
    let rest = provider_id.strip_prefix("aws://")?;
    let id = rest.rsplit('/').next()?;
    (id.starts_with("i-") && id.len() > 2).then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn instance_ids_come_from_aws_provider_ids_only() {
        use super::instance_id_of;
        assert_eq!(
            instance_id_of("aws:///us-west-2a/i-0123456789abcdef0").as_deref(),
            Some("i-0123456789abcdef0")
        );
        assert_eq!(instance_id_of("aws:///i-0abc").as_deref(), Some("i-0abc"));
        assert_eq!(instance_id_of("gce://project/zone/node-1"), None);
        assert_eq!(instance_id_of("aws:///us-west-2a/"), None);
        assert_eq!(instance_id_of(""), None);
    }
}
