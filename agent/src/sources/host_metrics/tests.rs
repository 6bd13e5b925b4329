//! The collectors over a `/proc` written by the test (an arm64 node's files: the same formats
//! as x86_64's for every file read; `/proc/cpuinfo`, which differs, is not read), including
//! missing and malformed files.

use std::path::Path;
use std::sync::Arc;

use sextant_pipeline::flow::event::{attributes_to_json, Metric, MetricData, Origin};

use super::{origin, Collector, Host, HostMetricsConfig};

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn proc_of_an_arm64_node(root: &Path) {
    write(root, "proc/stat", "cpu  2000 10 300 90000 50 0 20 0 0 0\ncpu0 1000 5 150 45000 25 0 10 0 0 0\ncpu1 1000 5 150 45000 25 0 10 0 0 0\nintr 123\nctxt 456\nbtime 1764660000\nprocesses 99\n");
    write(root, "proc/meminfo", "MemTotal:        8007532 kB\nMemFree:         1234567 kB\nActive(anon):      10240 kB\nHugePages_Total:       0\nHugepagesize:       2048 kB\n");
    write(root, "proc/loadavg", "0.52 0.41 0.30 2/345 6789\n");
    write(root, "proc/diskstats", " 259       0 nvme0n1 1000 10 80000 500 2000 20 160000 900 0 1200 1400 0 0 0 0 30 40\n 259       1 nvme0n1p1 900 10 70000 400 1900 20 150000 800 0 1100 1200 0 0 0 0 0 0\n");
    write(root, "proc/1/net/dev", "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n  eth0: 1000 10 0 1 0 0 0 3 2000 20 0 0 0 0 0 0\n    lo: 5 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0\n");
    write(
        root,
        "proc/pressure/cpu",
        "some avg10=0.00 avg60=0.00 avg300=0.00 total=2500000\n",
    );
    write(root, "proc/pressure/io", "some avg10=0.00 avg60=0.00 avg300=0.00 total=1000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=500000\n");
    write(root, "proc/pressure/memory", "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    write(
        root,
        "proc/sys/fs/file-nr",
        "1024\t0\t9223372036854775807\n",
    );
    write(root, "proc/1/mounts", "/dev/nvme0n1p1 / ext4 rw,relatime 0 0\nproc /proc proc rw 0 0\noverlay /var/lib/containerd/x overlay rw 0 0\n");
}

fn value(metrics: &[Metric], name: &str, labels: serde_json::Value) -> Option<f64> {
    metrics
        .iter()
        .filter(|m| m.name == name)
        .find_map(|m| match m.data.as_ref()? {
            MetricData::Gauge(p) | MetricData::Sum { points: p, .. } => p
                .iter()
                .find(|p| attributes_to_json(&p.attributes) == labels)
                .and_then(|p| p.value.map(|v| v.as_f64())),
            _ => None,
        })
}

