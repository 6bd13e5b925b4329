//! The flat reader against simd-json's tape: for every message the flat reader accepts, the
//! same attributes in the same order; it accepts nothing simd-json refuses.

use proptest::prelude::*;

use super::tape_fields_into;
use crate::flow::event::{KeyValue, RecordAttributes};

/// What a reader made of a message: how many fields, and the attributes.
type Read = Option<(usize, Vec<KeyValue>)>;

/// (flat reader's answer, tape's answer) for `message`, each from fresh state.
fn both(message: &[u8]) -> (Read, Read) {
    // The flat reader as records use it: kept as text, read into values on first look.
    let by_flat = std::str::from_utf8(message)
        .ok()
        .and_then(|text| RecordAttributes::flat_json(&[], text, |_, _| {}))
        .map(|attributes| (attributes.len(), attributes.to_vec()));
    let mut tape_out = Vec::new();
    let by_tape = tape_fields_into(
        message,
        &mut tape_out,
        &mut simd_json::Buffers::default(),
        &mut Vec::new(),
        &mut Vec::new(),
    )
    .map(|n| (n, tape_out));
    (by_flat, by_tape)
}

fn agree(message: &[u8]) -> Result<(), TestCaseError> {
    let (by_flat, by_tape) = both(message);
    if by_flat.is_some() {
        prop_assert_eq!(by_flat, by_tape, "{}", String::from_utf8_lossy(message));
    }
    Ok(())
}

fn whitespace() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", "", "", " ", "\t", "\n ", "\r\n"])
}

/// Strings as loggers write them, and what the flat reader must decline or get right.
fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_.]{0,12}",
        "[ -~]{0,30}",
        "\\PC{0,12}",
        Just("\\\"quoted\\\"".to_owned()),
        Just("tab\there".to_owned()),
        Just("\\u00e9t\\u00e9".to_owned()),
        "[a-z]{1,4}\\\\[nt\"/][a-z]{0,4}",
    ]
    .prop_map(|s| s.replace('"', "\\\""))
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
        any::<f64>().prop_map(|f| format!("{f:e}")),
        "-?(0|[1-9][0-9]{0,24})(\\.[0-9]{1,22})?([eE][+-]?[0-9]{1,3})?",
        "-?0[0-9]{1,3}",
        Just("-0".to_owned()),
        Just("1.".to_owned()),
        Just(".5".to_owned()),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => string().prop_map(|s| format!("\"{s}\"")),
        3 => number(),
        1 => prop::sample::select(vec!["true", "false", "null", "nul", "True"]).prop_map(str::to_owned),
        1 => Just("{\"nested\":1}".to_owned()),
        1 => Just("[1,\"two\"]".to_owned()),
    ]
}

fn object() -> impl Strategy<Value = String> {
    (
        prop::collection::vec((string(), whitespace(), value(), whitespace()), 0..14),
        whitespace(),
        prop::sample::select(vec!["", "", "", " ", "\n", "x", ",", "}"]),
    )
        .prop_map(|(fields, ws, tail)| {
            let body: Vec<String> = fields
                .into_iter()
                .map(|(k, w1, v, w2)| format!("{w1}\"{k}\"{w2}:{w1}{v}{w2}"))
                .collect();
            format!("{ws}{{{}}}{ws}{tail}", body.join(","))
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_flat_reader_gives_what_the_tape_gives_for_what_it_accepts(message in object()) {
        agree(message.as_bytes())?;
    }

    #[test]
    fn a_broken_message_is_refused_by_both_or_read_alike(
        message in object(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<bool>(),
    ) {
        let mut bytes = message.into_bytes();
        let i = at.index(bytes.len().max(1)).min(bytes.len());
        if cut {
            bytes.truncate(i);
        } else {
            bytes.insert(i, byte);
        }
        agree(&bytes)?;
    }
}

#[test]
fn the_flat_reader_takes_a_structured_loggers_line_and_declines_the_rest() {
    let line = br#"{"level":"info","ts":1714564800.123,"msg":"served","status":200,"ok":true,"user":null}"#;
    let (by_flat, by_tape) = both(line);
    assert_eq!(by_flat.as_ref().map(|(n, _)| *n), Some(6));
    assert_eq!(by_flat, by_tape);
    for declined in [
        &br#"{"a":{"b":1}}"#[..],
        br#"{"a":[1]}"#,
        br#"{"a":"say \"hi\""}"#,
        br#"{"a":12345678901234567890}"#,
        br#"{"a":1} x"#,
        br#"[1]"#,
    ] {
        let (by_flat, _) = both(declined);
        assert_eq!(by_flat, None, "{}", String::from_utf8_lossy(declined));
    }
    // Declined, but read whole by the tape: a nested value and an escape.
    assert_eq!(
        both(br#"{"a":{"b":1},"c":"say \"hi\""}"#).1.map(|(n, _)| n),
        Some(2)
    );
}

#[test]
fn a_string_ends_at_its_quote_and_is_declined_at_an_escape_or_control_byte_wherever_they_fall() {
    for len in 0..40 {
        let text: String = (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        let plain = format!(r#"{{"k":"{text}","n":1}}"#);
        let (by_flat, by_tape) = both(plain.as_bytes());
        assert_eq!(by_flat, by_tape, "{plain}");
        assert_eq!(by_flat.map(|(n, _)| n), Some(2), "{plain}");
        for at in 0..len {
            for special in ["\\n", "\t", "\u{1}", "é"] {
                let mut odd = text.clone();
                odd.insert_str(at, special);
                let message = format!(r#"{{"k":"{odd}","n":1}}"#);
                let (by_flat, by_tape) = both(message.as_bytes());
                if special == "é" {
                    assert_eq!(by_flat, by_tape, "{message}");
                    assert!(by_flat.is_some(), "{message}");
                } else {
                    assert_eq!(by_flat, None, "{message:?}");
                }
            }
        }
    }
}
