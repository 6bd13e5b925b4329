//! Messages that are JSON objects: parsed with simd-json into attributes, so that
//! `{"level":"error","msg":"boom"}` can be filtered and templated by `level`.

use simd_json::tape::Node;

use crate::event::{KeyValue, Value};

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
        Node::String(s) => (Value::Str((*s).to_owned()), i + 1),
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
            let (fields, j) = fields_at(nodes, i + 1, *len)?;
            (Value::Map(fields), j)
        }
    })
}

/// `len` key/value pairs starting at `nodes[i]`, in the order the JSON has them.
fn fields_at(nodes: &[Node<'_>], mut i: usize, len: usize) -> Option<(Vec<KeyValue>, usize)> {
    let mut fields = Vec::with_capacity(len);
    for _ in 0..len {
        let Node::String(key) = nodes.get(i)? else {
            return None;
        };
        let (value, next) = value_at(nodes, i + 1)?;
        fields.push(KeyValue {
            key: (*key).to_owned(),
            value,
        });
        i = next;
    }
    Some((fields, i))
}

/// The fields of a JSON object message, in their order, or `None` if it is not one.
pub fn parse_object(message: &[u8]) -> Option<Vec<KeyValue>> {
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
            Node::Object { len, .. } => fields_at(&tape.0, 1, *len).map(|(fields, _)| fields),
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
        if let Some(fields) = parse_object(message) {
            let short = (!json.keep_original)
                .then(|| {
                    fields
                        .iter()
                        .find(|kv| kv.key == "message" || kv.key == "msg")
                        .map(|kv| kv.value.clone())
                })
                .flatten();
            attributes.extend(fields);
            if let Some(body) = short {
                return body;
            }
        }
    }
    cx.text(message)
}
