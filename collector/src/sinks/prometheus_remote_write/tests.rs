//! The requests a batch becomes: gathering per series, the rule for duplicate samples, shards
//! and request sizes, metadata, and what the mapping leaves out.

use std::collections::HashMap;
use std::sync::Arc;

use sextant_pipeline::flow::event::{
    KeyValue, Metric, MetricData, Number, NumberPoint, Origin, Resource, Temporality,
};

use super::request_builder::{build, BuildStats, Limits, RemoteWrite};
use super::wire::{decode_body, WriteRequest};

fn origin() -> Arc<Origin> {
    Arc::new(Origin {
        resource: Resource {
            attributes: vec![KeyValue::new("service.name", "api")],
            ..Default::default()
        },
        ..Default::default()
    })
}

fn gauge(name: &str, points: &[(&str, u64, f64)]) -> Metric {
    Metric {
        origin: origin(),
        name: name.into(),
        description: format!("{name} help"),
        unit: String::new(),
        metadata: vec![],
        data: Some(MetricData::Gauge(
            points
                .iter()
                .map(|&(pod, ms, v)| NumberPoint {
                    attributes: vec![KeyValue::new("pod", pod)],
                    time_unix_nano: ms * 1_000_000,
                    value: Some(Number::Double(v)),
                    ..Default::default()
                })
                .collect(),
        )),
    }
}

fn decoded(groups: &[Vec<RemoteWrite>]) -> Vec<Vec<WriteRequest>> {
    groups
        .iter()
        .map(|g| g.iter().map(|r| decode_body(&r.body).unwrap()).collect())
        .collect()
}

fn label<'a>(ts: &'a super::wire::TimeSeries, name: &str) -> &'a str {
    ts.labels
        .iter()
        .find(|l| l.name == name)
        .map_or("", |l| l.value.as_str())
}

#[test]
fn a_series_samples_are_gathered_in_time_order_and_a_repeated_millisecond_keeps_the_last() {
    let batch = vec![
        gauge("temp", &[("a", 2000, 2.0), ("b", 1000, 10.0)]),
        // Out of order in the batch, and 2000 again with another value.
        gauge(
            "temp",
            &[("a", 1000, 1.0), ("a", 2000, 2.5), ("a", 3000, 3.0)],
        ),
    ];
    let mut stats = BuildStats::default();
    let limits = Limits {
        max_samples_per_send: 100,
        shards: 4,
    };
    let groups = build(&batch, &limits, &mut stats);
    assert_eq!(groups.len(), 1, "4 samples fill one request: one shard");
    let requests = decoded(&groups);
    let ts = &requests[0][0].timeseries;
    assert_eq!(ts.len(), 2);
    let a = ts.iter().find(|t| label(t, "pod") == "a").unwrap();
    let samples: Vec<(i64, f64)> = a.samples.iter().map(|s| (s.timestamp, s.value)).collect();
    assert_eq!(samples, vec![(1000, 1.0), (2000, 2.5), (3000, 3.0)]);
    assert_eq!(stats.duplicate_samples, 1);
    assert_eq!(groups[0][0].samples, 4);
    // Labels sorted by name, with the resource's job.
    let names: Vec<&str> = a.labels.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, vec!["__name__", "job", "pod"]);
    assert_eq!(label(a, "job"), "api");
    // The family's metadata travels with it.
    let meta = &requests[0][0].metadata;
    assert_eq!(meta.len(), 1);
    assert_eq!(meta[0].metric_family_name, "temp");
    assert_eq!(meta[0].r#type, 2);
    assert_eq!(meta[0].help, "temp help");
}

#[test]
fn series_are_spread_over_shards_each_series_in_one_and_requests_stay_under_the_limit() {
    let pods: Vec<String> = (0..500).map(|i| format!("pod-{i}")).collect();
    let batch: Vec<Metric> = (0..3)
        .map(|step| {
            let points: Vec<(&str, u64, f64)> = pods
                .iter()
                .map(|p| (p.as_str(), 1000 * (step + 1), step as f64))
                .collect();
            gauge("queue_depth", &points)
        })
        .collect();
    let mut stats = BuildStats::default();
    let limits = Limits {
        max_samples_per_send: 100,
        shards: 8,
    };
    let groups = build(&batch, &limits, &mut stats);
    assert_eq!(
        groups.len(),
        8,
        "1,500 samples at 100 a request: all 8 shards"
    );
    let mut shard_of: HashMap<String, usize> = HashMap::new();
    let mut samples_of: HashMap<String, Vec<i64>> = HashMap::new();
    for (shard, requests) in decoded(&groups).iter().enumerate() {
        for (request, sent) in requests.iter().zip(&groups[shard]) {
            let n: usize = request.timeseries.iter().map(|t| t.samples.len()).sum();
            assert!(n <= 100);
            assert_eq!(n, sent.samples);
            assert_eq!(
                request.metadata.len(),
                1,
                "each request says what it carries"
            );
            for ts in &request.timeseries {
                let pod = label(ts, "pod").to_owned();
                assert_eq!(*shard_of.entry(pod.clone()).or_insert(shard), shard);
                samples_of
                    .entry(pod)
                    .or_default()
                    .extend(ts.samples.iter().map(|s| s.timestamp));
            }
        }
    }
    assert_eq!(samples_of.len(), 500);
    for (pod, times) in samples_of {
        assert_eq!(times, vec![1000, 2000, 3000], "{pod}: all, in order");
    }
    assert_eq!(stats, BuildStats::default(), "nothing left out");
}

#[test]
fn a_small_batch_is_one_shard_and_what_prometheus_cannot_represent_is_counted() {
    let mut delta = gauge("requests", &[("a", 1000, 5.0)]);
    if let Some(MetricData::Gauge(points)) = delta.data.take() {
        delta.data = Some(MetricData::Sum {
            points,
            temporality: Temporality::Delta,
            monotonic: true,
        });
    }
    let batch = vec![delta, gauge("up", &[("a", 1000, 1.0)])];
    let mut stats = BuildStats::default();
    let limits = Limits {
        max_samples_per_send: 2000,
        shards: 8,
    };
    let groups = build(&batch, &limits, &mut stats);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].len(), 1);
    assert_eq!(groups[0][0].samples, 1);
    assert_eq!(stats.unmapped.delta, 1);
    // An empty batch sends nothing.
    assert!(build(&[], &limits, &mut BuildStats::default()).is_empty());
}
