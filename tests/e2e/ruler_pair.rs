//! A ruler pair: two `sextant run` processes scrape the same target and evaluate the same rules
//! (each receives every sample, as the rulers of a pool do), with a Kubernetes Lease served by
//! the fake Lease API. Only the holder notifies and writes `ALERTS`; the leader is killed with
//! -9 while the alert fires, the other takes the Lease when it expires and from then on
//! notifies — and the group is told once across the handover: one firing notification, one
//! resolved.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::fake_leases::{kubeconfig, serve, FakeLeases};
use crate::common::sns::{Delivered, Topic};
use crate::common::*;

const RULES: &str = r#"groups:
  - name: rooms
    interval: 1s
    rules:
      - alert: HighTemperature
        expr: temperature > 40
        for: 2s
        labels:
          severity: critical
"#;

struct Ruler {
    name: &'static str,
    config: PathBuf,
    out: PathBuf,
    log: PathBuf,
}

fn ruler(
    dir: &Path,
    name: &'static str,
    target: u16,
    lease_port: u16,
    moto: u16,
    arn: &str,
) -> Ruler {
    let home = dir.join(name);
    std::fs::create_dir_all(&home).unwrap();
    let rules = home.join("rules.yml");
    std::fs::write(&rules, RULES).unwrap();
    let kube = home.join("kubeconfig");
    std::fs::write(&kube, kubeconfig(lease_port)).unwrap();
    let out = home.join("out");
    let (admin, otlp) = (free_port(), free_port());
    let config = home.join("sextant.yaml");
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
        - job_name: rooms
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
      lease:
        name: sextant-ruler
        namespace: rulers
        identity: {name}
        duration: 3s
        renew_deadline: 2s
        retry_period: 250ms
        kubeconfig: {kube}
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
    metrics: {{ type: blackhole, inputs: [otlp] }}
    results: {{ type: file, inputs: [rules], path: {out} }}
    sns:
      type: aws_sns
      inputs: [rules]
      aws: {{ region: us-east-1, endpoint: "http://127.0.0.1:{moto}" }}
"#,
            data = home.join("data").display(),
            rules = rules.display(),
            kube = kube.display(),
            out = out.display(),
        ),
    )
    .unwrap();
    Ruler {
        name,
        config,
        out,
        log: home.join("sextant.log"),
    }
}

fn alerts_written(out: &Path) -> usize {
    metric_records(out)
        .iter()
        .filter(|r| r["name"] == "ALERTS")
        .count()
}

async fn wait_messages(topic: &Topic, seconds: u64, enough: usize) -> Vec<Delivered> {
    let mut got = Vec::new();
    for _ in 0..seconds * 4 {
        got.extend(topic.drain().await);
        if got.len() >= enough {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_notifies_and_a_handover_tells_each_group_once() {
    let dir = tempfile::tempdir().unwrap();
    let moto_port = free_port();
    let _moto = start_moto(moto_port);
    let topic = Topic::create(moto_port, "oncall").await;
    let fake = Arc::new(FakeLeases::default());
    let lease_port = serve(fake.clone()).await;
    let temperature = Arc::new(AtomicU64::new(20f64.to_bits()));
    let target = serve_rooms(temperature.clone());
    let rulers = [
        ruler(
            dir.path(),
            "ruler-a",
            target,
            lease_port,
            moto_port,
            &topic.arn,
        ),
        ruler(
            dir.path(),
            "ruler-b",
            target,
            lease_port,
            moto_port,
            &topic.arn,
        ),
    ];
    let mut procs: Vec<Proc> = rulers
        .iter()
        .map(|r| start_sextant("run", &r.config, &r.log))
        .collect();
    assert!(
        eventually(Duration::from_secs(30), || fake.holder().is_some()),
        "nobody took the Lease; log:\n{}",
        std::fs::read_to_string(&rulers[0].log).unwrap_or_default()
    );
    let leader = rulers
        .iter()
        .position(|r| Some(r.name.to_string()) == fake.holder())
        .unwrap();
    let follower = 1 - leader;

    // Hot: one firing notification for the group, from the leader alone.
    temperature.store(55f64.to_bits(), Ordering::SeqCst);
    let firing = wait_messages(&topic, 30, 1).await;
    assert_eq!(firing.len(), 1, "{firing:#?}");
    assert!(firing[0].subject.starts_with("[FIRING:2] HighTemperature"));
    let more = wait_messages(&topic, 4, 1).await;
    assert!(more.is_empty(), "told twice: {more:#?}");
    assert!(
        alerts_written(&rulers[leader].out) > 0,
        "the leader writes ALERTS"
    );
    assert_eq!(
        alerts_written(&rulers[follower].out),
        0,
        "the follower writes no ALERTS"
    );

    // The leader dies; the follower takes the Lease when it expires and does not tell again
    // what the leader told.
    procs[leader].kill9();
    let follower_name = rulers[follower].name.to_string();
    assert!(
        eventually(Duration::from_secs(15), || fake.holder()
            == Some(follower_name.clone())),
        "the follower never took over"
    );
    assert_eq!(fake.transitions(), Some(1));
    let after_handover = wait_messages(&topic, 5, 1).await;
    assert!(
        after_handover.is_empty(),
        "told again after the handover: {after_handover:#?}"
    );
    assert!(
        eventually(Duration::from_secs(10), || alerts_written(
            &rulers[follower].out
        ) > 0),
        "the new leader writes ALERTS"
    );

    // Cool: the new leader tells the resolution, once.
    temperature.store(20f64.to_bits(), Ordering::SeqCst);
    let resolved = wait_messages(&topic, 30, 1).await;
    assert_eq!(resolved.len(), 1, "{resolved:#?}");
    assert!(resolved[0]
        .subject
        .starts_with("[RESOLVED] HighTemperature"));
    assert_eq!(
        resolved[0].json()["dedup_key"],
        firing[0].json()["dedup_key"]
    );
    let more = wait_messages(&topic, 4, 1).await;
    assert!(more.is_empty(), "{more:#?}");
    assert!(procs[follower].terminate(Duration::from_secs(20)));
}
