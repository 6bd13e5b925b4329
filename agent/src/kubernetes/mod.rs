//! The Kubernetes API as the agent uses it: one watch of this node's pods
//! ([`node_pods::NodePods`]), shared by every component that needs pods — `kubernetes_logs` for
//! metadata, `prometheus_scrape` for discovery — so an agent lists and watches its pods once.

#[cfg(test)]
pub(crate) mod fake_api;
pub mod node_pods;

use std::path::PathBuf;

use sextant_pipeline::component::BuildError;

/// Where the API is, when it is to be used at all.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ApiSource {
    InCluster,
    Kubeconfig(PathBuf),
}

/// Whether to use the API: `enabled: false` never; `true` requires a way to reach it; unset
/// (auto) uses it in a cluster or with a kubeconfig given.
pub fn api_source(
    enabled: Option<bool>,
    kubeconfig: Option<&PathBuf>,
    component: &str,
) -> Result<Option<ApiSource>, BuildError> {
    let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    let source = match (kubeconfig, in_cluster) {
        (Some(path), _) => Some(ApiSource::Kubeconfig(path.clone())),
        (None, true) => Some(ApiSource::InCluster),
        (None, false) => None,
    };
    match (enabled, source) {
        (Some(false), _) => Ok(None),
        (Some(true), None) => Err(BuildError::invalid(
            component,
            "kubernetes_api.enabled is true, but this is not a cluster (KUBERNETES_SERVICE_HOST \
             is unset) and no kubeconfig is given",
        )),
        (_, source) => Ok(source),
    }
}

/// This node's name and pods for a component that cannot work without them (`needed_by` says
/// which feature, for the error): the API from `kubeconfig` or the in-cluster service account,
/// the node from `node_name` or `$NODE_NAME`.
pub fn this_node_pods(
    kubeconfig: Option<&PathBuf>,
    node_name: Option<&str>,
    needed_by: &str,
    metrics: &sextant_pipeline::telemetry::ComponentMetrics,
) -> Result<(String, std::sync::Arc<node_pods::NodePods>), BuildError> {
    let component = metrics.name.as_str();
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
    let pods = node_pods::shared(&source, &node, std::time::Duration::ZERO, metrics);
    Ok((node, pods))
}

async fn client(source: &ApiSource) -> Result<kube::Client, String> {
    let config = match source {
        ApiSource::InCluster => kube::Config::incluster().map_err(|e| e.to_string())?,
        ApiSource::Kubeconfig(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?
        }
    };
    kube::Client::try_from(config).map_err(|e| e.to_string())
}
