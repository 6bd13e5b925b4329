//! Source `host_metrics` (agent): the node's own metrics from `/proc` and `/sys` under `root`
//! (the chart mounts the host's at `/host`), with node_exporter 1.5's names, labels, types and
//! units, so dashboards and rules written for node_exporter work unchanged: CPU, memory, load,
//! filesystems, disk I/O, network, pressure (PSI), file descriptors, boot time and time.
//!
//! Every `interval` the collectors run on a blocking thread ([`system`], [`devices`],
//! [`filesystem`]) and their families go out as one batch of OTLP metrics ([`families`]):
//! counters are cumulative sums that started at boot, gauges gauges. The resource is the host
//! (`host.name`, `host.arch`, `os.type`, and `k8s.node.name` from `$NODE_NAME`).
//!
//! A collector that fails (a file missing or malformed) is counted
//! (`sextant_component_errors_total{error_type="collector_<name>"}`) and logged at a rate limit;
//! the others still report. A collector whose files do not exist on this kernel (no PSI) is
//! turned off with one log line.

pub mod devices;
pub mod families;
pub mod filesystem;
pub mod procfs;
pub mod system;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use sextant_pipeline::component::{BuildError, SourceContext, Task};
use sextant_pipeline::config::units::DurationValue;
use sextant_pipeline::flow::event::{KeyValue, Metric, Origin, Resource, Scope};
use sextant_pipeline::telemetry::LogLimiter;

use families::Families;
use procfs::CollectError;

/// The collectors, by the names node_exporter gives them.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Collector {
    Cpu,
    Meminfo,
    Loadavg,
    Filesystem,
    Diskstats,
    Netdev,
    Pressure,
    Filefd,
    Time,
}

impl Collector {
    const ALL: [Collector; 9] = [
        Collector::Cpu,
        Collector::Meminfo,
        Collector::Loadavg,
        Collector::Filesystem,
        Collector::Diskstats,
        Collector::Netdev,
        Collector::Pressure,
        Collector::Filefd,
        Collector::Time,
    ];

    fn name(self) -> &'static str {
        match self {
            Collector::Cpu => "cpu",
            Collector::Meminfo => "meminfo",
            Collector::Loadavg => "loadavg",
            Collector::Filesystem => "filesystem",
            Collector::Diskstats => "diskstats",
            Collector::Netdev => "netdev",
            Collector::Pressure => "pressure",
            Collector::Filefd => "filefd",
            Collector::Time => "time",
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HostMetricsConfig {
    /// Where the host's `/proc` and `/sys` are (`/host` in the chart).
    pub root: PathBuf,
    pub interval: DurationValue,
    /// Which collectors run; default all.
    pub collectors: Vec<Collector>,
    pub filesystem: FilesystemSettings,
    pub network: NetworkSettings,
    /// The resource's `service.name`: the `job` label of these series in Prometheus terms (the
    /// node name, or else the host name, is the `instance`), so a cluster's nodes stay apart.
    pub job: String,
}

/// `network:` of `host_metrics`: node_exporter's `--collector.netdev.device-exclude`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkSettings {
    /// Devices not reported (a regex; empty: none, as upstream node_exporter; Debian's package
    /// says `^lo$`).
    pub device_exclude: String,
}

/// `filesystem:` of `host_metrics`: node_exporter's `--collector.filesystem.*-exclude` flags.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FilesystemSettings {
    /// Mount points not reported (a regex).
    pub mount_points_exclude: String,
    /// Filesystem types not reported (a regex).
    pub fs_types_exclude: String,
}

impl Default for FilesystemSettings {
    fn default() -> Self {
        Self {
            mount_points_exclude: filesystem::MOUNT_EXCLUDE.into(),
            fs_types_exclude: filesystem::FS_TYPE_EXCLUDE.into(),
        }
    }
}

impl Default for HostMetricsConfig {
    fn default() -> Self {
        Self {
            root: PathBuf::from("/"),
            interval: DurationValue(Duration::from_secs(15)),
            collectors: Collector::ALL.to_vec(),
            filesystem: FilesystemSettings::default(),
            network: NetworkSettings::default(),
            job: "node".into(),
        }
    }
}

fn validate(config: &HostMetricsConfig, name: &str) -> Result<(), BuildError> {
    if config.interval.0 < Duration::from_millis(100) {
        return Err(BuildError::at(name, "interval", "must be at least 100ms"));
    }
    for (field, pattern) in [
        (
            "filesystem.mount_points_exclude",
            &config.filesystem.mount_points_exclude,
        ),
        (
            "filesystem.fs_types_exclude",
            &config.filesystem.fs_types_exclude,
        ),
    ] {
        regex::Regex::new(pattern).map_err(|e| BuildError::at(name, field, e))?;
    }
    Ok(())
}

sextant_pipeline::source_config!(
    HostMetricsConfig,
    "host_metrics",
    sextant_pipeline::flow::event::Signals::METRICS,
    build,
    validate
);

/// The collectors' state kept between collections.
pub struct Host {
    root: PathBuf,
    collectors: Vec<Collector>,
    devices: devices::Devices,
    filesystems: filesystem::Filesystems,
    boot_ns: u64,
}

