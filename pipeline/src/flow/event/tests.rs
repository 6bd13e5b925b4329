//! Round-trip property tests: events -> OTLP -> events is the identity, for all three signals;
//! and the send path's encoder ([`otlp::wire`]) writes what prost writes.

use std::sync::Arc;

use proptest::collection::vec;
use proptest::prelude::*;

use super::otlp::*;
use super::*;

fn leaf_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Empty),
        ".{0,12}".prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        // NaN is never equal to itself; finite and infinite values round-trip bit for bit.
        any::<f64>()
            .prop_filter("not NaN", |d| !d.is_nan())
            .prop_map(Value::Double),
        vec(any::<u8>(), 0..8).prop_map(Value::Bytes),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf_value().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            vec(("[a-z]{1,6}", inner), 0..4).prop_map(|kvs| Value::Map(
                kvs.into_iter()
                    .map(|(key, value)| KeyValue {
                        key: key.into(),
                        value
                    })
                    .collect()
            )),
        ]
    })
}

fn attributes() -> impl Strategy<Value = Attributes> {
    vec(("[a-z.]{1,10}", value()), 0..4).prop_map(|kvs| {
        kvs.into_iter()
            .map(|(key, value)| KeyValue {
                key: key.into(),
                value,
            })
            .collect()
    })
}

static LEADING: [KeyValue; 1] = [KeyValue {
    key: Text::const_new("log.iostream"),
    value: Value::Str(Text::const_new("stderr")),
}];

/// A record's attributes as a list, or kept as the text of a flat JSON object (as the file
/// source keeps a JSON message), which every encoder must read as the values it stands for.
fn record_attributes() -> impl Strategy<Value = RecordAttributes> {
    let scalar = prop_oneof![
        r#"[ -~&&[^\\"]]{0,30}"#.prop_map(|s| format!("\"{s}\"")),
        any::<bool>().prop_map(|b| b.to_string()),
        (-99_999_999_999_999_999i64..=99_999_999_999_999_999).prop_map(|i| i.to_string()),
        any::<f64>()
            .prop_filter("finite", |d| d.is_finite())
            .prop_map(|d| format!("{d:?}")),
        Just("null".to_owned()),
    ];
    prop_oneof![
        attributes().prop_map(RecordAttributes::from),
        vec(("[a-z.]{0,10}", scalar), 0..6).prop_map(|fields| {
            let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            let text = format!("{{{}}}", body.join(","));
            RecordAttributes::flat_json(&LEADING, &text, |_, _| {})
                .unwrap_or_else(|| panic!("a flat object: {text}"))
        }),
    ]
}

fn origin() -> impl Strategy<Value = Arc<Origin>> {
    (
        attributes(),
        any::<u32>(),
        "[a-z]{0,5}",
        "[a-z]{0,5}",
        attributes(),
    )
        .prop_map(|(ra, rd, name, version, sa)| {
            Arc::new(Origin {
                resource: Resource {
                    attributes: ra,
                    dropped_attributes_count: rd,
                    schema_url: String::new(),
                },
                scope: Scope {
                    name,
                    version,
                    attributes: sa,
                    dropped_attributes_count: 0,
                    schema_url: "s".into(),
                },
            })
        })
}

fn log_event(origin: Arc<Origin>) -> impl Strategy<Value = LogEvent> {
    (
        any::<u64>(),
        any::<u64>(),
        0i32..25,
        "[A-Z]{0,5}",
        value(),
        record_attributes(),
        any::<u32>(),
        proptest::option::of(any::<[u8; 16]>()),
        proptest::option::of(any::<[u8; 8]>()),
        "[a-z]{0,4}",
    )
        .prop_map(
            move |(t, ot, sn, st, body, attributes, flags, trace_id, span_id, event_name)| {
                LogEvent {
                    origin: origin.clone(),
                    time_unix_nano: t,
                    observed_time_unix_nano: ot,
                    severity_number: sn,
                    severity_text: st,
                    body,
                    attributes,
                    dropped_attributes_count: 0,
                    flags,
                    trace_id,
                    span_id,
                    event_name,
                }
            },
        )
}

