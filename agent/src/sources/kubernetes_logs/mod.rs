//! Source `kubernetes_logs`: every container log on this node, from the kubelet's pod log
//! directory, read by the shared file tailer (same checkpoints, acknowledgement-driven offsets,
//! rotation and truncation handling as the `file` source).
//!
//! Each line is CRI (`<time> <stream> <P|F> <message>`) or docker json-file, told apart per line;
//! partial lines are merged. Metadata comes from the path, always, and needs no API:
//! `k8s.namespace.name`, `k8s.pod.name`, `k8s.pod.uid`, `k8s.container.name`,
//! `k8s.container.restart_count`, plus `k8s.node.name`. Pod labels, annotations and the owner
//! workload come from the Kubernetes API when it is there (see [`metadata`]); the log path never
//! waits on it for long.

#[cfg(test)]
mod api_tests;
pub(crate) mod config;
pub(crate) mod metadata;
pub(crate) mod path;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sextant_pipeline::component::{BuildError, SourceContext, Task};
use sextant_pipeline::flow::event::{KeyValue, LogEvent};
use sextant_pipeline::sources::file::format::multiline::{self, MultilineRules};
use sextant_pipeline::sources::file::format::{
    cri::CriDecoder, docker::DockerDecoder, DecodeContext, Disposition, FileFormat, Held,
    JsonMessages, LineDecoder,
};
use sextant_pipeline::sources::file::lines::Line;
use sextant_pipeline::sources::file::spawn_tailer;

pub use config::KubernetesLogsConfig;

pub fn build(config: &KubernetesLogsConfig, cx: SourceContext) -> Result<Task, BuildError> {
    config.validate(&cx.name)?;
    let (include, exclude) = config.globs();
    let node = config
        .node_name
        .clone()
        .or_else(|| std::env::var("NODE_NAME").ok())
        .filter(|n| !n.is_empty());
    let multiline = config
        .multiline
        .iter()
        .map(|m| {
            let rules = m
                .rule
                .compile()
                .map_err(|e| BuildError::invalid(&cx.name, format!("multiline: {e}")))?;
            Ok((m.clone(), Arc::new(rules)))
        })
        .collect::<Result<Vec<_>, BuildError>>()?;
    let api = start_metadata_watch(config, node.as_deref(), &cx)?;
    let format = KubernetesFormat {
        json: JsonMessages {
            parse: config.parse_json,
            keep_original: config.keep_original,
        },
        node,
        multiline,
        api,
    };
    tracing::info!(component = %cx.name, root = %config.root.display(), "collecting container logs");
    spawn_tailer(include, exclude, config.tail.clone(), Arc::new(format), cx)
}

/// Joins this node's pod watch when the API is to be used; it runs while a component holds it.
fn start_metadata_watch(
    config: &KubernetesLogsConfig,
    node: Option<&str>,
    cx: &SourceContext,
) -> Result<Option<ApiMetadata>, BuildError> {
    let settings = &config.kubernetes_api;
    let Some(source) =
        crate::kubernetes::api_source(settings.enabled, settings.kubeconfig.as_ref(), &cx.name)?
    else {
        return Ok(None);
    };
    let Some(node) = node else {
        return Err(BuildError::invalid(
            &cx.name,
            "the Kubernetes API needs this node's name, to watch only its pods: set node_name \
             or $NODE_NAME (from the downward API), or kubernetes_api.enabled: false",
        ));
    };
    let pods =
        crate::kubernetes::node_pods::shared(&source, node, settings.keep_deleted.0, &cx.metrics);
    let cache = Arc::new(metadata::PodCache::new(pods, settings));
    Ok(Some(ApiMetadata {
        cache,
        wait: settings.wait_for_metadata.0,
    }))
}

struct ApiMetadata {
    cache: Arc<metadata::PodCache>,
    wait: Duration,
}

struct KubernetesFormat {
    json: JsonMessages,
    node: Option<String>,
    /// Multiline rules with the containers they apply to; the first that matches wins.
    multiline: Vec<(config::ContainerMultiline, Arc<MultilineRules>)>,
    api: Option<ApiMetadata>,
}

impl KubernetesFormat {
    fn lookup(&self, path: &Path) -> Option<metadata::Lookup> {
        let api = self.api.as_ref()?;
        let pod = path::PodLogPath::parse(path)?;
        Some(api.cache.lookup(&pod.uid))
    }
}

impl FileFormat for KubernetesFormat {
    fn resource(&self, path: &Path) -> Vec<KeyValue> {
        let mut attributes = path::PodLogPath::parse(path)
            .map(|p| p.attributes())
            .unwrap_or_default();
        if let Some(node) = &self.node {
            attributes.push(KeyValue::new("k8s.node.name", node.as_str()));
        }
        if let Some(metadata::Lookup::Found(pod)) = self.lookup(path) {
            attributes.extend(pod.attributes.iter().cloned());
        }
        attributes
    }

    fn generation(&self) -> u64 {
        self.api.as_ref().map_or(0, |a| a.cache.generation())
    }

    fn disposition(&self, path: &Path, waited: Duration) -> Disposition {
        let Some(api) = &self.api else {
            return Disposition::Read;
        };
        match self.lookup(path) {
            // Not a pod log path: nothing to look up.
            None => Disposition::Read,
            Some(metadata::Lookup::Found(pod)) if pod.excluded => Disposition::Skip,
            Some(metadata::Lookup::Found(_)) => Disposition::Read,
            Some(metadata::Lookup::Unknown { expected: true }) if waited < api.wait => {
                Disposition::Wait
            }
            Some(metadata::Lookup::Unknown { .. }) => Disposition::ReadIncomplete,
        }
    }

    fn decoder(&self, path: &Path) -> Box<dyn LineDecoder> {
        let runtime = Box::new(RuntimeDecoder {
            cri: CriDecoder::new(self.json),
            docker: DockerDecoder::new(self.json),
            docker_held: false,
        });
        let pod = path::PodLogPath::parse(path);
        let rules = self
            .multiline
            .iter()
            .find(|(m, _)| {
                pod.as_ref()
                    .is_some_and(|p| m.applies_to(&p.namespace, &p.container))
            })
            .map(|(_, r)| r);
        multiline::wrap(runtime, rules)
    }
}

/// CRI or docker, decided per line (a docker record is a JSON object; a CRI line starts with a
/// timestamp), so a node that changes runtime, or a file of either, is read right.
struct RuntimeDecoder {
    cri: CriDecoder,
    docker: DockerDecoder,
    docker_held: bool,
}

impl LineDecoder for RuntimeDecoder {
    fn decode(&mut self, line: Line<'_>, cx: &DecodeContext<'_>, out: &mut Vec<LogEvent>) -> Held {
        if self.docker_held || line.bytes.first() == Some(&b'{') {
            let held = self.docker.decode(line, cx, out);
            self.docker_held = held != Held::No;
            held
        } else {
            self.cri.decode(line, cx, out)
        }
    }

    fn reset(&mut self) {
        self.cri.reset();
        self.docker.reset();
        self.docker_held = false;
    }
}
