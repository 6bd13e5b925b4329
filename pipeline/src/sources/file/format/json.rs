//! Messages that are JSON objects: parsed with simd-json into attributes, so that
//! `{"level":"error","msg":"boom"}` can be filtered and templated by `level`.

use simd_json::tape::Node;

use crate::flow::event::{KeyValue, Text, Value};

use super::{DecodeContext, JsonMessages};

thread_local! {
    /// simd-json's scratch buffers and a copy of the message (simd-json parses in place), reused
    /// across lines: no allocation per line beyond the attributes themselves.
    static PARSER: std::cell::RefCell<(simd_json::Buffers, Vec<u8>)> =
        std::cell::RefCell::new((simd_json::Buffers::default(), Vec::new()));
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
fn fields_into(
    nodes: &[Node<'_>],
    mut i: usize,
    len: usize,
    out: &mut Vec<KeyValue>,
) -> Option<usize> {
    let before = out.len();
    out.reserve(len);
    for _ in 0..len {
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
        out.push(KeyValue {
            key: Text::from(*key),
            value,
        });
        i = next;
    }
    Some(i)
}

/// Appends the fields of a JSON object message to `out`, in their order, and returns how many;
/// `None` (with `out` as it was) if the message is not a JSON object.
pub fn parse_object_into(message: &[u8], out: &mut Vec<KeyValue>) -> Option<usize> {
    let first = message.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    PARSER.with(|parser| {
        let mut parser = parser.try_borrow_mut().ok()?;
        let (buffers, scratch) = &mut *parser;
        scratch.clear();
        scratch.extend_from_slice(message);
        let tape = simd_json::to_tape_with_buffers(scratch, buffers).ok()?;
        match tape.0.first()? {
            Node::Object { len, .. } => fields_into(&tape.0, 1, *len, out).map(|_| *len),
            _ => None,
        }
    })
}

/// The body of a message, adding JSON fields to `attributes` when asked.
pub fn message_body(
    message: &[u8],
    json: JsonMessages,
    cx: &DecodeContext<'_>,
    attributes: &mut Vec<KeyValue>,
) -> Value {
    if json.parse {
        let before = attributes.len();
        if parse_object_into(message, attributes).is_some() && !json.keep_original {
            let short = attributes[before..]
                .iter()
                .find(|kv| kv.key == "message" || kv.key == "msg");
            if let Some(kv) = short {
                return kv.value.clone();
            }
        }
    }
    cx.text(message)
}
