//! Lossless conversion between the event model and OTLP protobuf (the `opentelemetry-proto` types).
//!
//! Decoding flattens `Resource*/Scope*` nesting into records that share one `Arc<Origin>` per scope
//! group; encoding regroups consecutive records by origin (pointer first, then value), so a batch
//! that came in as OTLP goes out as the same OTLP. A record whose trace or span id has a length
//! other than 16/8 bytes (or 0 where the id is optional) is malformed: it is skipped and counted
//! in the returned rejected count, which the OTLP receiver reports as a partial success.

use std::sync::Arc;

use opentelemetry_proto::tonic::{
    collector::{
        logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest,
        trace::v1::ExportTraceServiceRequest,
    },
    common::v1 as pc,
    logs::v1 as pl,
    metrics::v1 as pm,
    resource::v1 as pr,
    trace::v1 as pt,
};

use super::*;

/// Records decoded from one OTLP request, and how many were malformed and skipped.
#[derive(Debug)]
pub struct Decoded<T> {
    pub records: Vec<T>,
    pub rejected: u64,
}

// ---------- values ----------

fn value_from_proto(v: Option<pc::AnyValue>) -> Value {
    use pc::any_value::Value as V;
    match v.and_then(|v| v.value) {
        None => Value::Empty,
        Some(V::StringValue(s)) => Value::Str(s.into()),
        Some(V::BoolValue(b)) => Value::Bool(b),
        Some(V::IntValue(i)) => Value::Int(i),
        Some(V::DoubleValue(d)) => Value::Double(d),
        Some(V::BytesValue(b)) => Value::Bytes(b),
        Some(V::ArrayValue(a)) => Value::Array(
            a.values
                .into_iter()
                .map(|v| value_from_proto(Some(v)))
                .collect(),
        ),
        Some(V::KvlistValue(m)) => Value::Map(attributes_from_proto(m.values)),
        // String tables only exist in the profiles signal, which Sextant does not carry.
        Some(V::StringValueStrindex(_)) => Value::Empty,
    }
}

fn value_to_proto(v: Value) -> Option<pc::AnyValue> {
    use pc::any_value::Value as V;
    let value = match v {
        Value::Empty => None,
        Value::Str(s) => Some(V::StringValue(s.into_string())),
        Value::Bool(b) => Some(V::BoolValue(b)),
        Value::Int(i) => Some(V::IntValue(i)),
        Value::Double(d) => Some(V::DoubleValue(d)),
        Value::Bytes(b) => Some(V::BytesValue(b)),
        Value::Array(a) => Some(V::ArrayValue(pc::ArrayValue {
            values: a
                .into_iter()
                .map(|v| value_to_proto(v).unwrap_or_default())
                .collect(),
        })),
        Value::Map(m) => Some(V::KvlistValue(pc::KeyValueList {
            values: attributes_to_proto(m),
        })),
    };
    Some(pc::AnyValue { value })
}

fn attributes_from_proto(attrs: Vec<pc::KeyValue>) -> Attributes {
    attrs
        .into_iter()
        .map(|kv| KeyValue {
            key: kv.key.into(),
            value: value_from_proto(kv.value),
        })
        .collect()
}

fn attributes_to_proto(attrs: Attributes) -> Vec<pc::KeyValue> {
    attrs
        .into_iter()
        .map(|kv| pc::KeyValue {
            key: kv.key.into_string(),
            value: value_to_proto(kv.value),
            key_strindex: 0,
        })
        .collect()
}

// ---------- ids ----------

/// An optional id: empty is `None`, the right length is `Some`, anything else is malformed.
fn optional_id<const N: usize>(bytes: &[u8]) -> Result<Option<[u8; N]>, ()> {
    if bytes.is_empty() {
        return Ok(None);
    }
    <[u8; N]>::try_from(bytes).map(Some).map_err(|_| ())
}

fn required_id<const N: usize>(bytes: &[u8]) -> Result<[u8; N], ()> {
    <[u8; N]>::try_from(bytes).map_err(|_| ())
}

