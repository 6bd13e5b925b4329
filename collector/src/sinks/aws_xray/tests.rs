//! Span to segment conversion and the built requests at X-Ray's limits (50 documents, 64 kB),
//! which the test server does not enforce.

use std::sync::Arc;

use serde_json::{json, Value as Json};

use sextant_pipeline::flow::event::{
    KeyValue, Origin, Resource, Span, SpanEvent, SpanKind, StatusCode, Value,
};

use super::annotations::AnnotationStats;
use super::request_builder::{
    build, BuildStats, MAX_DOCUMENTS_PER_REQUEST, MAX_DOCUMENT_BYTES, RAW_SEGMENT_ATTRIBUTE,
};
use super::segment::{document, segment_name, Indexing};

const W3C_TRACE: [u8; 16] = [
    0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36,
];

fn origin() -> Arc<Origin> {
    Arc::new(Origin {
        resource: Resource {
            attributes: vec![
                KeyValue::new("service.name", "checkout"),
                KeyValue::new("cloud.platform", "aws_eks"),
                KeyValue::new("cloud.account.id", "123456789012"),
            ],
            ..Default::default()
        },
        ..Default::default()
    })
}

fn span(id: u8, parent: Option<u8>, kind: SpanKind, attributes: Vec<KeyValue>) -> Span {
    Span {
        origin: origin(),
        trace_id: W3C_TRACE,
        span_id: [0, 0, 0, 0, 0, 0, 0, id],
        parent_span_id: parent.map(|p| [0, 0, 0, 0, 0, 0, 0, p]),
        name: "operation".into(),
        kind,
        start_time_unix_nano: 1_795_305_600_500_000_000,
        end_time_unix_nano: 1_795_305_600_750_000_000,
        attributes,
        ..Default::default()
    }
}

fn doc(span: &Span, indexing: &Indexing) -> Json {
    Json::Object(document(span, indexing, &mut AnnotationStats::default()))
}

#[test]
fn a_server_span_is_a_segment_of_its_service_with_http_fault_and_annotations() {
    let mut s = span(
        1,
        None,
        SpanKind::Server,
        vec![
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("url.full", "https://shop.example.com/orders"),
            KeyValue::new("http.response.status_code", 503i64),
            KeyValue::new("customer.tier", "gold"),
            KeyValue::new("cart.items", 3i64),
        ],
    );
    s.events.push(SpanEvent {
        name: "exception".into(),
        attributes: vec![
            KeyValue::new("exception.type", "TimeoutError"),
            KeyValue::new("exception.message", "db slow"),
        ],
        ..Default::default()
    });
    let d = doc(&s, &Indexing::Keys(vec!["customer.tier".into()]));
    assert_eq!(d["name"], "checkout");
    assert_eq!(d["id"], "0000000000000001");
    assert_eq!(
        d["trace_id"], "1-4bf92f35-77b34da6a3ce929d0e0e4736",
        "a W3C random id, as X-Ray accepts it"
    );
    assert_eq!(d["start_time"], json!(1_795_305_600.5));
    assert_eq!(d["end_time"], json!(1_795_305_600.75));
    assert_eq!(d["origin"], "AWS::EKS::Container");
    assert!(d.get("type").is_none() && d.get("parent_id").is_none());
    assert_eq!(
        d["http"],
        json!({"request": {"method": "POST", "url": "https://shop.example.com/orders"}, "response": {"status": 503}})
    );
    assert_eq!(d["fault"], true);
    assert!(d.get("error").is_none());
    assert_eq!(d["cause"]["exceptions"][0]["type"], "TimeoutError");
    assert_eq!(d["cause"]["exceptions"][0]["message"], "db slow");
    assert_eq!(d["annotations"], json!({"customer_tier": "gold"}));
    assert_eq!(d["metadata"]["default"]["cart.items"], 3);
}

