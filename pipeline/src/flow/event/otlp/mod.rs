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

mod logs;
mod metrics;
mod traces;
pub mod wire;

pub use logs::{logs_from_proto, logs_to_proto};
pub use metrics::{metrics_from_proto, metrics_to_proto};
pub use traces::{spans_from_proto, spans_to_proto};

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
