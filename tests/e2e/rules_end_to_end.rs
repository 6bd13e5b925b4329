//! Rules over the metrics that pass: `sextant run` scrapes a target the test serves (a counter
//! that grows by 10 each scrape, a temperature the test sets), ships it agent → collector over
//! OTLP, and the collector's `prometheus_rules` source evaluates a rule file over it every
//! second. The file sink must receive the recording rule's series with the rate the counter
//! grows at, the alert's `ALERTS` series (labels from the rule and the series) while the
//! temperature is high and its stale marker when it falls, the rule added to the file while
//! running (reload on change), and no output from a rule whose query fails — which is counted,
//! while the others keep running.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as J;

use crate::common::*;

/// Serves `/metrics` with `requests_total` (10 more each time) and `temperature` (settable).
fn serve_target(temperature: Arc<AtomicU64>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut requests = 0u64;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            requests += 10;
            let t = f64::from_bits(temperature.load(Ordering::SeqCst));
            let body = format!(
                "# TYPE requests_total counter\nrequests_total{{code=\"200\"}} {requests}\n# TYPE temperature gauge\ntemperature{{room=\"server\"}} {t}\n# TYPE dup gauge\ndup{{a=\"1\"}} 1\ndup{{a=\"2\"}} 1\n"
            );
            let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
    });
    port
}

const RULES: &str = r#"groups:
  - name: service
    interval: 1s
    rules:
      - record: job:requests:rate30s
        expr: sum by (job) (rate(requests_total[30s]))
      - record: broken:many_to_many
        expr: dup + on() dup
      - alert: HighTemperature
        expr: temperature > 40
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.room }} at {{ $value }}"
"#;

/// The points of series named `name` in the file sink's output, with their resource.
fn points_of(dir: &Path, name: &str) -> Vec<(J, J)> {
    metric_records(dir)
        .into_iter()
        .filter(|r| r["name"] == name)
        .flat_map(|r| {
            let resource = r["resource"].clone();
            r["points"]
                .as_array()
                .unwrap()
                .clone()
                .into_iter()
                .map(move |p| (resource.clone(), p))
        })
        .collect()
}

fn set(temperature: &AtomicU64, value: f64) {
    temperature.store(value.to_bits(), Ordering::SeqCst);
}

