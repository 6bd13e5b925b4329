//! The collector's rule engine on one core:
//!
//! - `window_ingest`: scrapes of 10,000 series (100 names × 100 series, four labels) appended
//!   to series the store already holds, through the shared OTLP → Prometheus mapping;
//!   throughput in samples. The value mix: 40% integer counters with random increments, 20%
//!   two-decimal counters (`*_seconds_total`), 30% constant gauges, 10% integer gauges that
//!   move by up to a million.
//! - Before the timings: the store's bytes per sample in the steady state of a 10-minute window
//!   (the second hour of those scrapes every 15 s, truncated after each): the encoded stream,
//!   with each chunk's first sample and times (as Prometheus counts chunk bytes), all chunk
//!   memory (head append state, spare room), and with labels and indexes.
//! - `evaluate_1000_rules_1m_series`: one evaluation of 1,000 alerting rules over 1,000,000
//!   series (1,000 names × 1,000 series, 21 samples each in the 5 minute windows): 500
//!   `rate(m[5m]) > t`, 300 `sum by (job) (rate(m[5m])) > t`, 200 `m > t`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

/// The binary's allocator, so that the engine is measured as it runs in `sextant`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sextant_pipeline::flow::event::{
    KeyValue, Metric, MetricData, Number, NumberPoint, Origin, Resource, Scope, Temporality,
};
use sextant_rules::evaluator::{GroupState, Settings};
use sextant_rules::rule_files::parse_rule_file;
use sextant_rules::window::ingest::ingest;
use sextant_rules::window::{SelectorFilter, WindowStore};

const NAMES: usize = 100;
const PER_NAME: usize = 100;

fn origin() -> Arc<Origin> {
    Arc::new(Origin {
        resource: Resource {
            attributes: vec![
                KeyValue::new("service.name", "shop"),
                KeyValue::new("service.instance.id", "10.0.0.1:9100"),
            ],
            ..Default::default()
        },
        scope: Scope {
            name: "sextant/prometheus_scrape".into(),
            ..Default::default()
        },
    })
}

/// A deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One scrape of every series at `t_ms`; `values` holds each series' current value.
fn scrape(origin: &Arc<Origin>, t_ms: i64, values: &mut [f64], rng: &mut Rng) -> Vec<Metric> {
    let mut metrics = Vec::with_capacity(NAMES);
    for n in 0..NAMES {
        let kind = n % 10;
        let mut points = Vec::with_capacity(PER_NAME);
        for s in 0..PER_NAME {
            let v = &mut values[n * PER_NAME + s];
            match kind {
                0..=3 => *v += (rng.next() % 100) as f64,
                4 | 5 => *v = ((*v * 100.0).round() + (rng.next() % 500) as f64) / 100.0,
                6..=8 => {}
                _ => *v = (*v + (rng.next() % 2_000_000) as f64 - 1_000_000.0).abs(),
            }
            points.push(NumberPoint {
                attributes: vec![
                    KeyValue::new("pod", format!("pod-{s}")),
                    KeyValue::new("namespace", "shop"),
                ],
                start_time_unix_nano: 0,
                time_unix_nano: (t_ms as u64) * 1_000_000,
                value: Some(Number::Double(*v)),
                exemplars: Vec::new(),
                flags: 0,
            });
        }
        let data = if kind <= 5 {
            MetricData::Sum {
                points,
                temporality: Temporality::Cumulative,
                monotonic: true,
            }
        } else {
            MetricData::Gauge(points)
        };
        metrics.push(Metric {
            origin: origin.clone(),
            name: format!("metric_{n}_total"),
            description: String::new(),
            unit: String::new(),
            metadata: Vec::new(),
            data: Some(data),
        });
    }
    metrics
}

