//! The built requests at CloudWatch's limits (the test server enforces none of them), and the
//! conversion rules of [`super::convert`].

use std::collections::BTreeMap;
use std::sync::Arc;

use sextant_pipeline::flow::event::{
    HistogramPoint, KeyValue, Metric, MetricData, Number, NumberPoint, Origin, Resource,
    SummaryPoint, Temporality,
};

use super::config::HistogramMode;
use super::convert::Converter;
use super::datum::{Datum, DatumValue, Text};
use super::dimensions::Plan;
use super::emf;
use super::limits::*;
use super::request_builder::{build, estimated_bytes};

const S: u64 = 1_000_000_000;
/// "Now" for the converter: 2026-11-22T00:00:00Z.
const NOW_MS: i64 = 1_795_305_600_000;
const NOW_NS: u64 = NOW_MS as u64 * 1_000_000;

fn origin() -> Arc<Origin> {
    Arc::new(Origin {
        resource: Resource {
            attributes: vec![KeyValue::new("k8s.cluster.name", "prod")],
            ..Default::default()
        },
        ..Default::default()
    })
}

fn metric(name: &str, unit: &str, data: MetricData) -> Metric {
    Metric {
        origin: origin(),
        name: name.into(),
        description: String::new(),
        unit: unit.into(),
        metadata: vec![],
        data: Some(data),
    }
}

fn number(attrs: &[(&str, &str)], start: u64, time: u64, v: f64) -> NumberPoint {
    NumberPoint {
        attributes: attrs.iter().map(|(k, v)| KeyValue::new(*k, *v)).collect(),
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(Number::Double(v)),
        ..Default::default()
    }
}

fn converter(sets: Option<Vec<Vec<String>>>, histograms: HistogramMode) -> Converter {
    let names = BTreeMap::from([("k8s.cluster.name".to_string(), "ClusterName".to_string())]);
    // The tracker "started" an hour ago.
    Converter::new(
        Plan::new(sets.as_deref(), &names),
        histograms,
        1000,
        600_000,
        NOW_NS - 3600 * S,
    )
}

fn single(d: &Datum) -> f64 {
    match d.value {
        DatumValue::Single(v) => v,
        _ => f64::NAN,
    }
}

