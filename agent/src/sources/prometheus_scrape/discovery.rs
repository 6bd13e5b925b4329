//! Kubernetes discovery of this node's pods (`kubernetes_sd_configs: [{role: pod}]`), from the
//! agent's one pod watch ([`crate::kubernetes::node_pods`]): only pods on this node, ever.
//!
//! Each pod gives targets as Prometheus's `role: pod` does — one per declared container port
//! (`<pod ip>:<port>`), with the `__meta_kubernetes_pod_*` labels (names, ip, uid, node, host
//! ip, phase, ready, controller, labels and annotations with their `*present` twins, container
//! name, image, init, port name, number and protocol), for the job's `relabel_configs`. With
//! `prometheus_io_annotations: true` the usual convention is applied first: only running pods
//! annotated `prometheus.io/scrape: "true"`, at `prometheus.io/port` (a number, or the name of
//! one of the pod's container ports; without it, each declared TCP port), `prometheus.io/path`
//! and `prometheus.io/scheme`, with `namespace`, `pod` and `container` target labels.
//!
//! `role: node` is this node's kubelet (`<host ip>:10250`), for its `/metrics`,
//! `/metrics/cadvisor` and `/metrics/resource` jobs.
//!
//! Targets carry the pod's (or node's) `k8s.*` resource attributes. When the pods change, targets that went
//! away stop (their series are marked stale) and new ones start; unchanged ones go on.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use serde::Deserialize;
use sextant_pipeline::flow::event::{KeyValue, Text};
use sextant_pipeline::shutdown::ShutdownTrigger;

use super::client::ScrapeClient;
use super::config::Job;
use super::relabel::Labels;
use super::target::{self, LoopContext, Target};
use crate::kubernetes::node_pods::NodePods;

/// `kubernetes_sd_configs:` entry of a job.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSdConfig {
    /// `pod` (this node's pods); the only role an agent discovers.
    pub role: Role,
    #[serde(default)]
    pub namespaces: Namespaces,
    /// Apply the `prometheus.io/*` annotation convention before the job's relabelling.
    #[serde(default)]
    pub prometheus_io_annotations: bool,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// This node's pods.
    Pod,
    /// This node's kubelet (`<host ip>:10250`), for `/metrics`, `/metrics/cadvisor` and
    /// `/metrics/resource` with `scheme: https` and the service account's token.
    Node,
}

/// The kubelet's port, unless `kubernetes.kubelet_port` says otherwise.
pub const KUBELET_PORT: u16 = 10250;

