//! The `host_metrics` source beside a real node_exporter 1.5 (Debian's package) on the same
//! machine: for every metric name both export, the same type, the same label sets, and values
//! that agree within what the time between the reads allows (counters between node_exporter's
//! values just before and just after Sextant's collection; gauges within 5% of that range).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::exposition::{point_labels, reference, Labels, RefSeries};
use crate::common::*;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// The newest collection in the file sink after `after_ns`: (name, labels) → (type, value).
fn collection_after(
    dir: &std::path::Path,
    after_ns: u64,
) -> Option<HashMap<(String, Labels), (String, f64)>> {
    let records = metric_records(dir);
    let time = records
        .iter()
        .filter(|r| r["name"] == "node_load1")
        .filter_map(|r| r["points"][0]["time_unix_nano"].as_u64())
        .filter(|&t| t > after_ns)
        .max()?;
    let mut out = HashMap::new();
    for r in &records {
        for p in r["points"].as_array().unwrap() {
            if p["time_unix_nano"].as_u64() != Some(time) {
                continue;
            }
            let labels = point_labels(p);
            let value = p["value"].as_f64().unwrap_or(f64::NAN);
            out.insert(
                (r["name"].as_str().unwrap().to_string(), labels),
                (r["type"].as_str().unwrap().to_string(), value),
            );
        }
    }
    Some(out)
}

fn label_sets<T>(series: &HashMap<(String, Labels), T>) -> BTreeMap<String, BTreeSet<Labels>> {
    let mut out: BTreeMap<String, BTreeSet<Labels>> = BTreeMap::new();
    for (name, labels) in series.keys() {
        out.entry(name.clone()).or_default().insert(labels.clone());
    }
    out
}

#[test]
fn host_metrics_match_node_exporter_on_the_same_machine() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _node_exporter = start_server(
        "node_exporter",
        "prometheus-node-exporter",
        &[format!("--web.listen-address=127.0.0.1:{port}")],
        port,
    );
    // Debian's node_exporter package also excludes /run, /mnt and /media, and lo.
    let (_agent, out) = start_agent_to_files(
        dir.path(),
        "host",
        r#"{ type: host_metrics, interval: 1s, network: { device_exclude: "^lo$" }, filesystem: { mount_points_exclude: "^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)" } }"#,
    );
    let url = format!("http://127.0.0.1:{port}/metrics");

    // The reference is read first, then the clock: a collection stamped after `before_ns`
    // began after the reference was read (stamping it before would let one read in between
    // count as "after" and come out lower).
    let before = reference(&http_get(&url).unwrap().1);
    let before_ns = now_ns();
    let mut ours = None;
    assert!(eventually(Duration::from_secs(15), || {
        ours = collection_after(&out, before_ns);
        ours.is_some()
    }));
    std::thread::sleep(Duration::from_millis(300));
    let ours = collection_after(&out, before_ns).unwrap();
    let after = reference(&http_get(&url).unwrap().1);

    let theirs = label_sets(&before);
    let mine = label_sets(&ours);
    let common: Vec<&String> = mine.keys().filter(|n| theirs.contains_key(*n)).collect();
    assert!(
        common.len() >= 60,
        "only {} names in common: {:?}",
        common.len(),
        mine.keys().collect::<Vec<_>>()
    );
    let only_mine: Vec<&String> = mine.keys().filter(|n| !theirs.contains_key(*n)).collect();
    assert!(
        only_mine.is_empty(),
        "names node_exporter does not have: {only_mine:?}"
    );
    // Dirty and writeback page counts, and the I/Os in flight on a disk, follow the machine's
    // I/O bursts (a parallel build dirties hundreds of MB in a second), faster than the reads
    // around a collection bound them: a clean-clone CI run saw 22 I/Os in flight between two
    // reads of 0. Mapped file pages jump as other tests start processes (a CI run saw 85 MB
    // between two reads of 62–64 MB while six `sextant` processes of another test started).
    // The machine's open files move with every process that starts or stops (a CI run saw 445
    // between two reads of 482 and 484 while other tests ran and an arm64 build linked).
    const VOLATILE_GAUGES: [&str; 6] = [
        "node_memory_Dirty_bytes",
        "node_memory_Writeback_bytes",
        "node_memory_WritebackTmp_bytes",
        "node_memory_Mapped_bytes",
        "node_disk_io_now",
        "node_filefd_allocated",
    ];
    let mut compared = 0;
    for name in common {
        assert_eq!(mine[name], theirs[name], "{name}: label sets differ");
        for labels in &mine[name] {
            let key = (name.clone(), labels.clone());
            let (kind, value) = &ours[&key];
            let (Some(b), Some(a)): (Option<&RefSeries>, Option<&RefSeries>) =
                (before.get(&key), after.get(&key))
            else {
                continue;
            };
            let want_kind = if b.kind == "counter" { "sum" } else { "gauge" };
            assert_eq!(kind, want_kind, "{key:?}");
            let (lo, hi) = (b.value.min(a.value), b.value.max(a.value));
            if b.kind == "counter" {
                // A few ULPs either way: node_exporter scales some counters in two
                // divisions (µs / 1000 / 1000), one rounding more than ours.
                let ulps = 4.0 * f64::EPSILON * hi.abs();
                assert!(
                    lo - ulps <= *value && *value <= hi + ulps,
                    "{key:?} = {value}, not within [{lo}, {hi}]"
                );
            } else if VOLATILE_GAUGES.contains(&name.as_str()) {
                // Present and of the right kind (checked above); the value is not compared.
            } else {
                // A gauge may move as much as it moved between the two reads (memory on a
                // machine running other tests swings by tens of MB within a second), and 5%.
                let slack = 0.05 * hi.abs().max(lo.abs()) + (hi - lo) + 1e-9;
                assert!(
                    lo - slack <= *value && *value <= hi + slack,
                    "{key:?} = {value}, not near [{lo}, {hi}]"
                );
            }
            compared += 1;
        }
    }
    assert!(compared >= 150, "only {compared} values compared");
}
