//! The `prometheus_scrape` source against real targets: Debian's `prometheus-node-exporter` and
//! a real Prometheus server's own `/metrics` (both installed by scripts/test). The agent writes
//! what it scraped to the file sink; the test fetches each target itself just before and just
//! after one of the agent's scrapes, parses those bodies with its own small parser, and checks
//! every series: the same names and labels, the OTLP kind of its type, counters (and histogram
//! and summary counts) between the values before and after, values of gauges that do
//! not move while a process runs equal. Then node_exporter is killed: `up` becomes 0 and its series are marked stale.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value as J;

use crate::common::exposition::{point_labels, reference, Labels};
use crate::common::*;

fn otlp_kind(prometheus_type: &str) -> &'static str {
    match prometheus_type {
        "counter" => "sum",
        "histogram" => "histogram",
        "summary" => "summary",
        _ => "gauge",
    }
}

fn instance(record: &J) -> &str {
    record["resource"]["service.instance.id"]
        .as_str()
        .unwrap_or("")
}

/// The time of the latest good scrape of `target` after `after_ns` (its `up` point is 1).
fn good_scrape_after(records: &[J], target: &str, after_ns: u64) -> Option<u64> {
    records
        .iter()
        .filter(|r| r["name"] == "up" && instance(r) == target)
        .flat_map(|r| r["points"].as_array().unwrap().iter())
        .filter(|p| p["value"] == 1.0)
        .map(|p| p["time_unix_nano"].as_u64().unwrap())
        .filter(|&t| t > after_ns)
        .max()
}

