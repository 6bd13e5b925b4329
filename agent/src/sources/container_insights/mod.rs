//! Source `container_insights` (agent): pod, container and node CPU and memory with the
//! CloudWatch agent's Container Insights names and dimensions (`pod_cpu_utilization`,
//! `node_memory_utilization`, … by `ClusterName`, `NodeName`, `Namespace`, `PodName`,
//! `ContainerName`), so `aws_cloudwatch_metrics` with `namespace: ContainerInsights` fills the
//! Container Insights metrics for users who replace the CloudWatch agent.
//!
//! Every `interval` it reads the kubelet's `/metrics/resource` (HTTPS with the service account's
//! token, like `prometheus_scrape`'s `role: node`), turns CPU counters into cores between two
//! readings (by the kubelet's own timestamps), takes requests, limits, restarts and running
//! containers from this node's pods (the agent's one pod watch), and the node's capacity from
//! `/proc` under `root` ([`compute`] has the formulas); pod network rates from its
//! `/metrics/cadvisor` ([`pod_network`]); the node's network rates and block
//! filesystems from the host's `/proc` and `statvfs` ([`node_stats`]). Which metrics are covered, and which
//! are not, is in the README.
//!
//! A failed reading (kubelet unreachable, TLS, HTTP status, malformed body) is counted
//! (`sextant_component_errors_total{error_type=<reason>}`), logged at a rate limit, and the
//! next interval tries again; CPU rates then restart from the next good reading.

pub mod compute;
pub mod node_stats;
pub mod pod_network;
pub mod quantity;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize;
use sextant_pipeline::component::{BuildError, SourceContext, Task};
use sextant_pipeline::config::units::DurationValue;
use sextant_pipeline::flow::event::{KeyValue, Origin, Resource, Scope, Text};
use sextant_pipeline::telemetry::LogLimiter;

use super::host_metrics::procfs;
use super::prometheus_scrape::client::ScrapeClient;
use super::prometheus_scrape::config::{KubernetesSettings, Scheme, TlsConfig};
use crate::exposition::labels::parse_labels;
use crate::exposition::{Format, Lexer, Line};
use compute::{Node, PodSpec, Reading};

/// The largest `/metrics/cadvisor` body read (a busy node's is a few MiB).
const CADVISOR_BODY_LIMIT: usize = 64 * 1024 * 1024;

const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ContainerInsightsConfig {
    /// The `ClusterName` dimension; default `$CLUSTER_NAME`.
    pub cluster_name: Option<String>,
    pub interval: DurationValue,
    /// Where the host's `/proc` is (`/host` in the chart), for the node's capacity.
    pub root: PathBuf,
    pub kubelet: KubeletSettings,
    pub kubernetes: KubernetesSettings,
}

impl Default for ContainerInsightsConfig {
    fn default() -> Self {
        Self {
            cluster_name: None,
            interval: DurationValue(Duration::from_secs(60)),
            root: PathBuf::from("/"),
            kubelet: KubeletSettings::default(),
            kubernetes: KubernetesSettings::default(),
        }
    }
}

/// `kubelet:` of `container_insights`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KubeletSettings {
    /// `host:port`; default `$NODE_IP:10250` (or the host IP this node's pods report).
    pub address: Option<String>,
    pub scheme: Scheme,
    /// Default: the service account's token, when the file exists.
    pub bearer_token_file: Option<PathBuf>,
    /// Default: no verification (EKS kubelets serve self-signed certificates).
    pub tls_config: TlsConfig,
    pub timeout: DurationValue,
}

impl Default for KubeletSettings {
    fn default() -> Self {
        Self {
            address: None,
            scheme: Scheme::Https,
            bearer_token_file: None,
            tls_config: TlsConfig {
                insecure_skip_verify: true,
                ..Default::default()
            },
            timeout: DurationValue(Duration::from_secs(10)),
        }
    }
}

fn cluster_name(config: &ContainerInsightsConfig) -> Option<String> {
    config
        .cluster_name
        .clone()
        .or_else(|| std::env::var("CLUSTER_NAME").ok())
        .filter(|c| !c.is_empty())
}

