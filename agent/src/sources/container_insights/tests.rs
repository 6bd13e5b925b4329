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

/// Node `node-a` of cluster `prod`, without an instance id.
fn node_a(cores: f64, memory: f64) -> Node {
    Node {
        cluster: "prod".into(),
        name: "node-a".into(),
        instance_id: None,
        cores,
        memory,
    }
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
    let node = node_a(2.0, 8.0 * 1024.0 * 1024.0 * 1024.0);
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
    // Its cAdvisor: the pod received 1,000 bytes a millisecond of cAdvisor's clock.
    let (port, _) = crate::test_support::serve_paths(|path, n| {
        let n = n as i64;
        if path == "/metrics/cadvisor" {
            return cadvisor_metrics(&[("shop", "api", "eth0", 1_000 * n as u64, 0)], T0 + n);
        }
        resource_metrics(
            10.0 + 5.0 * n as f64,
            100.0 + 10.0 * n as f64,
            T0 + 10_000 * n,
        )
    })
    .await;
    let api = FakeApi::start(vec![api_pod("node-a")]).await;
    api.set_node(json!({
        "metadata": {"name": "node-a"},
        "spec": {"providerID": "aws:///us-west-2a/i-0123456789abcdef0"}
    }));
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("host");
    std::fs::create_dir_all(root.join("proc")).unwrap();
    std::fs::write(
        root.join("proc/stat"),
        "cpu  1 0 0 0\ncpu0 1 0 0 0\ncpu1 0 0 0 0\nbtime 1\n",
    )
    .unwrap();
    std::fs::write(root.join("proc/meminfo"), "MemTotal:        8388608 kB\n").unwrap();
    std::fs::create_dir_all(root.join("proc/1/net")).unwrap();
    std::fs::write(
        root.join("proc/1/net/dev"),
        net_dev(&[("eth0", counters([7, 1, 0, 0], [3, 1, 0, 0]))]),
    )
    .unwrap();
    std::fs::write(root.join("proc/1/mounts"), "/dev/root / ext4 rw 0 0\n").unwrap();
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
    assert_eq!(
        value(&got, "pod_network_rx_bytes").map(|r| r.0),
        Some(1_000_000.0),
        "1,000 bytes a millisecond of the stand-in's clock"
    );
    // The node's network (idle between the readings) and its root filesystem, from the root.
    assert_eq!(
        value(&got, "node_network_total_bytes").map(|r| r.0),
        Some(0.0)
    );
    let (capacity, dims) = value(&got, "node_filesystem_capacity").unwrap();
    assert!(capacity > 0.0);
    assert_eq!(dims["device"], "/dev/root");
    assert_eq!(
        dims["InstanceId"], "i-0123456789abcdef0",
        "from the node's providerID"
    );
    assert_eq!(
        value(&got, "node_cpu_utilization").unwrap().1["InstanceId"],
        "i-0123456789abcdef0"
    );
    assert!(value(&got, "pod_cpu_utilization")
        .unwrap()
        .1
        .get("InstanceId")
        .is_none());
    assert_eq!(dims["Type"], "NodeFS");
    running.stop().await;
}

fn net_dev(lines: &[(&str, [u64; 16])]) -> String {
    let mut text = String::from(
        "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n",
    );
    for (name, c) in lines {
        let fields: Vec<String> = c.iter().map(u64::to_string).collect();
        text.push_str(&format!("{name:>6}: {}\n", fields.join(" ")));
    }
    text
}

/// Receive: bytes, packets, errs, drop; transmit from column 8: bytes, packets, errs, drop.
fn counters(rx: [u64; 4], tx: [u64; 4]) -> [u64; 16] {
    let mut c = [0; 16];
    c[..4].copy_from_slice(&rx);
    c[8..12].copy_from_slice(&tx);
    c
}

