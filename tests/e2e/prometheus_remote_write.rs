//! The `prometheus_remote_write` sink end to end: OTLP metrics into a real `sextant collector`,
//! remote write into a real Prometheus (Debian's 2.42, `--web.enable-remote-write-receiver`),
//! read back with Prometheus's query API: every series with its name, labels, values and
//! timestamps, counters that `rate()` reads, histograms that `histogram_quantile` reads, stale
//! markers that end a series — across a Prometheus restart, a resend of samples Prometheus
//! already has, and a collector killed with -9.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use std::path::Path;
use std::time::Duration;

use opentelemetry_proto::tonic::metrics::v1::{metric, Gauge, Metric as ProtoMetric};

use crate::common::prometheus::*;
use crate::common::*;

fn collector(dir: &Path, admin: u16, otlp: u16, prom: u16, extra: &str) -> std::path::PathBuf {
    crate::common::hop::collector_config(
        dir,
        admin,
        otlp,
        &format!(
            r#"    prometheus:
      type: prometheus_remote_write
      inputs: [otlp]
      endpoint: http://127.0.0.1:{prom}/api/v1/write
      batch: {{ timeout: 100ms }}
      request: {{ timeout: 2s, initial_backoff: 50ms, max_backoff: 300ms }}
      dead_letter: {{ path: {dead} }}
{extra}"#,
            dead = dir.join("dead.jsonl").display()
        ),
    )
}

fn dropped(admin: u16, reason: &str) -> f64 {
    metric_or_zero_of(admin, "sextant_component_dropped_events_total", reason)
}

fn metric_or_zero_of(admin: u16, name: &str, reason: &str) -> f64 {
    let (_, text) = http_get(&format!("http://127.0.0.1:{admin}/metrics")).unwrap();
    metric_sum_or_zero(
        &text,
        name,
        &["component=\"prometheus\"", &format!("reason=\"{reason}\"")],
    )
}

/// Every kind of metric, read back whole, with Prometheus stopped and started again between the
/// first five points and the last five (the sink retries until it is back).
#[test]
fn otlp_metrics_reach_prometheus_whole_across_a_prometheus_restart() {
    let dir = tempfile::tempdir().unwrap();
    let prom_port = free_port();
    let mut prometheus = start_prometheus(dir.path(), prom_port);
    let (admin, otlp) = (free_port(), free_port());
    let cfg = collector(dir.path(), admin, otlp, prom_port, "");
    let _collector = start_sextant("collector", &cfg, &dir.path().join("collector.log"));
    wait_http_ok(
        &format!("http://127.0.0.1:{admin}/readyz"),
        Duration::from_secs(20),
    );
    let base = base_ms();
    for i in 0..5 {
        assert_eq!(
            post_otlp(otlp, "/v1/metrics", &request(point(base, i))),
            200
        );
    }
    let at = |i: u64| base + i * STEP_MS;
    assert_eq!(one(prom_port, "orders_total", at(4)), Some(40.0));

    // Prometheus goes away; the next points wait in the sink, which retries.
    assert!(prometheus.terminate(Duration::from_secs(20)));
    let sender = std::thread::spawn(move || {
        (5..10)
            .map(|i| post_otlp(otlp, "/v1/metrics", &request(point(base, i))))
            .collect::<Vec<u16>>()
    });
    std::thread::sleep(Duration::from_secs(2));
    let _prometheus = start_prometheus(dir.path(), prom_port);
    assert_eq!(sender.join().unwrap(), vec![200; 5]);

    // Every point of the counter, with its labels: name with `_total`, job and instance from
    // the resource, the attribute made a valid label name.
    for i in 0..10 {
        assert_eq!(
            query(prom_port, "orders_total", at(i)),
            vec![(
                vec![
                    "__name__=\"orders_total\"".into(),
                    "instance=\"pod-1\"".into(),
                    "job=\"checkout\"".into(),
                    "shop_region=\"eu\"".into(),
                ],
                10.0 * i as f64
            )],
            "point {i}"
        );
    }
    assert_eq!(
        one(prom_port, "count_over_time(orders_total[10m])", at(9)),
        Some(10.0),
        "ten samples, none twice"
    );
    // 10 every 15 s.
    let rate = one(prom_port, "rate(orders_total[1m])", at(9)).unwrap();
    assert!((rate - 10.0 / 15.0).abs() < 1e-9, "{rate}");

    // The gauge has the unit's suffix, and the stale marker ends it at step 9.
    assert_eq!(one(prom_port, "memory_usage_bytes", at(8)), Some(1008.0));
    assert_eq!(one(prom_port, "memory_usage_bytes", at(9)), None);
    assert_eq!(
        one(prom_port, "count_over_time(memory_usage_bytes[10m])", at(9)),
        Some(9.0),
        "the stale marker is not a sample"
    );

    // The histogram: cumulative buckets with Go's `le`; the median of each step's (1, 2, 1)
    // observations over bounds (0.1, 0.5, 1] is 0.1 + 0.4 * (2 - 1) / 2 = 0.3.
    let buckets = query(
        prom_port,
        "http_server_request_duration_seconds_bucket",
        at(9),
    );
    let les: Vec<(String, f64)> = buckets
        .iter()
        .map(|(labels, v)| {
            let le = labels.iter().find(|l| l.starts_with("le=")).unwrap();
            (le.clone(), *v)
        })
        .collect();
    assert_eq!(
        les,
        vec![
            ("le=\"+Inf\"".into(), 36.0),
            ("le=\"0.1\"".into(), 9.0),
            ("le=\"0.5\"".into(), 27.0),
            ("le=\"1\"".into(), 36.0),
        ]
    );
    let median = one(
        prom_port,
        "histogram_quantile(0.5, rate(http_server_request_duration_seconds_bucket[1m]))",
        at(9),
    )
    .unwrap();
    assert!((median - 0.3).abs() < 1e-9, "{median}");
    assert_eq!(
        one(prom_port, "http_server_request_duration_seconds_sum", at(9)),
        Some(13.5)
    );
    assert_eq!(
        one(
            prom_port,
            "http_server_request_duration_seconds_count",
            at(9)
        ),
        Some(36.0)
    );

    // The summary keeps its quantiles as they are.
    assert_eq!(
        one(
            prom_port,
            "rpc_latency_milliseconds{quantile=\"0.99\"}",
            at(9)
        ),
        Some(18.0)
    );
    assert_eq!(
        one(prom_port, "rpc_latency_milliseconds_count", at(9)),
        Some(27.0)
    );

    // Nothing refused, nothing split off as already written.
    for reason in ["refused", "out_of_order", "duplicate_sample"] {
        assert_eq!(dropped(admin, reason), 0.0, "{reason}");
    }
}

