//! Pod metadata from the Kubernetes API: labels, annotations and owner workload of this node's
//! pods, kept in a cache that the log path only ever reads.
//!
//! Contract:
//! - One watch (`kube::runtime::watcher`: list, then watch from its resource version, with
//!   bookmarks and backoff) limited to `spec.nodeName=<this node>`, so an agent never holds the
//!   whole cluster's pods.
//! - The tailer never waits on the API for long. It looks a pod up by uid; while the watch is
//!   starting or synced and a pod is not in the cache, its file waits up to `wait_for_metadata`
//!   (the watch event usually trails the log file by milliseconds). After that, or at once while
//!   the API is failing, lines go out with the path's metadata and are counted in
//!   `sextant_metadata_missing_events_total`.
//! - A deleted pod's metadata is kept for `keep_deleted`, because its files are still read to
//!   their end after the pod is gone.
//! - Pods annotated `sextant.io/exclude: "true"` are skipped (their files are checkpointed
//!   without being read).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Api;

use sextant_pipeline::component::BuildError;
use sextant_pipeline::flow::event::KeyValue;
use sextant_pipeline::shutdown::Shutdown;
use sextant_pipeline::telemetry::{ComponentMetrics, LogLimiter};

use super::config::KubernetesApiSettings;

/// The annotation that keeps a pod's logs out.
pub const EXCLUDE_ANNOTATION: &str = "sextant.io/exclude";

/// Annotations never copied: huge, and no use in a log line.
const SKIPPED_ANNOTATIONS: &[&str] = &["kubectl.kubernetes.io/last-applied-configuration"];

/// What the API says of one pod, ready to add to a resource.
#[derive(Debug, Default, PartialEq)]
pub struct PodMetadata {
    pub attributes: Vec<KeyValue>,
    pub excluded: bool,
}

/// The answer for a pod uid.
pub enum Lookup {
    Found(Arc<PodMetadata>),
    /// Not in the cache. `expected` when the watch is starting or synced: the pod is probably
    /// brand new and about to appear; not when the API is failing.
    Unknown {
        expected: bool,
    },
}

struct Entry {
    metadata: Arc<PodMetadata>,
    deleted_at: Option<Instant>,
}

/// This node's pods by uid.
pub struct PodCache {
    pods: RwLock<HashMap<String, Entry>>,
    generation: AtomicU64,
    /// Whether the watch has failed since it last listed.
    failing: AtomicBool,
    keep_deleted: Duration,
    labels: bool,
    annotations: bool,
}

impl PodCache {
    pub fn new(settings: &KubernetesApiSettings) -> Self {
        Self {
            pods: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            keep_deleted: settings.keep_deleted.0,
            labels: settings.labels,
            annotations: settings.annotations,
        }
    }

    pub fn lookup(&self, uid: &str) -> Lookup {
        let pods = self.pods.read().unwrap_or_else(|e| e.into_inner());
        match pods.get(uid) {
            Some(e) => Lookup::Found(e.metadata.clone()),
            None => Lookup::Unknown {
                expected: !self.failing.load(Ordering::Acquire),
            },
        }
    }

    /// Moves on every change, so that files rebuild their resource.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Says whether the watch is failing (then pods not in the cache are not waited for).
    pub fn set_failing(&self, failing: bool) {
        if self.failing.swap(failing, Ordering::AcqRel) != failing {
            self.bump();
        }
    }

    /// Adds or updates a pod.
    pub fn apply(&self, pod: &Pod) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        let metadata = Arc::new(pod_metadata(pod, self.labels, self.annotations));
        let mut pods = self.pods.write().unwrap_or_else(|e| e.into_inner());
        let changed = pods.get(&uid).is_none_or(|e| e.metadata != metadata);
        pods.insert(
            uid,
            Entry {
                metadata,
                deleted_at: None,
            },
        );
        drop(pods);
        if changed {
            self.bump();
        }
    }

    /// Marks a pod deleted; it is forgotten `keep_deleted` later.
    pub fn delete(&self, pod: &Pod) {
        let Some(uid) = pod.metadata.uid.as_deref() else {
            return;
        };
        let mut pods = self.pods.write().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = pods.get_mut(uid) {
            e.deleted_at.get_or_insert_with(Instant::now);
        }
        drop(pods);
        self.prune();
    }

    /// Takes a full listing: pods not in it count as deleted (kept `keep_deleted`).
    pub fn replace(&self, listed: Vec<Pod>) {
        let now = Instant::now();
        let mut seen = std::collections::HashSet::new();
        for pod in &listed {
            if let Some(uid) = &pod.metadata.uid {
                seen.insert(uid.clone());
            }
            self.apply(pod);
        }
        let mut pods = self.pods.write().unwrap_or_else(|e| e.into_inner());
        for (uid, e) in pods.iter_mut() {
            if !seen.contains(uid) {
                e.deleted_at.get_or_insert(now);
            }
        }
        drop(pods);
        self.prune();
        self.set_failing(false);
        self.bump();
    }

    fn prune(&self) {
        let keep = self.keep_deleted;
        let mut pods = self.pods.write().unwrap_or_else(|e| e.into_inner());
        let before = pods.len();
        pods.retain(|_, e| e.deleted_at.is_none_or(|t| t.elapsed() < keep));
        let pruned = pods.len() != before;
        drop(pods);
        if pruned {
            self.bump();
        }
    }
}

