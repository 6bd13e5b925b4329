//! Container Insights metrics from one reading of the kubelet's resource metrics and this
//! node's pods: pure, so tests give it numbers and read percentages.
//!
//! Names, units and dimensions follow the CloudWatch agent's Container Insights for EKS:
//! utilization is usage over the node's capacity (or over the pod's limits for
//! `*_over_pod_limit`), reserved capacity is requests over capacity, all in percent; CPU usage
//! is a rate between two readings (cores), memory the working set.

use std::collections::HashMap;

use super::node_stats::{Interface, NodeReading, NETWORK_FIELDS};

use sextant_pipeline::flow::event::{KeyValue, Metric, MetricData, Number, NumberPoint, Origin};
use std::sync::Arc;

/// What a pod's spec and status say.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodSpec {
    pub namespace: String,
    pub name: String,
    pub running: bool,
    pub containers_running: usize,
    pub restarts: u64,
    pub cpu_request: f64,
    pub memory_request: f64,
    /// Sums of the limits, when every container has one.
    pub cpu_limit: Option<f64>,
    pub memory_limit: Option<f64>,
}

/// CPU cores in use (a rate between readings) and memory working set in bytes, each when known.
pub type Usage = (Option<f64>, Option<f64>);

/// One reading: usage by node, pod and container.
#[derive(Clone, Debug, Default)]
pub struct Reading {
    pub node: Usage,
    /// By (namespace, pod).
    pub pods: HashMap<(String, String), Usage>,
    /// By (namespace, pod, container).
    pub containers: HashMap<(String, String, String), Usage>,
    /// Network rates by (namespace, pod), per interface (from cAdvisor's series).
    pub pod_network: HashMap<(String, String), Vec<Interface>>,
}

/// The node: its name and capacity.
#[derive(Clone, Debug)]
pub struct Node {
    pub cluster: String,
    pub name: String,
    /// The EC2 instance, once known (the `InstanceId` dimension of node metrics).
    pub instance_id: Option<String>,
    pub cores: f64,
    pub memory: f64,
}

impl Node {
    /// The dimensions of a node-level point: `ClusterName`, `NodeName`, `InstanceId` when
    /// known, `extra`, and `Type` `kind`.
    fn dims(&self, kind: &str, extra: &[(&str, &str)]) -> Vec<KeyValue> {
        let mut d = vec![
            KeyValue::new("ClusterName", self.cluster.as_str()),
            KeyValue::new("NodeName", self.name.as_str()),
        ];
        d.extend(
            self.instance_id
                .as_deref()
                .map(|id| KeyValue::new("InstanceId", id)),
        );
        d.extend(extra.iter().map(|(k, v)| KeyValue::new(*k, *v)));
        d.push(KeyValue::new("Type", kind));
        d
    }
}

struct Out {
    metrics: Vec<Metric>,
    origin: Arc<Origin>,
    time_ns: u64,
}

impl Out {
    fn new(origin: &Arc<Origin>, time_ns: u64) -> Self {
        Self {
            metrics: Vec::new(),
            origin: origin.clone(),
            time_ns,
        }
    }

    fn push(&mut self, name: &str, unit: &str, attributes: Vec<KeyValue>, value: f64) {
        if !value.is_finite() {
            return;
        }
        let point = NumberPoint {
            attributes,
            time_unix_nano: self.time_ns,
            value: Some(Number::Double(value)),
            ..Default::default()
        };
        if let Some(m) = self.metrics.iter_mut().find(|m| m.name == name) {
            if let Some(MetricData::Gauge(points)) = m.data.as_mut() {
                points.push(point);
            }
            return;
        }
        self.metrics.push(Metric {
            origin: self.origin.clone(),
            name: name.into(),
            description: String::new(),
            unit: unit.into(),
            metadata: Vec::new(),
            data: Some(MetricData::Gauge(vec![point])),
        });
    }
}

fn percent(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        100.0 * part / whole
    } else {
        f64::NAN
    }
}

