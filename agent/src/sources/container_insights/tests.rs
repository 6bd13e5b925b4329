//! Container Insights from two kubelet readings and this node's pods: the pure computation
//! with known numbers, and the source against the fake API server (no real apiserver runs
//! here; see `kubernetes::fake_api`) and a kubelet stand-in over HTTP serving
//! `/metrics/resource` as the kubelet writes it (with timestamps).

use std::sync::Arc;

use serde_json::json;
use sextant_pipeline::flow::event::{attributes_to_json, Metric, MetricData, Origin};

use super::compute::{metrics, Node};
use super::{pod_spec, ContainerInsightsConfig, Rates};
use crate::kubernetes::fake_api::{kubeconfig_for, FakeApi};
use crate::test_support::Running;

const T0: i64 = 1_764_660_000_000;

fn resource_metrics(cpu_pod: f64, cpu_node: f64, t: i64) -> String {
    format!(
        "# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds\n# TYPE container_cpu_usage_seconds_total counter\ncontainer_cpu_usage_seconds_total{{container=\"app\",namespace=\"shop\",pod=\"api\"}} {cpu_pod} {t}\n# TYPE container_memory_working_set_bytes gauge\ncontainer_memory_working_set_bytes{{container=\"app\",namespace=\"shop\",pod=\"api\"}} 5.36870912e+08 {t}\n# TYPE node_cpu_usage_seconds_total counter\nnode_cpu_usage_seconds_total {cpu_node} {t}\n# TYPE node_memory_working_set_bytes gauge\nnode_memory_working_set_bytes 4.294967296e+09 {t}\n# TYPE pod_cpu_usage_seconds_total counter\npod_cpu_usage_seconds_total{{namespace=\"shop\",pod=\"api\"}} {cpu_pod} {t}\n# TYPE pod_memory_working_set_bytes gauge\npod_memory_working_set_bytes{{namespace=\"shop\",pod=\"api\"}} 5.36870912e+08 {t}\n# TYPE scrape_error gauge\nscrape_error 0\n"
    )
}

