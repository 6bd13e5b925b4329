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

/// Where a ruler's metrics come from: its own scrape of the target, or OTLP on a port (from
/// the pool's forwarding collectors).
#[derive(Clone, Copy)]
enum Feed {
    Scrape(u16),
    Otlp(u16),
}

fn ruler(
    dir: &Path,
    name: &'static str,
    (feed, rules_text): (Feed, &str),
    lease_port: u16,
    moto: u16,
    arn: &str,
) -> Ruler {
    let home = dir.join(name);
    std::fs::create_dir_all(&home).unwrap();
    let rules = home.join("rules.yml");
    std::fs::write(&rules, rules_text).unwrap();
    let kube = home.join("kubeconfig");
    std::fs::write(&kube, kubeconfig(lease_port)).unwrap();
    let out = home.join("out");
    let admin = free_port();
    let (agent, otlp) = match feed {
        Feed::Scrape(target) => {
            let otlp = free_port();
            (rooms_agent(target, &[otlp]), otlp)
        }
        Feed::Otlp(port) => (String::new(), port),
    };
    let config = home.join("sextant.yaml");
    std::fs::write(
        &config,
        format!(
            r#"data_dir: {data}
admin: {{ address: "127.0.0.1:{admin}" }}
{agent}
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
            (Feed::Scrape(target), RULES),
            lease_port,
            moto_port,
            &topic.arn,
        ),
        ruler(
            dir.path(),
            "ruler-b",
            (Feed::Scrape(target), RULES),
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
    let firing = topic.first(30).await;
    assert_eq!(firing.len(), 1, "{firing:#?}");
    assert!(firing[0].subject.starts_with("[FIRING:2] HighTemperature"));
    let more = topic.first(4).await;
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
    let after_handover = topic.first(5).await;
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
    let resolved = topic.first(30).await;
    assert_eq!(resolved.len(), 1, "{resolved:#?}");
    assert!(resolved[0]
        .subject
        .starts_with("[RESOLVED] HighTemperature"));
    assert_eq!(
        resolved[0].json()["dedup_key"],
        firing[0].json()["dedup_key"]
    );
    let more = topic.first(4).await;
    assert!(more.is_empty(), "{more:#?}");
    assert!(procs[follower].terminate(Duration::from_secs(20)));
}

/// A rule that needs every series of the job: right only where all of them arrive.
const SUM_RULES: &str = r#"groups:
  - name: rooms
    interval: 1s
    rules:
      - alert: RoomsTooHot
        expr: sum by (job) (temperature) > 80
        labels:
          severity: critical
        annotations:
          summary: "{{ $value }} in all"
"#;

/// A collector of the pool: receives part of the agent's metrics and forwards what the rules
/// read to both rulers.
fn forwarder(dir: &Path, name: &str, otlp: u16, rulers: [u16; 2]) -> PathBuf {
    let home = dir.join(name);
    std::fs::create_dir_all(&home).unwrap();
    let rules = home.join("rules.yml");
    std::fs::write(&rules, SUM_RULES).unwrap();
    let config = home.join("sextant.yaml");
    std::fs::write(
        &config,
        format!(
            r#"data_dir: {data}
admin: {{ address: "127.0.0.1:{admin}" }}
collector:
  sources:
    otlp: {{ type: otlp, address: "127.0.0.1:{otlp}" }}
    to_rulers:
      type: prometheus_rules
      inputs: [otlp]
      rule_files: ["{rules}"]
      forward_only: true
  sinks:
    metrics: {{ type: blackhole, inputs: [otlp] }}
    ruler_a: {{ type: otlp, inputs: [to_rulers], endpoint: "http://127.0.0.1:{a}" }}
    ruler_b: {{ type: otlp, inputs: [to_rulers], endpoint: "http://127.0.0.1:{b}" }}
"#,
            data = home.join("data").display(),
            admin = free_port(),
            rules = rules.display(),
            a = rulers[0],
            b = rulers[1],
        ),
    )
    .unwrap();
    config
}

/// The pool: an agent balances its batches over two collectors; both forward what the rules
/// read (and nothing else) to both rulers of a pair, which see only what was forwarded. The pair's
/// notification equals a single process's on the same input: the sum over every room, told
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_forwards_to_the_ruler_pair_and_alerts_as_one_process_would() {
    let dir = tempfile::tempdir().unwrap();
    let moto_port = free_port();
    let _moto = start_moto(moto_port);
    let pool_topic = Topic::create(moto_port, "pool").await;
    let single_topic = Topic::create(moto_port, "single").await;
    let fake = Arc::new(FakeLeases::default());
    let lease_port = serve(fake.clone()).await;
    let temperature = Arc::new(AtomicU64::new(20f64.to_bits()));
    let target = serve_rooms(temperature.clone());

    let ruler_ports = [free_port(), free_port()];
    let rulers = [
        ruler(
            dir.path(),
            "ruler-a",
            (Feed::Otlp(ruler_ports[0]), SUM_RULES),
            lease_port,
            moto_port,
            &pool_topic.arn,
        ),
        ruler(
            dir.path(),
            "ruler-b",
            (Feed::Otlp(ruler_ports[1]), SUM_RULES),
            lease_port,
            moto_port,
            &pool_topic.arn,
        ),
    ];
    let collector_ports = [free_port(), free_port()];
    let mut procs: Vec<Proc> = rulers
        .iter()
        .map(|r| start_sextant("collector", &r.config, &r.log))
        .collect();
    for (i, port) in collector_ports.iter().enumerate() {
        let name = format!("collector-{i}");
        let config = forwarder(dir.path(), &name, *port, ruler_ports);
        procs.push(start_sextant(
            "collector",
            &config,
            &dir.path().join(format!("{name}.log")),
        ));
    }
    let agent_config = dir.path().join("agent.yaml");
    std::fs::write(
        &agent_config,
        format!(
            "data_dir: {}\nadmin: {{ address: \"127.0.0.1:{}\" }}\n{}\n",
            dir.path().join("agent-data").display(),
            free_port(),
            rooms_agent(target, &collector_ports)
        ),
    )
    .unwrap();
    procs.push(start_sextant(
        "agent",
        &agent_config,
        &dir.path().join("agent.log"),
    ));
    // The reference: one process that sees everything, without a Lease.
    let single = ruler(
        dir.path(),
        "single",
        (Feed::Scrape(target), SUM_RULES),
        lease_port,
        moto_port,
        &single_topic.arn,
    );
    let text = std::fs::read_to_string(&single.config).unwrap();
    let (start, end) = (
        text.find("      lease:").unwrap(),
        text.find("      alerting:").unwrap(),
    );
    std::fs::write(
        &single.config,
        format!("{}{}", &text[..start], &text[end..]),
    )
    .unwrap();
    procs.push(start_sextant("run", &single.config, &single.log));
    assert!(eventually(Duration::from_secs(30), || fake
        .holder()
        .is_some()));

    temperature.store(55f64.to_bits(), Ordering::SeqCst);
    let reference = single_topic.first(40).await;
    let pool = pool_topic.first(40).await;
    assert_eq!(reference.len(), 1, "{reference:#?}");
    assert_eq!(
        pool.len(),
        1,
        "the pair tells the group once: {pool:#?}; ruler log:\n{}",
        std::fs::read_to_string(&rulers[0].log).unwrap_or_default()
    );
    assert_eq!(pool[0].subject, reference[0].subject);
    assert_eq!(pool[0].subject, "[FIRING:1] RoomsTooHot (rooms critical)");
    let alert = |d: &Delivered| {
        let body = d.json();
        (
            body["alerts"][0]["labels"].clone(),
            body["alerts"][0]["annotations"].clone(),
        )
    };
    assert_eq!(alert(&pool[0]), alert(&reference[0]));
    assert_eq!(alert(&pool[0]).1["summary"], "110 in all");
    let more = pool_topic.first(4).await;
    assert!(more.is_empty(), "{more:#?}");
    for p in &mut procs {
        p.terminate(Duration::from_secs(20));
    }
}
