//! OTLP metrics to and from metric events: gauges, sums, histograms (explicit and
//! exponential) and summaries, with their temporality and exemplars.

use super::*;

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