fn api_pod(node: &str) -> serde_json::Value {
    json!({
        "metadata": {"name": "api", "namespace": "shop", "uid": "api-uid"},
        "spec": {"nodeName": node, "containers": [
            {"name": "app", "image": "app:1", "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}},
            {"name": "sidecar", "image": "s:1", "resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "500m", "memory": "1Gi"}}}
        ]},
        "status": {"phase": "Running", "hostIP": "127.0.0.1", "containerStatuses": [
            {"name": "app", "image": "app:1", "imageID": "", "ready": true, "restartCount": 2, "state": {"running": {}}},
            {"name": "sidecar", "image": "s:1", "imageID": "", "ready": true, "restartCount": 1, "state": {"running": {}}}
        ]}
    })
}

fn value(metrics: &[Metric], name: &str) -> Option<(f64, serde_json::Value)> {
    let m = metrics.iter().find(|m| m.name == name)?;
    let Some(MetricData::Gauge(p)) = m.data.as_ref() else {
        return None;
    };
    p.first()
        .map(|p| (p.value.unwrap().as_f64(), attributes_to_json(&p.attributes)))
}

#[test]
fn two_readings_give_cloudwatch_agent_percentages() {
    let mut rates = Rates::default();
    let first = rates
        .reading(resource_metrics(10.0, 100.0, T0).as_bytes(), T0)
        .unwrap();
    assert_eq!(
        first.pods[&("shop".into(), "api".into())].0,
        None,
        "no rate from one reading"
    );
    // 10 s later: the pod used 5 core-seconds (0.5 cores), the node 15 (1.5 cores).
    let second = rates
        .reading(
            resource_metrics(15.0, 115.0, T0 + 10_000).as_bytes(),
            T0 + 20_000,
        )
        .unwrap();
    let spec = pod_spec(&serde_json::from_value(api_pod("node-a")).unwrap());
    assert_eq!(
        (
            spec.cpu_request,
            spec.cpu_limit,
            spec.restarts,
            spec.containers_running
        ),
        (0.5, Some(1.5), 3, 2)
    );
    assert_eq!(spec.memory_limit, Some(2.0 * 1024.0 * 1024.0 * 1024.0));
    let node = Node {
        cluster: "prod".into(),
        name: "node-a".into(),
        cores: 2.0,
        memory: 8.0 * 1024.0 * 1024.0 * 1024.0,
    };
    let m = metrics(&node, &second, &[spec], &Arc::new(Origin::default()), 1);
    let (v, dims) = value(&m, "pod_cpu_utilization").unwrap();
    assert_eq!(v, 25.0);
    assert_eq!(
        dims,
        json!({"ClusterName": "prod", "NodeName": "node-a", "Namespace": "shop", "PodName": "api", "Type": "Pod"})
    );
    assert_eq!(
        value(&m, "pod_cpu_utilization_over_pod_limit").unwrap().0,
        100.0 * 0.5 / 1.5
    );
    assert_eq!(value(&m, "pod_memory_utilization").unwrap().0, 6.25);
    assert_eq!(
        value(&m, "pod_memory_utilization_over_pod_limit")
            .unwrap()
            .0,
        25.0
    );
    assert_eq!(value(&m, "pod_cpu_reserved_capacity").unwrap().0, 25.0);
    assert_eq!(
        value(&m, "pod_number_of_container_restarts").unwrap().0,
        3.0
    );
    assert_eq!(value(&m, "node_cpu_utilization").unwrap().0, 75.0);
    assert_eq!(value(&m, "node_memory_utilization").unwrap().0, 50.0);
    assert_eq!(value(&m, "node_number_of_running_pods").unwrap().0, 1.0);
    assert_eq!(
        value(&m, "node_number_of_running_containers").unwrap().0,
        2.0
    );
    assert_eq!(
        value(&m, "container_cpu_utilization").unwrap().1["ContainerName"],
        "app"
    );
    assert_eq!(
        value(&m, "namespace_number_of_running_pods").unwrap(),
        (
            1.0,
            json!({"ClusterName": "prod", "Namespace": "shop", "Type": "ClusterNamespace"})
        )
    );
    assert!(m
        .iter()
        .all(|x| x.unit == "%" || !x.name.ends_with("_utilization")));
    // A counter that went down (a restarted container) gives no rate, not a negative one.
    let third = rates
        .reading(
            resource_metrics(1.0, 130.0, T0 + 20_000).as_bytes(),
            T0 + 30_000,
        )
        .unwrap();
    assert_eq!(third.pods[&("shop".into(), "api".into())].0, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_reads_the_kubelet_and_the_pod_watch_every_interval() {
    // A kubelet stand-in: each reading 0.5 more core-seconds per second of its clock.
    let (port, _) = crate::test_support::serve(|n| {
        let n = n as i64;
        resource_metrics(
            10.0 + 5.0 * n as f64,
            100.0 + 10.0 * n as f64,
            T0 + 10_000 * n,
        )
    })
    .await;
    let api = FakeApi::start(vec![api_pod("node-a")]).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("host");
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::write(
        root.join("proc/stat"),
        "cpu  1 0 0 0\ncpu0 1 0 0 0\ncpu1 0 0 0 0\nbtime 1\n",
    )
    .unwrap();
    std::fs::write(root.join("proc/meminfo"), "MemTotal:        8388608 kB\n").unwrap();
    std::fs::write(dir.path().join("kubeconfig"), kubeconfig_for(api.port)).unwrap();
    let config: ContainerInsightsConfig = serde_yaml_ng::from_str(&format!(
        "cluster_name: prod\ninterval: 1s\nroot: {}\nkubelet: {{address: \"127.0.0.1:{port}\", scheme: http}}\nkubernetes: {{kubeconfig: {}/kubeconfig, node_name: node-a}}\n",
        root.display(),
        dir.path().display()
    ))
    .unwrap();
    let running = Running::start("container_insights", dir.path(), |cx| {
        super::build(&config, cx)
    });
    // The pod's CPU shows from the second reading on (a rate needs two), once the pod watch has
    // listed it: 0.5 cores of 2.
    let got = running
        .metrics_until(|m| value(m, "pod_cpu_utilization").is_some())
        .await;
    assert_eq!(value(&got, "pod_cpu_utilization").unwrap().0, 25.0);
    assert_eq!(
        value(&got, "pod_number_of_container_restarts").map(|r| r.0),
        Some(3.0)
    );
    running.stop().await;
}
