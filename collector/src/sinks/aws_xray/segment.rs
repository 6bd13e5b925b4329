//! Spans to X-Ray segment documents, the way X-Ray reads them.
//!
//! - A span that starts work in this service (kind server or consumer, or one without a parent)
//!   is a **segment**, named after the service (`service.name`). Every other span is an
//!   independent **subsegment** (`type: subsegment`, with its trace and parent), so spans of one
//!   trace may arrive in any batch and any order.
//! - Client and producer spans are `namespace: aws` when they call an AWS API
//!   (`rpc.system: aws-api`, named after `rpc.service`), else `namespace: remote`, named after
//!   the peer (`peer.service`, `server.address`, the URL's host); database calls are named
//!   `{db.name}@{server.address}` and carry `sql`.
//! - `http`, `aws`, `sql` and `cause` come from the OpenTelemetry semantic conventions (the
//!   current names, and the older ones still in use). A 429 is `throttle` and `error`, another
//!   4xx `error`, a 5xx or an error status without an HTTP status `fault`. Exception events are
//!   `cause.exceptions`.
//! - Attributes become annotations or metadata ([`super::annotations`]).
//! - Names X-Ray refuses are fixed: at most 200 characters of letters, digits, spaces and
//!   `_ . : / % & # = + \ - @`, anything else `_`.

use serde_json::{json, Map, Value as Json};

use sextant_pipeline::flow::event::{find_attribute, Span, SpanKind, StatusCode, Value};

use super::annotations::{split, AnnotationStats};
use super::ids::{segment_id, trace_id};

pub const MAX_NAME_LEN: usize = 200;

/// How attributes are chosen as annotations.
#[derive(Clone, Debug)]
pub enum Indexing {
    None,
    All,
    Keys(Vec<String>),
}

impl Indexing {
    fn indexes(&self, key: &str) -> bool {
        match self {
            Indexing::None => false,
            Indexing::All => true,
            Indexing::Keys(keys) => keys.iter().any(|k| k == key),
        }
    }
}

/// A name X-Ray accepts.
pub fn segment_name(name: &str) -> String {
    let allowed = |c: char| c.is_alphanumeric() || c.is_whitespace() || "_.:/%&#=+\\-@".contains(c);
    let name: String = name
        .chars()
        .take(MAX_NAME_LEN)
        .map(|c| if allowed(c) { c } else { '_' })
        .collect();
    if name.trim().is_empty() {
        "unknown".into()
    } else {
        name
    }
}

fn attr<'a>(span: &'a Span, keys: &[&str]) -> Option<&'a Value> {
    keys.iter()
        .find_map(|k| find_attribute(&span.attributes, k))
}

fn text(span: &Span, keys: &[&str]) -> Option<String> {
    attr(span, keys)
        .map(|v| v.to_text().into_owned())
        .filter(|s| !s.is_empty())
}

fn int(span: &Span, keys: &[&str]) -> Option<i64> {
    match attr(span, keys)? {
        Value::Int(i) => Some(*i),
        Value::Double(d) => Some(*d as i64),
        Value::Str(s) => s.parse().ok(),
        _ => None,
    }
}

/// Epoch seconds with the fraction added separately, so microseconds survive the f64.
fn seconds(nanos: u64) -> f64 {
    (nanos / 1_000_000_000) as f64 + (nanos % 1_000_000_000) as f64 / 1e9
}

fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next()?;
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    Some(host.split(':').next().unwrap_or(host)).filter(|h| !h.is_empty())
}

fn is_segment(span: &Span) -> bool {
    matches!(span.kind, SpanKind::Server | SpanKind::Consumer) || span.parent_span_id.is_none()
}

