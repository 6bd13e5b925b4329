//! Alerts to SNS end to end: `sextant run` scrapes a target the test serves (two rooms'
//! temperatures), ships the metrics agent → collector over OTLP, the collector's rules fire an
//! alert after its `for`, and the notifier publishes through an `aws_sns` sink to a topic on
//! moto, read back from an SQS queue subscribed to it — every field of the message. The
//! process is killed with -9 twice: while the alert is pending (the `for` clock must not
//! restart) and after the firing notification went out (it must not be sent again). The
//! resolution is told once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as J;

use crate::common::sns::Topic;
use crate::common::*;

const RULES: &str = r#"groups:
  - name: rooms
    interval: 1s
    rules:
      - alert: HighTemperature
        expr: temperature > 40
        for: 8s
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.room }} at {{ $value }}"
"#;

/// `ALERTS_FOR_STATE` values (the alert's active-at, in seconds) the file sink received.
fn for_state_values(dir: &Path) -> Vec<f64> {
    metric_records(dir)
        .into_iter()
        .filter(|r| r["name"] == "ALERTS_FOR_STATE")
        .flat_map(|r| r["points"].as_array().unwrap().clone())
        .filter_map(|p| p["value"].as_f64())
        .collect()
}

fn set(temperature: &AtomicU64, value: f64) {
    temperature.store(value.to_bits(), Ordering::SeqCst);
}