fn id_to_proto<const N: usize>(id: Option<[u8; N]>) -> Vec<u8> {
    id.map(|id| id.to_vec()).unwrap_or_default()
}

// ---------- origin ----------

fn origin_from_proto(
    resource: Option<pr::Resource>,
    resource_schema_url: String,
    scope: Option<pc::InstrumentationScope>,
    scope_schema_url: String,
) -> Arc<Origin> {
    let resource = resource.unwrap_or_default();
    let scope = scope.unwrap_or_default();
    Arc::new(Origin {
        resource: Resource {
            attributes: attributes_from_proto(resource.attributes),
            dropped_attributes_count: resource.dropped_attributes_count,
            schema_url: resource_schema_url,
        },
        scope: Scope {
            name: scope.name,
            version: scope.version,
            attributes: attributes_from_proto(scope.attributes),
            dropped_attributes_count: scope.dropped_attributes_count,
            schema_url: scope_schema_url,
        },
    })
}

fn resource_to_proto(r: &Resource) -> pr::Resource {
    pr::Resource {
        attributes: attributes_to_proto(r.attributes.clone()),
        dropped_attributes_count: r.dropped_attributes_count,
        entity_refs: Vec::new(),
    }
}

fn scope_to_proto(s: &Scope) -> pc::InstrumentationScope {
    pc::InstrumentationScope {
        name: s.name.clone(),
        version: s.version.clone(),
        attributes: attributes_to_proto(s.attributes.clone()),
        dropped_attributes_count: s.dropped_attributes_count,
    }
}

/// Splits records into runs that share an origin, keeping order inside each origin. Origins are
/// compared by pointer first and by value only when the pointers differ, so records decoded from
/// one scope group regroup in O(n).
fn group_by_origin<T>(
    records: Vec<T>,
    origin: impl Fn(&T) -> &Arc<Origin>,
) -> Vec<(Arc<Origin>, Vec<T>)> {
    let mut groups: Vec<(Arc<Origin>, Vec<T>)> = Vec::new();
    for record in records {
        let o = origin(&record);
        let found = match groups.last() {
            Some((last, _)) if Arc::ptr_eq(last, o) => Some(groups.len() - 1),
            _ => groups
                .iter()
                .position(|(g, _)| Arc::ptr_eq(g, o) || **g == **o),
        };
        match found {
            Some(i) => groups[i].1.push(record),
            None => groups.push((o.clone(), vec![record])),
        }
    }
    groups
}

/// Builds OTLP's resource → scope nesting from origin groups; one scope group per origin.
fn nest<R, S: ScopeOf>(
    groups: Vec<(Arc<Origin>, Vec<R>)>,
    make_scope: impl Fn(Option<pc::InstrumentationScope>, Vec<R>, String) -> S,
    make_resource: impl Fn(Option<pr::Resource>, Vec<S>, String) -> S2<S>,
) -> Vec<S2<S>> {
    let mut out: Vec<(Resource, Vec<S>)> = Vec::new();
    for (origin, records) in groups {
        let scope = make_scope(
            Some(scope_to_proto(&origin.scope)),
            records,
            origin.scope.schema_url.clone(),
        );
        match out.last_mut() {
            Some((r, scopes)) if *r == origin.resource => scopes.push(scope),
            _ => out.push((origin.resource.clone(), vec![scope])),
        }
    }
    out.into_iter()
        .map(|(r, scopes)| make_resource(Some(resource_to_proto(&r)), scopes, r.schema_url))
        .collect()
}

/// The resource-level wrapper `nest` produces (ResourceLogs, ResourceMetrics, ResourceSpans).
type S2<S> = <S as ScopeOf>::Resource;

/// Ties each OTLP scope type to its resource type.
pub trait ScopeOf {
    type Resource;
}
impl ScopeOf for pl::ScopeLogs {
    type Resource = pl::ResourceLogs;
}
impl ScopeOf for pm::ScopeMetrics {
    type Resource = pm::ResourceMetrics;
}
impl ScopeOf for pt::ScopeSpans {
    type Resource = pt::ResourceSpans;
}

