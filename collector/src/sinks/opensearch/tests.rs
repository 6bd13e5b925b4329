//! Bulk bodies: content ids that survive a re-read, request cuts, index names; reading an
//! answer's items.

use std::sync::Arc;

use sextant_pipeline::flow::event::{Events, KeyValue, LogEvent, Origin, Resource, Value};

use super::document::Layout;
use super::request_builder::{build, BuildStats, IndexName, Settings};
use super::service::parse_answer;

fn event(body: &str, observed: u64) -> LogEvent {
    LogEvent {
        origin: Arc::new(Origin {
            resource: Resource {
                attributes: vec![KeyValue::new("k8s.namespace.name", "Team A/B")],
                ..Default::default()
            },
            ..Default::default()
        }),
        time_unix_nano: 1_796_259_723_000_000_004,
        observed_time_unix_nano: observed,
        body: Value::Str(body.into()),
        ..Default::default()
    }
}

fn settings(max: usize) -> Settings {
    Settings {
        index: IndexName::parse("_Logs-{k8s.namespace.name}-%Y.%m.%d").unwrap(),
        missing: "unknown".into(),
        layout: Layout::Otel,
        max_request_bytes: max,
    }
}

fn lines(body: &[u8]) -> Vec<serde_json::Value> {
    body.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

#[test]
fn a_record_read_again_later_gets_the_same_id_and_a_valid_dated_index() {
    let mut stats = BuildStats::default();
    let first = build(
        &Events::Logs(vec![event("a", 1), event("b", 1)]),
        &settings(1 << 20),
        &mut stats,
    );
    let again = build(
        &Events::Logs(vec![event("a", 999)]),
        &settings(1 << 20),
        &mut stats,
    );
    let first = lines(&first[0].ndjson);
    let again = lines(&again[0].ndjson);
    assert_eq!(first.len(), 4, "an action and a document each");
    let id = |v: &serde_json::Value| v["create"]["_id"].as_str().unwrap().to_owned();
    assert_eq!(
        id(&first[0]),
        id(&again[0]),
        "the observed time is not part of the id"
    );
    assert_ne!(id(&first[0]), id(&first[2]));
    assert_eq!(id(&first[0]).len(), 32);
    assert_eq!(first[0]["create"]["_index"], "logs-team_a_b-2026.12.03");
    assert_eq!(first[1]["body"], "a");
}

#[test]
fn requests_are_cut_at_the_byte_limit_and_an_oversized_document_is_left_out() {
    let events: Vec<LogEvent> = (0..10).map(|i| event(&format!("line {i}"), 1)).collect();
    let one = build(
        &Events::Logs(events[..1].to_vec()),
        &settings(1 << 20),
        &mut BuildStats::default(),
    );
    let item = one[0].ndjson.len();
    let mut stats = BuildStats::default();
    let mut with_big = events.clone();
    with_big.insert(3, event(&"x".repeat(10 * item), 1));
    let bodies = build(
        &Events::Logs(with_big),
        &settings(3 * item + 10),
        &mut stats,
    );
    assert_eq!(stats.too_large, 1);
    let counts: Vec<usize> = bodies.iter().map(|b| b.ends.len()).collect();
    assert_eq!(counts, vec![3, 3, 3, 1]);
    for b in &bodies {
        assert!(b.ndjson.len() <= 3 * item + 10);
        assert_eq!(*b.ends.last().unwrap(), b.ndjson.len());
    }
}

#[test]
fn each_item_of_an_answer_is_read_and_an_answer_that_does_not_add_up_is_an_error() {
    let answer = br#"{"took":3,"errors":true,"items":[
        {"create":{"_index":"a","status":201}},
        {"create":{"_index":"a","status":409,"error":{"type":"version_conflict_engine_exception","reason":"exists"}}},
        {"create":{"_index":"a","status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}},
        {"create":{"_index":"a","status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [n]"}}}
    ]}"#;
    let items = parse_answer(answer, 4).unwrap();
    let statuses: Vec<u16> = items.iter().map(|i| i.status).collect();
    assert_eq!(statuses, vec![201, 409, 429, 400]);
    assert_eq!(items[3].error_type, "mapper_parsing_exception");
    assert_eq!(items[3].reason, "failed to parse field [n]");
    assert!(parse_answer(answer, 5).is_err());
    assert!(parse_answer(b"<html>proxy error</html>", 1).is_err());
}
