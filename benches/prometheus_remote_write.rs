//! Encoding remote-write requests: a batch of 20,000 samples (100 OTLP metrics of 200 points,
//! each with pod, method and code attributes, from a resource with `service.name` and
//! `service.instance.id`) through the shared Prometheus mapping, gathered per series, cut into
//! 2,000-sample requests over 8 shards, and snappy-compressed — all of what the sink's encoder
//! does on its blocking thread. One core, the binary's allocator (mimalloc); samples per second
//! (target: at least 3 million).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sextant_collector::sinks::prometheus_remote_write::request_builder::{
    build, BuildStats, Limits,
};
use sextant_pipeline::flow::event::{
    KeyValue, Metric, MetricData, Number, NumberPoint, Origin, Resource, Temporality,
};

/// The binary's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const METRICS: usize = 100;
const POINTS_PER_METRIC: usize = 200;
const SAMPLES: usize = METRICS * POINTS_PER_METRIC;
const START_NS: u64 = 1_795_305_600_000_000_000;

fn batch() -> Vec<Metric> {
    let origin = Arc::new(Origin {
        resource: Resource {
            attributes: vec![
                KeyValue::new("service.name", "checkout"),
                KeyValue::new("service.instance.id", "checkout-7d9f8-x2x4k"),
            ],
            ..Default::default()
        },
        ..Default::default()
    });
    (0..METRICS)
        .map(|m| {
            let points = (0..POINTS_PER_METRIC)
                .map(|i| NumberPoint {
                    attributes: vec![
                        KeyValue::new("pod", format!("api-{}", i % 50)),
                        KeyValue::new("method", if i % 2 == 0 { "GET" } else { "POST" }),
                        KeyValue::new("code", format!("{}", 200 + i / 50)),
                    ],
                    start_time_unix_nano: START_NS - 3_600_000_000_000,
                    time_unix_nano: START_NS,
                    value: Some(Number::Double((i * 1000 + m) as f64)),
                    ..Default::default()
                })
                .collect();
            let data = if m % 2 == 0 {
                MetricData::Sum {
                    points,
                    temporality: Temporality::Cumulative,
                    monotonic: true,
                }
            } else {
                MetricData::Gauge(points)
            };
            Metric {
                origin: origin.clone(),
                name: format!("app.metric.{m}"),
                description: "A metric of the benchmark.".into(),
                unit: if m % 2 == 0 { "s" } else { "By" }.into(),
                metadata: vec![],
                data: Some(data),
            }
        })
        .collect()
}

fn encode(c: &mut Criterion) {
    let batch = batch();
    let limits = Limits {
        max_samples_per_send: 2_000,
        shards: 8,
    };
    let mut stats = BuildStats::default();
    let groups = build(&batch, &limits, &mut stats);
    let samples: usize = groups.iter().flatten().map(|r| r.samples).sum();
    assert_eq!(samples, SAMPLES, "every sample encoded once");
    let mut group = c.benchmark_group("remote_write");
    group.throughput(Throughput::Elements(SAMPLES as u64));
    group.bench_function("encode_20k_samples", |b| {
        b.iter(|| {
            let mut stats = BuildStats::default();
            build(&batch, &limits, &mut stats)
        })
    });
    group.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