#[test]
fn cumulative_counters_become_deltas_and_bad_values_are_dropped_and_counted() {
    let mut c = converter(None, HistogramMode::Values);
    let old_start = NOW_NS - 7200 * S;
    let new_start = NOW_NS - 60 * S;
    let sum = |points| MetricData::Sum {
        points,
        temporality: Temporality::Cumulative,
        monotonic: true,
    };
    let batch = vec![
        metric(
            "http_requests_total",
            "",
            sum(vec![
                // Started before the tracker: a baseline, then increases.
                number(&[("code", "200")], old_start, NOW_NS - 30 * S, 100.0),
                number(&[("code", "200")], old_start, NOW_NS - 20 * S, 130.0),
                // A reset: 5 since the restart.
                number(&[("code", "200")], old_start, NOW_NS - 10 * S, 5.0),
                // Started while watched: the whole value.
                number(&[("code", "500")], new_start, NOW_NS - 10 * S, 3.0),
            ]),
        ),
        metric(
            "temperature",
            "Cel",
            MetricData::Gauge(vec![
                number(&[], 0, NOW_NS - S, 21.5),
                number(&[], 0, NOW_NS - S, f64::NAN),
                number(&[], 0, NOW_NS - S, f64::INFINITY),
                number(&[], 0, NOW_NS - 15 * 24 * 3600 * S, 1.0),
                number(&[], 0, NOW_NS + 3 * 3600 * S, 1.0),
                number(&[], 0, NOW_NS - S, 1e-200),
                number(&[], 0, NOW_NS - S, 1e200),
            ]),
        ),
    ];
    let mut out = Vec::new();
    let stats = c.convert(&batch, NOW_MS, &mut out);
    type Row<'a> = (String, Vec<(Text, Text)>, f64, &'a str);
    let got: Vec<Row<'_>> = out
        .iter()
        .map(|d| (d.name.to_string(), d.dimensions.clone(), single(d), d.unit))
        .collect();
    let code = |v: &str| vec![(Text::from("code"), Text::from(v))];
    assert_eq!(
        got,
        vec![
            ("http_requests_total".into(), code("200"), 30.0, "Count"),
            ("http_requests_total".into(), code("200"), 5.0, "Count"),
            ("http_requests_total".into(), code("500"), 3.0, "Count"),
            ("temperature".into(), vec![], 21.5, "None"),
            ("temperature".into(), vec![], 0.0, "None"),
        ]
    );
    assert_eq!(
        (
            stats.non_finite,
            stats.too_old,
            stats.too_new,
            stats.out_of_range
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(out[0].timestamp_ms, NOW_MS - 20_000);

    // The same batch replayed (a failed send) publishes the same increases again, no more;
    // an older point is out of order.
    let replay = vec![metric(
        "http_requests_total",
        "",
        sum(vec![
            number(&[("code", "200")], old_start, NOW_NS - 10 * S, 5.0),
            number(&[("code", "200")], old_start, NOW_NS - 25 * S, 50.0),
        ]),
    )];
    out.clear();
    let stats = c.convert(&replay, NOW_MS, &mut out);
    assert_eq!(out.iter().map(single).collect::<Vec<_>>(), vec![5.0]);
    assert_eq!(stats.out_of_order, 1);
}

#[test]
fn rollups_publish_each_point_once_per_dimension_set_it_has() {
    let sets = vec![
        vec!["k8s.cluster.name".into()],
        vec!["k8s.cluster.name".into(), "namespace".into()],
    ];
    let mut c = converter(Some(sets), HistogramMode::Values);
    let batch = vec![metric(
        "pods",
        "{pod}",
        MetricData::Gauge(vec![
            number(&[("namespace", "shop")], 0, NOW_NS, 4.0),
            number(&[], 0, NOW_NS, 2.0),
        ]),
    )];
    let mut out = Vec::new();
    c.convert(&batch, NOW_MS, &mut out);
    let got: Vec<(Vec<String>, f64)> = out
        .iter()
        .map(|d| {
            (
                d.dimensions
                    .iter()
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect(),
                single(d),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (vec!["ClusterName=prod".into()], 4.0),
            (
                vec!["ClusterName=prod".into(), "namespace=shop".into()],
                4.0
            ),
            (vec!["ClusterName=prod".into()], 2.0),
        ]
    );
    assert!(out.iter().all(|d| d.unit == "Count"));
}

fn histogram(time: u64, counts: Vec<u64>, bounds: Vec<f64>) -> HistogramPoint {
    HistogramPoint {
        start_time_unix_nano: NOW_NS - 60 * S,
        time_unix_nano: time,
        count: counts.iter().sum(),
        sum: Some(
            counts
                .iter()
                .zip(bounds.iter())
                .map(|(c, b)| *c as f64 * b)
                .sum(),
        ),
        bucket_counts: counts,
        explicit_bounds: bounds,
        ..Default::default()
    }
}

#[test]
fn histograms_become_values_with_counts_split_at_150_values_a_datum() {
    let mut c = converter(None, HistogramMode::Values);
    // 199 bounds, 200 buckets, every one non-empty: 150 + 50 values.
    let bounds: Vec<f64> = (1..200).map(f64::from).collect();
    let first = histogram(NOW_NS - 20 * S, vec![1; 200], bounds.clone());
    let second = histogram(NOW_NS - 10 * S, vec![3; 200], bounds.clone());
    let m = |p| {
        metric(
            "latency",
            "ms",
            MetricData::Histogram {
                points: vec![p],
                temporality: Temporality::Cumulative,
            },
        )
    };
    let mut out = Vec::new();
    c.convert(&[m(first), m(second)], NOW_MS, &mut out);
    // The first point started while watched (whole value), the second adds 2 per bucket.
    assert_eq!(out.len(), 4);
    let lens: Vec<usize> = out.iter().map(|d| d.value.value_count()).collect();
    assert_eq!(lens, vec![150, 50, 150, 50]);
    let DatumValue::Distribution { values, counts, .. } = &out[2].value else {
        panic!("values expected");
    };
    assert_eq!((values[0], values[1], values[149]), (1.0, 1.5, 149.5));
    assert!(
        counts.iter().all(|c| *c == 2.0),
        "the interval's counts, not the cumulative ones"
    );
    assert_eq!(out[0].unit, "Milliseconds");

    // As a statistic set: count, sum, min and max of the interval.
    let mut c = converter(None, HistogramMode::StatisticSet);
    let p = HistogramPoint {
        time_unix_nano: NOW_NS,
        count: 4,
        sum: Some(10.0),
        bucket_counts: vec![1, 3],
        explicit_bounds: vec![2.0],
        min: Some(0.5),
        max: Some(4.0),
        ..Default::default()
    };
    out.clear();
    c.convert(
        &[metric(
            "size",
            "By",
            MetricData::Histogram {
                points: vec![p],
                temporality: Temporality::Delta,
            },
        )],
        NOW_MS,
        &mut out,
    );
    assert_eq!(
        out[0].value,
        DatumValue::Statistics {
            count: 4.0,
            sum: 10.0,
            min: 0.5,
            max: 4.0
        }
    );
}

#[test]
fn summaries_publish_the_intervals_count_and_sum() {
    let mut c = converter(None, HistogramMode::Values);
    let point = |time, count, sum| SummaryPoint {
        start_time_unix_nano: NOW_NS - 7200 * S,
        time_unix_nano: time,
        count,
        sum,
        quantile_values: vec![(0.0, 0.1), (0.5, 1.0), (1.0, 9.0)],
        ..Default::default()
    };
    let m = |p| metric("rpc_seconds", "", MetricData::Summary(vec![p]));
    let mut out = Vec::new();
    c.convert(
        &[
            m(point(NOW_NS - 20 * S, 10, 20.0)),
            m(point(NOW_NS - 10 * S, 14, 30.0)),
        ],
        NOW_MS,
        &mut out,
    );
    assert_eq!(out.len(), 1, "the first is a baseline");
    assert_eq!(
        out[0].value,
        DatumValue::Statistics {
            count: 4.0,
            sum: 10.0,
            min: 0.1,
            max: 9.0
        }
    );
    assert_eq!(out[0].unit, "Seconds");
}

fn datum(i: usize, dimensions: usize, value_len: usize) -> Datum {
    Datum {
        name: Text::from(format!("metric_{i}")),
        dimensions: (0..dimensions)
            .map(|d| {
                (
                    Text::from(format!("dimension_{d}")),
                    Text::from("v/".repeat(value_len / 2)),
                )
            })
            .collect(),
        timestamp_ms: NOW_MS,
        unit: "Count",
        value: DatumValue::Single(i as f64),
    }
}

#[test]
fn a_request_holds_exactly_1000_datums_and_the_1001st_opens_the_next() {
    let requests = build("Sextant/Test", (0..1000).map(|i| datum(i, 1, 4)).collect());
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].datums.len(), MAX_DATUMS_PER_REQUEST);
    let requests = build("Sextant/Test", (0..1001).map(|i| datum(i, 1, 4)).collect());
    let sizes: Vec<usize> = requests.iter().map(|r| r.datums.len()).collect();
    assert_eq!(sizes, vec![1000, 1]);
    assert_eq!(requests[1].datums[0].name, "metric_1000", "order kept");
}