/// The resource attributes the API adds for a pod, following the OpenTelemetry semantic
/// conventions: `k8s.pod.label.<key>`, `k8s.pod.annotation.<key>`, and the owner workload as
/// `k8s.deployment.name` (a ReplicaSet named `<deployment>-<pod-template-hash>`),
/// `k8s.replicaset.name`, `k8s.statefulset.name`, `k8s.daemonset.name` or `k8s.job.name`.
pub fn pod_metadata(pod: &Pod, labels: bool, annotations: bool) -> PodMetadata {
    let meta = &pod.metadata;
    let empty = BTreeMap::new();
    let pod_labels = meta.labels.as_ref().unwrap_or(&empty);
    let pod_annotations = meta.annotations.as_ref().unwrap_or(&empty);
    let mut attributes = Vec::new();
    if let Some(owner) = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
    {
        match owner.kind.as_str() {
            "ReplicaSet" => {
                attributes.push(KeyValue::new("k8s.replicaset.name", owner.name.as_str()));
                let deployment = pod_labels
                    .get("pod-template-hash")
                    .and_then(|hash| owner.name.strip_suffix(hash.as_str()))
                    .and_then(|rest| rest.strip_suffix('-'))
                    .filter(|d| !d.is_empty());
                if let Some(d) = deployment {
                    attributes.push(KeyValue::new("k8s.deployment.name", d));
                }
            }
            "StatefulSet" => {
                attributes.push(KeyValue::new("k8s.statefulset.name", owner.name.as_str()))
            }
            "DaemonSet" => {
                attributes.push(KeyValue::new("k8s.daemonset.name", owner.name.as_str()))
            }
            "Job" => attributes.push(KeyValue::new("k8s.job.name", owner.name.as_str())),
            _ => {}
        }
    }
    if labels {
        for (k, v) in pod_labels {
            attributes.push(KeyValue::new(format!("k8s.pod.label.{k}"), v.as_str()));
        }
    }
    if annotations {
        for (k, v) in pod_annotations {
            if !SKIPPED_ANNOTATIONS.contains(&k.as_str()) {
                attributes.push(KeyValue::new(format!("k8s.pod.annotation.{k}"), v.as_str()));
            }
        }
    }
    PodMetadata {
        attributes,
        excluded: pod_annotations
            .get(EXCLUDE_ANNOTATION)
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
    }
}

/// Where the API is, when it is to be used at all.
pub enum ApiSource {
    InCluster,
    Kubeconfig(PathBuf),
}

/// Whether to use the API: `enabled: false` never; `true` requires a way to reach it; unset
/// (auto) uses it in a cluster or with a kubeconfig given.
pub fn api_source(
    settings: &KubernetesApiSettings,
    component: &str,
) -> Result<Option<ApiSource>, BuildError> {
    let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    let source = match (&settings.kubeconfig, in_cluster) {
        (Some(path), _) => Some(ApiSource::Kubeconfig(path.clone())),
        (None, true) => Some(ApiSource::InCluster),
        (None, false) => None,
    };
    match (settings.enabled, source) {
        (Some(false), _) => Ok(None),
        (Some(true), None) => Err(BuildError::invalid(
            component,
            "kubernetes_api.enabled is true, but this is not a cluster (KUBERNETES_SERVICE_HOST \
             is unset) and no kubeconfig is given",
        )),
        (_, source) => Ok(source),
    }
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

/// Keeps `cache` in step with this node's pods until shutdown. API errors are counted
/// (`sextant_component_errors_total{error_type="kubernetes_api"}`), logged at a rate limit, and
/// retried with backoff; meanwhile the cache keeps what it had and says it is not synced.
pub async fn watch_pods(
    source: ApiSource,
    node: String,
    cache: Arc<PodCache>,
    metrics: ComponentMetrics,
    shutdown: Shutdown,
) {
    let limiter = LogLimiter::new(Duration::from_secs(30));
    let client = loop {
        match client(&source).await {
            Ok(c) => break c,
            Err(e) => {
                metrics.error("kubernetes_api");
                cache.set_failing(true);
                if let Some(suppressed) = limiter.allow() {
                    tracing::warn!(component = %metrics.name, error = %e, suppressed, "cannot configure the Kubernetes API client; logs go out with path metadata");
                }
                tokio::select! {
                    _ = shutdown.stopped() => return,
                    _ = tokio::time::sleep(Duration::from_secs(10)) => {}
                }
            }
        }
    };
    let api: Api<Pod> = Api::all(client);
    let config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
    let mut events = watcher::watcher(api, config).default_backoff().boxed();
    let mut listing: Option<Vec<Pod>> = None;
    tracing::info!(component = %metrics.name, node = %node, "watching this node's pods");
    loop {
        let event = tokio::select! {
            _ = shutdown.stopped() => return,
            e = events.next() => e,
        };
        match event {
            None => return,
            Some(Ok(Event::Init)) => listing = Some(Vec::new()),
            Some(Ok(Event::InitApply(pod))) => listing.get_or_insert_with(Vec::new).push(pod),
            Some(Ok(Event::InitDone)) => {
                let pods = listing.take().unwrap_or_default();
                tracing::debug!(component = %metrics.name, pods = pods.len(), "pod listing received");
                cache.replace(pods);
            }
            Some(Ok(Event::Apply(pod))) => cache.apply(&pod),
            Some(Ok(Event::Delete(pod))) => cache.delete(&pod),
            Some(Err(e)) => {
                metrics.error("kubernetes_api");
                cache.set_failing(true);
                if let Some(suppressed) = limiter.allow() {
                    tracing::warn!(component = %metrics.name, error = %e, suppressed, "Kubernetes API watch failed; retrying, logs go out with path metadata meanwhile");
                }
            }
        }
    }
}