fn http(span: &Span) -> Option<Json> {
    let mut request = Map::new();
    for (field, keys) in [
        ("method", &["http.request.method", "http.method"][..]),
        ("url", &["url.full", "http.url"]),
        ("client_ip", &["client.address", "http.client_ip"]),
        ("user_agent", &["user_agent.original", "http.user_agent"]),
    ] {
        if let Some(v) = text(span, keys) {
            request.insert(field.into(), json!(v));
        }
    }
    let mut response = Map::new();
    if let Some(status) = int(span, &["http.response.status_code", "http.status_code"]) {
        response.insert("status".into(), json!(status));
    }
    if let Some(len) = int(
        span,
        &["http.response.body.size", "http.response_content_length"],
    ) {
        response.insert("content_length".into(), json!(len));
    }
    if request.is_empty() && response.is_empty() {
        return None;
    }
    let mut http = Map::new();
    if !request.is_empty() {
        http.insert("request".into(), Json::Object(request));
    }
    if !response.is_empty() {
        http.insert("response".into(), Json::Object(response));
    }
    Some(Json::Object(http))
}

fn aws(span: &Span) -> Option<Json> {
    let mut aws = Map::new();
    for (field, keys) in [
        ("operation", &["rpc.method", "aws.operation"][..]),
        ("region", &["cloud.region", "aws.region"]),
        ("request_id", &["aws.request_id", "aws.requestId"]),
        ("queue_url", &["aws.sqs.queue_url", "aws.queue_url"]),
        ("table_name", &["aws.dynamodb.table_name", "aws.table_name"]),
    ] {
        if let Some(v) = text(span, keys) {
            aws.insert(field.into(), json!(v));
        }
    }
    if let Some(Value::Array(tables)) = attr(span, &["aws.dynamodb.table_names"]) {
        if let Some(first) = tables.first() {
            aws.entry("table_name")
                .or_insert_with(|| json!(first.to_text()));
        }
    }
    if let Some(account) = span.origin.resource_attribute("cloud.account.id") {
        aws.insert("account_id".into(), json!(account.to_text()));
    }
    (!aws.is_empty()).then_some(Json::Object(aws))
}

fn sql(span: &Span) -> Option<Json> {
    let system = text(span, &["db.system.name", "db.system"])?;
    let mut sql = Map::new();
    sql.insert("database_type".into(), json!(system));
    if let Some(url) = text(
        span,
        &["db.connection_string", "server.address", "net.peer.name"],
    ) {
        sql.insert("url".into(), json!(url));
    }
    if let Some(user) = text(span, &["db.user"]) {
        sql.insert("user".into(), json!(user));
    }
    if let Some(query) = text(span, &["db.query.text", "db.statement"]) {
        sql.insert("sanitized_query".into(), json!(query));
    }
    Some(Json::Object(sql))
}

fn cause(span: &Span) -> Option<Json> {
    let exceptions: Vec<Json> = span
        .events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.name == "exception")
        .map(|(i, e)| {
            let get = |k: &str| find_attribute(&e.attributes, k).map(|v| v.to_text().into_owned());
            // An id unique in the trace and the same every time the span is converted.
            let mut id = span.span_id;
            id[7] ^= i as u8;
            id[0] ^= 0x80;
            let mut ex = Map::new();
            ex.insert("id".into(), json!(segment_id(&id)));
            if let Some(t) = get("exception.type") {
                ex.insert("type".into(), json!(t));
            }
            if let Some(m) = get("exception.message") {
                ex.insert("message".into(), json!(m));
            }
            Json::Object(ex)
        })
        .collect();
    (!exceptions.is_empty()).then(|| json!({ "exceptions": exceptions }))
}