/// Events grouped in runs of one origin (as OTLP can express them without reordering).
fn logs() -> impl Strategy<Value = Vec<LogEvent>> {
    vec(origin(), 1..4).prop_flat_map(|origins| {
        origins
            .into_iter()
            .map(|o| vec(log_event(o), 1..5))
            .collect::<Vec<_>>()
            .prop_map(|groups| groups.into_iter().flatten().collect())
    })
}

fn number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::Int),
        any::<f64>()
            .prop_filter("not NaN", |d| !d.is_nan())
            .prop_map(Number::Double),
    ]
}

fn number_point() -> impl Strategy<Value = NumberPoint> {
    (
        attributes(),
        any::<u64>(),
        any::<u64>(),
        proptest::option::of(number()),
        any::<u32>(),
    )
        .prop_map(|(attributes, s, t, value, flags)| NumberPoint {
            attributes,
            start_time_unix_nano: s,
            time_unix_nano: t,
            value,
            exemplars: vec![Exemplar {
                filtered_attributes: vec![],
                time_unix_nano: t,
                value,
                span_id: Some([1; 8]),
                trace_id: None,
            }],
            flags,
        })
}

fn metric_data() -> impl Strategy<Value = MetricData> {
    let finite = || any::<f64>().prop_filter("finite", |d| d.is_finite());
    prop_oneof![
        vec(number_point(), 0..3).prop_map(MetricData::Gauge),
        (vec(number_point(), 0..3), any::<bool>()).prop_map(|(points, monotonic)| {
            MetricData::Sum {
                points,
                temporality: Temporality::Cumulative,
                monotonic,
            }
        }),
        (
            attributes(),
            any::<u64>(),
            vec(any::<u64>(), 0..5),
            vec(finite(), 0..4),
            proptest::option::of(finite())
        )
            .prop_map(|(attributes, count, bucket_counts, explicit_bounds, sum)| {
                MetricData::Histogram {
                    temporality: Temporality::Delta,
                    points: vec![HistogramPoint {
                        attributes,
                        count,
                        sum,
                        bucket_counts,
                        explicit_bounds,
                        min: sum,
                        max: None,
                        ..Default::default()
                    }],
                }
            }),
        (any::<i32>(), any::<u64>(), vec(any::<u64>(), 0..4)).prop_map(
            |(scale, zero_count, counts)| {
                MetricData::ExponentialHistogram {
                    temporality: Temporality::Cumulative,
                    points: vec![ExponentialHistogramPoint {
                        scale,
                        zero_count,
                        positive: Some(ExponentialBuckets {
                            offset: scale,
                            bucket_counts: counts,
                        }),
                        negative: None,
                        zero_threshold: 0.5,
                        ..Default::default()
                    }],
                }
            }
        ),
        (any::<u64>(), finite(), vec((finite(), finite()), 0..4)).prop_map(
            |(count, sum, quantile_values)| {
                MetricData::Summary(vec![SummaryPoint {
                    count,
                    sum,
                    quantile_values,
                    ..Default::default()
                }])
            }
        ),
    ]
}

fn metrics() -> impl Strategy<Value = Vec<Metric>> {
    (
        origin(),
        vec(
            (
                "[a-z_]{1,10}",
                "[a-z ]{0,6}",
                "[a-zA-Z]{0,3}",
                proptest::option::of(metric_data()),
            ),
            1..5,
        ),
    )
        .prop_map(|(origin, ms)| {
            ms.into_iter()
                .map(|(name, description, unit, data)| Metric {
                    origin: origin.clone(),
                    name,
                    description,
                    unit,
                    metadata: vec![],
                    data,
                })
                .collect()
        })
}

fn spans() -> impl Strategy<Value = Vec<Span>> {
    (
        origin(),
        vec(
            (
                any::<[u8; 16]>(),
                any::<[u8; 8]>(),
                proptest::option::of(any::<[u8; 8]>()),
                "[a-z/ ]{0,10}",
                0usize..6,
                attributes(),
                proptest::option::of(("[a-z]{0,5}", 0usize..3)),
            ),
            1..5,
        ),
    )
        .prop_map(|(origin, specs)| {
            let kinds = [
                SpanKind::Unspecified,
                SpanKind::Internal,
                SpanKind::Server,
                SpanKind::Client,
                SpanKind::Producer,
                SpanKind::Consumer,
            ];
            let codes = [StatusCode::Unset, StatusCode::Ok, StatusCode::Error];
            specs
                .into_iter()
                .map(
                    |(trace_id, span_id, parent, name, kind, attributes, status)| Span {
                        origin: origin.clone(),
                        trace_id,
                        span_id,
                        parent_span_id: parent,
                        name,
                        kind: kinds[kind],
                        start_time_unix_nano: 1,
                        end_time_unix_nano: 2,
                        events: vec![SpanEvent {
                            time_unix_nano: 3,
                            name: "exception".into(),
                            attributes: attributes.clone(),
                            dropped_attributes_count: 1,
                        }],
                        links: vec![SpanLink {
                            trace_id,
                            span_id,
                            ..Default::default()
                        }],
                        attributes,
                        status: status.map(|(m, c)| (codes[c], m)),
                        ..Default::default()
                    },
                )
                .collect()
        })
}