fn millis(rfc3339: &J) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339.as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_reaches_sns_once_when_it_fires_and_once_when_it_resolves_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let moto_port = free_port();
    let _moto = start_moto(moto_port);
    let topic = Topic::create(moto_port, "oncall").await;
    let temperature = Arc::new(AtomicU64::new(20f64.to_bits()));
    let target = serve_rooms(temperature.clone());
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, RULES).unwrap();
    let out = dir.path().join("out");
    let (head, _) = rooms_run(&dir.path().join("data"), target);
    let config = dir.path().join("sextant.yaml");
    std::fs::write(
        &config,
        format!(
            r#"{head}    rules:
      type: prometheus_rules
      inputs: [otlp]
      rule_files: ["{rules}"]
      evaluation_interval: 1s
      external_url: "https://sextant.example"
      alerting:
        route:
          receiver: oncall
          group_by: [alertname]
          group_wait: 0s
          group_interval: 2s
          repeat_interval: 1h
        receivers:
          - name: oncall
            sns_configs: [{{ topic_arn: "{arn}" }}]
  sinks:
    files: {{ type: file, inputs: [otlp, rules], path: {out} }}
    sns:
      type: aws_sns
      inputs: [rules]
      aws: {{ region: us-east-1, endpoint: "http://127.0.0.1:{moto_port}" }}
"#,
            rules = rules.display(),
            out = out.display(),
            arn = topic.arn,
        ),
    )
    .unwrap();
    let log = dir.path().join("sextant.log");
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let mut sextant = start_sextant("run", &config, &log);
    assert!(
        eventually(Duration::from_secs(60), || metric_records(&out)
            .iter()
            .any(|r| r["name"] == "temperature")),
        "no scrape reached the collector; log:\n{}",
        log_text()
    );

    // Hot: the alert goes pending. Killed -9 while pending and started again, its `for` clock
    // keeps the active-at it had.
    set(&temperature, 55.5);
    assert!(
        eventually(Duration::from_secs(20), || !for_state_values(&out)
            .is_empty()),
        "the alert never went pending; log:\n{}",
        log_text()
    );
    let active_at_s = for_state_values(&out)[0];
    std::thread::sleep(Duration::from_secs(3));
    sextant.kill9();
    let restarted_at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut sextant = start_sextant("run", &config, &log);

    let firing = topic.first(40).await;
    assert_eq!(firing.len(), 1, "one firing notification: {firing:#?}");
    let m = &firing[0];
    let instance = format!("127.0.0.1:{target}");
    assert_eq!(
        m.subject,
        format!("[FIRING:2] HighTemperature ({instance} rooms critical)")
    );
    assert_eq!(
        m.attributes,
        [
            ("alertname", "HighTemperature"),
            ("severity", "critical"),
            ("status", "firing")
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    );
    let body = m.json();
    assert_eq!(body["schema"], "sextant.alert.v1");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["receiver"], "oncall");
    assert_eq!(body["event_action"], "trigger");
    assert_eq!(body["payload"]["severity"], "critical");
    assert_eq!(body["version"], "1.0");
    assert_eq!(body["source"], "custom");
    assert_eq!(
        body["groupLabels"],
        serde_json::json!({"alertname": "HighTemperature"})
    );
    assert_eq!(body["truncatedAlerts"], 0);
    let alerts = body["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    for (alert, room) in alerts.iter().zip(["lab", "server"]) {
        assert_eq!(
            alert["labels"],
            serde_json::json!({
                "alertname": "HighTemperature",
                "instance": instance,
                "job": "rooms",
                "room": room,
                "severity": "critical",
            })
        );
        assert_eq!(
            alert["annotations"],
            serde_json::json!({"summary": format!("{room} at 55.5")})
        );
        assert_eq!(alert["status"], "firing");
        assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z");
        assert!(alert["generatorURL"]
            .as_str()
            .unwrap()
            .starts_with("https://sextant.example/graph?g0.expr=temperature%20%3E%2040"));
        // Fired `for` after it went active, counted across the restart — not `for` after it.
        let fired_ms = millis(&alert["startsAt"]);
        let since_active = fired_ms - (active_at_s * 1000.0) as i64;
        assert!(
            (8_000..10_000).contains(&since_active),
            "fired {since_active} ms after going active"
        );
        assert!(fired_ms < restarted_at_ms + 8_000);
    }
    // For the record (timing is the benches' to judge): SNS took it this long after the
    // evaluation that fired the alert.
    let published_ms = chrono::DateTime::parse_from_rfc3339(&m.timestamp)
        .unwrap()
        .timestamp_millis();
    eprintln!(
        "published {} ms after the firing evaluation",
        published_ms - millis(&alerts[0]["startsAt"])
    );
    assert!(
        for_state_values(&out).iter().all(|v| *v == active_at_s),
        "ALERTS_FOR_STATE changed across the restart: {:?}",
        for_state_values(&out)
    );

    // Killed -9 after the notification went out: the restarted process does not send it again.
    std::thread::sleep(Duration::from_secs(3));
    sextant.kill9();
    let mut sextant = start_sextant("run", &config, &log);
    let again = topic.first(10).await;
    assert!(again.is_empty(), "sent again after the restart: {again:#?}");

    // Cool: resolved, told once.
    set(&temperature, 20.0);
    let resolved = topic.first(30).await;
    assert_eq!(
        resolved.len(),
        1,
        "one resolved notification: {resolved:#?}"
    );
    let m = &resolved[0];
    assert_eq!(
        m.subject,
        format!("[RESOLVED] HighTemperature ({instance} rooms critical)")
    );
    assert_eq!(m.attributes["status"], "resolved");
    let body = m.json();
    assert_eq!(body["event_action"], "resolve");
    assert_eq!(body["dedup_key"], firing[0].json()["dedup_key"]);
    let alerts = body["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    for alert in alerts {
        assert_eq!(alert["status"], "resolved");
        assert!(millis(&alert["endsAt"]) > millis(&alert["startsAt"]));
    }
    let after = topic.first(6).await;
    assert!(after.is_empty(), "more after the resolution: {after:#?}");
    assert!(sextant.terminate(Duration::from_secs(20)));
}

/// Bad input on the way out: a receiver whose topic does not exist, SNS throttling the first
/// publishes, and an annotation template that fails at run time. The missing topic's message is
/// refused for good — dead-lettered whole and counted — while the good topic's is retried
/// through the throttling and arrives once, with the template's error in its annotation; the
/// rules keep evaluating.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_topic_is_dead_lettered_and_throttling_neither_loses_nor_doubles() {
    let dir = tempfile::tempdir().unwrap();
    let moto_port = free_port();
    let _moto = start_moto(moto_port);
    let topic = Topic::create(moto_port, "oncall").await;
    let proxy = FaultProxy::start(moto_port, "x-www-form-urlencoded", vec![Fault::Throttle; 6]);
    let temperature = Arc::new(AtomicU64::new(55f64.to_bits()));
    let target = serve_rooms(temperature.clone());
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        r#"groups:
  - name: rooms
    interval: 1s
    rules:
      - alert: HighTemperature
        expr: temperature > 40
        labels:
          severity: critical
        annotations:
          summary: "{{ $labels.room }} at {{ $value }}"
          broken: '{{ query "sum(" }}'