// ---------- logs ----------

/// OTLP logs to events.
pub fn logs_from_proto(req: ExportLogsServiceRequest) -> Decoded<LogEvent> {
    let mut records = Vec::new();
    let mut rejected = 0;
    for rl in req.resource_logs {
        let resource = rl.resource;
        for sl in rl.scope_logs {
            let origin = origin_from_proto(
                resource.clone(),
                rl.schema_url.clone(),
                sl.scope,
                sl.schema_url,
            );
            records.reserve(sl.log_records.len());
            for lr in sl.log_records {
                let (Ok(trace_id), Ok(span_id)) =
                    (optional_id(&lr.trace_id), optional_id(&lr.span_id))
                else {
                    rejected += 1;
                    continue;
                };
                records.push(LogEvent {
                    origin: origin.clone(),
                    time_unix_nano: lr.time_unix_nano,
                    observed_time_unix_nano: lr.observed_time_unix_nano,
                    severity_number: lr.severity_number,
                    severity_text: lr.severity_text,
                    body: value_from_proto(lr.body),
                    attributes: attributes_from_proto(lr.attributes),
                    dropped_attributes_count: lr.dropped_attributes_count,
                    flags: lr.flags,
                    trace_id,
                    span_id,
                    event_name: lr.event_name,
                });
            }
        }
    }
    Decoded { records, rejected }
}

/// Events to OTLP logs.
pub fn logs_to_proto(events: Vec<LogEvent>) -> ExportLogsServiceRequest {
    let groups = group_by_origin(events, |e| &e.origin);
    let resource_logs = nest(
        groups,
        |scope, records: Vec<LogEvent>, schema_url| pl::ScopeLogs {
            scope,
            log_records: records.into_iter().map(log_to_proto).collect(),
            schema_url,
        },
        |resource, scope_logs, schema_url| pl::ResourceLogs {
            resource,
            scope_logs,
            schema_url,
        },
    );
    ExportLogsServiceRequest { resource_logs }
}

fn log_to_proto(e: LogEvent) -> pl::LogRecord {
    pl::LogRecord {
        time_unix_nano: e.time_unix_nano,
        observed_time_unix_nano: e.observed_time_unix_nano,
        severity_number: e.severity_number,
        severity_text: e.severity_text,
        body: match e.body {
            Value::Empty => None,
            v => value_to_proto(v),
        },
        attributes: attributes_to_proto(e.attributes),
        dropped_attributes_count: e.dropped_attributes_count,
        flags: e.flags,
        trace_id: id_to_proto(e.trace_id),
        span_id: id_to_proto(e.span_id),
        event_name: e.event_name,
    }
}

// ---------- metrics ----------

fn temporality_from_proto(t: i32) -> Temporality {
    match pm::AggregationTemporality::try_from(t) {
        Ok(pm::AggregationTemporality::Delta) => Temporality::Delta,
        Ok(pm::AggregationTemporality::Cumulative) => Temporality::Cumulative,
        _ => Temporality::Unspecified,
    }
}

fn temporality_to_proto(t: Temporality) -> i32 {
    match t {
        Temporality::Unspecified => pm::AggregationTemporality::Unspecified as i32,
        Temporality::Delta => pm::AggregationTemporality::Delta as i32,
        Temporality::Cumulative => pm::AggregationTemporality::Cumulative as i32,
    }
}

fn exemplars_from_proto(ex: Vec<pm::Exemplar>) -> Result<Vec<Exemplar>, ()> {
    ex.into_iter()
        .map(|e| {
            Ok(Exemplar {
                filtered_attributes: attributes_from_proto(e.filtered_attributes),
                time_unix_nano: e.time_unix_nano,
                value: e.value.map(|v| match v {
                    pm::exemplar::Value::AsDouble(d) => Number::Double(d),
                    pm::exemplar::Value::AsInt(i) => Number::Int(i),
                }),
                span_id: optional_id(&e.span_id)?,
                trace_id: optional_id(&e.trace_id)?,
            })
        })
        .collect()
}