#[test]
fn requests_stay_within_1_mb_of_form_body() {
    // 30 dimensions with 1024-character values, half of them bytes form-encoding escapes: ~65 kB.
    let datums: Vec<Datum> = (0..40)
        .map(|i| datum(i, MAX_DIMENSIONS, MAX_DIMENSION_VALUE_LEN))
        .collect();
    let one = estimated_bytes(&datums[0]);
    assert!(one > 60_000, "{one}");
    let requests = build("Sextant/Test", datums);
    let per_request = MAX_REQUEST_BYTES / one;
    assert_eq!(
        requests[0].datums.len(),
        per_request,
        "filled up to the limit, not past it"
    );
    assert!(requests.iter().all(|r| r.bytes <= MAX_REQUEST_BYTES));
    assert_eq!(requests.iter().map(|r| r.datums.len()).sum::<usize>(), 40);
}

#[test]
fn emf_documents_hold_at_most_100_metrics() {
    let datums: Vec<Datum> = (0..250).map(|i| datum(i, 2, 4)).collect();
    let mut stats = emf::EmfStats::default();
    let docs = emf::documents("Sextant/Test", 60, &datums, &mut stats);
    assert_eq!(docs.len(), 3);
    let mut seen = 0;
    for (doc, want) in docs.iter().zip([100, 100, 50]) {
        let json: serde_json::Value =
            serde_json::from_str(doc.body.as_str().unwrap_or("")).unwrap_or_default();
        let directive = &json["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Metrics"].as_array().map(Vec::len), Some(want));
        assert_eq!(directive["Namespace"], "Sextant/Test");
        assert_eq!(
            directive["Dimensions"][0],
            serde_json::json!(["dimension_0", "dimension_1"])
        );
        assert_eq!(json["_aws"]["Timestamp"], NOW_MS);
        assert_eq!(json["dimension_0"], "v/v/");
        assert_eq!(
            json[format!("metric_{seen}")],
            serde_json::json!(seen as f64)
        );
        seen += want;
    }
}

