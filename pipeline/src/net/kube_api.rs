//! The Kubernetes API client both roles use: where the API is (in the cluster, from the pod's
//! service account, or from a kubeconfig) and a `kube` client for it. The agent watches its
//! node's pods; the collector's rulers hold a Lease.

use std::path::PathBuf;

use crate::component::BuildError;

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

/// A client for the API at `source`.
pub async fn client(source: &ApiSource) -> Result<kube::Client, String> {
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