/// A resend that mixes samples Prometheus has newer of with ones it has never seen: Prometheus
/// refuses the whole request; the sink delivers the new ones and sets the old one aside.
#[test]
fn samples_prometheus_already_has_newer_of_are_split_off_and_the_rest_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let prom_port = free_port();
    let _prometheus = start_prometheus(dir.path(), prom_port);
    let (admin, otlp) = (free_port(), free_port());
    let cfg = collector(dir.path(), admin, otlp, prom_port, "");
    let _collector = start_sextant("collector", &cfg, &dir.path().join("collector.log"));
    wait_http_ok(
        &format!("http://127.0.0.1:{admin}/readyz"),
        Duration::from_secs(20),
    );
    let base = base_ms();
    let gauge = |name: &str, points: &[(u64, f64)]| ProtoMetric {
        name: name.into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: points
                .iter()
                .map(|&(i, v)| number(base + i * STEP_MS, v, 0, vec![]))
                .collect(),
        })),
        ..Default::default()
    };
    // x and y at step 2.
    let first = request(vec![gauge("x", &[(2, 2.0)]), gauge("y", &[(2, 2.0)])]);
    assert_eq!(post_otlp(otlp, "/v1/metrics", &first), 200);
    // x at steps 1 (older than what Prometheus has) and 3, y at 3, z at 1 (new).
    let second = request(vec![
        gauge("x", &[(1, 1.0), (3, 3.0)]),
        gauge("y", &[(3, 3.0)]),
        gauge("z", &[(1, 1.0)]),
    ]);
    assert_eq!(post_otlp(otlp, "/v1/metrics", &second), 200);

    let samples = |name: &str| {
        (0..4)
            .filter_map(|i| {
                let at = base + i * STEP_MS;
                // Only samples exactly at the step: `timestamp()` tells them from lookback.
                let t = one(prom_port, &format!("timestamp({name})"), at)?;
                ((t * 1000.0).round() as u64 == at).then(|| (i, one(prom_port, name, at).unwrap()))
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(samples("x"), vec![(2, 2.0), (3, 3.0)]);
    assert_eq!(samples("y"), vec![(2, 2.0), (3, 3.0)]);
    assert_eq!(samples("z"), vec![(1, 1.0)]);
    assert_eq!(dropped(admin, "out_of_order"), 1.0);
    assert_eq!(dropped(admin, "refused"), 0.0);
    let dead: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("dead.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["reason"], "out_of_order");
    let record = &dead[0]["record"];
    assert_eq!(record["labels"]["__name__"], "x");
    assert_eq!(record["timestamp_ms"], base + STEP_MS);
    assert_eq!(record["value"], 1.0);
}

/// Points acknowledged into the sink's disk buffer while Prometheus is down; the collector is
/// killed with -9 while it delivers them, and started again: every point arrives, and whatever
/// it sends twice is not counted as a failure.
#[test]
fn a_collector_killed_while_delivering_resends_from_its_disk_buffer_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let prom_port = free_port();
    let (admin, otlp) = (free_port(), free_port());
    let disk = format!("      {}\n", crate::common::hop::DISK);
    let cfg = collector(dir.path(), admin, otlp, prom_port, &disk);
    let log = dir.path().join("collector.log");
    let mut collector = start_sextant("collector", &cfg, &log);
    wait_http_ok(
        &format!("http://127.0.0.1:{admin}/readyz"),
        Duration::from_secs(20),
    );
    let base = base_ms();
    let series = 200;
    let gauge = |i: u64| ProtoMetric {
        name: "queue.depth".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: (0..series)
                .map(|s| {
                    number(
                        base + i * 1000,
                        (i * 1000 + s) as f64,
                        0,
                        vec![kv("queue", &s.to_string())],
                    )
                })
                .collect(),
        })),
        ..Default::default()
    };
    let steps = 60;
    for i in 0..steps {
        assert_eq!(
            post_otlp(otlp, "/v1/metrics", &request(vec![gauge(i)])),
            200
        );
    }
    let _prometheus = start_prometheus(dir.path(), prom_port);
    let count_at = |i: u64| one(prom_port, "count(queue_depth)", base + i * 1000).unwrap_or(0.0);
    // Kill it once delivery has begun.
    assert!(eventually(Duration::from_secs(30), || count_at(0) > 0.0));
    collector.kill9();
    let mut collector = start_sextant("collector", &cfg, &log);
    let last = base + (steps - 1) * 1000;
    assert!(
        eventually(Duration::from_secs(60), || {
            one(
                prom_port,
                "count(count_over_time(queue_depth[10m]) == 60)",
                last,
            ) == Some(series as f64)
        }),
        "every series with all {steps} samples"
    );
    for i in [0, steps / 2, steps - 1] {
        let found = query(prom_port, "queue_depth{queue=\"7\"}", base + i * 1000);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].1, (i * 1000 + 7) as f64);
    }
    assert_eq!(
        one(prom_port, "sum(count_over_time(queue_depth[10m]))", last),
        Some((series * steps) as f64),
        "no sample twice"
    );
    assert_eq!(dropped(admin, "refused"), 0.0);
    assert!(collector.terminate(Duration::from_secs(15)));
}