fn validate(config: &ContainerInsightsConfig, name: &str) -> Result<(), BuildError> {
    if config.interval.0 < Duration::from_secs(1) {
        return Err(BuildError::at(name, "interval", "must be at least 1s"));
    }
    Ok(())
}

sextant_pipeline::source_config!(
    ContainerInsightsConfig,
    "container_insights",
    sextant_pipeline::flow::event::Signals::METRICS,
    build,
    validate
);

/// What a pod's spec and status say, for [`compute`].
pub fn pod_spec(pod: &Pod) -> PodSpec {
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let containers = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
    let amount = |list: Option<
        &std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
    >,
                  key: &str| {
        list.and_then(|l| l.get(key))
            .and_then(|q| quantity::parse(&q.0))
    };
    let sum = |f: &dyn Fn(&k8s_openapi::api::core::v1::ResourceRequirements) -> Option<f64>| {
        containers
            .iter()
            .map(|c| c.resources.as_ref().and_then(f))
            .collect::<Option<Vec<f64>>>()
            .map(|v| v.iter().sum())
    };
    let requests = |key: &str| {
        containers
            .iter()
            .filter_map(|c| amount(c.resources.as_ref().and_then(|r| r.requests.as_ref()), key))
            .sum()
    };
    let statuses = status
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or_default();
    PodSpec {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        running: status.and_then(|s| s.phase.as_deref()) == Some("Running"),
        containers_running: statuses
            .iter()
            .filter(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
            .count(),
        restarts: statuses.iter().map(|c| c.restart_count.max(0) as u64).sum(),
        cpu_request: requests("cpu"),
        memory_request: requests("memory"),
        cpu_limit: (!containers.is_empty())
            .then(|| sum(&|r| amount(r.limits.as_ref(), "cpu")))
            .flatten(),
        memory_limit: (!containers.is_empty())
            .then(|| sum(&|r| amount(r.limits.as_ref(), "memory")))
            .flatten(),
    }
}

/// The value of label `name` in a parsed label set, or "".
fn label_value(labels: &[(Text, Text)], name: &str) -> String {
    labels
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

/// CPU counters between readings: (value, kubelet timestamp ms) of each.
#[derive(Default)]
pub struct Rates {
    last: HashMap<String, (f64, i64)>,
}

impl Rates {
    /// Cores used since the previous reading of `key`; `None` the first time or after a reset.
    fn rate(&mut self, key: String, value: f64, time_ms: i64) -> Option<f64> {
        let previous = self.last.insert(key, (value, time_ms));
        let (v0, t0) = previous?;
        (time_ms > t0 && value >= v0).then(|| (value - v0) / ((time_ms - t0) as f64 / 1000.0))
    }

    /// Reads a `/metrics/resource` body into usage; series it does not know are ignored.
    pub fn reading(&mut self, body: &[u8], now_ms: i64) -> Result<Reading, String> {
        let mut reading = Reading::default();
        let mut lexer = Lexer::new(body, Format::Text);
        let mut labels = Vec::new();
        let mut seen = std::collections::HashSet::new();
        while let Some(line) = lexer.next_line().map_err(|e| e.to_string())? {
            let Line::Sample(s) = line else { continue };
            let name = std::str::from_utf8(s.name).unwrap_or_default();
            if !name.ends_with("_cpu_usage_seconds_total")
                && !name.ends_with("_memory_working_set_bytes")
            {
                continue;
            }
            parse_labels(s.labels, &mut labels)
                .map_err(|e| format!("line {}: {e}", lexer.line()))?;
            let get = |n: &str| label_value(&labels, n);
            let time = s.timestamp_ms.unwrap_or(now_ms);
            let cpu = name.ends_with("_cpu_usage_seconds_total");
            let (key, slot) = match name.split('_').next() {
                Some("node") => ("node".to_string(), &mut reading.node),
                Some("pod") => {
                    let k = (get("namespace"), get("pod"));
                    (
                        format!("pod/{}/{}", k.0, k.1),
                        reading.pods.entry(k).or_default(),
                    )
                }
                Some("container") => {
                    let k = (get("namespace"), get("pod"), get("container"));
                    (
                        format!("container/{}/{}/{}", k.0, k.1, k.2),
                        reading.containers.entry(k).or_default(),
                    )
                }
                _ => continue,
            };
            if cpu {
                seen.insert(key.clone());
                slot.0 = self.rate(key, s.value, time);
            } else {
                slot.1 = Some(s.value);
            }
        }
        // Pods and containers gone: their counters are forgotten.
        self.keep_only(&seen);
        Ok(reading)
    }

    /// Forgets the counters of keys not in `seen`.
    fn keep_only(&mut self, seen: &std::collections::HashSet<String>) {
        self.last.retain(|k, _| seen.contains(k));
    }
}

fn capacity(root: &std::path::Path) -> Result<(f64, f64), String> {
    let stat = procfs::stat(&procfs::read(root, "proc/stat").map_err(|e| e.to_string())?);
    let meminfo = procfs::meminfo(&procfs::read(root, "proc/meminfo").map_err(|e| e.to_string())?);
    let memory = meminfo
        .iter()
        .find(|(k, _, _)| k == "MemTotal")
        .map(|(_, v, _)| *v as f64 * 1024.0)
        .ok_or("proc/meminfo has no MemTotal")?;
    Ok((stat.cpus.len() as f64, memory))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub fn build(config: &ContainerInsightsConfig, cx: SourceContext) -> Result<Task, BuildError> {
    let cluster = cluster_name(config).ok_or_else(|| {
        BuildError::at(
            &cx.name,
            "cluster_name",
            "is required (or $CLUSTER_NAME): it is the ClusterName dimension",
        )
    })?;
    let k = &config.kubernetes;
    let (node, pods) = crate::kubernetes::this_node_pods(
        k.kubeconfig.as_ref(),
        k.node_name.as_deref(),
        "container_insights",
        &cx.metrics,
    )?;
    let (api, _) = crate::kubernetes::this_node(
        k.kubeconfig.as_ref(),
        Some(&node),
        "container_insights",
        &cx.name,
    )?;
    let kubelet = &config.kubelet;
    let token = kubelet.bearer_token_file.clone().or_else(|| {
        let default = PathBuf::from(SERVICE_ACCOUNT_TOKEN);
        default.exists().then_some(default)
    });
    let client = ScrapeClient::new(&kubelet.tls_config, token)
        .map_err(|e| BuildError::at(&cx.name, "kubelet.tls_config", e))?;
    let (root, interval, timeout, scheme) = (
        config.root.clone(),
        config.interval.0,
        kubelet.timeout.0,
        kubelet.scheme,
    );
    let address = kubelet.address.clone();
    Ok(Box::pin(async move {
        let origin = Arc::new(Origin {
            resource: Resource {
                attributes: vec![
                    KeyValue::new("k8s.cluster.name", cluster.as_str()),
                    KeyValue::new("k8s.node.name", node.as_str()),
                ],
                ..Default::default()
            },
            scope: Scope {
                name: "sextant/container_insights".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                ..Default::default()
            },
        });
        let limiter = LogLimiter::default();
        let mut rates = Rates::default();
        let mut network_rates = Rates::default();
        let mut node_stats = Some(node_stats::NodeStats::default());
        // This node's EC2 instance: looked up until the API answers (once it says the node
        // has none, never again).
        let mut instance_id: Option<Option<String>> = None;
        let mut every = super::Every::new(interval);
        cx.metrics.set_up(true);
        while every.tick(&cx.shutdown).await {
            let live = pods.live();
            let host = address.clone().or_else(|| {
                let ip = std::env::var("NODE_IP")
                    .ok()
                    .filter(|i| !i.is_empty())
                    .or_else(|| {
                        live.iter()
                            .find_map(|p| p.status.as_ref().and_then(|s| s.host_ip.clone()))
                    })?;
                Some(format!(
                    "{ip}:{}",
                    super::prometheus_scrape::discovery::KUBELET_PORT
                ))
            });
            let Some(host) = host else {
                cx.metrics.error("kubelet_address");
                if let Some(suppressed) = limiter.allow() {
                    tracing::warn!(component = %cx.name, suppressed, "no kubelet address yet: set kubelet.address or $NODE_IP");
                }
                continue;
            };
            let url = format!("{}://{host}/metrics/resource", scheme.as_str());
            let result = match client.fetch(&url, timeout, 16 * 1024 * 1024).await {
                Ok(f) => rates
                    .reading(&f.body, now_ms())
                    .map_err(|e| ("malformed", e)),
                Err(e) => Err((e.reason(), e.to_string())),
            };
            let mut reading = match result {
                Ok(r) => r,
                Err((reason, message)) => {
                    cx.metrics.error(reason);
                    if let Some(suppressed) = limiter.allow() {
                        tracing::warn!(component = %cx.name, %url, reason, error = %message, suppressed, "kubelet resource metrics unreadable");
                    }
                    continue;
                }
            };
            // Pod network from cAdvisor's series; without them the rest still goes out.
            let cadvisor = format!("{}://{host}/metrics/cadvisor", scheme.as_str());
            let network = match client.fetch(&cadvisor, timeout, CADVISOR_BODY_LIMIT).await {
                Ok(f) => pod_network::read(&mut network_rates, &f.body, now_ms())
                    .map_err(|e| ("cadvisor_malformed".to_string(), e)),
                Err(e) => Err((format!("cadvisor_{}", e.reason()), e.to_string())),
            };
            match network {
                Ok(pods) => reading.pod_network = pods,
                Err((reason, message)) => {
                    cx.metrics.error(&reason);
                    if let Some(suppressed) = limiter.allow() {
                        tracing::warn!(component = %cx.name, url = %cadvisor, reason, error = %message, suppressed, "kubelet cadvisor metrics unreadable");
                    }
                }
            }
            let (cores, memory) = match capacity(&root) {
                Ok(c) => c,
                Err(e) => {
                    cx.metrics.error("capacity");
                    if let Some(suppressed) = limiter.allow() {
                        tracing::warn!(component = %cx.name, error = %e, suppressed, "node capacity unreadable");
                    }
                    continue;
                }
            };
            if instance_id.is_none() {
                match crate::kubernetes::node_instance_id(&api, &node).await {
                    Ok(id) => instance_id = Some(id),
                    Err(e) => {
                        cx.metrics.error("node_lookup");
                        if let Some(suppressed) = limiter.allow() {
                            tracing::warn!(component = %cx.name, error = %e, suppressed, "this node's instance id unknown yet (needs get on nodes)");
                        }
                    }
                }
            }
            let node_info = Node {
                cluster: cluster.clone(),
                name: node.clone(),
                instance_id: instance_id.clone().flatten(),
                cores,
                memory,
            };
            let specs: Vec<PodSpec> = live.iter().map(|p| pod_spec(p)).collect();
            let time_ns = u64::try_from(now_ms()).unwrap_or(0) * 1_000_000;
            let mut metrics = compute::metrics(&node_info, &reading, &specs, &origin, time_ns);
            // The node's network and filesystems (statvfs may block: off the runtime).
            let mut stats = node_stats.take().unwrap_or_default();
            let stats_root = root.clone();
            let read = tokio::task::spawn_blocking(move || {
                let reading = stats.read(&stats_root, now_ms());
                (stats, reading)
            })
            .await;
            match read {
                Ok((back, Ok(node_reading))) => {
                    node_stats = Some(back);
                    metrics.extend(compute::node_stats_metrics(
                        &node_info,
                        &node_reading,
                        &origin,
                        time_ns,
                    ));
                }
                Ok((back, Err(e))) => {
                    node_stats = Some(back);
                    cx.metrics.error("node_stats");
                    if let Some(suppressed) = limiter.allow() {
                        tracing::warn!(component = %cx.name, error = %e, suppressed, "node network and filesystems unreadable");
                    }
                }
                Err(_) => cx.metrics.error("node_stats"),
            }
            super::send_metrics(&cx.out, &cx.metrics, metrics).await;
        }
        cx.metrics.set_up(false);
    }))
}

#[cfg(test)]
mod tests;
