//! The notifier on one core, at the issue's scale: 10,000 firing alerts in 1,000 groups (100
//! alert names × 10 clusters, 10 instances each, `group_by: [alertname, cluster]`), handed over
//! by 10 rule groups of 1,000 alerts.
//!
//! - `notify/first_cycle_10k_alerts_1k_groups`: one cycle of a fresh dispatcher — every alert
//!   received, every group flushed, and each of the 1,000 notifications shaped into its SNS
//!   message (subject, attributes, JSON body).
//! - `notify/steady_cycle_10k_alerts_1k_groups`: one cycle once all were told — every alert
//!   received again and every group flushed, with nothing new to send.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

/// The binary's allocator, so that the notifier is measured as it runs in `sextant`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use sextant_rules::labels::Labels;
use sextant_rules::notify::dispatch::Dispatcher;
use sextant_rules::notify::message::{self, Origin};
use sextant_rules::notify::{AlertInput, Notifier, NotifyConfig};

const CONFIG: &str = r#"
route:
  receiver: oncall
  group_by: [alertname, cluster]
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 4h
receivers:
  - name: oncall
    sns_configs: [{topic_arn: "arn:aws:sns:eu-west-1:123456789012:oncall"}]
"#;

/// Rule group `g`'s 1,000 alerts: alert names 10g..10g+9, each in 10 clusters × 10 instances.
fn alerts_of(g: usize) -> Vec<AlertInput> {
    let mut out = Vec::with_capacity(1_000);
    for name in 10 * g..10 * g + 10 {
        for cluster in 0..10 {
            for instance in 0..10 {
                out.push(AlertInput {
                    labels: Labels::from_pairs([
                        ("alertname", format!("Alert{name:03}")),
                        ("cluster", format!("cluster-{cluster}")),
                        ("instance", format!("10.0.{cluster}.{instance}:9100")),
                        ("job", "node".to_string()),
                        ("severity", "warning".to_string()),
                    ]),
                    annotations: BTreeMap::from([
                        (
                            "summary".to_string(),
                            format!("Alert{name:03} on 10.0.{cluster}.{instance}"),
                        ),
                        (
                            "description".to_string(),
                            "The value has been above the threshold for 5 minutes.".to_string(),
                        ),
                    ]),
                    starts_at_ms: 1_000_000,
                    ends_at_ms: None,
                    generator_url: "https://prometheus.example/graph?g0.expr=up".to_string(),
                });
            }
        }
    }
    out
}

fn cycle(
    notifier: &Notifier,
    dispatcher: &mut Dispatcher,
    sources: &[Vec<AlertInput>],
    now: i64,
) -> usize {
    for (g, alerts) in sources.iter().enumerate() {
        dispatcher.receive(&format!("rules.yml;group{g}"), alerts.clone(), now);
    }
    let notifications = dispatcher.flush(now);
    let origin = Origin::default();
    let mut bytes = 0;
    for n in &notifications {
        let topic = &notifier.receivers[&n.key.receiver][n.key.integration].topic_arn;
        bytes += message::build(n, topic, &origin).body.len();
        dispatcher.settle(n, true, now);
    }
    assert!(notifications.is_empty() || notifications.len() == 1_000);
    bytes
}

fn bench(c: &mut Criterion) {
    let config: NotifyConfig = serde_yaml_ng::from_str(CONFIG).unwrap();
    let notifier = Notifier::compile(&config).unwrap();
    let sources: Vec<Vec<AlertInput>> = (0..10).map(alerts_of).collect();
    let mut group = c.benchmark_group("notify");
    group.bench_function("first_cycle_10k_alerts_1k_groups", |b| {
        b.iter_batched(
            || notifier.dispatcher(),
            |mut d| cycle(&notifier, &mut d, &sources, 2_000_000),
            BatchSize::LargeInput,
        )
    });
    let mut steady = notifier.dispatcher();
    assert!(cycle(&notifier, &mut steady, &sources, 2_000_000) > 0);
    let mut now = 2_000_000;
    group.bench_function("steady_cycle_10k_alerts_1k_groups", |b| {
        b.iter(|| {
            now += 60_000;
            cycle(&notifier, &mut steady, &sources, now)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
