//! The kubernetes_logs source against a pod log tree on disk, as the kubelet lays it out.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sextant_pipeline::component::SourceContext;
use sextant_pipeline::config::units::DurationValue;
use sextant_pipeline::flow::batch::Batch;
use sextant_pipeline::flow::event::{Events, LogEvent, Value};
use sextant_pipeline::flow::fanout::Fanout;
use sextant_pipeline::flow::queue::{ByteQueue, WhenFull};
use sextant_pipeline::shutdown::ShutdownTrigger;
use sextant_pipeline::sources::file::TailSettings;
use sextant_pipeline::telemetry::{ComponentMetrics, QueueMetrics};

use super::path::PodLogPath;
use super::*;

#[test]
fn the_path_names_namespace_pod_uid_container_and_restarts() {
    let p = PodLogPath::parse(Path::new(
        "/var/log/pods/payments_api-7d9f_0b1c-22aa/app/3.log",
    ))
    .unwrap();
    assert_eq!(
        p,
        PodLogPath {
            namespace: "payments".into(),
            pod: "api-7d9f".into(),
            uid: "0b1c-22aa".into(),
            container: "app".into(),
            restart_count: Some(3),
        }
    );
    let rotated = PodLogPath::parse(Path::new("/r/ns_pod_uid/c/0.log.20240101-000000")).unwrap();
    assert_eq!(rotated.restart_count, Some(0));
    assert!(PodLogPath::parse(Path::new("/r/not-a-pod-dir/c/0.log")).is_none());
}

/// A `kubernetes_logs` source running in this test's runtime, into a queue the test reads.
pub(super) struct Running {
    pub queue: Arc<ByteQueue<Batch>>,
    pub metrics: ComponentMetrics,
    trigger: ShutdownTrigger,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn start(config: &KubernetesLogsConfig, name: &str, state: &Path) -> Self {
        let queue: Arc<ByteQueue<Batch>> = Arc::new(ByteQueue::new(
            1 << 24,
            WhenFull::Block,
            QueueMetrics::detached(),
        ));
        let (trigger, shutdown) = ShutdownTrigger::new();
        let metrics = ComponentMetrics::new("test", name, "kubernetes_logs");
        let cx = SourceContext {
            name: name.into(),
            data_dir: state.to_owned(),
            out: Fanout::new(vec![queue.clone()]),
            taps: None,
            shutdown,
            metrics: metrics.clone(),
            pods: None,
        };
        let task = tokio::spawn(build(config, cx).unwrap());
        Self {
            queue,
            metrics,
            trigger,
            task,
        }
    }

    /// The next `n` events (acknowledging their batches), or a panic after 10 s (times
    /// [`patience`](crate::test_support::patience)) without one.
    pub async fn collect(&mut self, n: usize) -> Vec<LogEvent> {
        let mut events: Vec<LogEvent> = Vec::new();
        while events.len() < n {
            let b = tokio::time::timeout(
                crate::test_support::patience(Duration::from_secs(10)),
                self.queue.pop(),
            )
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} events arrived", events.len()))
            .unwrap();
            if let Events::Logs(l) = &b.events {
                events.extend(l.iter().cloned());
            }
            b.acks.deliver();
        }
        events
    }

    pub async fn stop(self) {
        self.trigger.stop();
        self.task.await.unwrap();
    }
}

pub(super) fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

pub(super) fn resource(e: &LogEvent, k: &str) -> Option<String> {
    e.origin
        .resource_attribute(k)
        .map(|v| v.to_text().into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_cri_and_docker_pods_with_path_metadata_and_skips_excluded_namespaces() {
    let root = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    write(
        root.path(),
        "shop_checkout-5c_11-22/app/0.log",
        "2024-01-01T00:00:01Z stdout F {\"level\":\"info\",\"msg\":\"order placed\",\"id\":7}\n\
         2024-01-01T00:00:02Z stderr P a long \n\
         2024-01-01T00:00:02Z stderr F stack trace\n",
    );
    write(
        root.path(),
        "shop_checkout-5c_11-22/app/0.log.20240101-000000.gz",
        "compressed, never read\n",
    );
    write(
        root.path(),
        "legacy_web-1_33-44/nginx/2.log",
        "{\"log\":\"GET /\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-01T00:00:03Z\"}\n",
    );
    write(
        root.path(),
        "kube-system_coredns-1_55-66/coredns/0.log",
        "2024-01-01T00:00:04Z stdout F skipped\n",
    );

    let config = KubernetesLogsConfig {
        root: root.path().to_owned(),
        exclude_namespaces: vec!["kube-system".into()],
        node_name: Some("ip-10-0-0-1".into()),
        tail: TailSettings {
            glob_interval: DurationValue(Duration::from_millis(50)),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut source = Running::start(&config, "k8s_logs_test", state.path());
    let events = source.collect(3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        source.queue.is_empty(),
        "nothing from kube-system or the .gz file"
    );
    source.stop().await;
    let mut events = events;

    events.sort_by_key(|e| e.time_unix_nano);
    let [order, trace, nginx] = &events[..] else {
        panic!("{events:?}")
    };
    assert_eq!(order.body, Value::Str("order placed".into()));
    assert_eq!(
        sextant_pipeline::flow::event::find_attribute(&order.attributes, "id"),
        Some(&Value::Int(7))
    );
    assert_eq!(
        resource(order, "k8s.namespace.name").as_deref(),
        Some("shop")
    );
    assert_eq!(
        resource(order, "k8s.pod.name").as_deref(),
        Some("checkout-5c")
    );
    assert_eq!(resource(order, "k8s.pod.uid").as_deref(), Some("11-22"));
    assert_eq!(
        resource(order, "k8s.container.name").as_deref(),
        Some("app")
    );
    assert_eq!(
        resource(order, "k8s.node.name").as_deref(),
        Some("ip-10-0-0-1")
    );
    assert_eq!(trace.body, Value::Str("a long stack trace".into()));
    assert_eq!(nginx.body, Value::Str("GET /".into()));
    assert_eq!(
        resource(nginx, "k8s.container.restart_count").as_deref(),
        Some("2")
    );
    assert_eq!(
        resource(nginx, "k8s.namespace.name").as_deref(),
        Some("legacy")
    );
}
