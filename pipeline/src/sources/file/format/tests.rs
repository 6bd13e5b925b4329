//! The container log formats, line by line: content, times, streams, partial-line merging, JSON
//! messages, and malformed lines passed through and counted.

use std::sync::Arc;

use super::super::lines::Line;
use super::*;
use crate::flow::event::{find_attribute, Origin};

fn cx<'a>(
    origin: &'a Arc<Origin>,
    metrics: &'a ComponentMetrics,
    limiter: &'a LogLimiter,
    max: usize,
) -> DecodeContext<'a> {
    DecodeContext {
        origin,
        now: 42,
        metrics,
        invalid_utf8: InvalidUtf8::Lossy,
        max_record_bytes: max,
        limiter,
    }
}

fn line(s: &str) -> Line<'_> {
    Line {
        bytes: s.as_bytes(),
        split: false,
        consumed: s.len() + 1,
    }
}

/// Runs lines through a decoder: (events, whether it holds a record after each line).
fn run(
    d: &mut dyn LineDecoder,
    lines: &[&str],
    max: usize,
    name: &str,
) -> (Vec<LogEvent>, Vec<bool>) {
    let origin = Arc::new(Origin::default());
    let metrics = ComponentMetrics::new("test", name, "test");
    let limiter = LogLimiter::default();
    let cx = cx(&origin, &metrics, &limiter, max);
    let mut out = Vec::new();
    let held = lines
        .iter()
        .map(|l| d.decode(line(l), &cx, &mut out) != Held::No)
        .collect();
    (out, held)
}

fn body(e: &LogEvent) -> String {
    e.body.to_text().into_owned()
}

fn attr(e: &LogEvent, k: &str) -> Option<String> {
    find_attribute(&e.attributes, k).map(|v| v.to_text().into_owned())
}

#[test]
fn cri_lines_parse_with_time_and_stream() {
    let c = cri::parse(b"2016-10-06T00:17:09.669794202Z stderr F hello world").unwrap();
    assert_eq!(c.time_unix_nano, 1_475_713_029_669_794_202);
    assert_eq!(c.stream, b"stderr");
    assert!(!c.partial);
    assert_eq!(c.message, b"hello world");
    assert_eq!(
        cri::parse(b"2016-10-06T00:17:09Z stdout F")
            .unwrap()
            .message,
        b""
    );
    assert!(cri::parse(b"2016-10-06T00:17:09Z stdin F x").is_none());
    assert!(cri::parse(b"hello there F x").is_none());
}

#[test]
fn cri_partial_lines_merge_into_one_record_with_the_first_time() {
    let mut d = cri::CriDecoder::new(JsonMessages::default());
    let (events, held) = run(
        &mut d,
        &[
            "2024-01-01T00:00:01Z stdout P part one, ",
            "2024-01-01T00:00:02Z stdout P part two, ",
            "2024-01-01T00:00:03Z stdout F the end",
            "2024-01-01T00:00:04Z stderr F next",
        ],
        1024,
        "cri_merge",
    );
    assert_eq!(held, vec![true, true, false, false]);
    assert_eq!(events.len(), 2);
    assert_eq!(body(&events[0]), "part one, part two, the end");
    assert_eq!(events[0].time_unix_nano, 1_704_067_201_000_000_000);
    assert_eq!(attr(&events[0], "log.iostream").as_deref(), Some("stdout"));
    assert_eq!(attr(&events[1], "log.iostream").as_deref(), Some("stderr"));
}

#[test]
fn cri_merging_is_bounded_and_parts_are_marked() {
    let mut d = cri::CriDecoder::new(JsonMessages::default());
    let (events, _) = run(
        &mut d,
        &[
            "2024-01-01T00:00:01Z stdout P aaaaaa",
            "2024-01-01T00:00:02Z stdout P bbbbbb",
            "2024-01-01T00:00:03Z stdout F cc",
        ],
        5,
        "cri_bound",
    );
    let parts: Vec<String> = events.iter().map(body).collect();
    assert_eq!(parts.concat(), "aaaaaabbbbbbcc", "nothing lost");
    assert!(parts.iter().all(|p| p.len() <= 5));
    assert!(events[..events.len() - 1]
        .iter()
        .all(|e| attr(e, "sextant.split").as_deref() == Some("true")));
    assert_eq!(attr(events.last().unwrap(), "sextant.split"), None);
}

#[test]
fn a_line_that_is_not_cri_passes_through_raw_and_is_counted() {
    let mut d = cri::CriDecoder::new(JsonMessages::default());
    let (events, _) = run(
        &mut d,
        &["garbage line", "2024-01-01T00:00:01Z stdout F fine"],
        1024,
        "cri_malformed",
    );
    assert_eq!(body(&events[0]), "garbage line");
    assert_eq!(
        attr(&events[0], "parse_error").as_deref(),
        Some("not a CRI log line")
    );
    assert_eq!(events[0].time_unix_nano, 42, "observed time stands in");
    assert_eq!(body(&events[1]), "fine");
    let text = crate::telemetry::render();
    assert!(text.contains("sextant_events_discarded_total{component=\"cri_malformed\",kind=\"test\",reason=\"not_cri\",role=\"test\"} 1"));
}