impl Host {
    pub fn new(root: PathBuf, collectors: Vec<Collector>, config: &HostMetricsConfig) -> Self {
        let fs = &config.filesystem;
        Self {
            root,
            collectors,
            devices: devices::Devices::new(&config.network.device_exclude),
            filesystems: filesystem::Filesystems::new(
                &fs.mount_points_exclude,
                &fs.fs_types_exclude,
            ),
            boot_ns: 0,
        }
    }

    /// One collection: the metrics, and the collectors that failed with why.
    pub fn collect(
        &mut self,
        origin: &Arc<Origin>,
    ) -> (Vec<Metric>, Vec<(Collector, CollectError)>) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut out = Families::default();
        let mut failed = Vec::new();
        let root = self.root.clone();
        for &c in &self.collectors {
            let r = match c {
                Collector::Cpu => system::cpu(&root, &mut out).map(|boot| {
                    if let Some(b) = boot {
                        self.boot_ns = b.saturating_mul(1_000_000_000);
                    }
                }),
                Collector::Meminfo => system::memory(&root, &mut out),
                Collector::Loadavg => system::load(&root, &mut out),
                Collector::Filesystem => self.filesystems.collect(&root, &mut out),
                Collector::Diskstats => self.devices.disks(&root, &mut out),
                Collector::Netdev => self.devices.network(&root, &mut out),
                Collector::Pressure => system::pressure(&root, &mut out),
                Collector::Filefd => system::filefd(&root, &mut out),
                Collector::Time => {
                    system::time(&mut out, now.as_secs_f64());
                    Ok(())
                }
            };
            if let Err(e) = r {
                failed.push((c, e));
            }
        }
        let time_ns = now.as_nanos() as u64;
        (out.into_metrics(origin, time_ns, self.boot_ns), failed)
    }

    /// Stops running a collector (its files do not exist on this kernel).
    pub fn disable(&mut self, c: Collector) {
        self.collectors.retain(|&x| x != c);
    }
}

/// The host as a resource: `host.*`, `os.type`, `k8s.node.name` (from `$NODE_NAME`), and
/// `service.name` = `job`, `service.instance.id` = the node name, else the host name, which
/// the Prometheus mapping makes `job` and `instance` (kube-prometheus's node-exporter
/// convention: `instance` is the node).
fn origin(root: &std::path::Path, job: &str, node: &str) -> Arc<Origin> {
    let host = procfs::read(root, "proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let mut attributes = vec![
        KeyValue::new("host.arch", arch),
        KeyValue::new("os.type", "linux"),
    ];
    let instance = if node.is_empty() { host.as_str() } else { node };
    attributes.push(KeyValue::new("service.name", job));
    attributes.push(KeyValue::new("service.instance.id", instance));
    attributes.push(KeyValue::new("host.name", host.as_str()));
    if !node.is_empty() {
        attributes.push(KeyValue::new("k8s.node.name", node));
    }
    Arc::new(Origin {
        resource: Resource {
            attributes,
            ..Default::default()
        },
        scope: Scope {
            name: "sextant/host_metrics".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        },
    })
}

pub fn build(config: &HostMetricsConfig, cx: SourceContext) -> Result<Task, BuildError> {
    let collectors: Vec<Collector> = {
        let mut seen = HashSet::new();
        config
            .collectors
            .iter()
            .copied()
            .filter(|c| seen.insert(*c))
            .collect()
    };
    let root = config.root.clone();
    let interval = config.interval.0;
    let settings = config.clone();
    Ok(Box::pin(async move {
        let node = std::env::var("NODE_NAME").unwrap_or_default();
        let origin = origin(&root, &settings.job, &node);
        let mut host = Some(Host::new(root, collectors, &settings));
        let limiter = LogLimiter::default();
        let mut every = super::Every::new(interval);
        cx.metrics.set_up(true);
        while every.tick(&cx.shutdown).await {
            let Some(mut h) = host.take() else { break };
            let o = origin.clone();
            let Ok((back, metrics, failed)) = tokio::task::spawn_blocking(move || {
                let (metrics, failed) = h.collect(&o);
                (h, metrics, failed)
            })
            .await
            else {
                tracing::error!(component = %cx.name, "host metrics collection panicked; stopping it");
                break;
            };
            host = Some(back);
            for (c, e) in failed {
                let missing = matches!(&e, CollectError::Read(_, io) if io.kind() == std::io::ErrorKind::NotFound);
                if missing && matches!(c, Collector::Pressure) {
                    tracing::info!(component = %cx.name, collector = c.name(), error = %e, "this kernel has no such files; collector off");
                    if let Some(h) = host.as_mut() {
                        h.disable(c);
                    }
                    continue;
                }
                cx.metrics.error(&format!("collector_{}", c.name()));
                if let Some(suppressed) = limiter.allow() {
                    tracing::warn!(component = %cx.name, collector = c.name(), error = %e, suppressed, "host metrics collector failed");
                }
            }
            super::send_metrics(&cx.out, &cx.metrics, metrics).await;
        }
        cx.metrics.set_up(false);
    }))
}

#[cfg(test)]
mod tests;
