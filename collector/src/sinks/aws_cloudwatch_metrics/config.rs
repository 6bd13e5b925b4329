//! `type: aws_cloudwatch_metrics` settings. Everything CloudWatch would refuse is refused here, at
//! start-up: a namespace it does not accept, a dimension set over 30 names, an unknown mode.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use sextant_pipeline::component::{BuildError, QueueSettings};
use sextant_pipeline::config::units::{ByteSizeValue, DurationValue};
use sextant_pipeline::flow::batcher::BatchSettings;
use sextant_pipeline::sink::request::RequestSettings;

use super::limits::MAX_DIMENSIONS;
use crate::sinks::aws::AwsSettings;
use crate::sinks::aws_cloudwatch_logs::template::Template;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CloudWatchMetricsConfig {
    pub inputs: Vec<String>,
    /// The CloudWatch namespace of every metric (for example `EKS/Workloads`).
    pub namespace: String,
    /// The dimension sets each metric is published under, as attribute keys looked up on the
    /// point, then on its resource: `[[k8s.cluster.name], [k8s.cluster.name, k8s.namespace.name]]`
    /// publishes every metric twice, rolled up per cluster and per namespace. A point lacking a
    /// key of a set (or with an empty value) is not published under that set. Unset: one set of
    /// all the point's own attributes (at most 30, by key order; the rest are dropped and counted).
    #[serde(default)]
    pub dimensions: Option<Vec<Vec<String>>>,
    /// Names the dimensions get in CloudWatch: `{k8s.cluster.name: ClusterName}`. Unlisted keys
    /// keep their attribute key.
    #[serde(default)]
    pub dimension_names: BTreeMap<String, String>,
    /// How histograms are published: `values` (each non-empty bucket as a value with its count,
    /// which CloudWatch turns into percentiles) or `statistic_set` (count, sum, min, max).
    #[serde(default)]
    pub histograms: HistogramMode,
    /// 60 (standard) or 1 (high resolution, billed higher).
    #[serde(default = "default_resolution")]
    pub storage_resolution: i32,
    /// `put_metric_data` (the API) or `emf` (Embedded Metric Format documents through
    /// CloudWatch Logs, split at 100 metrics a document).
    #[serde(default)]
    pub mode: Mode,
    /// Where `mode: emf` writes; templated like the `aws_cloudwatch_logs` sink's names.
    #[serde(default)]
    pub emf: Option<EmfSettings>,
    /// Series whose cumulative values are tracked (to publish deltas) at once; past it, new
    /// series are dropped and counted until old ones expire.
    #[serde(default = "default_max_series")]
    pub max_series: usize,
    /// A series not seen for this long is forgotten (its next point starts a new baseline).
    #[serde(default = "default_series_ttl")]
    pub series_ttl: DurationValue,
    #[serde(default)]
    pub aws: AwsSettings,
    #[serde(default = "default_batch")]
    pub batch: BatchSettings,
    #[serde(default)]
    pub request: RequestSettings,
    #[serde(default)]
    pub queue: QueueSettings,
    /// Check the backend at start (see [`sextant_pipeline::sink::healthcheck`]); `false` skips it.
    #[serde(default = "default_true")]
    pub healthcheck: bool,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HistogramMode {
    #[default]
    Values,
    StatisticSet,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    PutMetricData,
    Emf,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EmfSettings {
    pub log_group: String,
    pub log_stream: String,
    #[serde(default = "default_true")]
    pub create_missing: bool,
    #[serde(default)]
    pub retention_days: Option<i32>,
}

fn default_true() -> bool {
    true
}

fn default_resolution() -> i32 {
    60
}

fn default_max_series() -> usize {
    500_000
}

fn default_series_ttl() -> DurationValue {
    DurationValue(Duration::from_secs(15 * 60))
}

fn default_batch() -> BatchSettings {
    BatchSettings {
        max_events: 20_000,
        max_bytes: ByteSizeValue(4 * 1024 * 1024),
        timeout: DurationValue(Duration::from_secs(5)),
    }
}

/// Whether CloudWatch accepts `name` as a namespace: 1–255 printable ASCII characters, not
/// starting with `:` and not in the reserved `AWS/` space.
fn check_namespace(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err("namespace must be 1 to 255 characters".into());
    }
    if !name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err("namespace must be printable ASCII".into());
    }
    if name.starts_with(':') {
        return Err("namespace must not start with ':'".into());
    }
    if name.starts_with("AWS/") {
        return Err("namespaces starting with AWS/ are reserved for AWS".into());
    }
    Ok(())
}

impl CloudWatchMetricsConfig {
    /// Checks the settings and compiles the dimension plan and the EMF destination's templates.
    pub fn prepare(&self, key: &str) -> Result<super::PreparedMetrics, BuildError> {
        check_namespace(&self.namespace).map_err(|e| BuildError::at(key, "namespace", e))?;
        if let Some(sets) = &self.dimensions {
            if sets.is_empty() {
                return Err(BuildError::at(
                    key,
                    "dimensions",
                    "give at least one set (`[[]]` publishes without dimensions)",
                ));
            }
            for (i, set) in sets.iter().enumerate() {
                if set.len() > MAX_DIMENSIONS {
                    return Err(BuildError::at(
                        key,
                        &format!("dimensions[{i}]"),
                        format!(
                            "a set has {} names; CloudWatch allows {MAX_DIMENSIONS}",
                            set.len()
                        ),
                    ));
                }
            }
        }
        for (name, renamed) in &self.dimension_names {
            if renamed.is_empty() || renamed.len() > 255 || renamed.starts_with(':') {
                return Err(BuildError::at(
                    key,
                    &format!("dimension_names.{name}"),
                    format!("{renamed:?} is not a name CloudWatch accepts (1-255 characters, not starting with ':')"),
                ));
            }
        }
        if self.storage_resolution != 1 && self.storage_resolution != 60 {
            return Err(BuildError::at(key, "storage_resolution", "must be 1 or 60"));
        }
        if self.max_series == 0 {
            return Err(BuildError::at(key, "max_series", "must be at least 1"));
        }
        let emf = match (self.mode, &self.emf) {
            (Mode::Emf, None) => {
                return Err(BuildError::at(
                    key,
                    "emf",
                    "mode: emf needs emf: {log_group, log_stream}",
                ))
            }
            (Mode::PutMetricData, Some(_)) => {
                return Err(BuildError::at(key, "emf", "is only used with mode: emf"))
            }
            (Mode::Emf, Some(emf)) => {
                let group = Template::parse(&emf.log_group)
                    .map_err(|e| BuildError::at(key, "emf.log_group", e))?;
                let stream = Template::parse(&emf.log_stream)
                    .map_err(|e| BuildError::at(key, "emf.log_stream", e))?;
                crate::sinks::aws_cloudwatch_logs::config::check_retention(
                    key,
                    "emf.retention_days",
                    emf.retention_days,
                )?;
                Some((emf.clone(), group, stream))
            }
            (Mode::PutMetricData, None) => None,
        };
        Ok(super::PreparedMetrics {
            config: self.clone(),
            plan: super::dimensions::Plan::new(self.dimensions.as_deref(), &self.dimension_names),
            emf,
        })
    }
}

sextant_pipeline::sink_config!(
    CloudWatchMetricsConfig,
    "aws_cloudwatch_metrics",
    sextant_pipeline::flow::event::Signals::METRICS,
    prepare = CloudWatchMetricsConfig::prepare,
    build = super::build
);
