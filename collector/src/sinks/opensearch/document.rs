//! Events as OpenSearch documents, in the layout the settings choose.
//!
//! - Logs, `layout: otel` (OpenSearch's Simple Schema for Observability): `@timestamp`,
//!   `observedTimestamp`, `severity {text, number}`, `body`, `attributes {…}`,
//!   `resource {…}`, `instrumentationScope {name, version}`, `traceId`, `spanId`.
//! - Logs, `layout: ecs` (Elastic Common Schema-compatible): `@timestamp`, `message`,
//!   `log.level`, `service.name`, `host.name`, `kubernetes {namespace, pod {name, uid},
//!   container {name}, node {name}}`, `trace.id`, `span.id`, and every other attribute (the
//!   record's over its resource's) under `labels` with `.` made `_`.
//! - Spans, either layout: Data Prepper's `otel-v1-apm-span` document, which OpenSearch's trace
//!   analytics reads: `traceId`, `spanId`, `parentSpanId`, `name`, `kind`, `startTime`,
//!   `endTime`, `durationInNanos`, `serviceName`, `status {code, message}`, `traceGroup` and
//!   `traceGroupFields` (for a root span), `events`, `links`, and the attributes flattened as
//!   `span.attributes.<key>` and `resource.attributes.<key>` with `.` in keys made `@`.
//!
//! A document's `_id` is a 128-bit hash of what it says (for a log, everything but
//! `observedTimestamp`, which a re-read changes) or, for a span, the first half of its trace id
//! and its span id: a resend is
//! refused by OpenSearch as a conflict and counted as delivered, so each record is indexed
//! once.

use serde::Deserialize;

use sextant_pipeline::flow::event::{
    find_attribute, KeyValue, LogEvent, Span, SpanKind, StatusCode, Value,
};

use super::json::{push_key, push_object, push_str, push_time, push_u64, push_value, SecondCache};

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    #[default]
    Otel,
    Ecs,
}

fn hex(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    hex_into(bytes, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 0xf) as usize];
    }
}

/// A document id: 32 hex digits.
pub type DocId = [u8; 32];

/// The 128-bit content id of `bytes`.
pub fn content_id(bytes: &[u8]) -> DocId {
    use std::hash::BuildHasher as _;
    let a = foldhash::quality::FixedState::with_seed(0x0b5e_a4c4).hash_one(bytes);
    let b = foldhash::quality::FixedState::with_seed(0x1d5_0c1d).hash_one(bytes);
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(&a.to_be_bytes());
    raw[8..].copy_from_slice(&b.to_be_bytes());
    let mut id = [0u8; 32];
    hex_into(&raw, &mut id);
    id
}

/// Appends a log record's document to `out`; returns its `_id`.
pub fn log(out: &mut Vec<u8>, e: &LogEvent, layout: Layout, clock: &mut SecondCache) -> DocId {
    let start = out.len();
    out.push(b'{');
    push_key(out, "@timestamp");
    push_time(out, e.effective_time_unix_nano(), clock);
    match layout {
        Layout::Otel => otel_log(out, e),
        Layout::Ecs => ecs_log(out, e),
    }
    // Everything so far names the record; the observed time does not.
    let id = content_id(&out[start..]);
    if layout == Layout::Otel && e.observed_time_unix_nano != 0 {
        out.push(b',');
        push_key(out, "observedTimestamp");
        push_time(out, e.observed_time_unix_nano, clock);
    }
    out.push(b'}');
    id
}

fn otel_log(out: &mut Vec<u8>, e: &LogEvent) {
    out.extend_from_slice(b",\"severity\":{\"text\":");
    push_str(out, &e.severity_text);
    out.extend_from_slice(b",\"number\":");
    push_u64(out, e.severity_number.max(0) as u64);
    out.extend_from_slice(b"},\"body\":");
    push_value(out, &e.body);
    out.extend_from_slice(b",\"attributes\":");
    push_object(out, &e.attributes, |k| k);
    out.extend_from_slice(b",\"resource\":");
    push_object(out, &e.origin.resource.attributes, |k| k);
    let scope = &e.origin.scope;
    if !scope.name.is_empty() {
        out.extend_from_slice(b",\"instrumentationScope\":{\"name\":");
        push_str(out, &scope.name);
        out.extend_from_slice(b",\"version\":");
        push_str(out, &scope.version);
        out.push(b'}');
    }
    if let Some(t) = e.trace_id {
        out.extend_from_slice(b",\"traceId\":");
        push_str(out, &hex(&t));
    }
    if let Some(s) = e.span_id {
        out.extend_from_slice(b",\"spanId\":");
        push_str(out, &hex(&s));
    }
}

/// Attributes ECS has a field for.
const ECS_FIELDS: &[(&str, &str)] = &[
    ("service.name", "service.name"),
    ("host.name", "host.name"),
    ("k8s.namespace.name", "kubernetes.namespace"),
    ("k8s.pod.name", "kubernetes.pod.name"),
    ("k8s.pod.uid", "kubernetes.pod.uid"),
    ("k8s.container.name", "kubernetes.container.name"),
    ("k8s.node.name", "kubernetes.node.name"),
];

