//! `type: kubernetes_logs` settings.

use std::path::PathBuf;

use serde::Deserialize;

use sextant_pipeline::component::BuildError;
use sextant_pipeline::config::units::DurationValue;
use sextant_pipeline::sources::file::format::multiline::MultilineConfig;
use sextant_pipeline::sources::file::TailSettings;

/// A multiline rule and the containers it applies to.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ContainerMultiline {
    /// Namespaces it applies to; empty: all.
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Container names it applies to; empty: all.
    #[serde(default)]
    pub containers: Vec<String>,
    pub rule: MultilineConfig,
}

impl ContainerMultiline {
    pub fn applies_to(&self, namespace: &str, container: &str) -> bool {
        (self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == namespace))
            && (self.containers.is_empty() || self.containers.iter().any(|c| c == container))
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesLogsConfig {
    /// Where the kubelet keeps pod logs: `<root>/<namespace>_<pod>_<uid>/<container>/<n>.log`.
    pub root: PathBuf,
    /// Namespaces whose logs are skipped.
    pub exclude_namespaces: Vec<String>,
    /// Also follow rotated files (`0.log.20240101-000000`, never `.gz`), so lines rotated away
    /// while the agent was down are still read.
    pub include_rotated: bool,
    /// Parse messages that are JSON objects into attributes.
    pub parse_json: bool,
    /// With `parse_json`, keep the whole message as the body (else its `message`/`msg` field).
    pub keep_original: bool,
    /// This node's name (`k8s.node.name`); default: `$NODE_NAME` (set it from the downward API).
    pub node_name: Option<String>,
    /// Multiline rules per container (stack traces); the first that applies wins.
    pub multiline: Vec<ContainerMultiline>,
    /// Pod labels, annotations and owners from the Kubernetes API.
    pub kubernetes_api: KubernetesApiSettings,
    pub tail: TailSettings,
}

/// `kubernetes_api:` of `kubernetes_logs`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KubernetesApiSettings {
    /// `true`, `false`, or unset: on when running in a cluster (`KUBERNETES_SERVICE_HOST`) or
    /// when `kubeconfig` is given.
    pub enabled: Option<bool>,
    /// A kubeconfig file to reach the API with, instead of the in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    /// How long a new pod's files wait for its metadata while the watch is synced; after that
    /// they are read with path metadata only.
    pub wait_for_metadata: DurationValue,
    /// How long a deleted pod's metadata is kept for the rest of its files.
    pub keep_deleted: DurationValue,
    /// Add `k8s.pod.label.<key>` attributes.
    pub labels: bool,
    /// Add `k8s.pod.annotation.<key>` attributes.
    pub annotations: bool,
}

impl Default for KubernetesApiSettings {
    fn default() -> Self {
        Self {
            enabled: None,
            kubeconfig: None,
            wait_for_metadata: DurationValue(std::time::Duration::from_secs(2)),
            keep_deleted: DurationValue(std::time::Duration::from_secs(300)),
            labels: true,
            annotations: true,
        }
    }
}

impl Default for KubernetesLogsConfig {
    fn default() -> Self {
        Self {
            root: PathBuf::from("/var/log/pods"),
            exclude_namespaces: Vec::new(),
            include_rotated: true,
            parse_json: true,
            keep_original: false,
            node_name: None,
            multiline: Vec::new(),
            kubernetes_api: KubernetesApiSettings::default(),
            tail: TailSettings::default(),
        }
    }
}

impl KubernetesLogsConfig {
    pub fn validate(&self, name: &str) -> Result<(), BuildError> {
        let root = self.root.to_string_lossy();
        if root.is_empty() || root.contains(['*', '?', '[']) {
            return Err(BuildError::invalid(
                name,
                format!("root {root:?} must be a plain directory path"),
            ));
        }
        for ns in &self.exclude_namespaces {
            if ns.is_empty() || !ns.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(BuildError::invalid(
                    name,
                    format!("exclude_namespaces: {ns:?} is not a namespace name"),
                ));
            }
        }
        for m in &self.multiline {
            m.rule
                .compile()
                .map_err(|e| BuildError::invalid(name, format!("multiline: {e}")))?;
        }
        self.tail.validate(name)
    }

    /// Glob patterns of the files to follow, and of the ones to skip.
    pub fn globs(&self) -> (Vec<String>, Vec<String>) {
        let root = self.root.display().to_string();
        let root = root.trim_end_matches('/');
        let mut include = vec![format!("{root}/*/*/*.log")];
        if self.include_rotated {
            include.push(format!("{root}/*/*/*.log.*"));
        }
        let mut exclude = vec![format!("{root}/*/*/*.gz"), format!("{root}/*/*/*.tmp")];
        exclude.extend(
            self.exclude_namespaces
                .iter()
                .map(|ns| format!("{root}/{ns}_*/*/*")),
        );
        (include, exclude)
    }
}

sextant_pipeline::source_config!(
    KubernetesLogsConfig,
    "kubernetes_logs",
    sextant_pipeline::flow::event::Signals::LOGS,
    super::build,
    KubernetesLogsConfig::validate
);