/// This node's kubelet as a target: its address is `$NODE_IP` (from the downward API's
/// `status.hostIP`) or the host IP its pods report.
pub fn node_target(node: &str, kubelet_port: u16, pods: &[Arc<Pod>]) -> Option<Discovered> {
    let host = std::env::var("NODE_IP")
        .ok()
        .filter(|ip| !ip.is_empty())
        .or_else(|| {
            pods.iter()
                .find_map(|p| p.status.as_ref().and_then(|s| s.host_ip.clone()))
        })?;
    let address = if host.contains(':') {
        format!("[{host}]:{kubelet_port}")
    } else {
        format!("{host}:{kubelet_port}")
    };
    let mut labels = Labels::new();
    push(&mut labels, "__address__", address);
    push(&mut labels, "__meta_kubernetes_node_name", node);
    push(
        &mut labels,
        "__meta_kubernetes_node_address_InternalIP",
        host.as_str(),
    );
    push(&mut labels, "node", node);
    Some(Discovered {
        labels,
        resource: vec![KeyValue::new("k8s.node.name", node)],
    })
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Namespaces {
    /// Only pods in these namespaces; empty: all.
    #[serde(default)]
    pub names: Vec<String>,
}

/// A label name as Prometheus makes one of a Kubernetes key: every byte that cannot be in a
/// label name becomes `_`.
fn sanitize(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn push(labels: &mut Labels, name: impl Into<Text>, value: impl Into<Text>) {
    labels.push((name.into(), value.into()));
}

/// A discovered target before the job's relabelling: its labels and resource attributes.
#[derive(Clone, Debug, PartialEq)]
pub struct Discovered {
    pub labels: Labels,
    pub resource: Vec<KeyValue>,
}

fn pod_labels(pod: &Pod) -> (Labels, Vec<KeyValue>) {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let namespace = meta.namespace.clone().unwrap_or_default();
    let name = meta.name.clone().unwrap_or_default();
    let uid = meta.uid.clone().unwrap_or_default();
    let node = spec.and_then(|s| s.node_name.clone()).unwrap_or_default();
    let mut labels = Labels::new();
    push(
        &mut labels,
        "__meta_kubernetes_namespace",
        namespace.as_str(),
    );
    push(&mut labels, "__meta_kubernetes_pod_name", name.as_str());
    push(&mut labels, "__meta_kubernetes_pod_uid", uid.as_str());
    push(
        &mut labels,
        "__meta_kubernetes_pod_node_name",
        node.as_str(),
    );
    if let Some(ip) = status.and_then(|s| s.pod_ip.as_deref()) {
        push(&mut labels, "__meta_kubernetes_pod_ip", ip);
    }
    if let Some(ip) = status.and_then(|s| s.host_ip.as_deref()) {
        push(&mut labels, "__meta_kubernetes_pod_host_ip", ip);
    }
    if let Some(phase) = status.and_then(|s| s.phase.as_deref()) {
        push(&mut labels, "__meta_kubernetes_pod_phase", phase);
    }
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .map_or(
            "unknown",
            |c| if c.status == "True" { "true" } else { "false" },
        );
    push(&mut labels, "__meta_kubernetes_pod_ready", ready);
    if let Some(owner) = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
    {
        push(
            &mut labels,
            "__meta_kubernetes_pod_controller_kind",
            owner.kind.as_str(),
        );
        push(
            &mut labels,
            "__meta_kubernetes_pod_controller_name",
            owner.name.as_str(),
        );
    }
    for (k, v) in meta.labels.iter().flatten() {
        let k = sanitize(k);
        push(
            &mut labels,
            format!("__meta_kubernetes_pod_label_{k}"),
            v.as_str(),
        );
        push(
            &mut labels,
            format!("__meta_kubernetes_pod_labelpresent_{k}"),
            "true",
        );
    }
    for (k, v) in meta.annotations.iter().flatten() {
        let k = sanitize(k);
        push(
            &mut labels,
            format!("__meta_kubernetes_pod_annotation_{k}"),
            v.as_str(),
        );
        push(
            &mut labels,
            format!("__meta_kubernetes_pod_annotationpresent_{k}"),
            "true",
        );
    }
    let resource = vec![
        KeyValue::new("k8s.namespace.name", namespace),
        KeyValue::new("k8s.pod.name", name),
        KeyValue::new("k8s.pod.uid", uid),
        KeyValue::new("k8s.node.name", node),
    ];
    (labels, resource)
}

fn containers(pod: &Pod) -> Vec<(&Container, bool)> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    spec.containers
        .iter()
        .map(|c| (c, false))
        .chain(spec.init_containers.iter().flatten().map(|c| (c, true)))
        .collect()
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// The targets a pod gives under one `kubernetes_sd_configs` entry.
pub fn pod_targets(pod: &Pod, sd: &KubernetesSdConfig) -> Vec<Discovered> {
    if sd.role != Role::Pod {
        return Vec::new();
    }
    let Some(ip) = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()) else {
        return Vec::new();
    };
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    if !sd.namespaces.names.is_empty() && !sd.namespaces.names.iter().any(|n| n == namespace) {
        return Vec::new();
    }
    let (base, resource) = pod_labels(pod);
    let host = if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    };
    let mut out = Vec::new();
    let annotated = sd.prometheus_io_annotations;
    if annotated {
        let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        if !running || annotation(pod, "prometheus.io/scrape") != Some("true") {
            return Vec::new();
        }
    }
    let wanted_port = annotation(pod, "prometheus.io/port").filter(|_| annotated);
    let mut emit = |container: Option<(&Container, bool)>, port: Option<(i32, &str, &str)>| {
        let mut labels = base.clone();
        let mut resource = resource.clone();
        if let Some((c, init)) = container {
            push(
                &mut labels,
                "__meta_kubernetes_pod_container_name",
                c.name.as_str(),
            );
            push(
                &mut labels,
                "__meta_kubernetes_pod_container_image",
                c.image.clone().unwrap_or_default(),
            );
            push(
                &mut labels,
                "__meta_kubernetes_pod_container_init",
                if init { "true" } else { "false" },
            );
            resource.push(KeyValue::new("k8s.container.name", c.name.as_str()));
        }
        let address = match port {
            Some((number, name, protocol)) => {
                push(
                    &mut labels,
                    "__meta_kubernetes_pod_container_port_number",
                    number.to_string(),
                );
                push(
                    &mut labels,
                    "__meta_kubernetes_pod_container_port_name",
                    name,
                );
                push(
                    &mut labels,
                    "__meta_kubernetes_pod_container_port_protocol",
                    protocol,
                );
                format!("{host}:{number}")
            }
            None => host.clone(),
        };
        push(&mut labels, "__address__", address);
        if annotated {
            if let Some(path) = annotation(pod, "prometheus.io/path").filter(|p| !p.is_empty()) {
                push(&mut labels, "__metrics_path__", path);
            }
            if let Some(scheme) =
                annotation(pod, "prometheus.io/scheme").filter(|s| matches!(*s, "http" | "https"))
            {
                push(&mut labels, "__scheme__", scheme);
            }
            push(
                &mut labels,
                "namespace",
                pod.metadata.namespace.clone().unwrap_or_default(),
            );
            push(
                &mut labels,
                "pod",
                pod.metadata.name.clone().unwrap_or_default(),
            );
            if let Some((c, _)) = container {
                push(&mut labels, "container", c.name.as_str());
            }
        }
        out.push(Discovered { labels, resource });
    };
    // An annotated port: a number, or a port's name.
    if let Some(wanted) = wanted_port {
        let named = containers(pod).into_iter().find_map(|(c, init)| {
            c.ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(wanted))
                .map(|p| ((c, init), p))
        });
        match (wanted.parse::<i32>(), named) {
            (_, Some((c, p))) => emit(
                Some(c),
                Some((
                    p.container_port,
                    p.name.as_deref().unwrap_or(""),
                    p.protocol.as_deref().unwrap_or("TCP"),
                )),
            ),
            (Ok(number), None) => {
                let owner = containers(pod).into_iter().find_map(|(c, init)| {
                    c.ports
                        .iter()
                        .flatten()
                        .find(|p| p.container_port == number)
                        .map(|p| ((c, init), p))
                });
                match owner {
                    Some((c, p)) => emit(
                        Some(c),
                        Some((
                            number,
                            p.name.as_deref().unwrap_or(""),
                            p.protocol.as_deref().unwrap_or("TCP"),
                        )),
                    ),
                    None => emit(None, Some((number, "", "TCP"))),
                }
            }
            (Err(_), None) => {}
        }
        return out;
    }
    for (c, init) in containers(pod) {
        let ports: Vec<_> = c.ports.iter().flatten().collect();
        if ports.is_empty() {
            if !annotated {
                emit(Some((c, init)), None);
            }
            continue;
        }
        for p in ports {
            let protocol = p.protocol.as_deref().unwrap_or("TCP");
            if annotated && protocol != "TCP" {
                continue;
            }
            emit(
                Some((c, init)),
                Some((p.container_port, p.name.as_deref().unwrap_or(""), protocol)),
            );
        }
    }
    out
}

