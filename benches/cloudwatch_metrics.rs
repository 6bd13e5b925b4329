//! Building PutMetricData requests: OTLP-shaped metrics (cumulative counters and gauges of 50
//! pods, k8s resource metadata) converted — deltas per series, units, dimensions — and cut at
//! CloudWatch's limits. One core; datapoints per second. The converter keeps its state across
//! iterations and every iteration's points are a second later, as in a running collector.
//! `+sdk` also turns the datums into the SDK's request types.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sextant_collector::sinks::aws_cloudwatch_metrics::config::HistogramMode;
use sextant_collector::sinks::aws_cloudwatch_metrics::convert::Converter;
use sextant_collector::sinks::aws_cloudwatch_metrics::dimensions::Plan;
use sextant_collector::sinks::aws_cloudwatch_metrics::request_builder;
use sextant_collector::sinks::aws_cloudwatch_metrics::service::sdk_datum;
use sextant_pipeline::flow::event::{
    KeyValue, Metric, MetricData, Number, NumberPoint, Origin, Resource, Temporality,
};

const PODS: usize = 50;
const METRICS_PER_POD: usize = 20;
const POINTS_PER_METRIC: usize = 10;
const POINTS: usize = PODS * METRICS_PER_POD * POINTS_PER_METRIC;
const START_NS: u64 = 1_795_305_600_000_000_000;

fn metrics() -> Vec<Metric> {
    let mut out = Vec::new();
    for p in 0..PODS {
        let origin = Arc::new(Origin {
            resource: Resource {
                attributes: vec![
                    KeyValue::new("k8s.cluster.name", "prod"),
                    KeyValue::new("k8s.namespace.name", format!("ns-{}", p % 4)),
                    KeyValue::new("k8s.pod.name", format!("api-{p}")),
                ],
                ..Default::default()
            },
            ..Default::default()
        });
        for m in 0..METRICS_PER_POD {
            let points = (0..POINTS_PER_METRIC)
                .map(|i| NumberPoint {
                    attributes: vec![
                        KeyValue::new("method", if i % 2 == 0 { "GET" } else { "POST" }),
                        KeyValue::new("code", format!("{}", 200 + i)),
                    ],
                    start_time_unix_nano: START_NS - 3_600_000_000_000,
                    time_unix_nano: START_NS,
                    value: Some(Number::Double((i * 1000) as f64)),
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
            out.push(Metric {
                origin: origin.clone(),
                name: format!("app_metric_{m}_total"),
                description: String::new(),
                unit: String::new(),
                metadata: vec![],
                data: Some(data),
            });
        }
    }
    out
}

/// The batch `tick` seconds later, counters 10 higher.
fn advanced(input: &[Metric], tick: u64) -> Vec<Metric> {
    let mut m = input.to_vec();
    for metric in &mut m {
        let points = match metric.data.as_mut() {
            Some(MetricData::Sum { points, .. }) | Some(MetricData::Gauge(points)) => points,
            _ => continue,
        };
        for p in points {
            p.time_unix_nano += tick * 1_000_000_000;
            if let Some(Number::Double(v)) = &mut p.value {
                *v += 10.0 * tick as f64;
            }
        }
    }
    m
}

fn bench(c: &mut Criterion) {
    let input = metrics();
    let mut group = c.benchmark_group("cloudwatch_metrics");
    group.throughput(Throughput::Elements(POINTS as u64));
    let rollups = vec![
        vec!["k8s.cluster.name".to_string()],
        vec![
            "k8s.cluster.name".to_string(),
            "k8s.namespace.name".to_string(),
            "method".to_string(),
        ],
    ];
    let names = BTreeMap::from([("k8s.cluster.name".to_string(), "ClusterName".to_string())]);
    for (label, sets, sdk) in [
        ("point_attributes", None, false),
        ("two_rollups", Some(rollups.clone()), false),
        ("point_attributes+sdk", None, true),
    ] {
        let mut converter = Converter::new(
            Plan::new(sets.as_deref(), &names),
            HistogramMode::Values,
            1_000_000,
            3_600_000,
            START_NS,
        );
        let mut tick = 0;
        // `now` a day ahead of the points' clock so no point is "too new" as ticks advance.
        let now_ms = (START_NS / 1_000_000) as i64 + 86_400_000;
        group.bench_function(format!("put_metric_data_requests/{label}"), |b| {
            b.iter_batched(
                || {
                    tick += 1;
                    advanced(&input, tick)
                },
                |batch| {
                    let mut datums = Vec::with_capacity(POINTS * 2);
                    converter.convert(&batch, now_ms, &mut datums);
                    let requests = request_builder::build("App/Prod", datums);
                    if sdk {
                        let built: usize = requests
                            .iter()
                            .map(|r| {
                                let sdk: Vec<_> =
                                    r.datums.iter().map(|d| sdk_datum(d, 60)).collect();
                                std::hint::black_box(sdk).len()
                            })
                            .sum();
                        assert!(built > 0);
                    }
                    assert!(!requests.is_empty());
                    requests
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
