//! Rendering the exporter's page for 1 million series (1,000 OTLP gauges and counters of 1,000
//! points, each with pod, method and code attributes, from one resource): text 0.0.4, and the
//! same gzipped as a scrape that accepts gzip gets it. One core, the binary's allocator
//! (mimalloc); target: under 1 s a page.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use sextant_collector::sinks::prometheus_exporter::render::{render, Format};
use sextant_collector::sinks::prometheus_exporter::store::Store;
use sextant_pipeline::flow::event::{
    KeyValue, Metric, MetricData, Number, NumberPoint, Origin, Resource, Temporality,
};

/// The binary's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const METRICS: usize = 1_000;
const POINTS_PER_METRIC: usize = 1_000;

fn batch(metric: usize, origin: &Arc<Origin>) -> Metric {
    let points = (0..POINTS_PER_METRIC)
        .map(|i| NumberPoint {
            attributes: vec![
                KeyValue::new("pod", format!("api-{}", i % 100)),
                KeyValue::new("method", if i % 2 == 0 { "GET" } else { "POST" }),
                KeyValue::new("code", format!("{}", 200 + i / 100)),
            ],
            time_unix_nano: 1_795_305_600_000_000_000,
            value: Some(Number::Double((i * 1000 + metric) as f64 * 0.25)),
            ..Default::default()
        })
        .collect();
    let data = if metric % 2 == 0 {
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
        name: format!("app.metric.{metric}"),
        description: "A metric of the benchmark.".into(),
        unit: "s".into(),
        metadata: vec![],
        data: Some(data),
    }
}

fn pages(c: &mut Criterion) {
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
    let mut store = Store::new(2_000_000);
    for m in 0..METRICS {
        store.ingest(&[batch(m, &origin)], 1);
    }
    assert_eq!(store.series_count(), METRICS * POINTS_PER_METRIC + 1);
    store.sweep_members();
    let mut page = Vec::new();
    render(&store, Format::Text, &mut page);
    eprintln!(
        "page: {} series, {} MiB",
        store.series_count(),
        page.len() >> 20
    );
    let mut group = c.benchmark_group("exporter");
    group.sample_size(10);
    group.bench_function("render_1m_series", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(store.series_count() * 96);
            store.sweep_members();
            render(&store, Format::Text, &mut out);
            out
        })
    });
    group.bench_function("render_1m_series_gzip", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(store.series_count() * 96);
            store.sweep_members();
            render(&store, Format::Text, &mut out);
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&out).unwrap();
            gz.finish().unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, pages);
criterion_main!(benches);