#[test]
fn client_spans_are_subsegments_named_after_what_they_call() {
    let dynamo = span(
        2,
        Some(1),
        SpanKind::Client,
        vec![
            KeyValue::new("rpc.system", "aws-api"),
            KeyValue::new("rpc.service", "DynamoDB"),
            KeyValue::new("rpc.method", "GetItem"),
            KeyValue::new(
                "aws.dynamodb.table_names",
                Value::Array(vec![Value::from("orders")]),
            ),
            KeyValue::new("aws.request_id", "R1"),
        ],
    );
    let d = doc(&dynamo, &Indexing::None);
    assert_eq!(
        (d["type"].clone(), d["namespace"].clone(), d["name"].clone()),
        (json!("subsegment"), json!("aws"), json!("DynamoDB"))
    );
    assert_eq!(d["parent_id"], "0000000000000001");
    assert_eq!(d["trace_id"], "1-4bf92f35-77b34da6a3ce929d0e0e4736");
    assert_eq!(
        d["aws"],
        json!({"operation": "GetItem", "request_id": "R1", "table_name": "orders", "account_id": "123456789012"})
    );

    let db = span(
        3,
        Some(1),
        SpanKind::Client,
        vec![
            KeyValue::new("db.system", "postgresql"),
            KeyValue::new("db.name", "shop"),
            KeyValue::new("server.address", "db.internal"),
            KeyValue::new("db.statement", "SELECT * FROM orders WHERE id = ?"),
        ],
    );
    let d = doc(&db, &Indexing::None);
    assert_eq!(
        (d["namespace"].clone(), d["name"].clone()),
        (json!("remote"), json!("shop@db.internal"))
    );
    assert_eq!(
        d["sql"],
        json!({"database_type": "postgresql", "url": "db.internal", "sanitized_query": "SELECT * FROM orders WHERE id = ?"})
    );

    let throttled = span(
        4,
        Some(1),
        SpanKind::Client,
        vec![
            KeyValue::new("http.url", "http://payments:8080/charge?x=1"),
            KeyValue::new("http.status_code", 429i64),
        ],
    );
    let d = doc(&throttled, &Indexing::None);
    assert_eq!(d["name"], "payments");
    assert_eq!(
        (d["throttle"].clone(), d["error"].clone()),
        (json!(true), json!(true))
    );

    let mut internal = span(5, Some(1), SpanKind::Internal, vec![]);
    internal.status = Some((StatusCode::Error, "boom".into()));
    internal.name = "render <template>".into();
    internal.end_time_unix_nano = 0;
    let d = doc(&internal, &Indexing::None);
    assert_eq!(d["name"], "render _template_");
    assert!(d.get("namespace").is_none());
    assert_eq!(
        (d["fault"].clone(), d["in_progress"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(segment_name(&"é".repeat(300)).chars().count(), 200);
}

#[test]
fn requests_hold_exactly_50_documents_and_the_51st_opens_the_next() {
    let spans: Vec<Span> = (0..101)
        .map(|i| span(i as u8, None, SpanKind::Server, vec![]))
        .collect();
    let mut stats = BuildStats::default();
    let requests = build(&spans[..50], &Indexing::None, &mut stats);
    assert_eq!(
        requests.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![MAX_DOCUMENTS_PER_REQUEST]
    );
    let requests = build(&spans, &Indexing::None, &mut stats);
    assert_eq!(
        requests.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![50, 50, 1]
    );
    assert_eq!(requests[2][0].id, format!("{:016x}", 100));
}

#[test]
fn documents_over_64_kb_are_trimmed_and_unchanged_raw_segments_pass_or_are_dropped() {
    // Exactly at the limit: kept whole.
    let base = span(
        1,
        None,
        SpanKind::Server,
        vec![KeyValue::new("payload", "")],
    );
    let empty_len = doc(&base, &Indexing::None).to_string().len();
    let fill = MAX_DOCUMENT_BYTES - empty_len;
    let at_limit = span(
        1,
        None,
        SpanKind::Server,
        vec![KeyValue::new("payload", "x".repeat(fill))],
    );
    let mut stats = BuildStats::default();
    let requests = build(&[at_limit], &Indexing::None, &mut stats);
    assert_eq!(requests[0][0].json.len(), MAX_DOCUMENT_BYTES);
    assert_eq!(stats.trimmed, 0);

    // One byte over: the metadata goes, the rest stays.
    let over = span(
        1,
        None,
        SpanKind::Server,
        vec![
            KeyValue::new("payload", "x".repeat(fill + 1)),
            KeyValue::new("http.request.method", "GET"),
        ],
    );
    let requests = build(&[over], &Indexing::None, &mut stats);
    let json: Json = serde_json::from_str(&requests[0][0].json).unwrap_or_default();
    assert!(requests[0][0].json.len() <= MAX_DOCUMENT_BYTES);
    assert!(json.get("metadata").is_none());
    assert_eq!(json["http"]["request"]["method"], "GET");
    assert_eq!(stats.trimmed, 1);

    // Segments received from the X-Ray daemon protocol go out byte for byte, or not at all.
    let raw = r#"{"name":"legacy","id":"70de5b6f19ff9a0a","trace_id":"1-581cf771-a006649127e371903a2de979","start_time":1.478293361271E9,"end_time":1.478293361449E9}"#;
    let passthrough = span(
        7,
        None,
        SpanKind::Server,
        vec![KeyValue::new(RAW_SEGMENT_ATTRIBUTE, raw)],
    );
    let huge = span(
        8,
        None,
        SpanKind::Server,
        vec![KeyValue::new(
            RAW_SEGMENT_ATTRIBUTE,
            "x".repeat(MAX_DOCUMENT_BYTES + 1),
        )],
    );
    let mut stats = BuildStats::default();
    let requests = build(&[passthrough, huge], &Indexing::None, &mut stats);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].len(), 1);
    assert_eq!(requests[0][0].json, raw);
    assert_eq!(stats.too_large, 1);
}

#[test]
fn a_datagram_with_nested_subsegments_goes_out_as_its_one_raw_document() {
    // The xray_udp source makes the segment and a child span per nested subsegment; only the
    // segment's document is sent, and it still holds the subsegments.
    let raw = r#"{"name":"checkout","id":"70de5b6f19ff9a0a","trace_id":"1-581cf771-a006649127e371903a2de979","start_time":1478293361.271,"end_time":1478293361.449,"subsegments":[{"name":"DynamoDB","id":"1a2b3c4d5e6f7081","namespace":"aws","start_time":1478293361.3,"end_time":1478293361.35,"subsegments":[{"name":"retry","id":"1a2b3c4d5e6f7082","start_time":1478293361.3,"end_time":1478293361.31}]}]}"#;
    let datagram = format!("{{\"format\":\"json\",\"version\":1}}\n{raw}");
    let spans = sextant_pipeline::sources::xray_udp::parse::datagram(
        datagram.as_bytes(),
        &Arc::new(Origin::default()),
    )
    .unwrap();
    assert_eq!(spans.len(), 3);
    let mut stats = BuildStats::default();
    let requests = build(&spans, &Indexing::All, &mut stats);
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].len(),
        1,
        "the nested subsegments are not sent again"
    );
    assert_eq!(requests[0][0].json, raw);
    assert_eq!(requests[0][0].id, "70de5b6f19ff9a0a");
}
