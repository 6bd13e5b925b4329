//! Pod metadata from the Kubernetes API: labels, annotations and owner workload of this node's
//! pods, kept in a cache that the log path only ever reads.
//!
//! Contract:
//! - The pods come from the agent's one watch of this node's pods
//!   ([`crate::kubernetes::node_pods`], shared with `prometheus_scrape`).
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
use std::sync::{Arc, RwLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

use sextant_pipeline::flow::event::KeyValue;

use super::config::KubernetesApiSettings;
use crate::kubernetes::node_pods::NodePods;

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

/// The metadata view of this node's pods (shared with other components, see
/// [`crate::kubernetes::node_pods`]): each pod's attributes derived once per change of the pod.
pub struct PodCache {
    pods: Arc<NodePods>,
    keep_deleted: Duration,
    labels: bool,
    annotations: bool,
    derived: RwLock<HashMap<String, (u64, Arc<PodMetadata>)>>,
}

impl PodCache {
    pub fn new(pods: Arc<NodePods>, settings: &KubernetesApiSettings) -> Self {
        pods.keep_deleted_at_least(settings.keep_deleted.0);
        Self {
            pods,
            keep_deleted: settings.keep_deleted.0,
            labels: settings.labels,
            annotations: settings.annotations,
            derived: RwLock::new(HashMap::new()),
        }
    }

    pub fn lookup(&self, uid: &str) -> Lookup {
        let entry = self
            .pods
            .get(uid)
            .filter(|e| e.deleted_at.is_none_or(|t| t.elapsed() < self.keep_deleted));
        let Some(entry) = entry else {
            return Lookup::Unknown {
                expected: !self.pods.is_failing(),
            };
        };
        let derived = self.derived.read().unwrap_or_else(|e| e.into_inner());
        if let Some((version, metadata)) = derived.get(uid) {
            if *version == entry.version {
                return Lookup::Found(metadata.clone());
            }
        }
        drop(derived);
        let metadata = Arc::new(pod_metadata(&entry.pod, self.labels, self.annotations));
        let mut derived = self.derived.write().unwrap_or_else(|e| e.into_inner());
        // Pods gone from the shared cache are forgotten here too.
        if derived.len() > 64 && derived.len() > 2 * self.pods.live().len() {
            derived.retain(|uid, _| self.pods.get(uid).is_some());
        }
        derived.insert(uid.to_owned(), (entry.version, metadata.clone()));
        Lookup::Found(metadata)
    }

    /// Moves on every change, so that files rebuild their resource.
    pub fn generation(&self) -> u64 {
        self.pods.generation()
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