/// A stand-in for CloudWatch written for this test (moto accepts any size): it records the body
/// of one PutMetricData call the real SDK sends and answers success.
fn capture_one_request() -> (u16, std::sync::mpsc::Receiver<(Vec<u8>, bool)>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            conn.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap();
        let mut body = vec![0u8; len];
        conn.read_exact(&mut body).unwrap();
        let answer = r#"<PutMetricDataResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></PutMetricDataResponse>"#;
        write!(
            conn,
            "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        )
        .unwrap();
        tx.send((body, head.contains("content-encoding: gzip")))
            .unwrap();
    });
    (port, rx)
}

#[tokio::test]
async fn the_estimate_is_an_upper_bound_of_the_body_the_sdk_sends() {
    use std::io::Read;
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    let (port, bodies) = capture_one_request();
    let aws = crate::sinks::aws::AwsSettings {
        region: Some("us-east-1".into()),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
    };
    let service =
        super::service::CloudWatchMetricsService::new(&aws, "Sextant/Test".into(), 60).await;
    // Every kind of value, the longest names and values, numbers at their longest.
    let mut datums: Vec<Datum> = (0..14)
        .map(|i| datum(i, MAX_DIMENSIONS, MAX_DIMENSION_VALUE_LEN))
        .collect();
    datums.push(Datum {
        value: DatumValue::Distribution {
            values: (0..150)
                .map(|i| -1.234_567_890_123_456_7e-100 * f64::from(i))
                .collect(),
            counts: vec![123_456_789.0; 150],
            sum: Some(-1.234_567_890_123_456_7e100),
        },
        ..datum(14, 1, 4)
    });
    datums.push(Datum {
        value: DatumValue::Statistics {
            count: 3.0,
            sum: 1e300,
            min: -1e-300,
            max: 1.5,
        },
        unit: "Kilobytes/Second",
        ..datum(15, 1, 4)
    });
    let requests = build("Sextant/Test", datums);
    assert_eq!(requests.len(), 1);
    service.put(&requests[0]).await.unwrap();
    let (body, gzipped) = bodies.recv().unwrap();
    assert!(gzipped, "bodies over 10 kB go gzipped");
    assert!(body.len() <= MAX_REQUEST_BYTES);
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(body.as_slice())
        .read_to_end(&mut plain)
        .unwrap();
    let plain = String::from_utf8(plain).unwrap();
    assert!(
        plain.contains("MetricData.member.16.StatisticValues.Maximum=1.5"),
        "{}",
        &plain[..200]
    );
    assert!(
        plain.len() <= requests[0].bytes && requests[0].bytes <= MAX_REQUEST_BYTES,
        "sent {} bytes, estimated {}",
        plain.len(),
        requests[0].bytes
    );
}

