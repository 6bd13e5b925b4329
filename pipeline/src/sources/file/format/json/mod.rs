//! Messages that are JSON objects: parsed into attributes, so that
//! `{"level":"error","msg":"boom"}` can be filtered and templated by `level`.
//!
//! The common shape (one flat object of scalars, strings without escapes) is checked in one
//! pass and kept as text in the record's attributes ([`RecordAttributes::flat_json`]), which
//! read it into values only when something asks; any other object is parsed with simd-json into
//! a tape and converted from there. Both give the same attributes for what the flat reader
//! accepts. For the tape, the keys of the previous object are kept by position and reused when
//! they repeat, as a service's lines mostly do.

#[cfg(test)]
mod tests;

use simd_json::tape::Node;

use crate::flow::event::flat_json::Scalar;
use crate::flow::event::{KeyValue, RecordAttributes, Text, Value};

use super::{DecodeContext, JsonMessages};

thread_local! {
    /// simd-json's scratch buffers and a copy of the message (simd-json parses in place), reused
    /// across lines: no allocation per line beyond the attributes themselves.
    static PARSER: std::cell::RefCell<(simd_json::Buffers, Vec<u8>, Vec<Text>)> =
        std::cell::RefCell::new((simd_json::Buffers::default(), Vec::new(), Vec::new()));
}