#[test]
fn every_collector_reads_its_files_with_node_exporter_names_and_units() {
    let dir = tempfile::tempdir().unwrap();
    proc_of_an_arm64_node(dir.path());
    let config = HostMetricsConfig::default();
    let mut host = Host::new(dir.path().to_owned(), config.collectors.clone(), &config);
    let (m, failed) = host.collect(&Arc::new(Origin::default()));
    assert!(failed.is_empty(), "{failed:?}");
    let none = serde_json::json!({});
    assert_eq!(
        value(
            &m,
            "node_cpu_seconds_total",
            serde_json::json!({"cpu": "1", "mode": "idle"})
        ),
        Some(450.0)
    );
    assert_eq!(
        value(&m, "node_boot_time_seconds", none.clone()),
        Some(1_764_660_000.0)
    );
    assert_eq!(
        value(&m, "node_memory_MemTotal_bytes", none.clone()),
        Some(8_007_532.0 * 1024.0)
    );
    assert_eq!(
        value(&m, "node_memory_Active_anon_bytes", none.clone()),
        Some(10_240.0 * 1024.0)
    );
    assert_eq!(
        value(&m, "node_memory_HugePages_Total", none.clone()),
        Some(0.0)
    );
    assert_eq!(value(&m, "node_load15", none.clone()), Some(0.30));
    let disk = serde_json::json!({"device": "nvme0n1"});
    assert_eq!(
        value(&m, "node_disk_read_bytes_total", disk.clone()),
        Some(80_000.0 * 512.0)
    );
    // Milliseconds times 0.001, as node_exporter computes it (1.4000000000000001, not 1.4).
    assert_eq!(
        value(&m, "node_disk_io_time_weighted_seconds_total", disk.clone()),
        Some(1400.0 * 0.001)
    );
    assert_eq!(
        value(&m, "node_disk_flush_requests_time_seconds_total", disk),
        Some(40.0 * 0.001)
    );
    assert_eq!(
        value(
            &m,
            "node_disk_reads_completed_total",
            serde_json::json!({"device": "nvme0n1p1"})
        ),
        None,
        "partitions are excluded"
    );
    assert_eq!(
        value(
            &m,
            "node_network_receive_multicast_total",
            serde_json::json!({"device": "eth0"})
        ),
        Some(3.0)
    );
    assert_eq!(
        value(
            &m,
            "node_network_transmit_bytes_total",
            serde_json::json!({"device": "eth0"})
        ),
        Some(2000.0)
    );
    assert_eq!(
        value(&m, "node_pressure_cpu_waiting_seconds_total", none.clone()),
        Some(2.5)
    );
    assert_eq!(
        value(&m, "node_pressure_io_stalled_seconds_total", none.clone()),
        Some(0.5)
    );
    assert_eq!(
        value(&m, "node_filefd_allocated", none.clone()),
        Some(1024.0)
    );
    let root = serde_json::json!({"device": "/dev/nvme0n1p1", "fstype": "ext4", "mountpoint": "/"});
    assert!(value(&m, "node_filesystem_size_bytes", root.clone()).unwrap() > 0.0);
    assert_eq!(value(&m, "node_filesystem_device_error", root), Some(0.0));
    assert!(m.iter().all(|x| !x.name.starts_with("node_filesystem")
        || value(
            &m,
            &x.name,
            serde_json::json!({"device": "proc", "fstype": "proc", "mountpoint": "/proc"})
        )
        .is_none()));
    // Counters started at boot; gauges have no start.
    let cpu = m
        .iter()
        .find(|x| x.name == "node_cpu_seconds_total")
        .unwrap();
    let Some(MetricData::Sum {
        points,
        monotonic: true,
        ..
    }) = &cpu.data
    else {
        panic!()
    };
    assert_eq!(
        points[0].start_time_unix_nano,
        1_764_660_000 * 1_000_000_000
    );
}

#[test]
fn a_missing_or_malformed_file_fails_its_collector_only() {
    let dir = tempfile::tempdir().unwrap();
    proc_of_an_arm64_node(dir.path());
    std::fs::remove_file(dir.path().join("proc/loadavg")).unwrap();
    write(dir.path(), "proc/sys/fs/file-nr", "garbage\n");
    let config = HostMetricsConfig::default();
    let mut host = Host::new(dir.path().to_owned(), config.collectors.clone(), &config);
    let (m, failed) = host.collect(&Arc::new(Origin::default()));
    let failed: Vec<Collector> = failed.into_iter().map(|(c, _)| c).collect();
    assert_eq!(failed, vec![Collector::Loadavg, Collector::Filefd]);
    assert!(m.iter().any(|x| x.name == "node_cpu_seconds_total"));
    assert!(m
        .iter()
        .all(|x| x.name != "node_load1" && x.name != "node_filefd_allocated"));
}

#[test]
fn the_resource_names_the_node_as_instance_of_the_job_so_nodes_stay_apart() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "proc/sys/kernel/hostname",
        "ip-10-0-1-5.ec2.internal\n",
    );
    let attrs = |node: &str| -> Vec<(String, String)> {
        origin(dir.path(), "node", node)
            .resource
            .attributes
            .iter()
            .map(|kv| (kv.key.to_string(), kv.value.to_text().into_owned()))
            .filter(|(k, _)| k.starts_with("service.") || k.contains("name"))
            .collect()
    };
    assert_eq!(
        attrs("node-a"),
        [
            ("service.name", "node"),
            ("service.instance.id", "node-a"),
            ("host.name", "ip-10-0-1-5.ec2.internal"),
            ("k8s.node.name", "node-a"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
    );
    // Outside Kubernetes the host name is the instance.
    assert_eq!(
        attrs(""),
        [
            ("service.name", "node"),
            ("service.instance.id", "ip-10-0-1-5.ec2.internal"),
            ("host.name", "ip-10-0-1-5.ec2.internal"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
    );
}