/// CRI lines through a decoder that parses JSON messages (the short message as the body).
fn cri_json_events(lines: &[&str], name: &str) -> Vec<LogEvent> {
    let mut d = cri::CriDecoder::new(JsonMessages {
        parse: true,
        keep_original: false,
    });
    run(&mut d, lines, 1024, name).0
}

#[test]
fn json_messages_become_attributes() {
    let events = cri_json_events(
        &[r#"2024-01-01T00:00:01Z stdout F {"level":"error","msg":"boom","n":3,"ctx":{"a":true}}"#],
        "cri_json",
    );
    let e = &events[0];
    assert_eq!(body(e), "boom");
    assert_eq!(attr(e, "level").as_deref(), Some("error"));
    assert_eq!(
        find_attribute(&e.attributes, "n"),
        Some(&crate::flow::event::Value::Int(3))
    );
    assert!(matches!(
        find_attribute(&e.attributes, "ctx"),
        Some(crate::flow::event::Value::Map(_))
    ));
    let mut keep = cri::CriDecoder::new(JsonMessages {
        parse: true,
        keep_original: true,
    });
    let (events, _) = run(
        &mut keep,
        &[r#"2024-01-01T00:00:01Z stdout F {"msg":"boom"}"#],
        1024,
        "cri_json_keep",
    );
    assert_eq!(body(&events[0]), r#"{"msg":"boom"}"#);
    assert_eq!(attr(&events[0], "msg").as_deref(), Some("boom"));
}

#[test]
fn docker_records_parse_and_split_records_merge() {
    let mut d = docker::DockerDecoder::new(JsonMessages::default());
    let (events, held) = run(
        &mut d,
        &[
            r#"{"log":"hello\n","stream":"stdout","time":"2024-01-01T00:00:01.5Z"}"#,
            r#"{"log":"first half ","stream":"stderr","time":"2024-01-01T00:00:02Z"}"#,
            r#"{"log":"second half\n","stream":"stderr","time":"2024-01-01T00:00:03Z"}"#,
            r#"not json"#,
        ],
        1024,
        "docker",
    );
    assert_eq!(held, vec![false, true, false, false]);
    assert_eq!(body(&events[0]), "hello");
    assert_eq!(events[0].time_unix_nano, 1_704_067_201_500_000_000);
    assert_eq!(body(&events[1]), "first half second half");
    assert_eq!(attr(&events[1], "log.iostream").as_deref(), Some("stderr"));
    assert_eq!(
        attr(&events[2], "parse_error").as_deref(),
        Some("not a docker json-file record")
    );
}

fn java_rules() -> Arc<multiline::MultilineRules> {
    Arc::new(
        multiline::MultilineConfig {
            preset: Some(multiline::Preset::Java),
            start_pattern: None,
            continuation_pattern: None,
            timeout: crate::config::units::DurationValue(std::time::Duration::from_millis(0)),
        }
        .compile()
        .unwrap(),
    )
}

#[test]
fn a_java_stack_trace_becomes_one_event_and_holding_points_at_its_first_line() {
    let mut d = multiline::wrap(
        Box::new(PlainDecoder {
            json: JsonMessages::default(),
        }),
        Some(&java_rules()),
    );
    let origin = Arc::new(Origin::default());
    let metrics = ComponentMetrics::new("test", "multiline_java", "test");
    let limiter = LogLimiter::default();
    let cx = cx(&origin, &metrics, &limiter, 1 << 20);
    let mut out = Vec::new();
    let lines = [
        "INFO started",
        "ERROR request failed",
        "java.lang.IllegalStateException: boom",
        "\tat com.shop.Api.handle(Api.java:42)",
        "\tat com.shop.Server.run(Server.java:7)",
        "Caused by: java.io.IOException: closed",
        "\t... 3 more",
        "INFO next request",
    ];
    let held: Vec<Held> = lines
        .iter()
        .map(|l| d.decode(line(l), &cx, &mut out))
        .collect();
    use Held::*;
    assert_eq!(
        held,
        vec![
            FromThisLine,
            FromThisLine,
            FromThisLine,
            Continues,
            Continues,
            Continues,
            Continues,
            FromThisLine
        ]
    );
    let bodies: Vec<String> = out.iter().map(body).collect();
    assert_eq!(
        bodies,
        vec![
            "INFO started".to_string(),
            "ERROR request failed".to_string(),
            "java.lang.IllegalStateException: boom\n\tat com.shop.Api.handle(Api.java:42)\n\tat com.shop.Server.run(Server.java:7)\nCaused by: java.io.IOException: closed\n\t... 3 more".to_string(),
        ]
    );
    // The last record is emitted when its timeout passes (0 here), so a quiet file is not held.
    assert!(!d.flush_expired(&cx, &mut out));
    assert_eq!(body(out.last().unwrap()), "INFO next request");
}

#[test]
fn python_and_go_presets_and_start_patterns_join_their_records() {
    let origin = Arc::new(Origin::default());
    let metrics = ComponentMetrics::new("test", "multiline_presets", "test");
    let limiter = LogLimiter::default();
    let cx = cx(&origin, &metrics, &limiter, 1 << 20);
    let rules = |preset, start: Option<&str>| {
        Arc::new(
            multiline::MultilineConfig {
                preset,
                start_pattern: start.map(str::to_owned),
                continuation_pattern: None,
                timeout: crate::config::units::DurationValue(std::time::Duration::from_secs(60)),
            }
            .compile()
            .unwrap(),
        )
    };
    let cases: Vec<(Arc<multiline::MultilineRules>, Vec<&str>, usize)> = vec![
        (
            rules(Some(multiline::Preset::Python), None),
            vec![
                "ERROR failed",
                "Traceback (most recent call last):",
                "  File \"app.py\", line 3, in <module>",
                "    main()",
                "ValueError: bad",
                "INFO ok",
            ],
            2,
        ),
        (
            rules(Some(multiline::Preset::Go), None),
            vec![
                "panic: runtime error",
                "",
                "goroutine 1 [running]:",
                "main.main()",
                "\t/app/main.go:10 +0x1d",
                "exit status 2",
                "next",
            ],
            2,
        ),
        (
            rules(None, Some(r"^\d{4}-")),
            vec!["2024-01-01 a", "  more", "still more", "2024-01-02 b"],
            2,
        ),
    ];
    for (rules, lines, records) in cases {
        let mut d = multiline::wrap(
            Box::new(PlainDecoder {
                json: JsonMessages::default(),
            }),
            Some(&rules),
        );
        let mut out = Vec::new();
        for l in &lines {
            d.decode(line(l), &cx, &mut out);
        }
        // The last record is still held (its timeout is long): emitted records + 1 held.
        assert_eq!(
            out.len() + 1,
            records,
            "{lines:?} -> {:?}",
            out.iter().map(body).collect::<Vec<_>>()
        );
        let joined: usize = out.iter().map(|e| body(e).lines().count()).sum();
        assert_eq!(
            joined,
            lines.len() - 1,
            "every line but the held last one is in an emitted record"
        );
    }
}

#[test]
fn bad_multiline_settings_are_refused() {
    let bad = multiline::MultilineConfig {
        preset: None,
        start_pattern: Some("(unclosed".into()),
        continuation_pattern: None,
        timeout: crate::config::units::DurationValue(std::time::Duration::from_secs(1)),
    };
    assert!(bad.compile().unwrap_err().contains("bad pattern"));
    let empty = multiline::MultilineConfig {
        start_pattern: None,
        ..bad
    };
    assert!(empty.compile().is_err());
}

#[test]
fn a_flat_json_message_is_kept_as_text_and_reads_as_if_parsed() {
    let events = cri_json_events(
        &[
            r#"2024-01-01T00:00:01Z stderr F {"level":"warn","message":"first","msg":"second","n":-7,"ok":false,"x":null,"d":2.5}"#,
            r#"2024-01-01T00:00:02Z stdout F {"level":"info","path":"/a"}"#,
        ],
        "cri_flat_json",
    );
    assert_eq!(events.len(), 2);
    let e = &events[0];
    // Kept as text: nothing was read into values by the decoder.
    let (leading, text) = e.attributes.unparsed_json().expect("kept as text");
    assert_eq!(leading, [KeyValue::new("log.iostream", "stderr")]);
    assert!(text.starts_with(r#"{"level":"warn""#));
    // The first `message`/`msg` field is the body, the others stay attributes.
    assert_eq!(body(e), "first");
    use crate::flow::event::ByteSize;
    let size = e.byte_size();
    use crate::flow::event::Value as V;
    assert_eq!(
        *e.attributes,
        vec![
            KeyValue::new("log.iostream", "stderr"),
            KeyValue::new("level", "warn"),
            KeyValue::new("message", "first"),
            KeyValue::new("msg", "second"),
            KeyValue::new("n", -7i64),
            KeyValue::new("ok", V::Bool(false)),
            KeyValue::new("x", V::Empty),
            KeyValue::new("d", V::Double(2.5)),
        ]
    );
    assert!(e.attributes.unparsed_json().is_none(), "read once, kept");
    assert_eq!(e.byte_size(), size, "reading does not change the charge");
    // No short message: the body is the whole message.
    assert_eq!(body(&events[1]), r#"{"level":"info","path":"/a"}"#);
    assert_eq!(attr(&events[1], "path").as_deref(), Some("/a"));
    assert_eq!(attr(&events[1], "log.iostream").as_deref(), Some("stdout"));
}
