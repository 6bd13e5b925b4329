//! Sextant's notifier beside the reference: a real Prometheus 2.42 and Alertmanager 0.25 (with
//! `sns_configs` pointed at moto) and `sextant run` scrape the same target, evaluate the same
//! rule file and group with the same route; each publishes to its own SNS topic, read back from
//! an SQS queue subscribed to it.
//!
//! - The same groups: Alertmanager's default subject and Sextant's are the same text, so every
//!   notification Alertmanager delivered has its twin from Sextant, at about the same time
//!   (moto's timestamps, within a few seconds: an evaluation interval, a scrape, a group_wait).
//! - SNS's limits: a rule whose subject is over 100 characters and one whose annotation makes a
//!   multi-byte body over 256 KiB. Sextant's messages fit (subject cut to 99 printable ASCII
//!   characters, JSON body cut to fit); Alertmanager's do not (a subject SNS refuses, a body over
//!   256 KiB in bytes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::prometheus::start_prometheus_with;
use crate::common::sns::{Delivered, Topic};
use crate::common::*;

fn rules() -> String {
    format!(
        r#"groups:
  - name: rooms
    interval: 1s
    rules:
      - alert: HighTemperature
        expr: temperature > 40
        labels:
          severity: critical
        annotations:
          summary: "{{{{ $labels.room }}}} is hot"
      - alert: LongSubject
        expr: temperature{{room="server"}} > 40
        labels:
          detail: "{detail}"
      - alert: Verbose
        expr: temperature{{room="lab"}} > 40
        annotations:
          description: "{description}"
"#,
        detail = "d".repeat(150),
        description = "€".repeat(100_000),
    )
}

const ROUTE: &str = r#"
  route:
    receiver: oncall
    group_by: [alertname]
    group_wait: 1s
    group_interval: 2s
    repeat_interval: 1h"#;

fn millis(delivered: &Delivered) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&delivered.timestamp)
        .unwrap()
        .timestamp_millis()
}