fn exemplars_to_proto(ex: Vec<Exemplar>) -> Vec<pm::Exemplar> {
    ex.into_iter()
        .map(|e| pm::Exemplar {
            filtered_attributes: attributes_to_proto(e.filtered_attributes),
            time_unix_nano: e.time_unix_nano,
            value: e.value.map(|v| match v {
                Number::Double(d) => pm::exemplar::Value::AsDouble(d),
                Number::Int(i) => pm::exemplar::Value::AsInt(i),
            }),
            span_id: id_to_proto(e.span_id),
            trace_id: id_to_proto(e.trace_id),
        })
        .collect()
}

fn number_points_from_proto(points: Vec<pm::NumberDataPoint>) -> Result<Vec<NumberPoint>, ()> {
    points
        .into_iter()
        .map(|p| {
            Ok(NumberPoint {
                attributes: attributes_from_proto(p.attributes),
                start_time_unix_nano: p.start_time_unix_nano,
                time_unix_nano: p.time_unix_nano,
                value: p.value.map(|v| match v {
                    pm::number_data_point::Value::AsDouble(d) => Number::Double(d),
                    pm::number_data_point::Value::AsInt(i) => Number::Int(i),
                }),
                exemplars: exemplars_from_proto(p.exemplars)?,
                flags: p.flags,
            })
        })
        .collect()
}

fn number_points_to_proto(points: Vec<NumberPoint>) -> Vec<pm::NumberDataPoint> {
    points
        .into_iter()
        .map(|p| pm::NumberDataPoint {
            attributes: attributes_to_proto(p.attributes),
            start_time_unix_nano: p.start_time_unix_nano,
            time_unix_nano: p.time_unix_nano,
            exemplars: exemplars_to_proto(p.exemplars),
            flags: p.flags,
            value: p.value.map(|v| match v {
                Number::Double(d) => pm::number_data_point::Value::AsDouble(d),
                Number::Int(i) => pm::number_data_point::Value::AsInt(i),
            }),
        })
        .collect()
}

fn buckets_from_proto(
    b: Option<pm::exponential_histogram_data_point::Buckets>,
) -> Option<ExponentialBuckets> {
    b.map(|b| ExponentialBuckets {
        offset: b.offset,
        bucket_counts: b.bucket_counts,
    })
}

fn buckets_to_proto(
    b: Option<ExponentialBuckets>,
) -> Option<pm::exponential_histogram_data_point::Buckets> {
    b.map(|b| pm::exponential_histogram_data_point::Buckets {
        offset: b.offset,
        bucket_counts: b.bucket_counts,
    })
}

