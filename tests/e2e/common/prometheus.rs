//! What the Prometheus-facing tests share: OTLP metrics of every kind with known values, a
//! real Prometheus (Debian's 2.42) started on a port, and its query API read back.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, summary_data_point::ValueAtQuantile, AggregationTemporality, Gauge,
    Histogram, HistogramDataPoint, Metric as ProtoMetric, NumberDataPoint, ResourceMetrics,
    ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::{http_get, start_server, Proc};

pub const STEP_MS: u64 = 15_000;
/// OTLP's "no recorded value" flag: a stale marker.
pub const NO_RECORDED_VALUE: u32 = 1;

pub fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

/// The first point's time: five minutes ago, on a whole second.
pub fn base_ms() -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    (now - 300_000) / 1000 * 1000
}

pub fn request(metrics: Vec<ProtoMetric>) -> Vec<u8> {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "checkout"),
                    kv("service.instance.id", "pod-1"),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    }
    .encode_to_vec()
}

pub fn number(time_ms: u64, value: f64, flags: u32, attrs: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        start_time_unix_nano: 1,
        time_unix_nano: time_ms * 1_000_000,
        value: Some(number_data_point::Value::AsDouble(value)),
        flags,
        ..Default::default()
    }
}

/// Point `i` of every kind: a counter growing 10 a step, a gauge (stale at step 9), a
/// histogram growing (1, 2, 1) a step over bounds (0.1, 0.5, 1), a summary.
pub fn point(base: u64, i: u64) -> Vec<ProtoMetric> {
    let t = base + i * STEP_MS;
    let counter = ProtoMetric {
        name: "orders".into(),
        description: "Orders placed.".into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: vec![number(t, 10.0 * i as f64, 0, vec![kv("shop.region", "eu")])],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    };
    let (value, flags) = if i == 9 {
        (0.0, NO_RECORDED_VALUE)
    } else {
        (1000.0 + i as f64, 0)
    };
    let gauge = ProtoMetric {
        name: "memory.usage".into(),
        unit: "By".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![number(t, value, flags, vec![])],
        })),
        ..Default::default()
    };
    let histogram = ProtoMetric {
        name: "http.server.request.duration".into(),
        unit: "s".into(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                attributes: vec![kv("http.route", "/pay")],
                start_time_unix_nano: 1,
                time_unix_nano: t * 1_000_000,
                count: 4 * i,
                sum: Some(1.5 * i as f64),
                bucket_counts: vec![i, 2 * i, i, 0],
                explicit_bounds: vec![0.1, 0.5, 1.0],
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        })),
        ..Default::default()
    };
    let summary = ProtoMetric {
        name: "rpc.latency".into(),
        unit: "ms".into(),
        data: Some(metric::Data::Summary(Summary {
            data_points: vec![SummaryDataPoint {
                start_time_unix_nano: 1,
                time_unix_nano: t * 1_000_000,
                count: 3 * i,
                sum: 7.0 * i as f64,
                quantile_values: vec![
                    ValueAtQuantile {
                        quantile: 0.5,
                        value: 2.0 + i as f64,
                    },
                    ValueAtQuantile {
                        quantile: 0.99,
                        value: 9.0 + i as f64,
                    },
                ],
                ..Default::default()
            }],
        })),
        ..Default::default()
    };
    vec![counter, gauge, histogram, summary]
}

/// Prometheus's arguments: `config` as its configuration file, its TSDB under `dir`, the
/// remote-write receiver on.
pub fn prometheus_args(dir: &Path, port: u16, config: &str) -> Vec<String> {
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, config).unwrap();
    let config = path;
    vec![
        format!("--config.file={}", config.display()),
        format!("--storage.tsdb.path={}", dir.join("tsdb").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--web.enable-remote-write-receiver".into(),
    ]
}

/// Prometheus as a remote-write receiver, scraping nothing.
pub fn start_prometheus(dir: &Path, port: u16) -> Proc {
    start_prometheus_with(dir, port, "global: { scrape_interval: 1m }\n")
}

/// Prometheus with `config` (scrape jobs).
pub fn start_prometheus_with(dir: &Path, port: u16, config: &str) -> Proc {
    start_server(
        "prometheus",
        "prometheus",
        &prometheus_args(dir, port, config),
        port,
    )
}

pub fn url_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An instant query at `time_ms`: each series' labels (as `name="value"` pairs, sorted) and
/// value.
pub fn query(port: u16, promql: &str, time_ms: u64) -> Vec<(Vec<String>, f64)> {
    let url = format!(
        "http://127.0.0.1:{port}/api/v1/query?query={}&time={}.{:03}",
        url_encoded(promql),
        time_ms / 1000,
        time_ms % 1000
    );
    let Some((200, body)) = http_get(&url) else {
        return Vec::new();
    };
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut out: Vec<(Vec<String>, f64)> = body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let mut labels: Vec<String> = r["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| format!("{k}={:?}", v.as_str().unwrap()))
                .collect();
            labels.sort();
            let value = r["value"][1].as_str().unwrap().parse().unwrap();
            (labels, value)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

pub fn one(port: u16, promql: &str, time_ms: u64) -> Option<f64> {
    let found = query(port, promql, time_ms);
    assert!(found.len() <= 1, "{promql}: {found:?}");
    found.first().map(|(_, v)| *v)
}
