//! `type: prometheus_scrape` settings: Prometheus's own `scrape_configs` field names and
//! defaults, so a job can be pasted from a Prometheus configuration.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use sextant_pipeline::component::BuildError;
use sextant_pipeline::config::units::{ByteSizeValue, DurationValue};

use super::relabel::{RelabelConfig, Rule};

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PrometheusScrapeConfig {
    /// Default for jobs that do not set theirs.
    pub scrape_interval: DurationValue,
    /// Default for jobs that do not set theirs; at most the interval.
    pub scrape_timeout: DurationValue,
    pub scrape_configs: Vec<ScrapeJob>,
    /// How jobs with `kubernetes_sd_configs` reach the API and which node is this one.
    pub kubernetes: KubernetesSettings,
}

/// `kubernetes:` of `prometheus_scrape`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesSettings {
    /// A kubeconfig to use instead of the in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    /// This node's name; default `$NODE_NAME` (from the downward API).
    pub node_name: Option<String>,
    /// The kubelet's port, for `role: node`.
    pub kubelet_port: Option<u16>,
}

impl Default for PrometheusScrapeConfig {
    fn default() -> Self {
        Self {
            scrape_interval: DurationValue(Duration::from_secs(15)),
            scrape_timeout: DurationValue(Duration::from_secs(10)),
            scrape_configs: Vec::new(),
            kubernetes: KubernetesSettings::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    #[default]
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// One job: its targets and how they are scraped.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScrapeJob {
    pub job_name: String,
    pub scrape_interval: Option<DurationValue>,
    pub scrape_timeout: Option<DurationValue>,
    #[serde(default = "default_metrics_path")]
    pub metrics_path: String,
    #[serde(default)]
    pub scheme: Scheme,
    /// URL query parameters.
    #[serde(default)]
    pub params: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub honor_labels: bool,
    #[serde(default = "yes")]
    pub honor_timestamps: bool,
    /// A body (after gzip) larger than this fails the scrape.
    #[serde(default = "default_body_size_limit")]
    pub body_size_limit: ByteSizeValue,
    /// 0: no limit.
    #[serde(default)]
    pub sample_limit: usize,
    #[serde(default)]
    pub label_limit: usize,
    #[serde(default)]
    pub label_name_length_limit: usize,
    #[serde(default)]
    pub label_value_length_limit: usize,
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    /// This node's pods as targets (see `discovery`).
    #[serde(default)]
    pub kubernetes_sd_configs: Vec<super::discovery::KubernetesSdConfig>,
    #[serde(default)]
    pub relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    pub metric_relabel_configs: Vec<RelabelConfig>,
    #[serde(default)]
    pub tls_config: TlsConfig,
    /// A file holding a bearer token, read at each scrape (tokens rotate).
    pub bearer_token_file: Option<PathBuf>,
}

fn default_metrics_path() -> String {
    "/metrics".into()
}

fn yes() -> bool {
    true
}

fn default_body_size_limit() -> ByteSizeValue {
    ByteSizeValue(32 * 1024 * 1024)
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    pub targets: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `tls_config:` of a job.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// The name to verify the certificate against, when not the target's host.
    pub server_name: Option<String>,
    /// Accept any certificate (kubelets often serve self-signed ones).
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// A job checked and compiled: what the scrape loops run with.
#[derive(Clone, Debug)]
pub struct Job {
    pub name: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub config: ScrapeJob,
    pub relabel: Arc<[Rule]>,
    pub metric_relabel: Arc<[Rule]>,
}

fn compile(key: &str, field: &str, rules: &[RelabelConfig]) -> Result<Arc<[Rule]>, BuildError> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            r.compile()
                .map_err(|e| BuildError::at(key, &format!("{field}[{i}]"), e))
        })
        .collect()
}

impl PrometheusScrapeConfig {
    /// Checks every job (names unique, timeouts within intervals, targets `host:port`,
    /// relabelling rules) and compiles them.
    pub fn jobs(&self, name: &str) -> Result<Vec<Job>, BuildError> {
        let mut jobs: Vec<Job> = Vec::new();
        for (i, job) in self.scrape_configs.iter().enumerate() {
            let key = format!("{name}.scrape_configs[{i}]");
            if job.job_name.is_empty() {
                return Err(BuildError::at(&key, "job_name", "must not be empty"));
            }
            if jobs.iter().any(|j| j.name == job.job_name) {
                return Err(BuildError::at(
                    &key,
                    "job_name",
                    format!("{:?} is used twice", job.job_name),
                ));
            }
            let interval = job.scrape_interval.unwrap_or(self.scrape_interval).0;
            let timeout = job
                .scrape_timeout
                .unwrap_or(DurationValue(self.scrape_timeout.0.min(interval)))
                .0;
            if interval.is_zero() {
                return Err(BuildError::at(&key, "scrape_interval", "must be above 0"));
            }
            if timeout.is_zero() || timeout > interval {
                return Err(BuildError::at(
                    &key,
                    "scrape_timeout",
                    format!(
                        "{} must be above 0 and at most scrape_interval ({})",
                        humantime::format_duration(timeout),
                        humantime::format_duration(interval)
                    ),
                ));
            }
            if !job.metrics_path.starts_with('/') {
                return Err(BuildError::at(&key, "metrics_path", "must start with '/'"));
            }
            for (s, sc) in job.static_configs.iter().enumerate() {
                for (t, target) in sc.targets.iter().enumerate() {
                    if target.contains('/') || target.is_empty() {
                        return Err(BuildError::at(
                            &key,
                            &format!("static_configs[{s}].targets[{t}]"),
                            format!("{target:?} is not host:port"),
                        ));
                    }
                }
                for label in sc.labels.keys() {
                    if !crate::exposition::labels::valid_label_name(label) {
                        return Err(BuildError::at(
                            &key,
                            &format!("static_configs[{s}].labels"),
                            format!("{label:?} is not a label name"),
                        ));
                    }
                }
            }
            if job.tls_config.cert_file.is_some() != job.tls_config.key_file.is_some() {
                return Err(BuildError::at(
                    &key,
                    "tls_config",
                    "cert_file and key_file go together",
                ));
            }
            jobs.push(Job {
                name: job.job_name.clone(),
                interval,
                timeout,
                config: job.clone(),
                relabel: compile(&key, "relabel_configs", &job.relabel_configs)?,
                metric_relabel: compile(
                    &key,
                    "metric_relabel_configs",
                    &job.metric_relabel_configs,
                )?,
            });
        }
        if jobs.is_empty() {
            return Err(BuildError::at(
                name,
                "scrape_configs",
                "needs at least one job",
            ));
        }
        Ok(jobs)
    }
}
