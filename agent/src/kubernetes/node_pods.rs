//! This node's pods, from one watch of the Kubernetes API shared by every component that asks.
//!
//! Contract:
//! - One watch (`kube::runtime::watcher`: list, then watch from its resource version, with
//!   bookmarks and backoff) per (node, API) in the process, limited to
//!   `spec.nodeName=<this node>`, so an agent never holds the whole cluster's pods and never
//!   holds them twice. [`shared`] hands out the same [`NodePods`] to every caller; the watch
//!   runs while one of them holds it.
//! - A deleted pod stays, marked deleted, for the longest `keep_deleted` any caller asked for
//!   (container logs are still read after their pod is gone); callers that want only live pods
//!   ([`NodePods::live`]) do not see it.
//! - Every change moves the generation; [`NodePods::subscribe`] wakes on it.
//! - API errors are counted (`sextant_component_errors_total{error_type="kubernetes_api"}` of
//!   the component that started the watch), logged at a rate limit, and retried with backoff;
//!   meanwhile the pods stay as they were and [`NodePods::is_failing`] says so.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::Api;
use sextant_pipeline::telemetry::{ComponentMetrics, LogLimiter};

use super::ApiSource;

/// A pod as the watch last saw it.
#[derive(Clone, Debug)]
pub struct PodEntry {
    pub pod: Arc<Pod>,
    /// Moves whenever this pod changes (for callers that derive something from it).
    pub version: u64,
    pub deleted_at: Option<Instant>,
}

/// This node's pods by uid.
pub struct NodePods {
    pods: RwLock<HashMap<String, PodEntry>>,
    versions: AtomicU64,
    failing: AtomicBool,
    keep_deleted_ms: AtomicU64,
    changes: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for NodePods {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodePods")
            .field("generation", &self.generation())
            .finish()
    }
}

impl NodePods {
    /// A cache no watch feeds (tests, and the watch's own start).
    pub fn new(keep_deleted: Duration) -> Self {
        Self {
            pods: RwLock::new(HashMap::new()),
            versions: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            keep_deleted_ms: AtomicU64::new(keep_deleted.as_millis() as u64),
            changes: tokio::sync::watch::Sender::new(0),
        }
    }

    pub fn get(&self, uid: &str) -> Option<PodEntry> {
        let pods = self.pods.read().unwrap_or_else(|e| e.into_inner());
        pods.get(uid).cloned()
    }

    /// The pods not deleted.
    pub fn live(&self) -> Vec<Arc<Pod>> {
        let pods = self.pods.read().unwrap_or_else(|e| e.into_inner());
        pods.values()
            .filter(|e| e.deleted_at.is_none())
            .map(|e| e.pod.clone())
            .collect()
    }

    /// Moves on every change.
    pub fn generation(&self) -> u64 {
        *self.changes.borrow()
    }

    /// Wakes on every change.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn bump(&self) {
        self.changes.send_modify(|g| *g += 1);
    }

    /// Whether the watch has failed since it last listed.
    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }

    pub fn set_failing(&self, failing: bool) {
        if self.failing.swap(failing, Ordering::AcqRel) != failing {
            self.bump();
        }
    }

    /// Keeps deleted pods at least this long.
    pub fn keep_deleted_at_least(&self, keep: Duration) {
        self.keep_deleted_ms
            .fetch_max(keep.as_millis() as u64, Ordering::AcqRel);
    }

    /// Adds or updates a pod.
    pub fn apply(&self, pod: Pod) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        let mut pods = self.pods.write().unwrap_or_else(|e| e.into_inner());
        let unchanged = pods
            .get(&uid)
            .is_some_and(|e| e.deleted_at.is_none() && *e.pod == pod);
        if unchanged {
            return;
        }
        let version = self.versions.fetch_add(1, Ordering::AcqRel) + 1;
        pods.insert(
            uid,
            PodEntry {
                pod: Arc::new(pod),
                version,
                deleted_at: None,
            },
        );
        drop(pods);
        self.bump();
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
        self.bump();
    }

    /// Takes a full listing: pods not in it count as deleted.
    pub fn replace(&self, listed: Vec<Pod>) {
        let now = Instant::now();
        let seen: HashSet<String> = listed
            .iter()
            .filter_map(|p| p.metadata.uid.clone())
            .collect();
        for pod in listed {
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
        let keep = Duration::from_millis(self.keep_deleted_ms.load(Ordering::Acquire));
        let mut pods = self.pods.write().unwrap_or_else(|e| e.into_inner());
        pods.retain(|_, e| e.deleted_at.is_none_or(|t| t.elapsed() < keep));
    }
}

