//! The `prometheus_exporter` sink scraped by a real Prometheus (Debian's 2.42, which asks for
//! OpenMetrics): OTLP metrics into a real `sextant collector`, read back with Prometheus's query
//! and metadata APIs — names, labels, types, values, `target_info`, delta sums accumulated, a
//! stale marker that ends a series — and the text page checked by `promtool check metrics`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::metrics::v1::{
    metric, AggregationTemporality, Metric as ProtoMetric, Sum,
};

use crate::common::prometheus::*;
use crate::common::*;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The latest value of `promql` once Prometheus has scraped it as `want`.
fn wait_for(prom: u16, promql: &str, want: f64) {
    assert!(
        eventually(Duration::from_secs(30), || one(prom, promql, now_ms())
            == Some(want)),
        "{promql} never became {want}: {:?}",
        query(prom, promql, now_ms())
    );
}

fn delta_sum(value: f64) -> ProtoMetric {
    ProtoMetric {
        name: "jobs.done".into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: vec![number(now_ms(), value, 0, vec![])],
            aggregation_temporality: AggregationTemporality::Delta as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

/// `promtool check metrics` on a text page: it parses (exit 0, or 3 for lint advice only).
fn promtool_parses(page: &str) -> bool {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    matches!(child.wait().unwrap().code(), Some(0 | 3))
}

#[test]
fn prometheus_scrapes_what_the_collector_received_with_names_types_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, otlp, exporter, prom) = (free_port(), free_port(), free_port(), free_port());
    let cfg = crate::common::hop::collector_config(
        dir.path(),
        admin,
        otlp,
        &format!(
            "    prometheus:\n      type: prometheus_exporter\n      inputs: [otlp]\n      address: 127.0.0.1:{exporter}\n      batch: {{ timeout: 50ms }}\n"
        ),
    );
    let _collector = start_sextant("collector", &cfg, &dir.path().join("collector.log"));
    wait_http_ok(
        &format!("http://127.0.0.1:{admin}/readyz"),
        Duration::from_secs(20),
    );
    // The series carry their own job and instance (from the resource): honour them.
    let scrape = format!(
        "global: {{ scrape_interval: 1s, scrape_timeout: 900ms }}\nscrape_configs:\n  - job_name: sextant\n    honor_labels: true\n    static_configs: [{{ targets: [\"127.0.0.1:{exporter}\"] }}]\n"
    );
    let _prometheus = start_prometheus_with(dir.path(), prom, &scrape);

    let base = base_ms();
    for i in 0..4 {
        assert_eq!(
            post_otlp(otlp, "/v1/metrics", &request(point(base, i))),
            200
        );
    }
    wait_for(prom, "orders_total", 30.0);
    let now = now_ms();
    assert_eq!(
        query(prom, "orders_total", now),
        vec![(
            vec![
                "__name__=\"orders_total\"".into(),
                "instance=\"pod-1\"".into(),
                "job=\"checkout\"".into(),
                "shop_region=\"eu\"".into(),
            ],
            30.0
        )]
    );
    assert_eq!(one(prom, "memory_usage_bytes", now), Some(1003.0));
    // Step 3's histogram: buckets 3, 9, 12, 12 over (0.1, 0.5, 1]; the median (rank 6) is
    // 0.1 + 0.4 * (6 - 3) / 6 = 0.3.
    let median = one(
        prom,
        "histogram_quantile(0.5, http_server_request_duration_seconds_bucket)",
        now,
    )
    .unwrap();
    assert!((median - 0.3).abs() < 1e-9, "{median}");
    assert_eq!(
        one(prom, "http_server_request_duration_seconds_sum", now),
        Some(4.5)
    );
    assert_eq!(
        one(prom, "rpc_latency_milliseconds{quantile=\"0.99\"}", now),
        Some(12.0)
    );
    assert_eq!(
        one(
            prom,
            "target_info{job=\"checkout\",instance=\"pod-1\"}",
            now
        ),
        Some(1.0)
    );

    // The types, as Prometheus read them from the page.
    let (_, body) = http_get(&format!("http://127.0.0.1:{prom}/api/v1/metadata")).unwrap();
    let metadata: serde_json::Value = serde_json::from_str(&body).unwrap();
    let kind = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| metadata["data"][n][0]["type"].as_str().map(str::to_owned))
            .unwrap_or_default()
    };
    assert_eq!(kind(&["orders", "orders_total"]), "counter");
    assert_eq!(kind(&["memory_usage_bytes"]), "gauge");
    assert_eq!(kind(&["http_server_request_duration_seconds"]), "histogram");
    assert_eq!(kind(&["rpc_latency_milliseconds"]), "summary");
    assert_eq!(
        metadata["data"]["orders"][0]["help"]
            .as_str()
            .or(metadata["data"]["orders_total"][0]["help"].as_str()),
        Some("Orders placed.")
    );

    // A delta sum is exposed as the running total.
    for v in [5.0, 7.0] {
        assert_eq!(
            post_otlp(otlp, "/v1/metrics", &request(vec![delta_sum(v)])),
            200
        );
    }
    wait_for(prom, "jobs_done_total", 12.0);

    // Step 9: the counter grows on, the gauge's stale marker removes it from the page, and
    // Prometheus marks it stale.
    assert_eq!(
        post_otlp(otlp, "/v1/metrics", &request(point(base, 9))),
        200
    );
    wait_for(prom, "orders_total", 90.0);
    assert!(
        eventually(Duration::from_secs(10), || one(
            prom,
            "memory_usage_bytes",
            now_ms()
        )
        .is_none()),
        "the stale gauge is gone"
    );
    let now = now_ms();
    assert_eq!(one(prom, "resets(orders_total[1m])", now), Some(0.0));
    assert!(one(prom, "rate(orders_total[1m])", now).unwrap() > 0.0);

    // The text page parses with Prometheus's own parser; OpenMetrics ends with # EOF.
    let (status, text) = http_get(&format!("http://127.0.0.1:{exporter}/metrics")).unwrap();
    assert_eq!(status, 200);
    assert!(text.contains("# TYPE orders_total counter\n"), "{text}");
    assert!(!text.contains("memory_usage_bytes"), "{text}");
    assert!(promtool_parses(&text), "{text}");
}
