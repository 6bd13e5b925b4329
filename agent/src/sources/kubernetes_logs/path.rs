//! What a pod log path says: `<root>/<namespace>_<pod>_<uid>/<container>/<restart>.log[.<rotation>]`.
//! Namespace and pod names cannot contain `_` (they are DNS names), so the split is exact.

use std::path::Path;

use sextant_pipeline::flow::event::{KeyValue, Value};

#[derive(Debug, PartialEq, Eq)]
pub struct PodLogPath {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    pub container: String,
    pub restart_count: Option<i64>,
}

impl PodLogPath {
    pub fn parse(path: &Path) -> Option<Self> {
        let file = path.file_name()?.to_str()?;
        let container = path.parent()?.file_name()?.to_str()?;
        let pod_dir = path.parent()?.parent()?.file_name()?.to_str()?;
        let mut parts = pod_dir.splitn(3, '_');
        let (namespace, pod, uid) = (parts.next()?, parts.next()?, parts.next()?);
        if namespace.is_empty() || pod.is_empty() || uid.is_empty() || container.is_empty() {
            return None;
        }
        let restart_count = file.split('.').next().and_then(|n| n.parse().ok());
        Some(Self {
            namespace: namespace.to_owned(),
            pod: pod.to_owned(),
            uid: uid.to_owned(),
            container: container.to_owned(),
            restart_count,
        })
    }

    pub fn attributes(&self) -> Vec<KeyValue> {
        let mut a = vec![
            KeyValue::new("k8s.namespace.name", self.namespace.as_str()),
            KeyValue::new("k8s.pod.name", self.pod.as_str()),
            KeyValue::new("k8s.pod.uid", self.uid.as_str()),
            KeyValue::new("k8s.container.name", self.container.as_str()),
        ];
        if let Some(n) = self.restart_count {
            a.push(KeyValue::new("k8s.container.restart_count", Value::Int(n)));
        }
        a
    }
}
