//! Messages that are JSON objects: parsed with simd-json into attributes, so that
//! `{"level":"error","msg":"boom"}` can be filtered and templated by `level`.

use crate::event::{KeyValue, Value};

use super::{DecodeContext, JsonMessages};

fn from_simd(v: simd_json::BorrowedValue<'_>) -> Value {
    use simd_json::{BorrowedValue as B, StaticNode as S};
    match v {
        B::Static(S::Null) => Value::Empty,
        B::Static(S::Bool(b)) => Value::Bool(b),
        B::Static(S::I64(i)) => Value::Int(i),
        B::Static(S::U64(u)) => i64::try_from(u)
            .map(Value::Int)
            .unwrap_or(Value::Double(u as f64)),
        B::Static(S::F64(f)) => Value::Double(f),
        B::String(s) => Value::Str(s.into_owned()),
        B::Array(a) => Value::Array(a.into_iter().map(from_simd).collect()),
        B::Object(o) => Value::Map(
            o.into_iter()
                .map(|(k, v)| KeyValue {
                    key: k.into_owned(),
                    value: from_simd(v),
                })
                .collect(),
        ),
    }
}

/// The fields of a JSON object message, or `None` if it is not one.
pub fn parse_object(message: &[u8]) -> Option<Vec<KeyValue>> {
    let first = message.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    let mut copy = message.to_vec();
    let fields = match simd_json::to_borrowed_value(&mut copy).ok()? {
        simd_json::BorrowedValue::Object(o) => {
            let mut fields: Vec<KeyValue> = o
                .into_iter()
                .map(|(k, v)| KeyValue {
                    key: k.into_owned(),
                    value: from_simd(v),
                })
                .collect();
            // HashMap order is arbitrary; keep attributes stable.
            fields.sort_by(|a, b| a.key.cmp(&b.key));
            Some(fields)
        }
        _ => None,
    };
    fields
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