#[test]
fn a_datum_holds_exactly_150_values_and_the_151st_starts_another() {
    for (buckets, want) in [(150usize, vec![150usize]), (151, vec![150, 1])] {
        let mut c = converter(None, HistogramMode::Values);
        let bounds: Vec<f64> = (1..buckets).map(|b| b as f64).collect();
        let point = HistogramPoint {
            time_unix_nano: NOW_NS,
            count: buckets as u64,
            sum: Some(1.0),
            bucket_counts: vec![1; buckets],
            explicit_bounds: bounds,
            ..Default::default()
        };
        let mut out = Vec::new();
        c.convert(
            &[metric(
                "h",
                "",
                MetricData::Histogram {
                    points: vec![point],
                    temporality: Temporality::Delta,
                },
            )],
            NOW_MS,
            &mut out,
        );
        let lens: Vec<usize> = out.iter().map(|d| d.value.value_count()).collect();
        assert_eq!(lens, want, "{buckets} buckets");
        assert!(out
            .iter()
            .all(|d| d.value.value_count() <= MAX_VALUES_PER_DATUM));
    }
}

#[test]
fn a_dimension_set_of_30_is_accepted_and_31_refused_at_start_up() {
    let config = |n: usize| -> super::CloudWatchMetricsConfig {
        let set: Vec<String> = (0..n).map(|i| format!("d{i}")).collect();
        serde_yaml_ng::from_str(&format!(
            "{{inputs: [a], namespace: App, dimensions: [{set:?}]}}"
        ))
        .unwrap()
    };
    let key = "collector.sinks.m";
    assert!(config(MAX_DIMENSIONS).prepare(key).is_ok());
    let err = config(MAX_DIMENSIONS + 1)
        .prepare(key)
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("collector.sinks.m.dimensions[0]: a set has 31 names; CloudWatch allows 30"),
        "the error names the key"
    );
    // A namespace CloudWatch refuses is refused here too.
    let mut bad = config(1);
    bad.namespace = "AWS/EC2".into();
    let err = bad.prepare(key).err().map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.starts_with("collector.sinks.m.namespace: ")),
        "{err:?}"
    );
}

#[test]
fn emf_histograms_publish_the_points_own_count_and_sum_not_bucket_midpoints() {
    // Observations 3, 7, 12, 40 and 250 (sum 312) in buckets (0,5] (5,10] (10,50] (50,100]
    // (100,+Inf): midpoints would give 2.5 + 7.5 + 30 + 30 + 100-ish, not 312.
    let point = HistogramPoint {
        time_unix_nano: NOW_NS,
        count: 5,
        sum: Some(312.0),
        bucket_counts: vec![1, 1, 2, 0, 1],
        explicit_bounds: vec![5.0, 10.0, 50.0, 100.0],
        min: Some(3.0),
        max: Some(250.0),
        ..Default::default()
    };
    let mut c = converter(None, HistogramMode::Values);
    let mut out = Vec::new();
    c.convert(
        &[metric(
            "latency",
            "ms",
            MetricData::Histogram {
                points: vec![point],
                temporality: Temporality::Delta,
            },
        )],
        NOW_MS,
        &mut out,
    );
    assert_eq!(out.len(), 1);
    let mut stats = emf::EmfStats::default();
    let docs = emf::documents("Sextant/Test", 60, &out, &mut stats);
    assert_eq!(docs.len(), 1);
    let json: serde_json::Value =
        serde_json::from_str(docs[0].body.as_str().unwrap_or("")).unwrap_or_default();
    assert_eq!(json["latency_count"], serde_json::json!(5.0));
    assert_eq!(json["latency_sum"], serde_json::json!(312.0));

    // A point of 200 buckets (two datums of 150 + 50 values) is still one count and one sum.
    let bounds: Vec<f64> = (1..200).map(f64::from).collect();
    let mut wide = histogram(NOW_NS, vec![1; 200], bounds);
    wide.sum = Some(12_345.0);
    out.clear();
    c.convert(
        &[metric(
            "wide",
            "ms",
            MetricData::Histogram {
                points: vec![wide],
                temporality: Temporality::Delta,
            },
        )],
        NOW_MS,
        &mut out,
    );
    assert_eq!(out.len(), 2);
    let docs = emf::documents("Sextant/Test", 60, &out, &mut stats);
    let json: serde_json::Value =
        serde_json::from_str(docs[0].body.as_str().unwrap_or("")).unwrap_or_default();
    assert_eq!(json["wide_count"], serde_json::json!(200.0));
    assert_eq!(json["wide_sum"], serde_json::json!(12_345.0));
}
