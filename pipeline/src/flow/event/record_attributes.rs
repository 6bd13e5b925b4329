//! A log record's attributes: a list of key/values, or — when a source read a message that is a
//! flat JSON object — a few fixed leading attributes and the message's text, kept as text until
//! something asks for the fields as values.
//!
//! Why: turning each field of a JSON message into a key and a value (copies of both, an owned
//! list) and dropping them again on a sink's thread was most of what the agent's log path cost,
//! while a sink that writes OTLP can write the fields straight from the text, and a blackhole
//! or a queue needs no values at all. A record then holds two allocations (the text and a
//! small header), not one per field and string, and frees them at once.
//!
//! The contract, whichever form a record has:
//! - reading (`Deref` to `Vec<KeyValue>`) sees the same attributes in the same order as if the
//!   message had been parsed up front; the first read parses it, once, and keeps the result;
//! - changing them (`DerefMut`) turns them into a plain list first;
//! - [`ByteSize`](super::ByteSize) is the same before and after the first read, so a queue
//!   that charged a record when it came in frees the same amount when it leaves.

use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;

use super::flat_json::{self, Scalar};
use super::KeyValue;

/// See the module doc.
#[derive(Clone, Default)]
pub struct RecordAttributes(Repr);

#[derive(Clone)]
enum Repr {
    List(Vec<KeyValue>),
    /// Boxed, so that a record is no bigger than with a list: every log record in memory
    /// carries this enum, most of them (all but parsed JSON messages) as a list.
    FlatJson(Box<FlatJson>),
}

impl Default for Repr {
    fn default() -> Self {
        Repr::List(Vec::new())
    }
}

/// Attributes `leading`, then the fields of `text`, which [`flat_json::visit`] accepted.
#[derive(Clone)]
struct FlatJson {
    leading: &'static [KeyValue],
    text: Box<str>,
    fields: u32,
    parsed: OnceLock<Vec<KeyValue>>,
}

impl FlatJson {
    fn parse(&self) -> Vec<KeyValue> {
        let mut list = Vec::with_capacity(self.leading.len() + self.fields as usize);
        list.extend_from_slice(self.leading);
        // The text was accepted when this was made; reading it again gives the same fields.
        flat_json::visit(&self.text, |key, value| {
            list.push(KeyValue {
                key: key.into(),
                value: value.to_value(),
            })
        });
        list
    }
}

impl RecordAttributes {
    /// `leading`, then the fields of `message` if it is a flat JSON object (see
    /// [`flat_json`]), each also shown to `field` as it is read; `None` if it is not one.
    pub fn flat_json<'a>(
        leading: &'static [KeyValue],
        message: &'a str,
        field: impl FnMut(&'a str, Scalar<'a>),
    ) -> Option<Self> {
        let fields = flat_json::visit(message, field)?;
        Some(Self(Repr::FlatJson(Box::new(FlatJson {
            leading,
            text: message.into(),
            fields: u32::try_from(fields).ok()?,
            parsed: OnceLock::new(),
        }))))
    }

    /// The leading attributes and the JSON text, while the fields have not been read as values;
    /// for writers that can write them straight from the text.
    pub fn unparsed_json(&self) -> Option<(&[KeyValue], &str)> {
        match &self.0 {
            Repr::FlatJson(j) if j.parsed.get().is_none() => Some((j.leading, &j.text)),
            _ => None,
        }
    }

    /// The attributes as a plain list.
    pub fn into_vec(self) -> Vec<KeyValue> {
        match self.0 {
            Repr::List(list) => list,
            Repr::FlatJson(mut j) => j.parsed.take().unwrap_or_else(|| j.parse()),
        }
    }

    /// The estimated bytes of the attributes (see [`super::size`]): for JSON text, the leading
    /// attributes, the text and one attribute struct per field, whether read yet or not.
    pub(super) fn byte_size(&self) -> usize {
        match &self.0 {
            Repr::List(list) => super::size::attributes_size(list),
            Repr::FlatJson(j) => {
                super::size::attributes_size(j.leading)
                    + j.text.len()
                    + j.fields as usize * std::mem::size_of::<KeyValue>()
            }
        }
    }
}

