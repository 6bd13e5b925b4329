//! Building PutLogEvents requests: log events (with k8s resource metadata) templated into group
//! and stream names, sorted, and cut at CloudWatch Logs' limits. One core; events per second.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sextant_collector::sinks::aws_cloudwatch_logs::encoding::EncodingSettings;
use sextant_collector::sinks::aws_cloudwatch_logs::request_builder::Builder;
use sextant_collector::sinks::aws_cloudwatch_logs::template::Template;
use sextant_pipeline::flow::event::{KeyValue, LogEvent, Origin, Resource};

const EVENTS: usize = 10_000;

fn events() -> Vec<LogEvent> {
    let origins: Vec<Arc<Origin>> = (0..20)
        .map(|p| {
            Arc::new(Origin {
                resource: Resource {
                    attributes: vec![
                        KeyValue::new("k8s.namespace.name", format!("ns-{}", p % 4)),
                        KeyValue::new("k8s.pod.name", format!("api-{p}")),
                        KeyValue::new("k8s.container.name", "app"),
                    ],
                    ..Default::default()
                },
                ..Default::default()
            })
        })
        .collect();
    (0..EVENTS)
        .map(|i| LogEvent {
            origin: origins[i % origins.len()].clone(),
            time_unix_nano: 1_700_000_000_000_000_000 + (i as u64) * 1_000_000,
            body: format!("GET /api/v1/orders/{i} 200 {}ms user=u-{} region=eu-west-1 trace=4bf92f3577b34da6a3ce929d0e0e4736", i % 97, i % 1000).into(),
            ..Default::default()
        })
        .collect()
}

fn build(c: &mut Criterion) {
    let group_t = Template::parse("/eks/prod/{k8s.namespace.name}").unwrap();
    let stream_t = Template::parse("{k8s.pod.name}/{k8s.container.name}").unwrap();
    let input = events();
    // The default: each record as one JSON object.
    let encoding = EncodingSettings::default();
    let mut group = c.benchmark_group("cloudwatch_logs");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("put_log_events_requests", |b| {
        b.iter_batched(
            || input.clone(),
            |events| {
                let (requests, _) = Builder {
                    group: &group_t,
                    stream: &stream_t,
                    missing: "unknown",
                    encoding: &encoding,
                }
                .build(events);
                assert_eq!(
                    requests.iter().map(|r| r.events.len()).sum::<usize>(),
                    EVENTS
                );
                requests
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, build);
criterion_main!(benches);