fn alertname(subject: &str) -> String {
    subject
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sextant_notifies_the_groups_alertmanager_does_and_stays_within_sns_limits() {
    let dir = tempfile::tempdir().unwrap();
    let moto_port = free_port();
    let _moto = start_moto(moto_port);
    let am_topic = Topic::create(moto_port, "alertmanager").await;
    let sextant_topic = Topic::create(moto_port, "sextant").await;
    let temperature = Arc::new(AtomicU64::new(20f64.to_bits()));
    let target = serve_rooms(temperature.clone());
    let rules_file = dir.path().join("rules.yml");
    std::fs::write(&rules_file, rules()).unwrap();

    // The reference: Prometheus evaluates, Alertmanager groups and publishes.
    let am_port = free_port();
    let am_config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am_config,
        format!(
            "{}\nreceivers:\n  - name: oncall\n    sns_configs:\n      - api_url: http://127.0.0.1:{moto_port}\n        topic_arn: {}\n        send_resolved: true\n        sigv4: {{ region: us-east-1, access_key: testing, secret_key: testing }}\n",
            ROUTE.replace("\n  ", "\n"),
            am_topic.arn
        ),
    )
    .unwrap();
    let _am = start_server(
        "alertmanager",
        "prometheus-alertmanager",
        &[
            format!("--config.file={}", am_config.display()),
            format!("--storage.path={}", dir.path().join("am").display()),
            format!("--web.listen-address=127.0.0.1:{am_port}"),
            "--cluster.listen-address=".into(),
        ],
        am_port,
    );
    let prom_port = free_port();
    std::fs::create_dir_all(dir.path().join("prometheus")).unwrap();
    let _prometheus = start_prometheus_with(
        &dir.path().join("prometheus"),
        prom_port,
        &format!(
            "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\nrule_files: [\"{}\"]\nalerting:\n  alertmanagers:\n    - static_configs: [{{ targets: [\"127.0.0.1:{am_port}\"] }}]\nscrape_configs:\n  - job_name: rooms\n    static_configs: [{{ targets: [\"127.0.0.1:{target}\"] }}]\n",
            rules_file.display()
        ),
    );

    // Sextant, the same rules and route.
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
      alerting:{route}
        receivers:
          - name: oncall
            sns_configs: [{{ topic_arn: "{arn}" }}]
  sinks:
    metrics: {{ type: blackhole, inputs: [otlp, rules] }}
    sns:
      type: aws_sns
      inputs: [rules]
      aws: {{ region: us-east-1, endpoint: "http://127.0.0.1:{moto_port}" }}
"#,
            rules = rules_file.display(),
            route = ROUTE.replace("\n  ", "\n        "),
            arn = sextant_topic.arn,
        ),
    )
    .unwrap();
    let log = dir.path().join("sextant.log");
    let _sextant = start_sextant("run", &config, &log);
    // Both scrape and evaluate the cold rooms for a while; then the rooms heat up for both at
    // once.
    assert!(
        eventually(Duration::from_secs(30), || {
            !crate::common::prometheus::query(
                prom_port,
                "temperature",
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis() as u64,
            )
            .is_empty()
        }),
        "prometheus never scraped the target"
    );
    std::thread::sleep(Duration::from_secs(5));
    temperature.store(55f64.to_bits(), Ordering::SeqCst);

    let three = |got: &[Delivered]| got.len() >= 3;
    let ours = sextant_topic.collect(60, three).await;
    // Alertmanager publishes only what SNS takes (moto refuses a subject over 100 characters).
    let theirs = am_topic.collect(15, three).await;
    eprintln!(
        "alertmanager delivered: {:#?}",
        theirs
            .iter()
            .map(|d| (&d.subject, d.body.len()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        ours.len(),
        3,
        "sextant: one notification per group: {:#?}; log:\n{}",
        ours.iter().map(|d| &d.subject).collect::<Vec<_>>(),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let ours: BTreeMap<String, Delivered> = ours
        .into_iter()
        .map(|d| (alertname(&d.subject), d))
        .collect();
    let theirs: BTreeMap<String, Delivered> = theirs
        .into_iter()
        .map(|d| (alertname(&d.subject), d))
        .collect();

    // The group both deliver: the same subject, at about the same time.
    let instance = format!("127.0.0.1:{target}");
    let high = &ours["HighTemperature"];
    assert_eq!(
        high.subject,
        format!("[FIRING:2] HighTemperature ({instance} rooms critical)")
    );
    let reference = theirs
        .get("HighTemperature")
        .expect("alertmanager notified the group");
    assert_eq!(high.subject, reference.subject);
    let apart = (millis(high) - millis(reference)).abs();
    eprintln!(
        "firing: sextant {} ms after alertmanager",
        millis(high) - millis(reference)
    );
    assert!(apart <= 4_000, "{apart} ms apart");

    // Over the limits: Sextant's messages fit.
    let long = &ours["LongSubject"];
    assert!(long.subject.len() < 100 && long.subject.ends_with("..."));
    assert!(long.subject.is_ascii());
    let verbose = &ours["Verbose"];
    assert!(verbose.body.len() <= 256 * 1024);
    let body = verbose.json();
    let description = body["alerts"][0]["annotations"]["description"]
        .as_str()
        .unwrap();
    assert!(description.len() <= 4096 && description.ends_with('…'));
    // ... and Alertmanager's do not: its subject is refused, its body over 256 KiB in bytes.
    assert!(
        !theirs.contains_key("LongSubject"),
        "moto refuses a subject of 100 characters or more"
    );
    let their_verbose = &theirs["Verbose"];
    assert!(
        their_verbose.body.len() > 256 * 1024,
        "alertmanager's body is {} bytes",
        their_verbose.body.len()
    );

    // Resolved: each side tells each group once.
    temperature.store(20f64.to_bits(), Ordering::SeqCst);
    let resolved = sextant_topic.collect(60, three).await;
    let mut subjects: Vec<String> = resolved.iter().map(|d| alertname(&d.subject)).collect();
    subjects.sort();
    assert_eq!(subjects, ["HighTemperature", "LongSubject", "Verbose"]);
    assert!(resolved.iter().all(|d| d.subject.starts_with("[RESOLVED]")));
    let reference = am_topic
        .collect(15, |got| {
            got.iter()
                .any(|d| alertname(&d.subject) == "HighTemperature")
        })
        .await;
    let reference = reference
        .iter()
        .find(|d| alertname(&d.subject) == "HighTemperature")
        .expect("alertmanager told the resolution");
    let ours = resolved
        .iter()
        .find(|d| alertname(&d.subject) == "HighTemperature")
        .unwrap();
    assert_eq!(ours.subject, reference.subject);
    eprintln!(
        "resolved: sextant {} ms after alertmanager",
        millis(ours) - millis(reference)
    );
    assert!((millis(ours) - millis(reference)).abs() <= 4_000);
}