impl Deref for RecordAttributes {
    type Target = Vec<KeyValue>;

    fn deref(&self) -> &Vec<KeyValue> {
        match &self.0 {
            Repr::List(list) => list,
            Repr::FlatJson(j) => j.parsed.get_or_init(|| j.parse()),
        }
    }
}

impl DerefMut for RecordAttributes {
    fn deref_mut(&mut self) -> &mut Vec<KeyValue> {
        if let Repr::FlatJson(j) = &mut self.0 {
            let list = j.parsed.take().unwrap_or_else(|| j.parse());
            self.0 = Repr::List(list);
        }
        match &mut self.0 {
            Repr::List(list) => list,
            Repr::FlatJson(_) => unreachable!("made a list just above"),
        }
    }
}

impl From<Vec<KeyValue>> for RecordAttributes {
    fn from(list: Vec<KeyValue>) -> Self {
        Self(Repr::List(list))
    }
}

impl FromIterator<KeyValue> for RecordAttributes {
    fn from_iter<I: IntoIterator<Item = KeyValue>>(iter: I) -> Self {
        Self(Repr::List(iter.into_iter().collect()))
    }
}

impl PartialEq for RecordAttributes {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl PartialEq<Vec<KeyValue>> for RecordAttributes {
    fn eq(&self, other: &Vec<KeyValue>) -> bool {
        **self == *other
    }
}

impl std::fmt::Debug for RecordAttributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

impl<'a> IntoIterator for &'a RecordAttributes {
    type Item = &'a KeyValue;
    type IntoIter = std::slice::Iter<'a, KeyValue>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::event::Value;

    static LEADING: [KeyValue; 1] = [KeyValue {
        key: crate::flow::event::Text::const_new("log.iostream"),
        value: Value::Str(crate::flow::event::Text::const_new("stdout")),
    }];

    fn flat(text: &str) -> Option<RecordAttributes> {
        RecordAttributes::flat_json(&LEADING, text, |_, _| {})
    }

    #[test]
    fn the_text_form_makes_no_record_bigger() {
        // Every log record in memory carries this; the text form must not grow it.
        assert_eq!(
            std::mem::size_of::<RecordAttributes>(),
            std::mem::size_of::<Vec<KeyValue>>()
        );
    }

    #[test]
    fn only_flat_objects_are_kept_as_text() {
        assert!(flat(r#" { "a" : "b" , "n":1 } "#).is_some());
        assert!(flat("{}").is_some());
        for declined in [
            r#"{"a":{"b":1}}"#,
            r#"{"a":[1]}"#,
            r#"{"a":"esc\"aped"}"#,
            r#"{"a":1}x"#,
            r#"{"a":123456789012345678901}"#,
            "[1]",
            "",
        ] {
            assert!(flat(declined).is_none(), "{declined}");
        }
    }

    #[test]
    fn changing_them_makes_a_list_with_the_same_attributes_first() {
        let mut attributes = flat(r#"{"level":"info","n":2}"#).unwrap();
        let unread = attributes.clone();
        attributes.push(KeyValue::new("added", "yes"));
        assert!(attributes.unparsed_json().is_none());
        assert!(unread.unparsed_json().is_some(), "a clone is its own");
        assert_eq!(
            attributes[..3],
            unread[..],
            "the same fields, read from the text"
        );
        let expected = vec![
            LEADING[0].clone(),
            KeyValue::new("level", "info"),
            KeyValue::new("n", 2i64),
            KeyValue::new("added", "yes"),
        ];
        assert_eq!(attributes, expected);
        assert_eq!(
            attributes.byte_size(),
            crate::flow::event::size::attributes_size(&expected),
            "a list is charged as a list"
        );
        assert_eq!(unread.into_vec(), expected[..3]);
    }
}
