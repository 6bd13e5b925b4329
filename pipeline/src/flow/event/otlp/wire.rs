//! OTLP protobuf written straight from events, for the send path.
//!
//! [`super::logs_to_proto`] and prost build `opentelemetry-proto`'s message structs first: a second
//! copy of every string and attribute of a batch, and an allocation per record and attribute,
//! all alive at once next to the events and the encoded bytes. Here the message is written from
//! the events themselves in two passes: the lengths every length-delimited field needs up
//! front, then the bytes, into one buffer of exactly the message's size.
//!
//! Contract: [`encode`] writes byte for byte what prost writes for the same records converted
//! with the `*_to_proto` functions (records regrouped by origin the same way, fields in tag order,
//! proto3 defaults left out, oneof values always written); the tests hold it to that for any
//! records. Log records are written this way; metrics and spans still go through prost.

use std::sync::Arc;

use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};

use super::super::flat_json::{self, Scalar};
use super::super::{KeyValue, LogEvent, Origin, RecordAttributes, Resource, Scope, Value};

/// A record OTLP nests under `Resource*` and `Scope*` messages; both nestings use the same field
/// numbers for every signal (resource or scope 1, the children 2, schema_url 3).
pub trait WireRecord {
    fn origin(&self) -> &Arc<Origin>;
    /// The length of the record's message body.
    fn encoded_len(&self) -> usize;
    /// Writes the record's message body (`encoded_len` bytes).
    fn encode(&self, buf: &mut Vec<u8>);
}

/// The export request for `records` (the `Export*ServiceRequest` body), after `front` zero bytes
/// left for a caller's header (a gRPC frame's five).
pub fn encode<R: WireRecord>(records: &[R], front: usize) -> Vec<u8> {
    let resources = nest(records);
    // Pass one: every record's length (asked for again only at the bottom of the nesting),
    // then each scope's and resource's.
    let record_lens: Vec<Vec<Vec<usize>>> = resources
        .iter()
        .map(|r| {
            r.scopes
                .iter()
                .map(|s| s.records.iter().map(|rec| rec.encoded_len()).collect())
                .collect()
        })
        .collect();
    let scope_lens: Vec<Vec<usize>> = resources
        .iter()
        .zip(&record_lens)
        .map(|(r, lens)| {
            r.scopes
                .iter()
                .zip(lens)
                .map(|(s, lens)| scope_group_len(s.origin, lens))
                .collect()
        })
        .collect();
    let resource_lens: Vec<usize> = resources
        .iter()
        .zip(&scope_lens)
        .map(|(r, lens)| resource_group_len(r.resource, lens))
        .collect();
    let total: usize = resource_lens.iter().map(|&l| message_field_len(1, l)).sum();
    // Pass two: the bytes, into a buffer that never grows.
    let mut buf = Vec::with_capacity(front + total);
    buf.resize(front, 0);
    for (i, r) in resources.iter().enumerate() {
        put_message_key(1, resource_lens[i], &mut buf);
        put_message_key(1, resource_len(r.resource), &mut buf);
        put_resource(r.resource, &mut buf);
        for (j, s) in r.scopes.iter().enumerate() {
            put_message_key(2, scope_lens[i][j], &mut buf);
            let scope = &s.origin.scope;
            put_message_key(1, scope_len(scope), &mut buf);
            put_scope(scope, &mut buf);
            for (rec, &len) in s.records.iter().zip(&record_lens[i][j]) {
                put_message_key(2, len, &mut buf);
                rec.encode(&mut buf);
            }
            put_str(3, &scope.schema_url, &mut buf);
        }
        put_str(3, &r.resource.schema_url, &mut buf);
    }
    debug_assert_eq!(buf.len(), front + total);
    buf
}

// ---------- nesting ----------

struct ScopeGroup<'a, R> {
    origin: &'a Origin,
    records: Vec<&'a R>,
}

struct ResourceGroup<'a, R> {
    resource: &'a Resource,
    scopes: Vec<ScopeGroup<'a, R>>,
}

/// Records by origin, as `group_by_origin` and `nest` in the parent module group them: an
/// origin's records in order, origins in the order first seen (compared by pointer, then by
/// value), and consecutive origins with equal resources under one resource.
fn nest<R: WireRecord>(records: &[R]) -> Vec<ResourceGroup<'_, R>> {
    let mut groups: Vec<(&Arc<Origin>, Vec<&R>)> = Vec::new();
    for record in records {
        let o = record.origin();
        let found = match groups.last() {
            Some((last, _)) if Arc::ptr_eq(last, o) => Some(groups.len() - 1),
            _ => groups
                .iter()
                .position(|(g, _)| Arc::ptr_eq(g, o) || **g == *o),
        };
        match found {
            Some(i) => groups[i].1.push(record),
            None => groups.push((o, vec![record])),
        }
    }
    let mut out: Vec<ResourceGroup<'_, R>> = Vec::new();
    for (origin, records) in groups {
        let scope = ScopeGroup { origin, records };
        match out.last_mut() {
            Some(r) if *r.resource == origin.resource => r.scopes.push(scope),
            _ => out.push(ResourceGroup {
                resource: &origin.resource,
                scopes: vec![scope],
            }),
        }
    }
    out
}