"#,
    )
    .unwrap();
    let dead = dir.path().join("dead.jsonl");
    let missing = "arn:aws:sns:us-east-1:123456789012:no-such-topic";
    let (head, admin) = rooms_run(&dir.path().join("data"), target);
    let config = dir.path().join("sextant.yaml");
    std::fs::write(
        &config,
        format!(
            r#"{head}    rules:
      type: prometheus_rules
      inputs: [otlp]
      rule_files: ["{rules}"]
      evaluation_interval: 1s
      alerting:
        route:
          receiver: oncall
          group_by: [alertname]
          group_wait: 0s
          group_interval: 2s
          routes:
            - matchers: ['severity="critical"']
              receiver: missing
              continue: true
            - matchers: ['severity="critical"']
              receiver: oncall
        receivers:
          - name: oncall
            sns_configs: [{{ topic_arn: "{arn}" }}]
          - name: missing
            sns_configs: [{{ topic_arn: "{missing}" }}]
  sinks:
    metrics: {{ type: blackhole, inputs: [otlp, rules] }}
    sns:
      type: aws_sns
      inputs: [rules]
      healthcheck: false
      dead_letter: {{ path: "{dead}" }}
      aws: {{ region: us-east-1, endpoint: "http://127.0.0.1:{proxy}" }}
      request: {{ initial_backoff: 50ms, max_backoff: 200ms }}
"#,
            rules = rules.display(),
            arn = topic.arn,
            dead = dead.display(),
            proxy = proxy.port,
        ),
    )
    .unwrap();
    let log = dir.path().join("sextant.log");
    let mut sextant = start_sextant("run", &config, &log);

    let got = topic.first(40).await;
    assert_eq!(
        got.len(),
        1,
        "one notification: {got:#?}; log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(got[0].subject.starts_with("[FIRING:2] HighTemperature"));
    let body = got[0].json();
    for alert in body["alerts"].as_array().unwrap() {
        let broken = alert["annotations"]["broken"].as_str().unwrap();
        assert!(
            broken.starts_with("<error expanding template: "),
            "{broken}"
        );
        assert!(alert["annotations"]["summary"]
            .as_str()
            .unwrap()
            .ends_with(" at 55"));
    }
    assert_eq!(
        proxy.injected.load(Ordering::SeqCst),
        6,
        "every throttle was hit"
    );

    // The missing topic: refused for good, its message dead-lettered whole.
    assert!(eventually(Duration::from_secs(20), || {
        std::fs::read_to_string(&dead).is_ok_and(|t| !t.is_empty())
    }));
    let first: J = serde_json::from_str(
        std::fs::read_to_string(&dead)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let text = first.to_string();
    assert!(text.contains(missing), "{text}");
    assert!(text.contains("[FIRING:2] HighTemperature"), "{text}");
    assert!(text.contains("\\\"severity\\\":\\\"critical\\\""), "{text}");

    // Nothing more reaches the good topic, and the refused one is not tried again.
    let more = topic.first(6).await;
    assert!(more.is_empty(), "sent twice: {more:#?}");
    let (_, m) = http_get(&format!("http://127.0.0.1:{admin}/metrics")).unwrap();
    let errors = |component: &str, t: &str| {
        metric_sum(
            &m,
            "sextant_component_errors_total",
            &[
                &format!("component=\"{component}\""),
                &format!("error_type=\"{t}\""),
            ],
        )
    };
    assert!(errors("sns", "throttled") >= 6.0, "{m}");
    // Refused for good is final: once, not at every group interval.
    assert_eq!(errors("sns", "topic_not_found"), 1.0, "{m}");
    assert_eq!(errors("rules", "notification_refused"), 1.0, "{m}");
    assert_eq!(
        metric_sum_or_zero(
            &m,
            "sextant_component_errors_total",
            &[
                "component=\"rules\"",
                "error_type=\"notification_not_delivered\""
            ]
        ),
        0.0
    );
    assert_eq!(
        std::fs::read_to_string(&dead).unwrap().lines().count(),
        1,
        "dead-lettered once"
    );
    assert!(sextant.terminate(Duration::from_secs(20)));
}

/// Silences from a file: the one in force mutes its alert; a file with a bad matcher is refused
/// and the silences in force stay (the muted alert stays muted: no new notification); a good
/// file replaces them (the alert is unmuted and told).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_mute_and_a_bad_silences_file_keeps_the_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let moto_port = free_port();
    let _moto = start_moto(moto_port);
    let topic = Topic::create(moto_port, "oncall").await;
    let temperature = Arc::new(AtomicU64::new(55f64.to_bits()));
    let target = serve_rooms(temperature.clone());
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n  - name: rooms\n    interval: 1s\n    rules:\n      - alert: Hot\n        expr: temperature > 40\n",
    )
    .unwrap();
    let silences = dir.path().join("silences.yml");
    let lab_silenced = "silences:\n  - matchers: ['room=\"lab\"']\n    starts_at: 2020-01-01T00:00:00Z\n    ends_at: 2100-01-01T00:00:00Z\n    comment: lab under maintenance\n";
    std::fs::write(&silences, lab_silenced).unwrap();
    let (head, admin) = rooms_run(&dir.path().join("data"), target);
    let config = dir.path().join("sextant.yaml");
    std::fs::write(
        &config,
        format!(
            r#"{head}    rules:
      type: prometheus_rules
      inputs: [otlp]
      rule_files: ["{rules}"]
      evaluation_interval: 1s
      alerting:
        route: {{ receiver: oncall, group_by: [alertname], group_wait: 0s, group_interval: 1s }}
        receivers: [{{ name: oncall, sns_configs: [{{ topic_arn: "{arn}" }}] }}]
        silences_file: "{silences}"
  sinks:
    metrics: {{ type: blackhole, inputs: [otlp, rules] }}
    sns: {{ type: aws_sns, inputs: [rules], aws: {{ region: us-east-1, endpoint: "http://127.0.0.1:{moto_port}" }} }}
"#,
            rules = rules.display(),
            arn = topic.arn,
            silences = silences.display(),
        ),
    )
    .unwrap();
    let mut sextant = start_sextant("run", &config, &dir.path().join("sextant.log"));
    let rooms = |d: &crate::common::sns::Delivered| -> Vec<String> {
        d.json()["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["labels"]["room"].as_str().unwrap().to_string())
            .collect()
    };
    let first = topic.first(40).await;
    assert_eq!(first.len(), 1, "{first:#?}");
    assert_eq!(rooms(&first[0]), ["server"], "the lab is silenced");

    // A bad file: refused, counted, and the lab stays silenced.
    std::fs::write(
        &silences,
        "silences:\n  - matchers: ['room~\"lab\"']\n    starts_at: 2020-01-01T00:00:00Z\n    ends_at: 2100-01-01T00:00:00Z\n",
    )
    .unwrap();
    let metrics_url = format!("http://127.0.0.1:{admin}/metrics");
    let refused = |m: &str| {
        metric_sum_or_zero(
            m,
            "sextant_component_errors_total",
            &["component=\"rules\"", "error_type=\"silences_reload\""],
        )
    };
    assert!(
        eventually(Duration::from_secs(15), || http_get(&metrics_url)
            .is_some_and(|(_, m)| refused(&m) == 1.0)),
        "the bad silences file was not refused"
    );
    let during = topic.first(4).await;
    assert!(
        during.is_empty(),
        "the old silences were dropped: {during:#?}"
    );

    // A good file without silences: the lab is told.
    std::fs::write(&silences, "silences: []\n").unwrap();
    let after = topic.first(20).await;
    assert_eq!(after.len(), 1, "{after:#?}");
    assert_eq!(rooms(&after[0]), ["lab", "server"]);
    assert!(sextant.terminate(Duration::from_secs(20)));
}