#[test]
fn node_network_rates_cover_the_interfaces_cadvisor_keeps_and_sum_them() {
    use super::compute::node_stats_metrics;
    use super::node_stats::{NodeReading, NodeStats};
    let mut stats = NodeStats::default();
    let ignored = [
        ("lo", counters([1, 1, 0, 0], [1, 1, 0, 0])),
        ("veth1a2b", counters([1, 1, 0, 0], [1, 1, 0, 0])),
        ("docker0", counters([1, 1, 0, 0], [1, 1, 0, 0])),
    ];
    let first = net_dev(&[
        ignored[0],
        ("eth0", counters([1_000, 10, 1, 2], [500, 5, 0, 0])),
        ("eni3c5d", counters([0, 0, 0, 0], [100, 1, 0, 0])),
        ignored[1],
        ignored[2],
    ]);
    let read = stats.network(&first, T0);
    assert_eq!(
        read.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
        ["eth0", "eni3c5d"]
    );
    assert!(
        read.iter().all(|i| i.rates == [None; 8]),
        "no rate from one reading"
    );

    // 10 s later; eni3c5d's transmit counters went back (a reset): no rate for those.
    let second = net_dev(&[
        ("eth0", counters([21_000, 30, 11, 2], [10_500, 25, 0, 10])),
        ("eni3c5d", counters([5_000, 50, 0, 0], [0, 0, 0, 0])),
        ("lo", counters([9, 9, 9, 9], [9, 9, 9, 9])),
    ]);
    let read = stats.network(&second, T0 + 10_000);
    assert_eq!(
        read[0].rates,
        [
            Some(2000.0),
            Some(2.0),
            Some(0.0),
            Some(1.0),
            Some(1000.0),
            Some(2.0),
            Some(1.0),
            Some(0.0)
        ],
        "eth0: rx bytes, packets, dropped, errors; tx the same"
    );
    assert_eq!(read[1].rates[0], Some(500.0));
    assert_eq!((read[1].rates[4], read[1].rates[5]), (None, None));

    let node = node_a(4.0, 8.0 * 1024.0 * 1024.0 * 1024.0);
    let origin = Arc::new(Origin::default());
    let metrics = node_stats_metrics(
        &node,
        &NodeReading {
            interfaces: read,
            filesystems: Vec::new(),
        },
        &origin,
        1,
    );
    let (rx, dims) = value(&metrics, "node_network_rx_bytes").unwrap();
    assert_eq!(rx, 2500.0, "eth0 and eni3c5d, not lo");
    assert_eq!(
        dims,
        json!({"ClusterName": "prod", "NodeName": "node-a", "Type": "Node"})
    );
    assert_eq!(value(&metrics, "node_network_tx_bytes").unwrap().0, 1000.0);
    assert_eq!(
        value(&metrics, "node_network_total_bytes").unwrap().0,
        3500.0
    );
    assert_eq!(value(&metrics, "node_network_rx_errors").unwrap().0, 1.0);
    let (eth0, dims) = value(&metrics, "node_interface_network_total_bytes").unwrap();
    assert_eq!(eth0, 3000.0);
    assert_eq!(
        dims,
        json!({"ClusterName": "prod", "NodeName": "node-a", "interface": "eth0", "Type": "NodeNet"})
    );
    let per_interface = metrics
        .iter()
        .find(|m| m.name == "node_interface_network_rx_bytes")
        .and_then(|m| match &m.data {
            Some(MetricData::Gauge(p)) => Some(p.len()),
            _ => None,
        });
    assert_eq!(per_interface, Some(2));
    assert!(
        metrics.iter().all(|m| !m.unit.is_empty()),
        "every metric has a unit"
    );
}

#[test]
fn node_filesystems_are_the_block_devices_once_each_with_statvfs_figures() {
    use super::node_stats::NodeStats;
    let root = tempfile::tempdir().unwrap();
    let mounts = "/dev/nvme0n1p1 / xfs rw,noatime 0 0\n\
        proc /proc proc rw 0 0\n\
        tmpfs /run tmpfs rw 0 0\n\
        /dev/nvme0n1p1 /var/lib/kubelet xfs rw 0 0\n\
        overlay /var/lib/containerd/rootfs overlay rw 0 0\n\
        /dev/nvme1n1 /data ext4 rw 0 0\n";
    let stats = NodeStats::default();
    let found = stats.filesystems(root.path(), mounts);
    // /data does not exist under the root: statvfs fails and it is skipped.
    assert_eq!(found.len(), 1, "{found:?}");
    let fs = &found[0];
    assert_eq!(
        (fs.device.as_str(), fs.fstype.as_str()),
        ("/dev/nvme0n1p1", "xfs")
    );
    let reference = rustix::fs::statvfs(root.path()).unwrap();
    let bsize = reference.f_bsize as f64;
    assert_eq!(fs.capacity, reference.f_blocks as f64 * bsize);
    assert_eq!(fs.inodes, reference.f_files as f64);
    let usage = (reference.f_blocks - reference.f_bfree) as f64 * bsize;
    // Other tests write to the same filesystem between the two reads.
    assert!(
        (fs.usage - usage).abs() < 256.0 * 1024.0 * 1024.0,
        "usage {} against {usage}",
        fs.usage
    );
    assert!(fs.available <= fs.capacity - fs.usage + 1.0);
}