type Registry = Mutex<Vec<((ApiSource, String), Weak<NodePods>)>>;

static REGISTRY: Registry = Mutex::new(Vec::new());

/// This node's pods from `source`: the watch already running in this process, or a new one
/// (its errors counted on `metrics`). Must be called within the runtime.
pub fn shared(
    source: &ApiSource,
    node: &str,
    keep_deleted: Duration,
    metrics: &ComponentMetrics,
) -> Arc<NodePods> {
    let key = (source.clone(), node.to_owned());
    let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    registry.retain(|(_, w)| w.strong_count() > 0);
    if let Some(pods) = registry
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, w)| w.upgrade())
    {
        pods.keep_deleted_at_least(keep_deleted);
        return pods;
    }
    let pods = Arc::new(NodePods::new(keep_deleted));
    registry.push((key, Arc::downgrade(&pods)));
    drop(registry);
    let watched = Arc::downgrade(&pods);
    let task = tokio::spawn(watch(
        source.clone(),
        node.to_owned(),
        watched.clone(),
        metrics.clone(),
    ));
    // Should the watch ever die, its users stop waiting for pods that will not come.
    let name = metrics.name.clone();
    tokio::spawn(async move {
        if let Err(e) = task.await {
            tracing::error!(component = %name, error = %e, "the Kubernetes pod watch ended");
            if let Some(p) = watched.upgrade() {
                p.set_failing(true);
            }
        }
    });
    pods
}

/// Feeds `pods` from the API while anyone holds it.
async fn watch(source: ApiSource, node: String, pods: Weak<NodePods>, metrics: ComponentMetrics) {
    let limiter = LogLimiter::new(Duration::from_secs(30));
    let mut check = tokio::time::interval(Duration::from_secs(5));
    let client = loop {
        match super::client(&source).await {
            Ok(c) => break c,
            Err(e) => {
                metrics.error("kubernetes_api");
                let Some(p) = pods.upgrade() else { return };
                p.set_failing(true);
                if let Some(suppressed) = limiter.allow() {
                    tracing::warn!(component = %metrics.name, error = %e, suppressed, "cannot configure the Kubernetes API client; retrying");
                }
                drop(p);
                tokio::time::sleep(Duration::from_secs(10)).await;
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
            _ = check.tick() => {
                if pods.strong_count() == 0 {
                    return;
                }
                continue;
            }
            e = events.next() => e,
        };
        let Some(p) = pods.upgrade() else { return };
        match event {
            None => {
                p.set_failing(true);
                return;
            }
            Some(Ok(Event::Init)) => listing = Some(Vec::new()),
            Some(Ok(Event::InitApply(pod))) => listing.get_or_insert_with(Vec::new).push(pod),
            Some(Ok(Event::InitDone)) => {
                let listed = listing.take().unwrap_or_default();
                tracing::debug!(component = %metrics.name, pods = listed.len(), "pod listing received");
                p.replace(listed);
            }
            Some(Ok(Event::Apply(pod))) => p.apply(pod),
            Some(Ok(Event::Delete(pod))) => p.delete(&pod),
            Some(Err(e)) => {
                metrics.error("kubernetes_api");
                p.set_failing(true);
                if let Some(suppressed) = limiter.allow() {
                    tracing::warn!(component = %metrics.name, error = %e, suppressed, "Kubernetes API watch failed; retrying");
                }
            }
        }
    }
}