fn metric_data_from_proto(data: pm::metric::Data) -> Result<MetricData, ()> {
    use pm::metric::Data as D;
    Ok(match data {
        D::Gauge(g) => MetricData::Gauge(number_points_from_proto(g.data_points)?),
        D::Sum(s) => MetricData::Sum {
            points: number_points_from_proto(s.data_points)?,
            temporality: temporality_from_proto(s.aggregation_temporality),
            monotonic: s.is_monotonic,
        },
        D::Histogram(h) => MetricData::Histogram {
            temporality: temporality_from_proto(h.aggregation_temporality),
            points: h
                .data_points
                .into_iter()
                .map(|p| {
                    Ok(HistogramPoint {
                        attributes: attributes_from_proto(p.attributes),
                        start_time_unix_nano: p.start_time_unix_nano,
                        time_unix_nano: p.time_unix_nano,
                        count: p.count,
                        sum: p.sum,
                        bucket_counts: p.bucket_counts,
                        explicit_bounds: p.explicit_bounds,
                        exemplars: exemplars_from_proto(p.exemplars)?,
                        flags: p.flags,
                        min: p.min,
                        max: p.max,
                    })
                })
                .collect::<Result<_, ()>>()?,
        },
        D::ExponentialHistogram(h) => MetricData::ExponentialHistogram {
            temporality: temporality_from_proto(h.aggregation_temporality),
            points: h
                .data_points
                .into_iter()
                .map(|p| {
                    Ok(ExponentialHistogramPoint {
                        attributes: attributes_from_proto(p.attributes),
                        start_time_unix_nano: p.start_time_unix_nano,
                        time_unix_nano: p.time_unix_nano,
                        count: p.count,
                        sum: p.sum,
                        scale: p.scale,
                        zero_count: p.zero_count,
                        positive: buckets_from_proto(p.positive),
                        negative: buckets_from_proto(p.negative),
                        flags: p.flags,
                        exemplars: exemplars_from_proto(p.exemplars)?,
                        min: p.min,
                        max: p.max,
                        zero_threshold: p.zero_threshold,
                    })
                })
                .collect::<Result<_, ()>>()?,
        },
        D::Summary(s) => MetricData::Summary(
            s.data_points
                .into_iter()
                .map(|p| SummaryPoint {
                    attributes: attributes_from_proto(p.attributes),
                    start_time_unix_nano: p.start_time_unix_nano,
                    time_unix_nano: p.time_unix_nano,
                    count: p.count,
                    sum: p.sum,
                    quantile_values: p
                        .quantile_values
                        .into_iter()
                        .map(|q| (q.quantile, q.value))
                        .collect(),
                    flags: p.flags,
                })
                .collect(),
        ),
    })
}

fn metric_data_to_proto(data: MetricData) -> pm::metric::Data {
    use pm::metric::Data as D;
    match data {
        MetricData::Gauge(points) => D::Gauge(pm::Gauge {
            data_points: number_points_to_proto(points),
        }),
        MetricData::Sum {
            points,
            temporality,
            monotonic,
        } => D::Sum(pm::Sum {
            data_points: number_points_to_proto(points),
            aggregation_temporality: temporality_to_proto(temporality),
            is_monotonic: monotonic,
        }),
        MetricData::Histogram {
            points,
            temporality,
        } => D::Histogram(pm::Histogram {
            aggregation_temporality: temporality_to_proto(temporality),
            data_points: points
                .into_iter()
                .map(|p| pm::HistogramDataPoint {
                    attributes: attributes_to_proto(p.attributes),
                    start_time_unix_nano: p.start_time_unix_nano,
                    time_unix_nano: p.time_unix_nano,
                    count: p.count,
                    sum: p.sum,
                    bucket_counts: p.bucket_counts,
                    explicit_bounds: p.explicit_bounds,
                    exemplars: exemplars_to_proto(p.exemplars),
                    flags: p.flags,
                    min: p.min,
                    max: p.max,
                })
                .collect(),
        }),
        MetricData::ExponentialHistogram {
            points,
            temporality,
        } => D::ExponentialHistogram(pm::ExponentialHistogram {
            aggregation_temporality: temporality_to_proto(temporality),
            data_points: points
                .into_iter()
                .map(|p| pm::ExponentialHistogramDataPoint {
                    attributes: attributes_to_proto(p.attributes),
                    start_time_unix_nano: p.start_time_unix_nano,
                    time_unix_nano: p.time_unix_nano,
                    count: p.count,
                    sum: p.sum,
                    scale: p.scale,
                    zero_count: p.zero_count,
                    positive: buckets_to_proto(p.positive),
                    negative: buckets_to_proto(p.negative),
                    flags: p.flags,
                    exemplars: exemplars_to_proto(p.exemplars),
                    min: p.min,
                    max: p.max,
                    zero_threshold: p.zero_threshold,
                })
                .collect(),
        }),
        MetricData::Summary(points) => D::Summary(pm::Summary {
            data_points: points
                .into_iter()
                .map(|p| pm::SummaryDataPoint {
                    attributes: attributes_to_proto(p.attributes),
                    start_time_unix_nano: p.start_time_unix_nano,
                    time_unix_nano: p.time_unix_nano,
                    count: p.count,
                    sum: p.sum,
                    quantile_values: p
                        .quantile_values
                        .into_iter()
                        .map(
                            |(quantile, value)| pm::summary_data_point::ValueAtQuantile {
                                quantile,
                                value,
                            },
                        )
                        .collect(),
                    flags: p.flags,
                })
                .collect(),
        }),
    }
}