/// A `/metrics/cadvisor` body as the kubelet writes it: network counters of pods' sandboxes
/// (and of the machine, with empty pod labels), CPU of a container, all with timestamps.
fn cadvisor_metrics(pods: &[(&str, &str, &str, u64, u64)], t: i64) -> String {
    let mut text = String::from(
        "# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed in seconds.\n# TYPE container_cpu_usage_seconds_total counter\ncontainer_cpu_usage_seconds_total{container=\"app\",cpu=\"total\",id=\"/kubepods/pod1/c1\",image=\"app:1\",name=\"c1\",namespace=\"shop\",pod=\"api\"} 12.5 1764660000000\n# HELP container_network_receive_bytes_total Cumulative count of bytes received\n# TYPE container_network_receive_bytes_total counter\n",
    );
    text.push_str(&format!(
        "container_network_receive_bytes_total{{container=\"\",id=\"/\",image=\"\",interface=\"eth0\",name=\"\",namespace=\"\",pod=\"\"}} 9e+09 {t}\n"
    ));
    for (namespace, pod, interface, rx, _) in pods {
        text.push_str(&format!("container_network_receive_bytes_total{{container=\"\",id=\"/kubepods/{pod}\",image=\"\",interface=\"{interface}\",name=\"\",namespace=\"{namespace}\",pod=\"{pod}\"}} {rx} {t}\n"));
    }
    text.push_str("# HELP container_network_transmit_packets_total Cumulative count of packets transmitted\n# TYPE container_network_transmit_packets_total counter\n");
    for (namespace, pod, interface, _, tx_packets) in pods {
        text.push_str(&format!("container_network_transmit_packets_total{{container=\"\",id=\"/kubepods/{pod}\",image=\"\",interface=\"{interface}\",name=\"\",namespace=\"{namespace}\",pod=\"{pod}\"}} {tx_packets} {t}\n"));
    }
    text
}

#[test]
fn pod_network_rates_come_from_cadvisor_per_interface_and_summed() {
    use super::pod_network;
    let mut rates = Rates::default();
    let first = pod_network::read(
        &mut rates,
        cadvisor_metrics(
            &[
                ("shop", "api", "eth0", 1_000, 10),
                ("shop", "worker", "eth0", 0, 0),
                ("shop", "worker", "eth1", 500, 5),
            ],
            T0,
        )
        .as_bytes(),
        T0,
    )
    .unwrap();
    assert_eq!(first.len(), 2, "the machine's own series is not a pod");
    assert!(first.values().flatten().all(|i| i.rates == [None; 8]));

    // 10 s later by cAdvisor's clock (read 30 s later by ours); worker's eth1 restarted.
    let second = pod_network::read(
        &mut rates,
        cadvisor_metrics(
            &[
                ("shop", "api", "eth0", 21_000, 30),
                ("shop", "worker", "eth0", 4_000, 0),
                ("shop", "worker", "eth1", 100, 1),
            ],
            T0 + 10_000,
        )
        .as_bytes(),
        T0 + 30_000,
    )
    .unwrap();
    let api = &second[&("shop".to_string(), "api".to_string())];
    assert_eq!(api[0].rates[0], Some(2_000.0), "rx bytes per second");
    assert_eq!(api[0].rates[5], Some(2.0), "tx packets per second");
    assert_eq!(api[0].rates[1], None, "a counter cAdvisor did not serve");
    let worker = &second[&("shop".to_string(), "worker".to_string())];
    assert_eq!(worker[1].name, "eth1");
    assert_eq!((worker[1].rates[0], worker[1].rates[5]), (None, None));

    let node = node_a(2.0, 1.0);
    let pod = |name: &str| super::compute::PodSpec {
        namespace: "shop".into(),
        name: name.into(),
        running: true,
        ..Default::default()
    };
    let reading = super::compute::Reading {
        pod_network: second,
        ..Default::default()
    };
    let m = metrics(
        &node,
        &reading,
        &[pod("api"), pod("worker")],
        &Arc::new(Origin::default()),
        1,
    );
    let points = |name: &str| -> Vec<(f64, serde_json::Value)> {
        m.iter()
            .filter(|x| x.name == name)
            .flat_map(|x| match &x.data {
                Some(MetricData::Gauge(p)) => p
                    .iter()
                    .map(|p| (p.value.unwrap().as_f64(), attributes_to_json(&p.attributes)))
                    .collect(),
                _ => Vec::new(),
            })
            .collect()
    };
    assert_eq!(
        points("pod_network_rx_bytes"),
        [
            (
                2_000.0,
                json!({"ClusterName": "prod", "NodeName": "node-a", "Namespace": "shop", "PodName": "api", "Type": "Pod"})
            ),
            (
                400.0,
                json!({"ClusterName": "prod", "NodeName": "node-a", "Namespace": "shop", "PodName": "worker", "Type": "Pod"})
            ),
        ],
        "worker: eth0 only, eth1 restarted"
    );
    assert_eq!(
        points("pod_interface_network_rx_bytes")[0].1,
        json!({"ClusterName": "prod", "NodeName": "node-a", "Namespace": "shop", "PodName": "api", "interface": "eth0", "Type": "PodNet"})
    );
    assert!(
        points("pod_network_total_bytes").is_empty(),
        "no transmit bytes served: no total"
    );
}