#[test]
fn recording_rules_and_alerts_reach_the_sinks_with_the_right_values() {
    let dir = tempfile::tempdir().unwrap();
    let temperature = Arc::new(AtomicU64::new(20f64.to_bits()));
    let target = serve_target(temperature.clone());
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).unwrap();
    let out = dir.path().join("out");
    let (admin, otlp) = (free_port(), free_port());
    let config = dir.path().join("sextant.yaml");
    std::fs::write(
        &config,
        format!(
            r#"data_dir: {data}
admin: {{ address: "127.0.0.1:{admin}" }}
agent:
  sources:
    scrape:
      type: prometheus_scrape
      scrape_interval: 1s
      scrape_configs:
        - job_name: shop
          static_configs: [{{ targets: ["127.0.0.1:{target}"] }}]
  sinks:
    to_collector: {{ type: otlp, inputs: [scrape], endpoint: "http://127.0.0.1:{otlp}" }}
collector:
  sources:
    otlp: {{ type: otlp, address: "127.0.0.1:{otlp}" }}
    rules:
      type: prometheus_rules
      inputs: [otlp]
      rule_files: ["{rules}"]
      evaluation_interval: 1s
  sinks:
    files: {{ type: file, inputs: [otlp, rules], path: {out} }}
"#,
            data = dir.path().join("data").display(),
            rules = rules.display(),
            out = out.display(),
        ),
    )
    .unwrap();
    let _sextant = start_sextant("run", &config, &dir.path().join("sextant.log"));

    // The recorded rate: 10 per scrape, a scrape a second. Once the 30 s window is full it is
    // about 10, and exactly what Prometheus's rate gives on the samples the collector received
    // (the engine's agreement with Prometheus is the conformance suite's to show).
    let recorded = eventually(Duration::from_secs(90), || {
        points_of(&out, "job:requests:rate30s").len() >= 40
    });
    assert!(
        recorded,
        "no recorded series; log:\n{}",
        std::fs::read_to_string(dir.path().join("sextant.log")).unwrap()
    );
    let (resource, last) = points_of(&out, "job:requests:rate30s").pop().unwrap();
    assert_eq!(
        resource["service.name"], "shop",
        "the job label is the resource's service.name"
    );
    assert_eq!(
        last["attributes"].as_object().map(|a| a.len()),
        Some(0),
        "only `job` survives `sum by (job)`: {last}"
    );
    let rate = last["value"].as_f64().unwrap();
    let at_ms = (last["time_unix_nano"].as_u64().unwrap() / 1_000_000) as i64;
    assert_eq!(
        at_ms % 1000,
        0,
        "evaluations run at multiples of the interval"
    );
    // An evaluation reads what had arrived by then: the received samples up to some cut within
    // the last few seconds before it (the hop takes time; later ones arrive after it ran).
    let received: Vec<(i64, f64)> = points_of(&out, "requests_total")
        .iter()
        .map(|(_, p)| {
            (
                (p["time_unix_nano"].as_u64().unwrap() / 1_000_000) as i64,
                p["value"].as_f64().unwrap(),
            )
        })
        .collect();
    let series = sextant_rules::labels::Labels::from_pairs([
        ("__name__", "requests_total"),
        ("job", "shop"),
        ("code", "200"),
    ]);
    let expr = sextant_rules::promql::parse("sum by (job) (rate(requests_total[30s]))").unwrap();
    let cuts = received
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| (at_ms - 5_000..=at_ms).contains(t));
    let expected: Vec<f64> = cuts
        .map(|cut| {
            let mut store = sextant_rules::promql::MemoryStorage::new();
            for (t, v) in received.iter().filter(|(t, _)| *t <= cut) {
                store.append(&series, *t, *v);
            }
            match sextant_rules::promql::instant_query(&store, &expr, at_ms, &Default::default())
                .unwrap()
            {
                sextant_rules::promql::Value::Vector(v) => v[0].v,
                other => panic!("{other:?}"),
            }
        })
        .collect();
    assert!(
        expected.iter().any(|e| (rate - e).abs() <= e * 1e-3),
        "recorded {rate}; the received samples, cut anywhere in the last 5 s before the evaluation, give {expected:?}"
    );
    assert!((9.5..=10.5).contains(&rate), "rate {rate}");
    assert!(
        points_of(&out, "HighTemperature").is_empty() && points_of(&out, "ALERTS").is_empty(),
        "no alert at 20°"
    );

    // Hot: the alert fires with the rule's and the series' labels.
    set(&temperature, 55.5);
    let fired = eventually(Duration::from_secs(20), || {
        !points_of(&out, "ALERTS").is_empty()
    });
    assert!(fired, "no ALERTS series");
    let (resource, p) = points_of(&out, "ALERTS").remove(0);
    assert_eq!(resource["service.name"], "shop");
    let attributes = p["attributes"].as_object().unwrap();
    assert_eq!(attributes["alertname"], "HighTemperature");
    assert_eq!(
        attributes["alertstate"], "firing",
        "no `for`: firing at once"
    );
    assert_eq!(attributes["severity"], "page");
    assert_eq!(attributes["room"], "server");
    assert_eq!(p["value"], 1.0);
    let for_state = points_of(&out, "ALERTS_FOR_STATE");
    assert!(!for_state.is_empty(), "no ALERTS_FOR_STATE");
    let active_at = for_state[0].1["value"].as_f64().unwrap();
    let fired_at = p["time_unix_nano"].as_u64().unwrap() as f64 / 1e9;
    assert!(
        (active_at - fired_at).abs() <= 1.0,
        "ALERTS_FOR_STATE {active_at} vs first firing {fired_at}"
    );

    // Cool again: the ALERTS series gets a stale marker.
    set(&temperature, 20.0);
    let resolved = eventually(Duration::from_secs(20), || {
        points_of(&out, "ALERTS")
            .iter()
            .any(|(_, p)| p["flags"] == 1 && p["value"].is_null())
    });
    assert!(
        resolved,
        "no stale marker for ALERTS once the temperature fell"
    );

    // A rule added to the file while running is picked up.
    std::fs::write(
        &rules,
        format!("{RULES}      - record: temperature:celsius\n        expr: temperature\n"),
    )
    .unwrap();
    let reloaded = eventually(Duration::from_secs(30), || {
        points_of(&out, "temperature:celsius")
            .iter()
            .any(|(_, p)| p["value"] == 20.0)
    });
    assert!(reloaded, "the added rule never ran");

    // The failing rule produced nothing and was counted; it did not stop the others.
    assert!(points_of(&out, "broken:many_to_many").is_empty());
    let metrics = http_get(&format!("http://127.0.0.1:{admin}/metrics"))
        .unwrap()
        .1;
    let failures = metric_sum(
        &metrics,
        "sextant_component_errors_total",
        &["component=\"rules\"", "error_type=\"rule_evaluation\""],
    );
    assert!(
        failures >= 20.0,
        "{failures} rule_evaluation errors counted"
    );
    // And per rule: the broken one, and no other.
    let per_rule = metric_sum(
        &metrics,
        "sextant_rule_evaluation_failures_total",
        &["component=\"rules\"", "rule=\"broken:many_to_many\""],
    );
    let all_rules = metric_sum(&metrics, "sextant_rule_evaluation_failures_total", &[]);
    assert!(
        per_rule >= 20.0,
        "{per_rule} failures of broken:many_to_many"
    );
    assert_eq!(per_rule, all_rules, "only the broken rule failed");
}
