//! `kubernetes_logs` with pod metadata from the Kubernetes API: against the fake API server of
//! `fake_api` (no real apiserver runs here; see that module), and against no server at all.

use std::time::Duration;

use serde_json::json;

use sextant_pipeline::config::units::DurationValue;
use sextant_pipeline::flow::event::LogEvent;
use sextant_pipeline::sources::file::TailSettings;

use super::config::{KubernetesApiSettings, KubernetesLogsConfig};
use super::metadata::{pod_metadata, EXCLUDE_ANNOTATION};
use super::tests::{resource, write, Running};
use crate::kubernetes::fake_api::{kubeconfig_for, pod, FakeApi};

fn config(root: &std::path::Path, kubeconfig: std::path::PathBuf) -> KubernetesLogsConfig {
    KubernetesLogsConfig {
        root: root.to_owned(),
        node_name: Some("node-a".into()),
        kubernetes_api: KubernetesApiSettings {
            kubeconfig: Some(kubeconfig),
            wait_for_metadata: DurationValue(Duration::from_secs(5)),
            ..Default::default()
        },
        tail: TailSettings {
            glob_interval: DurationValue(Duration::from_millis(50)),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn lines(prefix: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "2024-01-01T00:00:{:02}.{i:09}Z stdout F {prefix} {i}\n",
                i % 60
            )
        })
        .collect()
}

fn of_pod<'a>(events: &'a [LogEvent], pod: &str) -> Vec<&'a LogEvent> {
    events
        .iter()
        .filter(|e| resource(e, "k8s.pod.name").as_deref() == Some(pod))
        .collect()
}

