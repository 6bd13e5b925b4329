//! An X-Ray segment document as OpenTelemetry spans, in the semantic conventions the `aws_xray`
//! sink reads back (`collector/src/sinks/aws_xray/segment.rs`), so a trace from an X-Ray SDK
//! can go to OTLP, OpenSearch or a file whole:
//!
//! - **kind**: a segment is a server span; a subsegment in the `aws` or `remote` namespace a
//!   client span (`aws`: `rpc.system` `aws-api`, `rpc.service` its name, `rpc.method` the
//!   operation); any other subsegment internal.
//! - **resource** (segments; subsegments keep the source's): `service.name` (the segment's name),
//!   `service.version`, `cloud.provider` `aws`, `cloud.platform` from `origin`,
//!   `cloud.account.id`, `telemetry.sdk.*` from `aws.xray`, and `host.id`,
//!   `cloud.availability_zone`, `container.name`, `k8s.pod.name`, `k8s.cluster.name` from
//!   `aws.ec2`, `aws.ecs`, `aws.eks`.
//! - **attributes**: `http` as `http.request.method`, `url.full`, `client.address`,
//!   `user_agent.original`, `http.response.status_code`, `http.response.body.size`; `aws` as
//!   `cloud.region`, `aws.request_id`, `aws.sqs.queue_url`, `aws.dynamodb.table_names`; `sql`
//!   as `db.system.name`, `db.connection_string`, `db.user`, `db.query.text`; `user` as
//!   `enduser.id`; each annotation under its own key; each metadata namespace as
//!   `aws.xray.metadata.<namespace>` (its JSON text); `error`, `fault`, `throttle` as
//!   `aws.xray.error`, `aws.xray.fault`, `aws.xray.throttle` when true.
//! - **status**: error when `error` or `fault`, its message the first exception's.
//! - **events**: each exception of `cause` as an `exception` event (`exception.type`,
//!   `exception.message`, `exception.stacktrace` from its stack, `exception.id`); a `cause`
//!   that refers to another document's exception as `aws.xray.cause_id`.
//! - **subsegments** nested in a document become child spans after it, depth first. They carry
//!   [`NESTED_ATTRIBUTE`]: their document is already inside the parent's raw one, which the
//!   `aws_xray` sink sends, so it does not send them again.

use std::sync::Arc;

use serde_json::{Map, Value as Json};

use crate::flow::event::{KeyValue, Origin, Span, SpanEvent, SpanKind, StatusCode, Value};

use super::parse::{hex_bytes, nanos, trace_id};

/// Marks a span made from a subsegment nested in another document.
pub const NESTED_ATTRIBUTE: &str = "aws.xray.nested";

/// The spans of one document: its own first, then its nested subsegments'. `raw_attribute`
/// (the document itself) goes on the first.
pub(super) fn spans(
    doc: &Json,
    raw_attribute: KeyValue,
    base: &Arc<Origin>,
) -> Result<Vec<Span>, &'static str> {
    let obj = doc.as_object().ok_or("bad_document")?;
    let trace = trace_id(str_of(obj, "trace_id").ok_or("bad_trace_id")?).ok_or("bad_trace_id")?;
    let parent = match str_of(obj, "parent_id") {
        Some(p) => Some(hex_bytes::<8>(p).ok_or("bad_parent_id")?),
        None => None,
    };
    let subsegment = str_of(obj, "type") == Some("subsegment");
    let origin = if subsegment {
        base.clone()
    } else {
        Arc::new(segment_origin(obj, base))
    };
    let mut out = Vec::new();
    convert(obj, trace, parent, &origin, Some(raw_attribute), &mut out)?;
    Ok(out)
}

