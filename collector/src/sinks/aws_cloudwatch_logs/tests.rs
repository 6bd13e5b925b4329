//! The requests this sink builds, at each of CloudWatch Logs' limits and one past it (the test
//! server does not enforce them, so these are the tests that do).

use std::sync::Arc;

use sextant_pipeline::flow::event::{KeyValue, LogEvent, Origin, Resource};

use super::encoding::{Codec, EncodingSettings};
use super::request_builder::*;
use super::template::*;

/// The body alone: what the limit tests count.
fn text() -> EncodingSettings {
    EncodingSettings {
        codec: Codec::Text,
        ..Default::default()
    }
}

fn event(body: &str, ts_ms: u64) -> LogEvent {
    LogEvent {
        time_unix_nano: ts_ms * 1_000_000,
        body: body.into(),
        ..Default::default()
    }
}

fn build(events: Vec<LogEvent>) -> (Vec<PutRequest>, BuildStats) {
    let g = Template::parse("/test/group").unwrap();
    let s = Template::parse("stream").unwrap();
    Builder {
        group: &g,
        stream: &s,
        missing: "unknown",
        encoding: &text(),
    }
    .build(events)
}

#[test]
fn exactly_10000_events_fit_one_request_and_10001_need_two() {
    let (r, _) = build((0..10_000).map(|i| event("x", i)).collect());
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].events.len(), 10_000);
    let (r, _) = build((0..10_001).map(|i| event("x", i)).collect());
    assert_eq!(
        r.iter().map(|r| r.events.len()).collect::<Vec<_>>(),
        vec![10_000, 1]
    );
}

#[test]
fn exactly_1048576_bytes_fit_one_request_and_one_more_byte_does_not() {
    // 4 events of m bytes: 4 * (m + 26) = 1,048,576 -> m = 262,118.
    let m = MAX_REQUEST_BYTES / 4 - EVENT_OVERHEAD_BYTES;
    let msg = "a".repeat(m);
    let (r, _) = build((0..4).map(|i| event(&msg, i)).collect());
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].bytes, MAX_REQUEST_BYTES);
    let mut events: Vec<_> = (0..3).map(|i| event(&msg, i)).collect();
    events.push(event(&"a".repeat(m + 1), 3));
    let (r, _) = build(events);
    assert_eq!(r.len(), 2);
    assert!(r.iter().all(|r| r.bytes <= MAX_REQUEST_BYTES));
}

#[test]
fn utf8_bytes_not_chars_are_counted() {
    let (r, _) = build(vec![event("é€", 1)]);
    assert_eq!(r[0].bytes, "é€".len() + 26);
    assert_eq!(r[0].bytes, 5 + 26);
}

#[test]
fn an_event_over_the_limit_is_truncated_and_marked_on_a_char_boundary() {
    let big = "€".repeat(400_000); // 1.2 MB
    let (r, stats) = build(vec![event(&big, 1)]);
    assert_eq!(stats.truncated, 1);
    let m = &r[0].events[0].message;
    assert!(m.len() <= MAX_MESSAGE_BYTES);
    assert!(m.ends_with(TRUNCATION_MARKER));
    assert!(r[0].bytes <= MAX_REQUEST_BYTES);
    // Exactly at the limit it is left alone.
    let (_, stats) = build(vec![event(&"b".repeat(MAX_MESSAGE_BYTES), 1)]);
    assert_eq!(stats.truncated, 0);
}

#[test]
fn events_are_sorted_and_a_request_spans_at_most_24_hours() {
    let day = 24 * 3600 * 1000;
    let (r, _) = build(vec![event("c", day + 1), event("a", 0), event("b", day)]);
    assert_eq!(r.len(), 2, "0..=day fits, day+1 does not");
    assert_eq!(
        r[0].events
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>(),
        vec!["a", "b"]
    );
    assert_eq!(r[1].events[0].message, "c");
}

#[test]
fn names_are_templated_from_attributes_then_resource() {
    let origin = Arc::new(Origin {
        resource: Resource {
            attributes: vec![
                KeyValue::new("k8s.namespace.name", "payments"),
                KeyValue::new("k8s.pod.name", "api-1"),
            ],
            ..Default::default()
        },
        ..Default::default()
    });
    let e = LogEvent {
        origin,
        attributes: vec![KeyValue::new("k8s.container.name", "app")].into(),
        body: "hi".into(),
        ..Default::default()
    };
    let g = Template::parse("/eks/{k8s.cluster.name}/{k8s.namespace.name}").unwrap();
    let s = Template::parse("{k8s.pod.name}/{k8s.container.name}").unwrap();
    let (r, _) = Builder {
        group: &g,
        stream: &s,
        missing: "unknown",
        encoding: &text(),
    }
    .build(vec![e]);
    assert_eq!(r[0].key.group, "/eks/unknown/payments");
    assert_eq!(r[0].key.stream, "api-1/app");
}