thread_local! {
    /// How many fields the last JSON object message parsed on this thread had: the room a
    /// record's attributes get up front (see [`attributes_with_room`]).
    static FIELDS_LAST_SEEN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// An empty attribute list with room for `leading` attributes plus, when `json` messages are
/// parsed, as many fields as the last message had: lines of one service mostly have the same
/// fields, so pushing them then does not reallocate.
fn attributes_with_room(json: JsonMessages, leading: usize) -> Vec<KeyValue> {
    let fields = if json.parse {
        FIELDS_LAST_SEEN.with(std::cell::Cell::get)
    } else {
        0
    };
    Vec::with_capacity(leading + fields)
}

/// The value at `nodes[i]` and the index after it.
fn value_at(nodes: &[Node<'_>], i: usize) -> Option<(Value, usize)> {
    use simd_json::StaticNode as S;
    Some(match nodes.get(i)? {
        Node::String(s) => (Value::Str(Text::from(*s)), i + 1),
        Node::Static(S::Null) => (Value::Empty, i + 1),
        Node::Static(S::Bool(b)) => (Value::Bool(*b), i + 1),
        Node::Static(S::I64(n)) => (Value::Int(*n), i + 1),
        Node::Static(S::U64(u)) => (
            i64::try_from(*u)
                .map(Value::Int)
                .unwrap_or(Value::Double(*u as f64)),
            i + 1,
        ),
        Node::Static(S::F64(f)) => (Value::Double(*f), i + 1),
        Node::Array { len, .. } => {
            let mut items = Vec::with_capacity(*len);
            let mut j = i + 1;
            for _ in 0..*len {
                let (v, next) = value_at(nodes, j)?;
                items.push(v);
                j = next;
            }
            (Value::Array(items), j)
        }
        Node::Object { len, .. } => {
            let mut fields = Vec::with_capacity(*len);
            let j = fields_into(nodes, i + 1, *len, &mut fields)?;
            (Value::Map(fields), j)
        }
    })
}

/// Appends the `len` key/value pairs starting at `nodes[i]` to `out`, in the order the JSON has
/// them, and returns the index after them; `None` (with `out` as it was) if the tape is not shaped
/// like an object there.
fn fields_into(nodes: &[Node<'_>], i: usize, len: usize, out: &mut Vec<KeyValue>) -> Option<usize> {
    fields_with_keys(nodes, i, len, out, None)
}

/// How many of an object's first keys [`fields_with_keys`] keeps for the next object.
const KEYS_KEPT: usize = 64;

/// The key at position `at` of an object: the one kept in `keys` from the previous object
/// when it is the same (a clone, no copy of the text), else a new one, kept for the next.
fn known_key(keys: &mut Vec<Text>, at: usize, key: &str) -> Text {
    match keys.get(at) {
        Some(known) if known.as_str() == key => known.clone(),
        _ if at >= KEYS_KEPT => Text::from(key),
        _ => {
            let key = Text::from(key);
            keys.truncate(at);
            keys.push(key.clone());
            key
        }
    }
}

/// [`fields_into`], taking each key from `keys` (the keys of the previous object parsed at
/// this level, by position) when it is the same, which is the common case for a service's
/// log lines, and keeping this object's keys there for the next. Nested objects pass `None`:
/// their keys are made as they come, with nothing kept.
fn fields_with_keys(
    nodes: &[Node<'_>],
    mut i: usize,
    len: usize,
    out: &mut Vec<KeyValue>,
    mut keys: Option<&mut Vec<Text>>,
) -> Option<usize> {
    let before = out.len();
    out.reserve(len);
    for at in 0..len {
        let parsed = match nodes.get(i) {
            Some(Node::String(key)) => {
                value_at(nodes, i + 1).map(|(value, next)| (key, value, next))
            }
            _ => None,
        };
        let Some((key, value, next)) = parsed else {
            out.truncate(before);
            return None;
        };
        let key = match keys.as_deref_mut() {
            Some(keys) => known_key(keys, at, key),
            None => Text::from(*key),
        };
        out.push(KeyValue { key, value });
        i = next;
    }
    Some(i)
}

/// Appends the fields of a JSON object message to `out` by simd-json's tape, in their order, and
/// returns how many; `None` (with `out` as it was) if the message is not a JSON object.
fn parse_object_into(message: &[u8], out: &mut Vec<KeyValue>) -> Option<usize> {
    PARSER.with(|parser| {
        let mut parser = parser.try_borrow_mut().ok()?;
        let (buffers, scratch, keys) = &mut *parser;
        let fields = tape_fields_into(message, out, buffers, scratch, keys)?;
        FIELDS_LAST_SEEN.with(|seen| seen.set(fields.min(KEYS_KEPT)));
        Some(fields)
    })
}

/// The fields of any JSON object by simd-json's tape (the flat reader's fallback): `message`
/// is copied into `scratch`, which simd-json parses in place.
fn tape_fields_into(
    message: &[u8],
    out: &mut Vec<KeyValue>,
    buffers: &mut simd_json::Buffers,
    scratch: &mut Vec<u8>,
    keys: &mut Vec<Text>,
) -> Option<usize> {
    scratch.clear();
    scratch.extend_from_slice(message);
    let tape = simd_json::to_tape_with_buffers(scratch, buffers).ok()?;
    match tape.0.first()? {
        Node::Object { len, .. } => {
            fields_with_keys(&tape.0, 1, *len, out, Some(keys)).map(|_| *len)
        }
        _ => None,
    }
}

/// The body of a message and its record's attributes: `leading`, then, when `json` asks for it
/// and the message is a JSON object, its fields. Unless the original is kept, the body is the
/// object's first `message` or `msg` field when it has one, else the whole message.
pub fn message_body(
    message: &[u8],
    json: JsonMessages,
    cx: &DecodeContext<'_>,
    leading: &'static [KeyValue],
) -> (Value, RecordAttributes) {
    if json.parse && message.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        if let Some((body, attributes)) = flat_object(message, leading, json.keep_original) {
            return (body.unwrap_or_else(|| cx.text(message)), attributes);
        }
        let mut attributes = attributes_with_room(json, leading.len());
        attributes.extend_from_slice(leading);
        if parse_object_into(message, &mut attributes).is_some() && !json.keep_original {
            let short = attributes[leading.len()..]
                .iter()
                .find(|kv| is_short_message_key(&kv.key))
                .map(|kv| kv.value.clone());
            if let Some(body) = short {
                return (body, attributes.into());
            }
        }
        return (cx.text(message), attributes.into());
    }
    (cx.text(message), leading.to_vec().into())
}

fn is_short_message_key(key: &str) -> bool {
    key == "message" || key == "msg"
}

/// A flat JSON object message as attributes kept as text, and its short message (unless the
/// original is kept); `None` if the flat reader declines it.
fn flat_object(
    message: &[u8],
    leading: &'static [KeyValue],
    keep_original: bool,
) -> Option<(Option<Value>, RecordAttributes)> {
    let text = std::str::from_utf8(message).ok()?;
    let mut short: Option<Scalar<'_>> = None;
    let attributes = RecordAttributes::flat_json(leading, text, |key, value| {
        if short.is_none() && !keep_original && is_short_message_key(key) {
            short = Some(value);
        }
    })?;
    Some((short.map(Scalar::to_value), attributes))
}