/// The name of a span's document.
fn name(span: &Span, segment: bool) -> String {
    if segment {
        if let Some(service) = span.origin.resource_attribute("service.name") {
            return segment_name(&service.to_text());
        }
        return segment_name(&span.name);
    }
    if let Some(system) = text(span, &["rpc.system"]) {
        if system == "aws-api" {
            if let Some(service) = text(span, &["rpc.service"]) {
                return segment_name(&service);
            }
        }
    }
    if text(span, &["db.system.name", "db.system"]).is_some() {
        if let (Some(db), Some(host)) = (
            text(span, &["db.namespace", "db.name"]),
            text(span, &["server.address", "net.peer.name"]),
        ) {
            return segment_name(&format!("{db}@{host}"));
        }
    }
    if matches!(span.kind, SpanKind::Client | SpanKind::Producer) {
        if let Some(peer) = text(span, &["peer.service", "server.address", "net.peer.name"]) {
            return segment_name(&peer);
        }
        if let Some(host) = text(span, &["url.full", "http.url"])
            .as_deref()
            .and_then(host_of)
        {
            return segment_name(host);
        }
    }
    segment_name(&span.name)
}

fn origin(span: &Span) -> Option<&'static str> {
    match span.origin.resource_attribute("cloud.platform")?.as_str()? {
        "aws_eks" => Some("AWS::EKS::Container"),
        "aws_ecs" => Some("AWS::ECS::Container"),
        "aws_ec2" => Some("AWS::EC2::Instance"),
        "aws_elastic_beanstalk" => Some("AWS::ElasticBeanstalk::Environment"),
        "aws_lambda" => Some("AWS::Lambda::Function"),
        _ => None,
    }
}

/// The segment document of `span`.
pub fn document(
    span: &Span,
    indexing: &Indexing,
    stats: &mut AnnotationStats,
) -> Map<String, Json> {
    let segment = is_segment(span);
    let mut doc = Map::new();
    doc.insert("name".into(), json!(name(span, segment)));
    doc.insert("id".into(), json!(segment_id(&span.span_id)));
    doc.insert("trace_id".into(), json!(trace_id(&span.trace_id)));
    doc.insert(
        "start_time".into(),
        json!(seconds(span.start_time_unix_nano)),
    );
    if span.end_time_unix_nano == 0 {
        doc.insert("in_progress".into(), json!(true));
    } else {
        doc.insert("end_time".into(), json!(seconds(span.end_time_unix_nano)));
    }
    if let Some(parent) = &span.parent_span_id {
        doc.insert("parent_id".into(), json!(segment_id(parent)));
    }
    if segment {
        if let Some(o) = origin(span) {
            doc.insert("origin".into(), json!(o));
        }
    } else {
        doc.insert("type".into(), json!("subsegment"));
        if matches!(span.kind, SpanKind::Client | SpanKind::Producer) {
            let aws_call = text(span, &["rpc.system"]).as_deref() == Some("aws-api");
            doc.insert(
                "namespace".into(),
                json!(if aws_call { "aws" } else { "remote" }),
            );
        }
    }
    let http = http(span);
    let status = int(span, &["http.response.status_code", "http.status_code"]);
    match status {
        Some(429) => {
            doc.insert("throttle".into(), json!(true));
            doc.insert("error".into(), json!(true));
        }
        Some(s) if (400..500).contains(&s) => {
            doc.insert("error".into(), json!(true));
        }
        Some(s) if s >= 500 => {
            doc.insert("fault".into(), json!(true));
        }
        _ => {
            if matches!(span.status, Some((StatusCode::Error, _))) {
                doc.insert("fault".into(), json!(true));
            }
        }
    }
    if let Some(h) = http {
        doc.insert("http".into(), h);
    }
    if let Some(a) = aws(span) {
        doc.insert("aws".into(), a);
    }
    if let Some(s) = sql(span) {
        doc.insert("sql".into(), s);
    }
    if let Some(c) = cause(span) {
        doc.insert("cause".into(), c);
    }
    let (annotations, metadata) = split(&span.attributes, |k| indexing.indexes(k), stats);
    if !annotations.is_empty() {
        doc.insert("annotations".into(), Json::Object(annotations));
    }
    if !metadata.is_empty() {
        doc.insert("metadata".into(), json!({ "default": metadata }));
    }
    doc
}
