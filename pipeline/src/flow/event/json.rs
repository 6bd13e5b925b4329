//! Events as JSON objects, one per record, for the file and console sinks.

use serde_json::{json, Value as J};

use super::{attributes_to_json, Events, LogEvent, Metric, MetricData, Number, Span};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn log_to_json(e: &LogEvent) -> J {
    json!({
        "time_unix_nano": e.effective_time_unix_nano(),
        "severity": e.severity_text,
        "severity_number": e.severity_number,
        "body": e.body.to_json(),
        "attributes": attributes_to_json(&e.attributes),
        "resource": attributes_to_json(&e.origin.resource.attributes),
        "trace_id": e.trace_id.map(|t| hex(&t)),
        "span_id": e.span_id.map(|s| hex(&s)),
    })
}

fn number(n: Option<Number>) -> J {
    match n {
        Some(Number::Int(i)) => J::from(i),
        Some(Number::Double(d)) => serde_json::Number::from_f64(d).map_or(J::Null, J::Number),
        None => J::Null,
    }
}

pub fn metric_to_json(m: &Metric) -> J {
    let points: Vec<J> = match &m.data {
        None => Vec::new(),
        Some(MetricData::Gauge(p)) | Some(MetricData::Sum { points: p, .. }) => p
            .iter()
            .map(|p| json!({"start_time_unix_nano": p.start_time_unix_nano, "time_unix_nano": p.time_unix_nano, "attributes": attributes_to_json(&p.attributes), "value": number(p.value), "flags": p.flags}))
            .collect(),
        Some(MetricData::Histogram { points, .. }) => points
            .iter()
            .map(|p| json!({"start_time_unix_nano": p.start_time_unix_nano, "time_unix_nano": p.time_unix_nano, "attributes": attributes_to_json(&p.attributes), "count": p.count, "sum": p.sum, "bucket_counts": p.bucket_counts, "explicit_bounds": p.explicit_bounds, "flags": p.flags}))
            .collect(),
        Some(MetricData::ExponentialHistogram { points, .. }) => points
            .iter()
            .map(|p| json!({"time_unix_nano": p.time_unix_nano, "attributes": attributes_to_json(&p.attributes), "count": p.count, "sum": p.sum, "scale": p.scale}))
            .collect(),
        Some(MetricData::Summary(points)) => points
            .iter()
            .map(|p| json!({"start_time_unix_nano": p.start_time_unix_nano, "time_unix_nano": p.time_unix_nano, "attributes": attributes_to_json(&p.attributes), "count": p.count, "sum": p.sum, "quantiles": p.quantile_values, "flags": p.flags}))
            .collect(),
    };
    let kind = match &m.data {
        None => "empty",
        Some(MetricData::Gauge(_)) => "gauge",
        Some(MetricData::Sum { .. }) => "sum",
        Some(MetricData::Histogram { .. }) => "histogram",
        Some(MetricData::ExponentialHistogram { .. }) => "exponential_histogram",
        Some(MetricData::Summary(_)) => "summary",
    };
    json!({"name": m.name, "description": m.description, "unit": m.unit, "type": kind, "points": points, "resource": attributes_to_json(&m.origin.resource.attributes)})
}

/// A span whole: everything OTLP carries for it, its scope and its resource.
pub fn span_to_json(s: &Span) -> J {
    let events: Vec<J> = s
        .events
        .iter()
        .map(|e| json!({"time_unix_nano": e.time_unix_nano, "name": e.name, "attributes": attributes_to_json(&e.attributes), "dropped_attributes_count": e.dropped_attributes_count}))
        .collect();
    let links: Vec<J> = s
        .links
        .iter()
        .map(|l| json!({"trace_id": hex(&l.trace_id), "span_id": hex(&l.span_id), "trace_state": l.trace_state, "flags": l.flags, "attributes": attributes_to_json(&l.attributes), "dropped_attributes_count": l.dropped_attributes_count}))
        .collect();
    let scope = &s.origin.scope;
    json!({
        "trace_id": hex(&s.trace_id),
        "span_id": hex(&s.span_id),
        "parent_span_id": s.parent_span_id.map(|p| hex(&p)),
        "trace_state": s.trace_state,
        "flags": s.flags,
        "name": s.name,
        "kind": format!("{:?}", s.kind),
        "start_time_unix_nano": s.start_time_unix_nano,
        "end_time_unix_nano": s.end_time_unix_nano,
        "attributes": attributes_to_json(&s.attributes),
        "dropped_attributes_count": s.dropped_attributes_count,
        "events": events,
        "dropped_events_count": s.dropped_events_count,
        "links": links,
        "dropped_links_count": s.dropped_links_count,
        "status": s.status.as_ref().map(|(c, m)| json!({"code": format!("{c:?}"), "message": m})),
        "scope": {"name": scope.name, "version": scope.version, "attributes": attributes_to_json(&scope.attributes)},
        "resource": attributes_to_json(&s.origin.resource.attributes),
    })
}

/// Appends one JSON line per record to `out`.
pub fn write_json_lines(events: &Events, out: &mut Vec<u8>) {
    let mut push = |v: J| {
        if serde_json::to_writer(&mut *out, &v).is_ok() {
            out.push(b'\n');
        }
    };
    match events {
        Events::Logs(l) => l.iter().map(log_to_json).for_each(&mut push),
        Events::Metrics(m) => m.iter().map(metric_to_json).for_each(&mut push),
        Events::Spans(s) => s.iter().map(span_to_json).for_each(&mut push),
    }
}