/// OTLP metrics to events. A metric with a malformed exemplar id is skipped whole (its points are
/// counted as rejected).
pub fn metrics_from_proto(req: ExportMetricsServiceRequest) -> Decoded<Metric> {
    let mut records = Vec::new();
    let mut rejected = 0;
    for rm in req.resource_metrics {
        let resource = rm.resource;
        for sm in rm.scope_metrics {
            let origin = origin_from_proto(
                resource.clone(),
                rm.schema_url.clone(),
                sm.scope,
                sm.schema_url,
            );
            for m in sm.metrics {
                let data = match m.data.map(metric_data_from_proto).transpose() {
                    Ok(d) => d,
                    Err(()) => {
                        rejected += 1;
                        continue;
                    }
                };
                records.push(Metric {
                    origin: origin.clone(),
                    name: m.name,
                    description: m.description,
                    unit: m.unit,
                    metadata: attributes_from_proto(m.metadata),
                    data,
                });
            }
        }
    }
    Decoded { records, rejected }
}

/// Events to OTLP metrics.
pub fn metrics_to_proto(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    let groups = group_by_origin(metrics, |m| &m.origin);
    let resource_metrics = nest(
        groups,
        |scope, records: Vec<Metric>, schema_url| pm::ScopeMetrics {
            scope,
            metrics: records
                .into_iter()
                .map(|m| pm::Metric {
                    name: m.name,
                    description: m.description,
                    unit: m.unit,
                    metadata: attributes_to_proto(m.metadata),
                    data: m.data.map(metric_data_to_proto),
                })
                .collect(),
            schema_url,
        },
        |resource, scope_metrics, schema_url| pm::ResourceMetrics {
            resource,
            scope_metrics,
            schema_url,
        },
    );
    ExportMetricsServiceRequest { resource_metrics }
}

// ---------- traces ----------

fn span_kind_from_proto(k: i32) -> SpanKind {
    use pt::span::SpanKind as K;
    match K::try_from(k) {
        Ok(K::Internal) => SpanKind::Internal,
        Ok(K::Server) => SpanKind::Server,
        Ok(K::Client) => SpanKind::Client,
        Ok(K::Producer) => SpanKind::Producer,
        Ok(K::Consumer) => SpanKind::Consumer,
        _ => SpanKind::Unspecified,
    }
}

fn span_kind_to_proto(k: SpanKind) -> i32 {
    use pt::span::SpanKind as K;
    (match k {
        SpanKind::Unspecified => K::Unspecified,
        SpanKind::Internal => K::Internal,
        SpanKind::Server => K::Server,
        SpanKind::Client => K::Client,
        SpanKind::Producer => K::Producer,
        SpanKind::Consumer => K::Consumer,
    }) as i32
}

fn status_code_from_proto(c: i32) -> StatusCode {
    use pt::status::StatusCode as C;
    match C::try_from(c) {
        Ok(C::Ok) => StatusCode::Ok,
        Ok(C::Error) => StatusCode::Error,
        _ => StatusCode::Unset,
    }
}

fn status_code_to_proto(c: StatusCode) -> i32 {
    use pt::status::StatusCode as C;
    (match c {
        StatusCode::Unset => C::Unset,
        StatusCode::Ok => C::Ok,
        StatusCode::Error => C::Error,
    }) as i32
}

