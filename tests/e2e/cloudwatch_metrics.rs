//! The `aws_cloudwatch_metrics` sink end to end: OTLP metrics into a real `sextant collector`,
//! PutMetricData into moto through a fault-injecting proxy (moto never fails; the proxy is a
//! stand-in from the test crate), read back with the AWS SDK's GetMetricData: the sums of the
//! published deltas, under each dimension rollup, despite throttling, a 503 and a timeout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
    Metric as ProtoMetric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use crate::common::*;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn request(metrics: Vec<ProtoMetric>) -> Vec<u8> {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("k8s.cluster.name", "prod")],
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

fn counter(start: u64, time: u64, value: f64) -> ProtoMetric {
    ProtoMetric {
        name: "orders_total".into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: vec![NumberDataPoint {
                attributes: vec![kv("k8s.namespace.name", "shop")],
                start_time_unix_nano: start,
                time_unix_nano: time,
                value: Some(number_data_point::Value::AsDouble(value)),
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

fn post(port: u16, body: Vec<u8>) -> u16 {
    post_otlp(port, "/v1/metrics", &body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deltas_histograms_and_rollups_reach_cloudwatch_through_throttling_5xx_and_timeouts() {
    let dir = tempfile::tempdir().unwrap();
    let moto_port = free_port();
    let _moto = start_moto(moto_port);
    // Only PutMetricData goes through the proxy (the test reads moto directly).
    let proxy = FaultProxy::start(
        moto_port,
        "monitoring/aws4_request",
        vec![
            Fault::Throttle,
            Fault::Unavailable,
            Fault::Hang(Duration::from_secs(3)),
            Fault::Throttle,
        ],
    );
    let (admin, otlp) = (free_port(), free_port());
    let cfg = crate::common::hop::collector_config(
        dir.path(),
        admin,
        otlp,
        &format!(
            r#"    cloudwatch:
      type: aws_cloudwatch_metrics
      inputs: [otlp]
      namespace: Sextant/Test
      dimensions: [[k8s.cluster.name], [k8s.cluster.name, k8s.namespace.name]]
      dimension_names: {{ k8s.cluster.name: ClusterName, k8s.namespace.name: Namespace }}
      aws: {{ region: us-east-1, endpoint: "http://127.0.0.1:{proxy}" }}
      batch: {{ timeout: 200ms }}
      request: {{ timeout: 1s, initial_backoff: 50ms, max_backoff: 200ms }}
      # The proxy's faults are for the data path; the health check would take one.
      healthcheck: false
"#,
            proxy = proxy.port
        ),
    );
    let mut collector = start_sextant("collector", &cfg, &dir.path().join("collector.log"));
    wait_http_ok(
        &format!("http://127.0.0.1:{admin}/readyz"),
        Duration::from_secs(20),
    );

    // A counter that starts now (after the collector): every increase is published, the
    // first value included: 5 + 7 + 8 = 20.
    let start = now_ns();
    for (i, value) in [5.0, 12.0, 20.0].into_iter().enumerate() {
        let time = start + (i as u64 + 1) * 1_000_000_000;
        assert_eq!(post(otlp, request(vec![counter(start, time, value)])), 200);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // A delta histogram of 10 observations, and a gauge whose NaN is dropped and counted.
    let histogram = ProtoMetric {
        name: "latency".into(),
        unit: "ms".into(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                attributes: vec![kv("k8s.namespace.name", "shop")],
                time_unix_nano: now_ns(),
                count: 10,
                sum: Some(150.0),
                bucket_counts: vec![2, 5, 3],
                explicit_bounds: vec![10.0, 20.0],
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Delta as i32,
        })),
        ..Default::default()
    };
    let gauge = |v: f64| ProtoMetric {
        name: "queue_depth".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                attributes: vec![kv("k8s.namespace.name", "shop")],
                time_unix_nano: now_ns(),
                value: Some(number_data_point::Value::AsDouble(v)),
                ..Default::default()
            }],
        })),
        ..Default::default()
    };
    assert_eq!(
        post(otlp, request(vec![histogram, gauge(f64::NAN), gauge(7.0)])),
        200
    );

    let client = cloudwatch(moto_port).await;
    let cluster = [("ClusterName", "prod")];
    let namespace = [("ClusterName", "prod"), ("Namespace", "shop")];
    let mut sums = (0.0, 0.0);
    for _ in 0..300 {
        sums = (
            statistic(&client, "Sextant/Test", "orders_total", &namespace, "Sum").await,
            statistic(
                &client,
                "Sextant/Test",
                "latency",
                &namespace,
                "SampleCount",
            )
            .await,
        );
        if sums == (20.0, 10.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        sums,
        (20.0, 10.0),
        "(orders_total sum, latency sample count) per namespace"
    );
    assert_eq!(
        statistic(&client, "Sextant/Test", "orders_total", &cluster, "Sum").await,
        20.0,
        "the per-cluster rollup"
    );
    assert_eq!(
        statistic(
            &client,
            "Sextant/Test",
            "queue_depth",
            &namespace,
            "Maximum"
        )
        .await,
        7.0
    );
    assert_eq!(
        proxy.injected.load(std::sync::atomic::Ordering::SeqCst),
        4,
        "every fault was hit"
    );

    let metrics_url = format!("http://127.0.0.1:{admin}/metrics");
    let (_, m) = http_get(&metrics_url).unwrap();
    let errors = |t: &str| {
        metric_sum(
            &m,
            "sextant_component_errors_total",
            &["component=\"cloudwatch\"", &format!("error_type=\"{t}\"")],
        )
    };
    assert_eq!(
        (
            errors("throttled"),
            errors("server_error"),
            errors("timeout")
        ),
        (2.0, 1.0, 1.0)
    );
    assert_eq!(
        metric_sum(
            &m,
            "sextant_component_dropped_events_total",
            &["component=\"cloudwatch\"", "reason=\"non_finite\""]
        ),
        1.0
    );
    assert!(collector.terminate(Duration::from_secs(15)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emf_mode_writes_documents_of_at_most_100_metrics_to_cloudwatch_logs() {
    let dir = tempfile::tempdir().unwrap();
    let moto_port = free_port();
    let _moto = start_moto(moto_port);
    let (admin, otlp) = (free_port(), free_port());
    let cfg = crate::common::hop::collector_config(
        dir.path(),
        admin,
        otlp,
        &format!(
            r#"    emf:
      type: aws_cloudwatch_metrics
      inputs: [otlp]
      namespace: Sextant/Test
      mode: emf
      emf: {{ log_group: /sextant/emf, log_stream: "{{ClusterName}}" }}
      dimensions: [[k8s.cluster.name]]
      dimension_names: {{ k8s.cluster.name: ClusterName }}
      aws: {{ region: us-east-1, endpoint: "http://127.0.0.1:{moto_port}" }}
      batch: {{ timeout: 200ms }}
"#,
        ),
    );
    let mut collector = start_sextant("collector", &cfg, &dir.path().join("collector.log"));
    wait_http_ok(
        &format!("http://127.0.0.1:{admin}/readyz"),
        Duration::from_secs(20),
    );
    let time = now_ns();
    let gauges = (0..150)
        .map(|i| ProtoMetric {
            name: format!("gauge_{i:03}"),
            unit: "By".into(),
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint {
                    time_unix_nano: time,
                    value: Some(number_data_point::Value::AsInt(i)),
                    ..Default::default()
                }],
            })),
            ..Default::default()
        })
        .collect();
    assert_eq!(post(otlp, request(gauges)), 200);

    let logs = cwl_client(moto_port).await;
    let docs = wait_for_stream(&logs, "/sextant/emf", "prod", 2).await;
    assert_eq!(docs.len(), 2, "150 metrics: two documents");
    let mut seen = Vec::new();
    for (doc, want) in docs.iter().zip([100, 50]) {
        let doc: serde_json::Value = serde_json::from_str(doc).unwrap();
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        let metrics = directive["Metrics"].as_array().unwrap();
        assert_eq!(metrics.len(), want);
        assert_eq!(
            directive["Dimensions"],
            serde_json::json!([["ClusterName"]])
        );
        assert_eq!(doc["ClusterName"], "prod");
        assert_eq!(doc["_aws"]["Timestamp"], time / 1_000_000);
        for m in metrics {
            let name = m["Name"].as_str().unwrap().to_string();
            assert_eq!(m["Unit"], "Bytes");
            let i: f64 = name.trim_start_matches("gauge_").parse().unwrap();
            assert_eq!(doc[&name], serde_json::json!(i), "{name}");
            seen.push(name);
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        (0..150)
            .map(|i| format!("gauge_{i:03}"))
            .collect::<Vec<_>>()
    );
    assert!(collector.terminate(Duration::from_secs(15)));
}
