//! A segment as the X-Ray SDKs write one (the shapes of the X-Ray segment document reference),
//! converted whole.

use std::sync::Arc;

use crate::flow::event::{find_attribute, Origin, Span, SpanKind, StatusCode, Value};

use super::parse::{datagram, RAW_SEGMENT_ATTRIBUTE};
use super::segment::NESTED_ATTRIBUTE;

const SEGMENT: &str = r#"{
  "name": "checkout", "id": "70de5b6f19ff9a0a", "trace_id": "1-581cf771-a006649127e371903a2de979",
  "start_time": 1478293361.271, "end_time": 1478293361.449,
  "origin": "AWS::EKS::Container", "user": "u-42", "fault": true,
  "service": {"version": "2.4.1"},
  "http": {"request": {"method": "POST", "url": "https://shop.example.com/orders", "client_ip": "10.0.0.7", "user_agent": "curl/8"},
           "response": {"status": 500, "content_length": 120}},
  "aws": {"account_id": "123456789012", "xray": {"sdk": "X-Ray for Python", "sdk_version": "2.15.0"},
          "ec2": {"instance_id": "i-0abc", "availability_zone": "eu-west-1a"},
          "eks": {"pod": "checkout-5c", "cluster_name": "prod"}},
  "annotations": {"order_id": "o-7", "items": 3, "paid": false},
  "metadata": {"debug": {"cart": [1, 2]}},
  "cause": {"working_directory": "/app", "exceptions": [
    {"id": "ab12cd34ef56ab78", "type": "ValueError", "message": "card declined",
     "stack": [{"path": "app.py", "line": 12, "label": "charge"}, {"path": "web.py", "line": 3, "label": "handle"}]}]},
  "subsegments": [
    {"name": "DynamoDB", "id": "1a2b3c4d5e6f7081", "namespace": "aws", "start_time": 1478293361.3, "end_time": 1478293361.35,
     "aws": {"operation": "PutItem", "region": "eu-west-1", "request_id": "R1", "table_name": "orders"},
     "http": {"response": {"status": 200}}},
    {"name": "orders@db.internal", "id": "1a2b3c4d5e6f7082", "namespace": "remote", "start_time": 1478293361.36, "end_time": 1478293361.4,
     "throttle": true, "error": true,
     "sql": {"database_type": "PostgreSQL", "url": "db.internal:5432/orders", "user": "shop", "sanitized_query": "INSERT INTO orders VALUES ($1)", "database_version": "16.2"},
     "subsegments": [{"name": "pool wait", "id": "1a2b3c4d5e6f7083", "start_time": 1478293361.36, "end_time": 1478293361.37}]}
  ]
}"#;

fn attr(span: &Span, key: &str) -> Option<Value> {
    find_attribute(&span.attributes, key).cloned()
}

fn s(v: &str) -> Option<Value> {
    Some(Value::from(v))
}

fn resource(span: &Span, key: &str) -> Option<Value> {
    span.origin.resource_attribute(key).cloned()
}