#[test]
fn requests_to_amazon_managed_prometheus_carry_a_sigv4_signature_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (receiver, checked) = crate::common::sigv4::signature_checking_receiver();
    let (admin, otlp) = (free_port(), free_port());
    let cfg = crate::common::hop::collector_config(
        dir.path(),
        admin,
        otlp,
        &format!(
            r#"    prometheus:
      type: prometheus_remote_write
      inputs: [otlp]
      endpoint: http://127.0.0.1:{receiver}/workspaces/ws-1/api/v1/remote_write
      auth: {{ type: sigv4, region: eu-west-1 }}
      batch: {{ timeout: 100ms }}
      request: {{ max_attempts: 1 }}
"#
        ),
    );
    let _collector = start_sextant("collector", &cfg, &dir.path().join("collector.log"));
    wait_http_ok(
        &format!("http://127.0.0.1:{admin}/readyz"),
        Duration::from_secs(20),
    );
    let base = base_ms();
    for i in 0..3 {
        assert_eq!(
            post_otlp(otlp, "/v1/metrics", &request(point(base, i))),
            200
        );
    }
    let seen = checked.lock().unwrap().clone();
    assert!(!seen.is_empty());
    let mut samples = 0;
    for request in &seen {
        assert_eq!(request.scope.as_deref(), Ok("testing/eu-west-1/aps"));
        assert_eq!(request.path, "/workspaces/ws-1/api/v1/remote_write");
        let decoded =
            sextant_collector::sinks::prometheus_remote_write::wire::decode_body(&request.body)
                .unwrap();
        samples += decoded
            .timeseries
            .iter()
            .map(|t| t.samples.len())
            .sum::<usize>();
    }
    // Per point: a counter, a gauge, 4 buckets + sum + count, 2 quantiles + sum + count.
    assert_eq!(samples, 3 * (1 + 1 + 6 + 4));
}
