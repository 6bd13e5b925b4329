//! `prometheus_rules` settings: Prometheus's rule-evaluation settings plus the window store's.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use sextant_pipeline::component::BuildError;
use sextant_pipeline::config::units::{ByteSizeValue, DurationValue};
use sextant_rules::notify::{Notifier, NotifyConfig};

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PrometheusRulesConfig {
    /// The sources whose metrics the rules read (a copy of what passes; see the module doc).
    pub inputs: Vec<String>,
    /// Rule files (globs), relative to the working directory, as Prometheus's `rule_files`.
    pub rule_files: Vec<String>,
    /// How often groups without their own `interval` run.
    #[serde(default = "default_evaluation_interval")]
    pub evaluation_interval: DurationValue,
    /// Available to templates as `$externalLabels`.
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
    /// Available to templates as `$externalURL`.
    #[serde(default)]
    pub external_url: String,
    /// How far back an instant selector looks (Prometheus's `query.lookback-delta`).
    #[serde(default = "default_lookback_delta")]
    pub lookback_delta: DurationValue,
    /// The window store's bound; past it new series are refused (counted).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: ByteSizeValue,
    /// The bound of the copies waiting to enter the store; past it they are dropped (counted).
    #[serde(default = "default_input_max_bytes")]
    pub input_max_bytes: ByteSizeValue,
    /// Samples one rule's query may read (Prometheus's `query.max-samples`).
    #[serde(default = "default_query_max_samples")]
    pub query_max_samples: usize,
    /// After a restart, how long a restored pending or firing alert waits for its rule to
    /// return it (the metrics take a while to arrive again) before it is believed gone:
    /// resolved if it was firing, dropped if pending.
    #[serde(default = "default_restore_grace")]
    pub restore_grace: DurationValue,
    /// Notifications of the alerts: Alertmanager's `route`, `receivers` (`sns_configs`) and
    /// `inhibit_rules`, and a silences file (see [`sextant_rules::notify`]). The notifications
    /// leave this source as log records for an `aws_sns` sink.
    #[serde(default)]
    pub alerting: Option<NotifyConfig>,
    /// A ruler pair's Kubernetes Lease: both evaluate, only the holder notifies and writes rule
    /// results to the sinks (see [`super::lease`]). Unset: this process does both on its own.
    #[serde(default)]
    pub lease: Option<super::lease::LeaseConfig>,
    /// A collector of a pool: evaluate nothing, pass on to the sinks only the metric points
    /// the rules' selectors can match (for `otlp` sinks to each ruler of the pair).
    #[serde(default)]
    pub forward_only: bool,
}

fn default_evaluation_interval() -> DurationValue {
    DurationValue(Duration::from_secs(60))
}

fn default_restore_grace() -> DurationValue {
    DurationValue(Duration::from_secs(120))
}

fn default_lookback_delta() -> DurationValue {
    DurationValue(Duration::from_secs(300))
}

fn default_max_bytes() -> ByteSizeValue {
    ByteSizeValue(512 << 20)
}

fn default_input_max_bytes() -> ByteSizeValue {
    ByteSizeValue(64 << 20)
}

fn default_query_max_samples() -> usize {
    50_000_000
}

pub(super) fn validate(config: &PrometheusRulesConfig, name: &str) -> Result<(), BuildError> {
    if config.inputs.is_empty() {
        return Err(BuildError::at(
            name,
            "inputs",
            "name at least one source whose metrics the rules read",
        ));
    }
    if config.rule_files.is_empty() {
        return Err(BuildError::at(
            name,
            "rule_files",
            "name at least one rule file",
        ));
    }
    if config.evaluation_interval.0 < Duration::from_secs(1) {
        return Err(BuildError::at(
            name,
            "evaluation_interval",
            "must be at least 1s",
        ));
    }
    if config.lookback_delta.0 < Duration::from_secs(1) {
        return Err(BuildError::at(
            name,
            "lookback_delta",
            "must be at least 1s",
        ));
    }
    notifier(config, name)?;
    if config.forward_only && (config.alerting.is_some() || config.lease.is_some()) {
        return Err(BuildError::at(
            name,
            "forward_only",
            "a forwarding collector evaluates nothing: alerting and lease belong to the rulers",
        ));
    }
    Ok(())
}

/// The checked `alerting:`, if set.
pub(super) fn notifier(
    config: &PrometheusRulesConfig,
    name: &str,
) -> Result<Option<Notifier>, BuildError> {
    config
        .alerting
        .as_ref()
        .map(|alerting| {
            Notifier::compile(alerting)
                .map_err(|errors| BuildError::at(name, "alerting", errors.join("; ")))
        })
        .transpose()
}