#[test]
fn names_aws_would_refuse_are_fixed_by_the_documented_rules() {
    assert_eq!(
        sanitize_group("/a b:c".into(), "x"),
        ("/a_b_c".into(), true)
    );
    assert_eq!(sanitize_group("".into(), "x"), ("x".into(), true));
    assert_eq!(
        sanitize_stream("pod:1*".into(), "x"),
        ("pod_1_".into(), true)
    );
    assert_eq!(sanitize_group("a".repeat(600), "x").0.len(), 512);
    assert!(Template::parse("/eks/{unclosed").is_err());
}

#[test]
fn streams_are_separate_requests() {
    let g = Template::parse("/g").unwrap();
    let s = Template::parse("{log.file.name}").unwrap();
    let mk = |name: &str, ts: u64| LogEvent {
        attributes: vec![KeyValue::new("log.file.name", name)].into(),
        time_unix_nano: ts * 1_000_000,
        body: "x".into(),
        ..Default::default()
    };
    let (r, _) = Builder {
        group: &g,
        stream: &s,
        missing: "u",
        encoding: &text(),
    }
    .build(vec![mk("a", 1), mk("b", 2), mk("a", 3)]);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].events.len(), 2);
}

#[test]
fn json_encoding_sends_the_body_attributes_and_chosen_resource_attributes_whole() {
    let origin = Arc::new(Origin {
        resource: Resource {
            attributes: vec![
                KeyValue::new("k8s.pod.name", "api-1"),
                KeyValue::new("k8s.node.name", "ip-10-0-0-1"),
            ],
            ..Default::default()
        },
        ..Default::default()
    });
    let e = LogEvent {
        origin,
        time_unix_nano: 1_000_000,
        severity_text: "WARN".into(),
        body: "caf\u{e9} \"quoted\" back\\slash \u{1f680}".into(),
        attributes: vec![
            KeyValue::new("level", "warn"),
            KeyValue::new("user_id", 42i64),
            KeyValue::new("path", "/api/orders"),
            KeyValue::new("log.iostream", "stdout"),
        ]
        .into(),
        trace_id: Some([0xab; 16]),
        ..Default::default()
    };
    let encoding = EncodingSettings {
        resource_attributes: vec!["k8s.pod.name".into(), "absent".into()],
        ..Default::default()
    };
    let message = encoding.encode(&e);
    let back: serde_json::Value = serde_json::from_str(&message).unwrap();
    assert_eq!(
        back,
        serde_json::json!({
            "message": "caf\u{e9} \"quoted\" back\\slash \u{1f680}",
            "level": "warn",
            "user_id": 42,
            "path": "/api/orders",
            "log.iostream": "stdout",
            "k8s.pod.name": "api-1",
            "severity": "WARN",
            "trace_id": "abababababababababababababababab",
        })
    );
    // text: the body, or one field.
    assert_eq!(
        text().encode(&e),
        "caf\u{e9} \"quoted\" back\\slash \u{1f680}"
    );
    let one = EncodingSettings {
        message_key: Some("path".into()),
        ..text()
    };
    assert_eq!(one.encode(&e), "/api/orders");
    // Settings of the other codec are refused at start-up.
    assert!(EncodingSettings {
        message_key: Some("path".into()),
        ..Default::default()
    }
    .validate("cwl")
    .is_err());
}

#[test]
fn refused_events_are_each_counted_under_one_reason() {
    use sextant_pipeline::sink::sender::Accepted;
    let rejected = super::service::Rejected {
        events: 10,
        too_old: 4,
        expired: 2,
        too_new: 3,
    };
    let got: Vec<(&str, std::ops::Range<usize>)> = rejected
        .refusals()
        .into_iter()
        .map(|r| (r.reason, r.events))
        .collect();
    assert_eq!(
        got,
        [("expired", 0..2), ("too_old", 2..4), ("too_new", 7..10)]
    );
    // Indices that overlap (more refused than sent) never count an event twice.
    let all = super::service::Rejected {
        events: 5,
        too_old: 4,
        expired: 0,
        too_new: 4,
    };
    let n: usize = all.refusals().iter().map(|r| r.events.len()).sum();
    assert_eq!(n, 5);
}