/// The metrics of one reading.
pub fn metrics(
    node: &Node,
    reading: &Reading,
    pods: &[PodSpec],
    origin: &Arc<Origin>,
    time_ns: u64,
) -> Vec<Metric> {
    let mut out = Out::new(origin, time_ns);
    let cluster = || KeyValue::new("ClusterName", node.cluster.as_str());
    let node_dims = || node.dims("Node", &[]);
    let (node_cpu, node_memory) = reading.node;
    if let Some(cores) = node_cpu {
        out.push(
            "node_cpu_utilization",
            "%",
            node_dims(),
            percent(cores, node.cores),
        );
        out.push(
            "node_cpu_usage_total",
            "{millicores}",
            node_dims(),
            cores * 1000.0,
        );
    }
    if let Some(bytes) = node_memory {
        out.push(
            "node_memory_utilization",
            "%",
            node_dims(),
            percent(bytes, node.memory),
        );
        out.push("node_memory_working_set", "By", node_dims(), bytes);
    }
    out.push(
        "node_cpu_limit",
        "{millicores}",
        node_dims(),
        node.cores * 1000.0,
    );
    out.push("node_memory_limit", "By", node_dims(), node.memory);
    let running: Vec<&PodSpec> = pods.iter().filter(|p| p.running).collect();
    let cpu_requests: f64 = running.iter().map(|p| p.cpu_request).sum();
    let memory_requests: f64 = running.iter().map(|p| p.memory_request).sum();
    out.push(
        "node_cpu_reserved_capacity",
        "%",
        node_dims(),
        percent(cpu_requests, node.cores),
    );
    out.push(
        "node_memory_reserved_capacity",
        "%",
        node_dims(),
        percent(memory_requests, node.memory),
    );
    out.push(
        "node_number_of_running_pods",
        "{pods}",
        node_dims(),
        running.len() as f64,
    );
    out.push(
        "node_number_of_running_containers",
        "{containers}",
        node_dims(),
        running.iter().map(|p| p.containers_running).sum::<usize>() as f64,
    );

    let mut per_namespace: HashMap<&str, usize> = HashMap::new();
    for pod in &running {
        *per_namespace.entry(pod.namespace.as_str()).or_default() += 1;
        let dims_of = |kind: &str, interface: Option<&str>| {
            let mut d = vec![
                cluster(),
                KeyValue::new("NodeName", node.name.as_str()),
                KeyValue::new("Namespace", pod.namespace.as_str()),
                KeyValue::new("PodName", pod.name.as_str()),
            ];
            d.extend(interface.map(|name| KeyValue::new("interface", name)));
            d.push(KeyValue::new("Type", kind));
            d
        };
        let dims = || dims_of("Pod", None);
        let (cpu, memory) = reading
            .pods
            .get(&(pod.namespace.clone(), pod.name.clone()))
            .copied()
            .unwrap_or((None, None));
        if let Some(cores) = cpu {
            out.push(
                "pod_cpu_utilization",
                "%",
                dims(),
                percent(cores, node.cores),
            );
            if let Some(limit) = pod.cpu_limit {
                out.push(
                    "pod_cpu_utilization_over_pod_limit",
                    "%",
                    dims(),
                    percent(cores, limit),
                );
            }
        }
        if let Some(bytes) = memory {
            out.push(
                "pod_memory_utilization",
                "%",
                dims(),
                percent(bytes, node.memory),
            );
            if let Some(limit) = pod.memory_limit {
                out.push(
                    "pod_memory_utilization_over_pod_limit",
                    "%",
                    dims(),
                    percent(bytes, limit),
                );
            }
        }
        out.push(
            "pod_cpu_reserved_capacity",
            "%",
            dims(),
            percent(pod.cpu_request, node.cores),
        );
        out.push(
            "pod_memory_reserved_capacity",
            "%",
            dims(),
            percent(pod.memory_request, node.memory),
        );
        out.push(
            "pod_number_of_container_restarts",
            "{restarts}",
            dims(),
            pod.restarts as f64,
        );
        if let Some(interfaces) = reading
            .pod_network
            .get(&(pod.namespace.clone(), pod.name.clone()))
        {
            push_network(&mut out, "pod", interfaces, dims_of, "Pod", "PodNet");
        }
    }
    let mut containers: Vec<_> = reading.containers.iter().collect();
    containers.sort_by(|a, b| a.0.cmp(b.0));
    for ((namespace, pod, container), (cpu, memory)) in containers {
        let dims = || {
            vec![
                cluster(),
                KeyValue::new("NodeName", node.name.as_str()),
                KeyValue::new("Namespace", namespace.as_str()),
                KeyValue::new("PodName", pod.as_str()),
                KeyValue::new("ContainerName", container.as_str()),
                KeyValue::new("Type", "Container"),
            ]
        };
        if let Some(cores) = cpu {
            out.push(
                "container_cpu_utilization",
                "%",
                dims(),
                percent(*cores, node.cores),
            );
        }
        if let Some(bytes) = memory {
            out.push(
                "container_memory_utilization",
                "%",
                dims(),
                percent(*bytes, node.memory),
            );
        }
    }
    let mut namespaces: Vec<_> = per_namespace.into_iter().collect();
    namespaces.sort();
    for (namespace, n) in namespaces {
        let dims = vec![
            cluster(),
            KeyValue::new("Namespace", namespace),
            KeyValue::new("Type", "ClusterNamespace"),
        ];
        out.push("namespace_number_of_running_pods", "{pods}", dims, n as f64);
    }
    out.metrics
}