proptest! {
    #[test]
    fn logs_round_trip_through_otlp(events in logs()) {
        let decoded = logs_from_proto(logs_to_proto(events.clone()));
        prop_assert_eq!(decoded.rejected, 0);
        prop_assert_eq!(decoded.records, events);
    }

    /// Any records, origins interleaved, shared by pointer or only equal in value: the wire
    /// encoder's bytes are prost's bytes of the converted request, with room left in front.
    #[test]
    fn logs_written_straight_from_events_are_the_bytes_prost_writes(
        (events, front) in (vec(origin(), 1..4), 0usize..6).prop_flat_map(|(origins, front)| {
            // Each origin also as a copy equal in value only, which must regroup with it.
            let pool: Vec<Arc<Origin>> = origins
                .iter()
                .flat_map(|o| [o.clone(), Arc::new((**o).clone())])
                .collect();
            let n = pool.len();
            (vec((0..n).prop_flat_map(move |i| log_event(pool[i].clone())), 0..12), Just(front))
        }),
        severity in prop_oneof![Just(None), any::<i32>().prop_map(Some)],
    ) {
        let mut events = events;
        if let (Some(s), Some(first)) = (severity, events.first_mut()) {
            first.severity_number = s;
            first.dropped_attributes_count = s as u32;
        }
        let prost = prost::Message::encode_to_vec(&logs_to_proto(events.clone()));
        let wire = wire::encode(&events, front);
        prop_assert!(wire[..front].iter().all(|&b| b == 0));
        prop_assert_eq!(&wire[front..], &prost[..]);
    }

    #[test]
    fn metrics_round_trip_through_otlp(ms in metrics()) {
        let decoded = metrics_from_proto(metrics_to_proto(ms.clone()));
        prop_assert_eq!(decoded.rejected, 0);
        prop_assert_eq!(decoded.records, ms);
    }

    #[test]
    fn spans_round_trip_through_otlp(ss in spans()) {
        let decoded = spans_from_proto(spans_to_proto(ss.clone()));
        prop_assert_eq!(decoded.rejected, 0);
        prop_assert_eq!(decoded.records, ss);
    }
}

#[test]
fn records_of_one_origin_share_one_scope_group_even_when_interleaved() {
    let a = Arc::new(Origin::default());
    let b = Arc::new(Origin {
        resource: Resource {
            attributes: vec![KeyValue::new("host.name", "b")],
            ..Default::default()
        },
        ..Default::default()
    });
    let log = |o: &Arc<Origin>, body: &str| LogEvent {
        origin: o.clone(),
        body: body.into(),
        ..Default::default()
    };
    let req = logs_to_proto(vec![log(&a, "1"), log(&b, "2"), log(&a, "3")]);
    assert_eq!(req.resource_logs.len(), 2);
    assert_eq!(req.resource_logs[0].scope_logs[0].log_records.len(), 2);
    assert_eq!(req.resource_logs[1].scope_logs[0].log_records.len(), 1);
}

#[test]
fn malformed_ids_are_skipped_and_counted() {
    use opentelemetry_proto::tonic::{
        collector::logs::v1::ExportLogsServiceRequest,
        logs::v1::{LogRecord, ResourceLogs, ScopeLogs},
    };
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![
                    LogRecord {
                        trace_id: vec![1, 2, 3],
                        ..Default::default()
                    },
                    LogRecord::default(),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let decoded = logs_from_proto(req);
    assert_eq!(decoded.rejected, 1);
    assert_eq!(decoded.records.len(), 1);
}