fn scope_group_len(origin: &Origin, record_lens: &[usize]) -> usize {
    message_field_len(1, scope_len(&origin.scope))
        + record_lens
            .iter()
            .map(|&l| message_field_len(2, l))
            .sum::<usize>()
        + str_len(3, &origin.scope.schema_url)
}

fn resource_group_len(resource: &Resource, scope_lens: &[usize]) -> usize {
    message_field_len(1, resource_len(resource))
        + scope_lens
            .iter()
            .map(|&l| message_field_len(2, l))
            .sum::<usize>()
        + str_len(3, &resource.schema_url)
}

fn resource_len(r: &Resource) -> usize {
    attributes_len(1, &r.attributes) + uint32_len(2, r.dropped_attributes_count)
}

fn put_resource(r: &Resource, buf: &mut Vec<u8>) {
    put_attributes(1, &r.attributes, buf);
    put_uint32(2, r.dropped_attributes_count, buf);
}

fn scope_len(s: &Scope) -> usize {
    str_len(1, &s.name)
        + str_len(2, &s.version)
        + attributes_len(3, &s.attributes)
        + uint32_len(4, s.dropped_attributes_count)
}

fn put_scope(s: &Scope, buf: &mut Vec<u8>) {
    put_str(1, &s.name, buf);
    put_str(2, &s.version, buf);
    put_attributes(3, &s.attributes, buf);
    put_uint32(4, s.dropped_attributes_count, buf);
}

// ---------- log records ----------

impl WireRecord for LogEvent {
    fn origin(&self) -> &Arc<Origin> {
        &self.origin
    }

    fn encoded_len(&self) -> usize {
        fixed64_len(1, self.time_unix_nano)
            + int32_len(2, self.severity_number)
            + str_len(3, &self.severity_text)
            + match self.body {
                Value::Empty => 0,
                ref body => message_field_len(5, any_value_len(body)),
            }
            + record_attributes_len(6, &self.attributes)
            + uint32_len(7, self.dropped_attributes_count)
            + fixed32_len(8, self.flags)
            + self.trace_id.map_or(0, |id| message_field_len(9, id.len()))
            + self.span_id.map_or(0, |id| message_field_len(10, id.len()))
            + fixed64_len(11, self.observed_time_unix_nano)
            + str_len(12, &self.event_name)
    }

    fn encode(&self, buf: &mut Vec<u8>) {
        put_fixed64(1, self.time_unix_nano, buf);
        put_int32(2, self.severity_number, buf);
        put_str(3, &self.severity_text, buf);
        if !matches!(self.body, Value::Empty) {
            put_message_key(5, any_value_len(&self.body), buf);
            put_any_value(&self.body, buf);
        }
        put_record_attributes(6, &self.attributes, buf);
        put_uint32(7, self.dropped_attributes_count, buf);
        put_fixed32(8, self.flags, buf);
        if let Some(id) = &self.trace_id {
            put_bytes(9, id, buf);
        }
        if let Some(id) = &self.span_id {
            put_bytes(10, id, buf);
        }
        put_fixed64(11, self.observed_time_unix_nano, buf);
        put_str(12, &self.event_name, buf);
    }
}

// ---------- values and attributes ----------

/// The body of an `AnyValue` message. Its `value` is a oneof: written even when zero.
fn any_value_len(v: &Value) -> usize {
    if let Some(scalar) = v.as_scalar() {
        return scalar_len(scalar);
    }
    match v {
        Value::Array(a) => message_field_len(5, array_len(a)),
        Value::Map(m) => message_field_len(6, attributes_len(1, m)),
        Value::Bytes(b) => message_field_len(7, b.len()),
        _ => 0,
    }
}

fn put_any_value(v: &Value, buf: &mut Vec<u8>) {
    if let Some(scalar) = v.as_scalar() {
        return put_scalar(scalar, buf);
    }
    match v {
        Value::Array(a) => {
            put_message_key(5, array_len(a), buf);
            for v in a {
                put_message_key(1, any_value_len(v), buf);
                put_any_value(v, buf);
            }
        }
        Value::Map(m) => {
            put_message_key(6, attributes_len(1, m), buf);
            put_attributes(1, m, buf);
        }
        Value::Bytes(b) => put_bytes(7, b, buf),
        _ => {}
    }
}

/// [`any_value_len`] of a scalar (an empty value is a message with nothing set).
fn scalar_len(v: Scalar<'_>) -> usize {
    match v {
        Scalar::Null => 0,
        Scalar::Str(s) => message_field_len(1, s.len()),
        Scalar::Bool(_) => key_len(2) + 1,
        Scalar::Int(i) => key_len(3) + encoded_len_varint(i as u64),
        Scalar::Double(_) => key_len(4) + 8,
    }
}