/// Every target of `jobs` among `pods` (and this node's kubelet), after relabelling, without
/// duplicates (targets whose labels and URL are the same are one, as in Prometheus).
pub fn targets(
    jobs: &[(Arc<Job>, ScrapeClient)],
    node: &NodeSettings,
    pods: &[Arc<Pod>],
) -> BTreeMap<String, (Target, ScrapeClient)> {
    let mut out = BTreeMap::new();
    for (job, client) in jobs {
        for sd in &job.config.kubernetes_sd_configs {
            let found: Vec<Discovered> = match sd.role {
                Role::Pod => pods.iter().flat_map(|p| pod_targets(p, sd)).collect(),
                Role::Node => node_target(&node.name, node.kubelet_port, pods)
                    .into_iter()
                    .collect(),
            };
            for d in found {
                let Some(mut t) = Target::resolve(job, &d.labels) else {
                    continue;
                };
                let origin = Arc::make_mut(&mut t.origin);
                origin.resource.attributes.extend(d.resource);
                let key = format!("{}|{}|{:?}", job.name, t.url, t.labels);
                out.entry(key).or_insert((t, client.clone()));
            }
        }
    }
    out
}

/// Keeps one scrape loop per discovered target until shutdown.
/// This node: its name and its kubelet's port.
#[derive(Clone, Debug)]
pub struct NodeSettings {
    pub name: String,
    pub kubelet_port: u16,
}

pub async fn run(
    jobs: Vec<(Arc<Job>, ScrapeClient)>,
    node: NodeSettings,
    pods: Arc<NodePods>,
    cx: LoopContext,
) {
    let mut changes = pods.subscribe();
    let mut running: HashMap<String, ShutdownTrigger> = HashMap::new();
    let mut ids: HashMap<tokio::task::Id, String> = HashMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let wanted = targets(&jobs, &node, &pods.live());
        running.retain(|key, trigger| {
            let keep = wanted.contains_key(key);
            if !keep {
                trigger.stop();
            }
            keep
        });
        for (key, (target, client)) in wanted {
            if running.contains_key(&key) {
                continue;
            }
            let (trigger, stop) = ShutdownTrigger::new();
            tracing::debug!(component = %cx.component, url = %target.url, "target discovered");
            let handle = tasks.spawn(target::run(target, client, cx.clone(), stop));
            ids.insert(handle.id(), key.clone());
            running.insert(key, trigger);
        }
        tokio::select! {
            () = cx.shutdown.stopped() => break,
            r = changes.changed() => if r.is_err() { break },
            Some(ended) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                // A loop ends when its target went away; one that ended otherwise (a panic) is
                // started again on the next pass.
                let id = match ended {
                    Ok((id, ())) => id,
                    Err(e) => e.id(),
                };
                if let Some(key) = ids.remove(&id) {
                    running.remove(&key);
                }
                continue;
            }
        }
        // Changes come in bursts (a rollout): take them together.
        tokio::time::sleep(Duration::from_millis(500)).await;
        changes.borrow_and_update();
    }
    while tasks.join_next().await.is_some() {}
}