/// The metrics of one reading of the node's network and filesystems: per interface
/// (`node_interface_network_*`, `Type` `NodeNet`, by `interface`) and summed over them
/// (`node_network_*` and `node_network_total_bytes`, `Type` `Node`), per second; per block device
/// (`node_filesystem_*`, `Type` `NodeFS`, by `device` and `fstype`).
pub fn node_stats_metrics(
    node: &Node,
    stats: &NodeReading,
    origin: &Arc<Origin>,
    time_ns: u64,
) -> Vec<Metric> {
    let mut out = Out::new(origin, time_ns);
    let dims = |kind: &str, extra: &[(&str, &str)]| node.dims(kind, extra);
    push_network(
        &mut out,
        "node",
        &stats.interfaces,
        |kind, interface| match interface {
            Some(name) => dims(kind, &[("interface", name)]),
            None => dims(kind, &[]),
        },
        "Node",
        "NodeNet",
    );
    for fs in &stats.filesystems {
        let fs_dims = || dims("NodeFS", &[("device", &fs.device), ("fstype", &fs.fstype)]);
        out.push("node_filesystem_capacity", "By", fs_dims(), fs.capacity);
        out.push("node_filesystem_usage", "By", fs_dims(), fs.usage);
        out.push("node_filesystem_available", "By", fs_dims(), fs.available);
        if fs.capacity > 0.0 {
            out.push(
                "node_filesystem_utilization",
                "%",
                fs_dims(),
                percent(fs.usage, fs.capacity),
            );
        }
        out.push("node_filesystem_inodes", "{inodes}", fs_dims(), fs.inodes);
        out.push(
            "node_filesystem_inodes_free",
            "{inodes}",
            fs_dims(),
            fs.inodes_free,
        );
    }
    out.metrics
}

fn network_unit(field: &str) -> &'static str {
    if field.ends_with("_bytes") {
        "By/s"
    } else {
        "{packet}/s"
    }
}

/// Network rates of a node or a pod (`prefix`): per interface as `{prefix}_interface_network_*`
/// (`Type` `interface_kind`, dimensions from `dims(kind, Some(interface))`), and summed over the
/// interfaces as `{prefix}_network_*` and `{prefix}_network_total_bytes` (`Type` `kind`).
fn push_network(
    out: &mut Out,
    prefix: &str,
    interfaces: &[Interface],
    dims: impl Fn(&str, Option<&str>) -> Vec<KeyValue>,
    kind: &str,
    interface_kind: &str,
) {
    let mut sums: [Option<f64>; 8] = [None; 8];
    for interface in interfaces {
        let interface_dims = || dims(interface_kind, Some(&interface.name));
        for (i, (field, _)) in NETWORK_FIELDS.iter().enumerate() {
            let Some(rate) = interface.rates[i] else {
                continue;
            };
            sums[i] = Some(sums[i].unwrap_or(0.0) + rate);
            out.push(
                &format!("{prefix}_interface_network_{field}"),
                network_unit(field),
                interface_dims(),
                rate,
            );
        }
        if let (Some(rx), Some(tx)) = (interface.rates[0], interface.rates[4]) {
            out.push(
                &format!("{prefix}_interface_network_total_bytes"),
                "By/s",
                interface_dims(),
                rx + tx,
            );
        }
    }
    for (i, (field, _)) in NETWORK_FIELDS.iter().enumerate() {
        if let Some(sum) = sums[i] {
            out.push(
                &format!("{prefix}_network_{field}"),
                network_unit(field),
                dims(kind, None),
                sum,
            );
        }
    }
    if let (Some(rx), Some(tx)) = (sums[0], sums[4]) {
        out.push(
            &format!("{prefix}_network_total_bytes"),
            "By/s",
            dims(kind, None),
            rx + tx,
        );
    }
}