fn put_scalar(v: Scalar<'_>, buf: &mut Vec<u8>) {
    match v {
        Scalar::Null => {}
        Scalar::Str(s) => put_bytes(1, s.as_bytes(), buf),
        Scalar::Bool(b) => {
            encode_key(2, WireType::Varint, buf);
            buf.push(u8::from(b));
        }
        Scalar::Int(i) => {
            encode_key(3, WireType::Varint, buf);
            encode_varint(i as u64, buf);
        }
        Scalar::Double(d) => {
            encode_key(4, WireType::SixtyFourBit, buf);
            buf.extend_from_slice(&d.to_le_bytes());
        }
    }
}

/// An `ArrayValue`'s body: every element, an empty one too.
fn array_len(values: &[Value]) -> usize {
    values
        .iter()
        .map(|v| message_field_len(1, any_value_len(v)))
        .sum()
}

/// A `KeyValue`'s body: the key unless empty, the value (of `value_len`) always, as a message
/// empty or not.
fn key_value_len(key: &str, value_len: usize) -> usize {
    str_len(1, key) + message_field_len(2, value_len)
}

fn put_key_value(tag: u32, key: &str, value_len: usize, buf: &mut Vec<u8>) {
    put_message_key(tag, key_value_len(key, value_len), buf);
    put_str(1, key, buf);
    put_message_key(2, value_len, buf);
}

fn attributes_len(tag: u32, attributes: &[KeyValue]) -> usize {
    attributes
        .iter()
        .map(|kv| message_field_len(tag, key_value_len(&kv.key, any_value_len(&kv.value))))
        .sum()
}

fn put_attributes(tag: u32, attributes: &[KeyValue], buf: &mut Vec<u8>) {
    for kv in attributes {
        put_key_value(tag, &kv.key, any_value_len(&kv.value), buf);
        put_any_value(&kv.value, buf);
    }
}

/// A record's attributes; those still kept as JSON text are written straight from it, the
/// same bytes as from the values they read as.
fn record_attributes_len(tag: u32, attributes: &RecordAttributes) -> usize {
    let Some((leading, text)) = attributes.unparsed_json() else {
        return attributes_len(tag, attributes);
    };
    let mut len = attributes_len(tag, leading);
    flat_json::visit(text, |key, value| {
        len += message_field_len(tag, key_value_len(key, scalar_len(value)));
    });
    len
}

fn put_record_attributes(tag: u32, attributes: &RecordAttributes, buf: &mut Vec<u8>) {
    let Some((leading, text)) = attributes.unparsed_json() else {
        return put_attributes(tag, attributes, buf);
    };
    put_attributes(tag, leading, buf);
    flat_json::visit(text, |key, value| {
        put_key_value(tag, key, scalar_len(value), buf);
        put_scalar(value, buf);
    });
}

// ---------- fields ----------

/// A length-delimited field of `len` bytes, its key and length included.
fn message_field_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

fn put_message_key(tag: u32, len: usize, buf: &mut Vec<u8>) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
}

fn put_bytes(tag: u32, bytes: &[u8], buf: &mut Vec<u8>) {
    put_message_key(tag, bytes.len(), buf);
    buf.extend_from_slice(bytes);
}

/// A string field; proto3 leaves an empty one out.
fn str_len(tag: u32, s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        message_field_len(tag, s.len())
    }
}

fn put_str(tag: u32, s: &str, buf: &mut Vec<u8>) {
    if !s.is_empty() {
        put_bytes(tag, s.as_bytes(), buf);
    }
}

fn uint32_len(tag: u32, v: u32) -> usize {
    if v == 0 {
        0
    } else {
        key_len(tag) + encoded_len_varint(u64::from(v))
    }
}

fn put_uint32(tag: u32, v: u32, buf: &mut Vec<u8>) {
    if v != 0 {
        encode_key(tag, WireType::Varint, buf);
        encode_varint(u64::from(v), buf);
    }
}

/// `int32` (and enums): a negative value is written sign-extended to ten bytes, as prost does.
fn int32_len(tag: u32, v: i32) -> usize {
    if v == 0 {
        0
    } else {
        key_len(tag) + encoded_len_varint(i64::from(v) as u64)
    }
}

fn put_int32(tag: u32, v: i32, buf: &mut Vec<u8>) {
    if v != 0 {
        encode_key(tag, WireType::Varint, buf);
        encode_varint(i64::from(v) as u64, buf);
    }
}

fn fixed64_len(tag: u32, v: u64) -> usize {
    if v == 0 {
        0
    } else {
        key_len(tag) + 8
    }
}

fn put_fixed64(tag: u32, v: u64, buf: &mut Vec<u8>) {
    if v != 0 {
        encode_key(tag, WireType::SixtyFourBit, buf);
        buf.extend_from_slice(&v.to_le_bytes());
    }
}

fn fixed32_len(tag: u32, v: u32) -> usize {
    if v == 0 {
        0
    } else {
        key_len(tag) + 4
    }
}

fn put_fixed32(tag: u32, v: u32, buf: &mut Vec<u8>) {
    if v != 0 {
        encode_key(tag, WireType::ThirtyTwoBit, buf);
        buf.extend_from_slice(&v.to_le_bytes());
    }
}