#[test]
fn a_segment_with_nested_subsegments_becomes_a_whole_trace_in_otel_terms() {
    let bytes = format!("{{\"format\":\"json\",\"version\":1}}\n{SEGMENT}");
    let base = Arc::new(Origin::default());
    let spans = datagram(bytes.as_bytes(), &base).unwrap();
    assert_eq!(
        spans.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["checkout", "DynamoDB", "orders@db.internal", "pool wait"],
        "the segment, then its subsegments depth first"
    );
    let (root, dynamo, db, pool) = (&spans[0], &spans[1], &spans[2], &spans[3]);

    // The segment: the raw document for aws_xray, and everything in it as OpenTelemetry.
    assert_eq!(attr(root, RAW_SEGMENT_ATTRIBUTE), s(SEGMENT.trim()));
    assert_eq!(attr(root, NESTED_ATTRIBUTE), None);
    assert_eq!(root.kind, SpanKind::Server);
    assert_eq!(root.parent_span_id, None);
    assert_eq!(root.start_time_unix_nano, 1_478_293_361_271_000_000);
    assert_eq!(root.end_time_unix_nano, 1_478_293_361_449_000_000);
    for (key, want) in [
        ("http.request.method", s("POST")),
        ("url.full", s("https://shop.example.com/orders")),
        ("client.address", s("10.0.0.7")),
        ("user_agent.original", s("curl/8")),
        ("http.response.status_code", Some(Value::Int(500))),
        ("http.response.body.size", Some(Value::Int(120))),
        ("enduser.id", s("u-42")),
        ("order_id", s("o-7")),
        ("items", Some(Value::Int(3))),
        ("paid", Some(Value::Bool(false))),
        ("aws.xray.metadata.debug", s(r#"{"cart":[1,2]}"#)),
        ("aws.xray.fault", Some(Value::Bool(true))),
        ("aws.xray.error", None),
    ] {
        assert_eq!(attr(root, key), want, "{key}");
    }
    assert_eq!(
        root.status,
        Some((StatusCode::Error, "card declined".into()))
    );
    assert_eq!(root.events.len(), 1);
    let exception = &root.events[0];
    assert_eq!(exception.name, "exception");
    assert_eq!(exception.time_unix_nano, root.end_time_unix_nano);
    for (key, want) in [
        ("exception.type", "ValueError"),
        ("exception.message", "card declined"),
        ("exception.id", "ab12cd34ef56ab78"),
        (
            "exception.stacktrace",
            "at charge(app.py:12)\nat handle(web.py:3)\n",
        ),
    ] {
        assert_eq!(
            find_attribute(&exception.attributes, key).cloned(),
            s(want),
            "{key}"
        );
    }
    for (key, want) in [
        ("service.name", "checkout"),
        ("service.version", "2.4.1"),
        ("cloud.provider", "aws"),
        ("cloud.platform", "aws_eks"),
        ("cloud.account.id", "123456789012"),
        ("telemetry.sdk.name", "X-Ray for Python"),
        ("telemetry.sdk.version", "2.15.0"),
        ("host.id", "i-0abc"),
        ("cloud.availability_zone", "eu-west-1a"),
        ("k8s.pod.name", "checkout-5c"),
        ("k8s.cluster.name", "prod"),
    ] {
        assert_eq!(resource(root, key), s(want), "{key}");
    }

    // An AWS call: a client span in the RPC conventions, under the segment.
    assert_eq!(dynamo.kind, SpanKind::Client);
    assert_eq!(dynamo.trace_id, root.trace_id);
    assert_eq!(dynamo.parent_span_id, Some(root.span_id));
    assert_eq!(attr(dynamo, NESTED_ATTRIBUTE), Some(Value::Bool(true)));
    assert_eq!(attr(dynamo, RAW_SEGMENT_ATTRIBUTE), None);
    for (key, want) in [
        ("rpc.system", s("aws-api")),
        ("rpc.service", s("DynamoDB")),
        ("rpc.method", s("PutItem")),
        ("cloud.region", s("eu-west-1")),
        ("aws.request_id", s("R1")),
        (
            "aws.dynamodb.table_names",
            Some(Value::Array(vec![Value::from("orders")])),
        ),
        ("http.response.status_code", Some(Value::Int(200))),
    ] {
        assert_eq!(attr(dynamo, key), want, "{key}");
    }
    assert_eq!(dynamo.status, None);
    assert!(Arc::ptr_eq(&dynamo.origin, &root.origin), "one resource");

    // A database call: a client span in the database conventions, throttled.
    assert_eq!(db.kind, SpanKind::Client);
    for (key, want) in [
        ("db.system.name", s("PostgreSQL")),
        ("db.connection_string", s("db.internal:5432/orders")),
        ("db.user", s("shop")),
        ("db.query.text", s("INSERT INTO orders VALUES ($1)")),
        ("db.version", s("16.2")),
        ("aws.xray.throttle", Some(Value::Bool(true))),
        ("aws.xray.error", Some(Value::Bool(true))),
    ] {
        assert_eq!(attr(db, key), want, "{key}");
    }
    assert_eq!(db.status, Some((StatusCode::Error, String::new())));

    // Nested twice: internal, its parent the database call.
    assert_eq!(pool.kind, SpanKind::Internal);
    assert_eq!(pool.parent_span_id, Some(db.span_id));
    assert_eq!(attr(pool, NESTED_ATTRIBUTE), Some(Value::Bool(true)));
}

#[test]
fn an_independent_subsegment_keeps_the_sources_resource_and_a_bad_nested_one_refuses_the_datagram()
{
    let base = Arc::new(Origin::default());
    let independent = r#"{"format":"json","version":1}
{"name":"S3","id":"1a2b3c4d5e6f7084","trace_id":"1-581cf771-a006649127e371903a2de979","parent_id":"70de5b6f19ff9a0a","type":"subsegment","namespace":"aws","start_time":1478293361.5,"in_progress":true,"cause":"ab12cd34ef56ab78"}"#;
    let spans = datagram(independent.as_bytes(), &base).unwrap();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].kind, SpanKind::Client);
    assert_eq!(spans[0].end_time_unix_nano, 0, "in progress");
    assert_eq!(attr(&spans[0], "aws.xray.cause_id"), s("ab12cd34ef56ab78"));
    assert!(Arc::ptr_eq(&spans[0].origin, &base));
    assert!(attr(&spans[0], RAW_SEGMENT_ATTRIBUTE).is_some());

    let bad_child = r#"{"format":"json","version":1}
{"name":"a","id":"70de5b6f19ff9a0a","trace_id":"1-581cf771-a006649127e371903a2de979","start_time":1,"subsegments":[{"name":"b","id":"short","start_time":1}]}"#;
    assert_eq!(
        datagram(bad_child.as_bytes(), &base).err(),
        Some("bad_segment_id")
    );
}