fn convert(
    obj: &Map<String, Json>,
    trace: [u8; 16],
    parent: Option<[u8; 8]>,
    origin: &Arc<Origin>,
    raw_attribute: Option<KeyValue>,
    out: &mut Vec<Span>,
) -> Result<(), &'static str> {
    let id = str_of(obj, "id")
        .and_then(hex_bytes::<8>)
        .ok_or("bad_segment_id")?;
    let name = str_of(obj, "name").ok_or("bad_document")?;
    let start = obj
        .get("start_time")
        .and_then(Json::as_f64)
        .ok_or("bad_document")?;
    // Nested subsegments do not say `type: subsegment`; independent ones do.
    let subsegment = raw_attribute.is_none() || str_of(obj, "type") == Some("subsegment");
    let mut attributes = Vec::new();
    if let Some(raw) = raw_attribute {
        attributes.push(raw);
    } else {
        attributes.push(KeyValue::new(NESTED_ATTRIBUTE, Value::Bool(true)));
    }
    let kind = kind_and_rpc(obj, subsegment, name, &mut attributes);
    http(obj, &mut attributes);
    aws(obj, &mut attributes);
    sql(obj, &mut attributes);
    if let Some(user) = str_of(obj, "user") {
        attributes.push(KeyValue::new("enduser.id", Value::from(user)));
    }
    if let Some(Json::Object(annotations)) = obj.get("annotations") {
        for (k, v) in annotations {
            attributes.push(KeyValue::new(k.as_str(), value(v)));
        }
    }
    if let Some(Json::Object(metadata)) = obj.get("metadata") {
        for (namespace, v) in metadata {
            attributes.push(KeyValue::new(
                format!("aws.xray.metadata.{namespace}").as_str(),
                Value::from(v.to_string()),
            ));
        }
    }
    let flag = |k: &str| obj.get(k).and_then(Json::as_bool) == Some(true);
    for k in ["error", "fault", "throttle"] {
        if flag(k) {
            attributes.push(KeyValue::new(
                format!("aws.xray.{k}").as_str(),
                Value::Bool(true),
            ));
        }
    }
    let end = obj.get("end_time").and_then(Json::as_f64).map_or(0, nanos);
    let events = cause(obj, end.max(nanos(start)), &mut attributes);
    let status = (flag("error") || flag("fault")).then(|| {
        let message = events
            .first()
            .and_then(|e| e.attributes.iter().find(|a| &*a.key == "exception.message"))
            .map(|a| a.value.to_text().into_owned())
            .unwrap_or_default();
        (StatusCode::Error, message)
    });
    out.push(Span {
        origin: origin.clone(),
        trace_id: trace,
        span_id: id,
        parent_span_id: parent,
        name: name.to_owned(),
        kind,
        start_time_unix_nano: nanos(start),
        end_time_unix_nano: end,
        attributes,
        events,
        status,
        ..Default::default()
    });
    if let Some(Json::Array(children)) = obj.get("subsegments") {
        for child in children.iter().filter_map(Json::as_object) {
            convert(child, trace, Some(id), origin, None, out)?;
        }
    }
    Ok(())
}

fn str_of<'a>(obj: &'a Map<String, Json>, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Json::as_str)
}

fn section<'a>(obj: &'a Map<String, Json>, key: &str) -> Option<&'a Map<String, Json>> {
    obj.get(key).and_then(Json::as_object)
}

/// A JSON value as an attribute value: scalars as they are, anything else as its JSON text.
fn value(v: &Json) -> Value {
    match v {
        Json::String(s) => Value::from(s.as_str()),
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => n
            .as_i64()
            .map(Value::Int)
            .unwrap_or_else(|| Value::Double(n.as_f64().unwrap_or(0.0))),
        other => Value::from(other.to_string()),
    }
}

/// Copies `section.field` to the attribute `key` for each pair present.
fn copy(section: &Map<String, Json>, pairs: &[(&str, &str)], into: &mut Vec<KeyValue>) {
    for (field, key) in pairs {
        if let Some(v) = section.get(*field).filter(|v| !v.is_null()) {
            into.push(KeyValue::new(*key, value(v)));
        }
    }
}

fn kind_and_rpc(
    obj: &Map<String, Json>,
    subsegment: bool,
    name: &str,
    into: &mut Vec<KeyValue>,
) -> SpanKind {
    if !subsegment {
        return SpanKind::Server;
    }
    match str_of(obj, "namespace") {
        Some("aws") => {
            into.push(KeyValue::new("rpc.system", Value::from("aws-api")));
            into.push(KeyValue::new("rpc.service", Value::from(name)));
            if let Some(op) = section(obj, "aws").and_then(|a| str_of(a, "operation")) {
                into.push(KeyValue::new("rpc.method", Value::from(op)));
            }
            SpanKind::Client
        }
        Some("remote") => SpanKind::Client,
        _ => SpanKind::Internal,
    }
}

fn http(obj: &Map<String, Json>, into: &mut Vec<KeyValue>) {
    let Some(http) = section(obj, "http") else {
        return;
    };
    if let Some(request) = section(http, "request") {
        copy(
            request,
            &[
                ("method", "http.request.method"),
                ("url", "url.full"),
                ("client_ip", "client.address"),
                ("user_agent", "user_agent.original"),
            ],
            into,
        );
    }
    if let Some(response) = section(http, "response") {
        copy(
            response,
            &[
                ("status", "http.response.status_code"),
                ("content_length", "http.response.body.size"),
            ],
            into,
        );
    }
}