/// The store's bytes as the collector runs it: two hours of scrapes every 15 s with a 10-minute
/// window (`rate(m[5m])` and the 5-minute lookback), truncated after each scrape as every
/// evaluation does; averaged over the second hour, read after each scrape.
fn steady_state_bytes(origin: &Arc<Origin>) {
    let mut rng = Rng(0x5eed);
    let mut values = vec![1000.0; NAMES * PER_NAME];
    let mut store = WindowStore::new(SelectorFilter::everything(), 600_000, usize::MAX);
    let (mut samples, mut encoded, mut chunks, mut total, mut reads) = (0, 0, 0, 0, 0);
    let mut chunk_count = 0;
    for i in 0..480 {
        let t = 1_700_000_000_000 + i * 15_000;
        ingest(&mut store, &scrape(origin, t, &mut values, &mut rng));
        store.truncate(t);
        if i >= 240 {
            samples += store.sample_count();
            encoded += store.encoded_bytes();
            chunks += store.chunk_bytes();
            total += store.bytes();
            chunk_count += store.chunk_count();
            reads += 1;
        }
    }
    let per_sample = |bytes: usize| bytes as f64 / samples as f64;
    eprintln!(
        "window store, second hour of 15 s scrapes, 10-minute window: {} series, {:.1} samples and {:.2} chunks a series; bytes a sample: {:.2} encoded, {:.2} encoded with each chunk's first sample and times (16 + 8 bytes), {:.2} all chunk memory (head append state, spare room), {:.2} with labels and indexes",
        store.series_count(),
        samples as f64 / (reads * store.series_count()) as f64,
        chunk_count as f64 / (reads * store.series_count()) as f64,
        per_sample(encoded),
        per_sample(encoded + 24 * chunk_count),
        per_sample(chunks),
        per_sample(total),
    );
}

fn bench_ingest(c: &mut Criterion) {
    let origin = origin();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut values = vec![1000.0; NAMES * PER_NAME];
    let scrapes: Vec<Vec<Metric>> = (0..41)
        .map(|i| {
            scrape(
                &origin,
                1_700_000_000_000 + i * 15_000,
                &mut values,
                &mut rng,
            )
        })
        .collect();

    steady_state_bytes(&origin);

    let mut group = c.benchmark_group("rules");
    group.throughput(Throughput::Elements((10 * NAMES * PER_NAME) as u64));
    group.bench_function("window_ingest", |b| {
        b.iter_batched(
            || {
                let mut store =
                    WindowStore::new(SelectorFilter::everything(), 3_600_000, usize::MAX);
                ingest(&mut store, &scrapes[0]);
                store
            },
            |mut store| {
                for s in &scrapes[1..11] {
                    ingest(&mut store, s);
                }
                store
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn bench_evaluate(c: &mut Criterion) {
    const SERIES_NAMES: usize = 1000;
    const SERIES_PER_NAME: usize = 1000;
    let mut rules = String::from("groups:\n  - name: bench\n    rules:\n");
    for i in 0..1000 {
        let expr = match i % 10 {
            0..=4 => format!("rate(m_{i}[5m]) > 1e9"),
            5..=7 => format!("sum by (job) (rate(m_{i}[5m])) > 1e12"),
            _ => format!("m_{i} > 1e15"),
        };
        rules.push_str(&format!("      - alert: A{i}\n        expr: {expr}\n"));
    }
    let groups = parse_rule_file("bench.yml", &rules).unwrap();
    let exprs: Vec<_> = groups[0].rules.iter().map(|r| r.expr.clone()).collect();
    let mut store = WindowStore::new(SelectorFilter::new(&exprs), 600_000, usize::MAX);
    let names: Vec<String> = (0..SERIES_NAMES).map(|i| format!("m_{i}")).collect();
    let start = 1_700_000_000_000i64;
    let mut labels = Vec::with_capacity(SERIES_NAMES * SERIES_PER_NAME);
    for name in &names {
        for s in 0..SERIES_PER_NAME {
            labels.push(sextant_rules::labels::Labels::from_pairs([
                ("__name__", name.as_str()),
                ("job", "shop"),
                ("instance", "10.0.0.1:9100"),
                ("pod", &format!("pod-{s}")),
            ]));
        }
    }
    for k in 0..21 {
        for (i, l) in labels.iter().enumerate() {
            store.append(l, start + k * 15_000, (k * (i as i64 % 7 + 1)) as f64);
        }
    }
    let at = start + 20 * 15_000;
    eprintln!(
        "evaluation store: {} series, {} samples",
        store.series_count(),
        store.sample_count()
    );
    let mut group_state = GroupState::new(groups.into_iter().next().unwrap());
    let settings = Settings::default();
    let mut group = c.benchmark_group("rules");
    group.sample_size(10);
    group.bench_function("evaluate_1000_rules_1m_series", |b| {
        b.iter(|| {
            let evaluation = group_state.evaluate(&mut store, at, &settings);
            assert!(evaluation.errors.is_empty());
            evaluation
        })
    });
    group.finish();
}

criterion_group!(benches, bench_ingest, bench_evaluate);
criterion_main!(benches);