fn span_from_proto(origin: &Arc<Origin>, s: pt::Span) -> Result<Span, ()> {
    Ok(Span {
        origin: origin.clone(),
        trace_id: required_id(&s.trace_id)?,
        span_id: required_id(&s.span_id)?,
        trace_state: s.trace_state,
        parent_span_id: optional_id(&s.parent_span_id)?,
        flags: s.flags,
        name: s.name,
        kind: span_kind_from_proto(s.kind),
        start_time_unix_nano: s.start_time_unix_nano,
        end_time_unix_nano: s.end_time_unix_nano,
        attributes: attributes_from_proto(s.attributes),
        dropped_attributes_count: s.dropped_attributes_count,
        events: s
            .events
            .into_iter()
            .map(|e| SpanEvent {
                time_unix_nano: e.time_unix_nano,
                name: e.name,
                attributes: attributes_from_proto(e.attributes),
                dropped_attributes_count: e.dropped_attributes_count,
            })
            .collect(),
        dropped_events_count: s.dropped_events_count,
        links: s
            .links
            .into_iter()
            .map(|l| {
                Ok(SpanLink {
                    trace_id: required_id(&l.trace_id)?,
                    span_id: required_id(&l.span_id)?,
                    trace_state: l.trace_state,
                    attributes: attributes_from_proto(l.attributes),
                    dropped_attributes_count: l.dropped_attributes_count,
                    flags: l.flags,
                })
            })
            .collect::<Result<_, ()>>()?,
        dropped_links_count: s.dropped_links_count,
        status: s
            .status
            .map(|st| (status_code_from_proto(st.code), st.message)),
    })
}

fn span_to_proto(s: Span) -> pt::Span {
    pt::Span {
        trace_id: s.trace_id.to_vec(),
        span_id: s.span_id.to_vec(),
        trace_state: s.trace_state,
        parent_span_id: id_to_proto(s.parent_span_id),
        flags: s.flags,
        name: s.name,
        kind: span_kind_to_proto(s.kind),
        start_time_unix_nano: s.start_time_unix_nano,
        end_time_unix_nano: s.end_time_unix_nano,
        attributes: attributes_to_proto(s.attributes),
        dropped_attributes_count: s.dropped_attributes_count,
        events: s
            .events
            .into_iter()
            .map(|e| pt::span::Event {
                time_unix_nano: e.time_unix_nano,
                name: e.name,
                attributes: attributes_to_proto(e.attributes),
                dropped_attributes_count: e.dropped_attributes_count,
            })
            .collect(),
        dropped_events_count: s.dropped_events_count,
        links: s
            .links
            .into_iter()
            .map(|l| pt::span::Link {
                trace_id: l.trace_id.to_vec(),
                span_id: l.span_id.to_vec(),
                trace_state: l.trace_state,
                attributes: attributes_to_proto(l.attributes),
                dropped_attributes_count: l.dropped_attributes_count,
                flags: l.flags,
            })
            .collect(),
        dropped_links_count: s.dropped_links_count,
        status: s.status.map(|(code, message)| pt::Status {
            message,
            code: status_code_to_proto(code),
        }),
    }
}

/// OTLP traces to events.
pub fn spans_from_proto(req: ExportTraceServiceRequest) -> Decoded<Span> {
    let mut records = Vec::new();
    let mut rejected = 0;
    for rs in req.resource_spans {
        let resource = rs.resource;
        for ss in rs.scope_spans {
            let origin = origin_from_proto(
                resource.clone(),
                rs.schema_url.clone(),
                ss.scope,
                ss.schema_url,
            );
            for s in ss.spans {
                match span_from_proto(&origin, s) {
                    Ok(span) => records.push(span),
                    Err(()) => rejected += 1,
                }
            }
        }
    }
    Decoded { records, rejected }
}

/// Events to OTLP traces.
pub fn spans_to_proto(spans: Vec<Span>) -> ExportTraceServiceRequest {
    let groups = group_by_origin(spans, |s| &s.origin);
    let resource_spans = nest(
        groups,
        |scope, records: Vec<Span>, schema_url| pt::ScopeSpans {
            scope,
            spans: records.into_iter().map(span_to_proto).collect(),
            schema_url,
        },
        |resource, scope_spans, schema_url| pt::ResourceSpans {
            resource,
            scope_spans,
            schema_url,
        },
    );
    ExportTraceServiceRequest { resource_spans }
}