fn ecs_log(out: &mut Vec<u8>, e: &LogEvent) {
    out.extend_from_slice(b",\"message\":");
    match &e.body {
        Value::Str(s) => push_str(out, s),
        other => push_str(out, &other.to_text()),
    }
    if !e.severity_text.is_empty() {
        out.extend_from_slice(b",\"log.level\":");
        push_str(out, &e.severity_text);
    }
    for (otel, ecs) in ECS_FIELDS {
        if let Some(v) = e.attribute(otel) {
            out.push(b',');
            push_key(out, ecs);
            push_value(out, v);
        }
    }
    if let Some(t) = e.trace_id {
        out.extend_from_slice(b",\"trace.id\":");
        push_str(out, &hex(&t));
    }
    if let Some(s) = e.span_id {
        out.extend_from_slice(b",\"span.id\":");
        push_str(out, &hex(&s));
    }
    out.extend_from_slice(b",\"labels\":{");
    let mut first = true;
    let resource = &e.origin.resource.attributes;
    let record_keys = |k: &str| find_attribute(&e.attributes, k).is_some();
    let others = resource
        .iter()
        .filter(|kv| !record_keys(&kv.key))
        .chain(e.attributes.iter())
        .filter(|kv| !ECS_FIELDS.iter().any(|(otel, _)| *otel == kv.key.as_str()));
    for kv in others {
        if !first {
            out.push(b',');
        }
        first = false;
        push_key(out, &kv.key.replace('.', "_"));
        push_value(out, &kv.value);
    }
    out.push(b'}');
}

fn kind(kind: SpanKind) -> &'static str {
    match kind {
        SpanKind::Unspecified => "SPAN_KIND_UNSPECIFIED",
        SpanKind::Internal => "SPAN_KIND_INTERNAL",
        SpanKind::Server => "SPAN_KIND_SERVER",
        SpanKind::Client => "SPAN_KIND_CLIENT",
        SpanKind::Producer => "SPAN_KIND_PRODUCER",
        SpanKind::Consumer => "SPAN_KIND_CONSUMER",
    }
}

fn status_code(code: StatusCode) -> u64 {
    match code {
        StatusCode::Unset => 0,
        StatusCode::Ok => 1,
        StatusCode::Error => 2,
    }
}

fn flattened(out: &mut Vec<u8>, prefix: &str, pairs: &[KeyValue]) {
    for kv in pairs {
        out.push(b',');
        push_key(out, &format!("{prefix}{}", kv.key.replace('.', "@")));
        push_value(out, &kv.value);
    }
}

/// Appends a span's document to `out` (Data Prepper's layout); returns its `_id` (trace and
/// span id).
pub fn span(out: &mut Vec<u8>, s: &Span, clock: &mut SecondCache) -> DocId {
    let duration = s.end_time_unix_nano.saturating_sub(s.start_time_unix_nano);
    let (code, message) = s
        .status
        .as_ref()
        .map_or((0, ""), |(c, m)| (status_code(*c), m.as_str()));
    out.extend_from_slice(b"{\"traceId\":");
    push_str(out, &hex(&s.trace_id));
    out.extend_from_slice(b",\"spanId\":");
    push_str(out, &hex(&s.span_id));
    out.extend_from_slice(b",\"parentSpanId\":");
    push_str(out, &s.parent_span_id.map(|p| hex(&p)).unwrap_or_default());
    out.extend_from_slice(b",\"traceState\":");
    push_str(out, &s.trace_state);
    out.extend_from_slice(b",\"name\":");
    push_str(out, &s.name);
    out.extend_from_slice(b",\"kind\":");
    push_str(out, kind(s.kind));
    out.extend_from_slice(b",\"startTime\":");
    push_time(out, s.start_time_unix_nano, clock);
    out.extend_from_slice(b",\"endTime\":");
    push_time(out, s.end_time_unix_nano, clock);
    out.extend_from_slice(b",\"durationInNanos\":");
    push_u64(out, duration);
    out.extend_from_slice(b",\"serviceName\":");
    let service = s
        .origin
        .resource_attribute("service.name")
        .map(|v| v.to_text().into_owned())
        .unwrap_or_default();
    push_str(out, &service);
    out.extend_from_slice(b",\"status\":{\"code\":");
    push_u64(out, code);
    out.extend_from_slice(b",\"message\":");
    push_str(out, message);
    out.push(b'}');
    if s.parent_span_id.is_none() {
        out.extend_from_slice(b",\"traceGroup\":");
        push_str(out, &s.name);
        out.extend_from_slice(b",\"traceGroupFields\":{\"endTime\":");
        push_time(out, s.end_time_unix_nano, clock);
        out.extend_from_slice(b",\"durationInNanos\":");
        push_u64(out, duration);
        out.extend_from_slice(b",\"statusCode\":");
        push_u64(out, code);
        out.push(b'}');
    }
    out.extend_from_slice(b",\"events\":[");
    for (i, ev) in s.events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":");
        push_str(out, &ev.name);
        out.extend_from_slice(b",\"time\":");
        push_time(out, ev.time_unix_nano, clock);
        out.extend_from_slice(b",\"attributes\":");
        push_object(out, &ev.attributes, |k| k);
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"links\":[");
    for (i, link) in s.links.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"traceId\":");
        push_str(out, &hex(&link.trace_id));
        out.extend_from_slice(b",\"spanId\":");
        push_str(out, &hex(&link.span_id));
        out.extend_from_slice(b",\"traceState\":");
        push_str(out, &link.trace_state);
        out.extend_from_slice(b",\"attributes\":");
        push_object(out, &link.attributes, |k| k);
        out.push(b'}');
    }
    out.push(b']');
    out.extend_from_slice(b",\"droppedAttributesCount\":");
    push_u64(out, u64::from(s.dropped_attributes_count));
    flattened(out, "span.attributes.", &s.attributes);
    flattened(out, "resource.attributes.", &s.origin.resource.attributes);
    out.push(b'}');
    let mut id = [0u8; 32];
    hex_into(&s.trace_id, &mut id[..32]);
    let mut span = [0u8; 16];
    hex_into(&s.span_id, &mut span);
    // Trace ids are 16 bytes: the id is the trace's first 8 bytes and the span id.
    id[16..].copy_from_slice(&span);
    id
}