fn aws(obj: &Map<String, Json>, into: &mut Vec<KeyValue>) {
    let Some(aws) = section(obj, "aws") else {
        return;
    };
    copy(
        aws,
        &[
            ("region", "cloud.region"),
            ("request_id", "aws.request_id"),
            ("queue_url", "aws.sqs.queue_url"),
        ],
        into,
    );
    if let Some(table) = str_of(aws, "table_name") {
        into.push(KeyValue::new(
            "aws.dynamodb.table_names",
            Value::Array(vec![Value::from(table)]),
        ));
    }
}

fn sql(obj: &Map<String, Json>, into: &mut Vec<KeyValue>) {
    if let Some(sql) = section(obj, "sql") {
        copy(
            sql,
            &[
                ("database_type", "db.system.name"),
                ("url", "db.connection_string"),
                ("user", "db.user"),
                ("sanitized_query", "db.query.text"),
                ("database_version", "db.version"),
            ],
            into,
        );
    }
}

/// The exceptions of `cause` as events at `time`; a cause that names another document's
/// exception as an attribute.
fn cause(obj: &Map<String, Json>, time: u64, into: &mut Vec<KeyValue>) -> Vec<SpanEvent> {
    match obj.get("cause") {
        Some(Json::String(id)) => {
            into.push(KeyValue::new("aws.xray.cause_id", Value::from(id.as_str())));
            Vec::new()
        }
        Some(Json::Object(cause)) => cause
            .get("exceptions")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(Json::as_object)
            .map(|ex| {
                let mut attributes = Vec::new();
                copy(
                    ex,
                    &[
                        ("type", "exception.type"),
                        ("message", "exception.message"),
                        ("id", "exception.id"),
                    ],
                    &mut attributes,
                );
                if let Some(stack) = ex.get("stack").and_then(Json::as_array) {
                    attributes.push(KeyValue::new(
                        "exception.stacktrace",
                        Value::from(stacktrace(stack)),
                    ));
                }
                SpanEvent {
                    time_unix_nano: time,
                    name: "exception".into(),
                    attributes,
                    dropped_attributes_count: 0,
                }
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Stack frames as lines `at {label}({path}:{line})`.
fn stacktrace(frames: &[Json]) -> String {
    let mut text = String::new();
    for frame in frames.iter().filter_map(Json::as_object) {
        let label = str_of(frame, "label").unwrap_or("");
        let path = str_of(frame, "path").unwrap_or("");
        let line = frame.get("line").and_then(Json::as_i64).unwrap_or(0);
        text.push_str(&format!("at {label}({path}:{line})\n"));
    }
    text
}

/// A segment's resource: the source's, with what the document says of the service and host.
fn segment_origin(obj: &Map<String, Json>, base: &Origin) -> Origin {
    let mut origin = base.clone();
    let mut add = |key: &str, value: Value| {
        if origin.resource_attribute(key).is_none() {
            origin.resource.attributes.push(KeyValue::new(key, value));
        }
    };
    if let Some(name) = str_of(obj, "name") {
        add("service.name", Value::from(name));
    }
    if let Some(version) = section(obj, "service").and_then(|s| str_of(s, "version")) {
        add("service.version", Value::from(version));
    }
    add("cloud.provider", Value::from("aws"));
    let platform = match str_of(obj, "origin") {
        Some("AWS::EKS::Container") => Some("aws_eks"),
        Some("AWS::ECS::Container" | "AWS::ECS::EC2" | "AWS::ECS::Fargate") => Some("aws_ecs"),
        Some("AWS::EC2::Instance") => Some("aws_ec2"),
        Some("AWS::ElasticBeanstalk::Environment") => Some("aws_elastic_beanstalk"),
        Some("AWS::Lambda::Function") => Some("aws_lambda"),
        _ => None,
    };
    if let Some(platform) = platform {
        add("cloud.platform", Value::from(platform));
    }
    let Some(aws) = section(obj, "aws") else {
        return origin;
    };
    if let Some(account) = str_of(aws, "account_id") {
        add("cloud.account.id", Value::from(account));
    }
    let nested = |outer: &str, field: &str| section(aws, outer).and_then(|s| str_of(s, field));
    for (outer, field, key) in [
        ("xray", "sdk", "telemetry.sdk.name"),
        ("xray", "sdk_version", "telemetry.sdk.version"),
        ("ec2", "instance_id", "host.id"),
        ("ec2", "availability_zone", "cloud.availability_zone"),
        ("ecs", "container", "container.name"),
        ("eks", "pod", "k8s.pod.name"),
        ("eks", "cluster_name", "k8s.cluster.name"),
    ] {
        if let Some(v) = nested(outer, field) {
            add(key, Value::from(v));
        }
    }
    origin
}