/// What the agent sent of one scrape: (name, labels) → (kind, value or count, bounds).
fn scrape_of(
    records: &[J],
    target: &str,
    time_ns: u64,
) -> HashMap<(String, Labels), (String, f64, Vec<f64>)> {
    let mut out = HashMap::new();
    for r in records.iter().filter(|r| instance(r) == target) {
        for p in r["points"].as_array().unwrap() {
            if p["time_unix_nano"].as_u64() != Some(time_ns) {
                continue;
            }
            let labels = point_labels(p);
            let kind = r["type"].as_str().unwrap().to_string();
            let (value, bounds) = match kind.as_str() {
                "histogram" => (
                    p["count"].as_f64().unwrap(),
                    p["explicit_bounds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|b| b.as_f64().unwrap())
                        .collect(),
                ),
                "summary" => (p["count"].as_f64().unwrap(), vec![]),
                _ => (p["value"].as_f64().unwrap_or(f64::NAN), vec![]),
            };
            let previous = out.insert(
                (r["name"].as_str().unwrap().to_string(), labels),
                (kind, value, bounds),
            );
            assert!(previous.is_none(), "a series twice in one scrape: {r}");
        }
    }
    out
}

/// Gauges that do not move while a process runs (the scrapes themselves move others, such as
/// open file descriptors).
fn stable_gauge(name: &str) -> bool {
    name.ends_with("_info")
        || name.ends_with("_size_bytes")
        || name.ends_with("_mtu_bytes")
        || name.ends_with("MemTotal_bytes")
        || [
            "process_max_fds",
            "process_start_time_seconds",
            "node_boot_time_seconds",
            "prometheus_config_last_reload_successful",
        ]
        .contains(&name)
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Every series the target served is in the agent's scrape with the same name, labels and
/// kind; counters and counts lie between the values before and after; stable gauges are equal.
fn check_target(dir: &Path, target: &str) {
    let url = format!("http://{target}/metrics");
    // The reference is read first, then the clock: a collection stamped after `before_ns`
    // began after the reference was read (stamping it before would let one read in between
    // count as "after" and come out lower).
    let before = reference(&http_get(&url).unwrap().1);
    let before_ns = now_ns();
    let mut scrape_time = None;
    assert!(
        eventually(Duration::from_secs(20), || {
            scrape_time = good_scrape_after(&metric_records(dir), target, before_ns);
            scrape_time.is_some()
        }),
        "no good scrape of {target} after the reference fetch"
    );
    // The file sink may still be writing the scrape's batch.
    std::thread::sleep(Duration::from_millis(500));
    let after = reference(&http_get(&url).unwrap().1);
    let got = scrape_of(&metric_records(dir), target, scrape_time.unwrap());
    assert!(
        before.len() > 50,
        "{target} served only {} series",
        before.len()
    );
    let mut checked_values = 0;
    for (key, b) in &before {
        let Some(a) = after.get(key) else { continue };
        let (kind, value, bounds) = got.get(key).unwrap_or_else(|| {
            panic!("{target}: {key:?} served before and after the scrape, missing from it")
        });
        assert_eq!(kind, otlp_kind(&b.kind), "{target}: {key:?}");
        assert_eq!(bounds, &b.bounds, "{target}: {key:?} bucket bounds");
        match b.kind.as_str() {
            "counter" | "histogram" | "summary" => {
                assert!(
                    b.value <= *value && *value <= a.value,
                    "{target}: {key:?} = {value}, not within [{}, {}]",
                    b.value,
                    a.value
                );
                checked_values += 1;
            }
            _ if b.value == a.value && b.value.is_finite() && stable_gauge(&key.0) => {
                assert_eq!(*value, b.value, "{target}: {key:?}");
                checked_values += 1;
            }
            _ => {}
        }
    }
    for key in got.keys() {
        let synthetic = key.0 == "up" || key.0.starts_with("scrape_");
        assert!(
            synthetic || before.contains_key(key) || after.contains_key(key),
            "{target}: {key:?} sent but never served"
        );
    }
    assert!(
        checked_values > 40,
        "{target}: only {checked_values} values compared"
    );
    for synthetic in [
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    ] {
        assert!(
            got.contains_key(&(synthetic.to_string(), Labels::new())),
            "{target}: no {synthetic}"
        );
    }
    let samples = got[&("scrape_samples_scraped".to_string(), Labels::new())].1;
    assert!(
        samples >= before.len() as f64,
        "{target}: scrape_samples_scraped {samples}"
    );
}

#[test]
fn node_exporter_and_prometheus_series_arrive_whole_and_a_dead_target_goes_stale() {
    let dir = tempfile::tempdir().unwrap();
    let node_port = free_port();
    let prom_port = free_port();
    let mut node_exporter = start_server(
        "node_exporter",
        "prometheus-node-exporter",
        &[format!("--web.listen-address=127.0.0.1:{node_port}")],
        node_port,
    );
    let prom_config = dir.path().join("prometheus.yml");
    std::fs::write(&prom_config, "global: {scrape_interval: 1h}\n").unwrap();
    let _prometheus = start_server(
        "prometheus",
        "prometheus",
        &[
            format!("--config.file={}", prom_config.display()),
            format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ],
        prom_port,
    );
    let scrape = format!(
        "{{ type: prometheus_scrape, scrape_interval: 1s, scrape_timeout: 900ms, scrape_configs: [\
         {{ job_name: node, static_configs: [{{ targets: [\"127.0.0.1:{node_port}\"] }}] }}, \
         {{ job_name: prometheus, static_configs: [{{ targets: [\"127.0.0.1:{prom_port}\"] }}] }}] }}"
    );
    let (_agent, out) = start_agent_to_files(dir.path(), "scrape", &scrape);
    let node = format!("127.0.0.1:{node_port}");
    let prom = format!("127.0.0.1:{prom_port}");
    check_target(&out, &node);
    check_target(&out, &prom);

    let up = metric_records(&out)
        .into_iter()
        .find(|r| r["name"] == "up" && instance(r) == node)
        .unwrap();
    assert_eq!(up["resource"]["service.name"], "node");
    assert_eq!(up["resource"]["server.port"], node_port as i64);

    // node_exporter dies: `up` 0, and its series are marked stale once.
    node_exporter.kill9();
    let killed_ns = now_ns();
    let down = |records: &[J]| {
        records
            .iter()
            .filter(|r| r["name"] == "up" && instance(r) == node)
            .flat_map(|r| r["points"].as_array().unwrap().iter())
            .any(|p| p["value"] == 0.0 && p["time_unix_nano"].as_u64().unwrap() > killed_ns)
    };
    assert!(
        eventually(Duration::from_secs(15), || down(&metric_records(&out))),
        "up never went to 0"
    );
    std::thread::sleep(Duration::from_millis(2500));
    let all = metric_records(&out);
    let load: Vec<&J> = all
        .iter()
        .filter(|r| r["name"] == "node_load1" && instance(r) == node)
        .flat_map(|r| r["points"].as_array().unwrap().iter())
        .filter(|p| p["time_unix_nano"].as_u64().unwrap() > killed_ns)
        .collect();
    assert_eq!(load.len(), 1, "one stale marker, then nothing: {load:?}");
    assert_eq!(
        (load[0]["flags"].as_u64(), &load[0]["value"]),
        (Some(1), &J::Null)
    );
    // Prometheus itself is still scraped.
    assert!(good_scrape_after(&all, &prom, killed_ns).is_some());
}