#[test]
fn owners_labels_and_annotations_become_resource_attributes() {
    let p: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod(
        "checkout-7d9f8b6c5-x2x",
        "u1",
        "node-a",
        json!({"app": "checkout", "pod-template-hash": "7d9f8b6c5"}),
        json!({"team": "payments", "kubectl.kubernetes.io/last-applied-configuration": "{..}"}),
        Some(("ReplicaSet", "checkout-7d9f8b6c5")),
    ))
    .unwrap();
    let m = pod_metadata(&p, true, true);
    let text: Vec<(String, String)> = m
        .attributes
        .iter()
        .map(|kv| (kv.key.to_string(), kv.value.to_text().into_owned()))
        .collect();
    assert_eq!(
        text,
        [
            ("k8s.replicaset.name", "checkout-7d9f8b6c5"),
            ("k8s.deployment.name", "checkout"),
            ("k8s.pod.label.app", "checkout"),
            ("k8s.pod.label.pod-template-hash", "7d9f8b6c5"),
            ("k8s.pod.annotation.team", "payments"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    assert!(!m.excluded);

    // A ReplicaSet not made by a Deployment (no matching hash) names no Deployment.
    let p: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod(
        "rs-abc",
        "u2",
        "node-a",
        json!({}),
        json!({ EXCLUDE_ANNOTATION: "true" }),
        Some(("ReplicaSet", "standalone")),
    ))
    .unwrap();
    let m = pod_metadata(&p, false, false);
    assert_eq!(m.attributes.len(), 1, "{:?}", m.attributes);
    assert!(m.excluded);

    for (kind, key) in [
        ("StatefulSet", "k8s.statefulset.name"),
        ("DaemonSet", "k8s.daemonset.name"),
        ("Job", "k8s.job.name"),
    ] {
        let p: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod(
            "p",
            "u3",
            "node-a",
            json!({}),
            json!({}),
            Some((kind, "owner")),
        ))
        .unwrap();
        let m = pod_metadata(&p, true, true);
        assert_eq!(m.attributes.len(), 1);
        assert_eq!(m.attributes[0].key, key);
        assert_eq!(m.attributes[0].value.to_text(), "owner");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_metadata_is_added_late_pods_wait_for_it_and_excluded_pods_are_skipped() {
    let api = FakeApi::start(vec![
        pod(
            "checkout-7d9f8b6c5-x2x",
            "uid-checkout",
            "node-a",
            json!({"app": "checkout", "pod-template-hash": "7d9f8b6c5"}),
            json!({"team": "payments"}),
            Some(("ReplicaSet", "checkout-7d9f8b6c5")),
        ),
        pod(
            "db-0",
            "uid-db",
            "node-a",
            json!({"app": "db"}),
            json!({}),
            Some(("StatefulSet", "db")),
        ),
        pod(
            "noisy",
            "uid-noisy",
            "node-a",
            json!({"app": "noisy"}),
            json!({ EXCLUDE_ANNOTATION: "true" }),
            None,
        ),
        // Another node's pod: never asked for.
        pod(
            "elsewhere",
            "uid-else",
            "node-b",
            json!({}),
            json!({}),
            None,
        ),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pods");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig()).unwrap();
    let noisy = lines("noisy", 500);
    write(
        &root,
        "shop_checkout-7d9f8b6c5-x2x_uid-checkout/app/0.log",
        &lines("checkout", 50),
    );
    write(&root, "shop_db-0_uid-db/app/0.log", &lines("db", 30));
    write(&root, "shop_noisy_uid-noisy/app/0.log", &noisy);
    // A pod whose log file exists before the API has told of it.
    write(&root, "shop_late_uid-late/app/0.log", &lines("late", 20));

    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let mut source = Running::start(&config(&root, kubeconfig), "k8s_api_test", &state);
    let mut events = source.collect(80).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        source.queue.is_empty(),
        "the late pod waits for its metadata"
    );
    api.apply(pod(
        "late",
        "uid-late",
        "node-a",
        json!({"app": "late"}),
        json!({}),
        Some(("Job", "nightly-report")),
    ));
    events.extend(source.collect(20).await);
    let total: u64 = std::fs::read_dir(&root)
        .unwrap()
        .map(|d| {
            std::fs::metadata(d.unwrap().path().join("app/0.log"))
                .unwrap()
                .len()
        })
        .sum();
    let metrics = source.metrics.clone();
    for _ in 0..100 {
        if metrics.checkpointed_bytes.get() == total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(source.queue.is_empty(), "nothing from the excluded pod");
    source.stop().await;

    let checkout = of_pod(&events, "checkout-7d9f8b6c5-x2x");
    assert_eq!(checkout.len(), 50);
    for (i, e) in checkout.iter().enumerate() {
        assert_eq!(e.body.to_text(), format!("checkout {i}"));
        assert_eq!(
            resource(e, "k8s.deployment.name").as_deref(),
            Some("checkout")
        );
        assert_eq!(
            resource(e, "k8s.pod.label.app").as_deref(),
            Some("checkout")
        );
        assert_eq!(
            resource(e, "k8s.pod.annotation.team").as_deref(),
            Some("payments")
        );
    }
    let db = of_pod(&events, "db-0");
    assert_eq!(db.len(), 30);
    assert!(db
        .iter()
        .all(|e| resource(e, "k8s.statefulset.name").as_deref() == Some("db")));
    let late = of_pod(&events, "late");
    assert_eq!(late.len(), 20);
    assert!(late.iter().all(
        |e| resource(e, "k8s.job.name").as_deref() == Some("nightly-report")
            && resource(e, "k8s.pod.label.app").as_deref() == Some("late")
    ));
    assert!(of_pod(&events, "noisy").is_empty());
    assert_eq!(events.len(), 100);

    assert_eq!(metrics.metadata_missing_events.get(), 0);
    assert_eq!(
        metrics.checkpointed_bytes.get(),
        total,
        "every file, the excluded one too, is checkpointed to its end"
    );
    let selectors = api.selectors();
    assert!(selectors.len() >= 2, "a list and a watch: {selectors:?}");
    assert!(
        selectors.iter().all(|s| s == "spec.nodeName=node-a"),
        "only this node's pods: {selectors:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_delays_nothing_past_the_wait_and_counts_what_lacks_metadata() {
    // A port with nothing listening: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pods");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, kubeconfig_for(port)).unwrap();
    write(&root, "shop_web-1_uid-web/app/0.log", &lines("web", 200));
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let mut config = config(&root, kubeconfig);
    // Three times `collect`'s deadline, both scaled alike on slow machines.
    config.kubernetes_api.wait_for_metadata =
        DurationValue(crate::test_support::patience(Duration::from_secs(30)));

    let mut source = Running::start(&config, "k8s_api_down_test", &state);
    // Well inside the wait: a failing API is not waited for.
    let events = source.collect(200).await;
    let metrics = source.metrics.clone();
    source.stop().await;

    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.body.to_text(), format!("web {i}"));
        assert_eq!(resource(e, "k8s.pod.name").as_deref(), Some("web-1"));
        assert_eq!(resource(e, "k8s.namespace.name").as_deref(), Some("shop"));
        assert_eq!(resource(e, "k8s.pod.label.app"), None);
    }
    assert_eq!(metrics.metadata_missing_events.get(), 200);
    let errors = sextant_pipeline::telemetry::render();
    assert!(
        errors
            .lines()
            .any(|l| l.starts_with("sextant_component_errors_total")
                && l.contains("component=\"k8s_api_down_test\"")
                && l.contains("kubernetes_api")),
        "API errors counted"
    );
}
