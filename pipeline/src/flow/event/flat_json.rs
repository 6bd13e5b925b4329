//! A one-pass reader for the shape most JSON log messages have: one object of keys and scalar
//! values (strings without escapes, numbers, `true`, `false`, `null`), as structured loggers
//! (zap, logrus, slog, pino, structlog) write them. It hands each field to a visitor straight
//! from the message's bytes: no copy of the message, no tape, one look at each byte.
//!
//! Anything else — a nested object or array, an escape in a string, a number it does not read
//! exactly as simd-json does (over 18 digits, not finite), anything that is not JSON — it
//! declines with `None`, after the visitor may have seen some fields (callers that build
//! something undo it), and the caller parses the message with simd-json. For what it accepts
//! it gives exactly the fields simd-json's path gives, in the same order (duplicate keys kept,
//! as there); `sources::file::format::json::tests` holds that with a property test.
//!
//! A text it accepted once it accepts again with the same fields, which is what lets a record
//! keep such a message as text and read its fields later ([`super::RecordAttributes`]).

use super::{Text, Value};

/// A field's value as the reader found it, borrowed from the message.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar<'a> {
    Str(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Null,
}

impl Scalar<'_> {
    /// The value as an attribute value (`null` is the empty value, as simd-json's path makes it).
    pub fn to_value(self) -> Value {
        match self {
            Scalar::Str(s) => Value::Str(Text::from(s)),
            Scalar::Bool(b) => Value::Bool(b),
            Scalar::Int(i) => Value::Int(i),
            Scalar::Double(d) => Value::Double(d),
            Scalar::Null => Value::Empty,
        }
    }
}

/// Hands each field of `text` to `field` in order if `text` is a flat JSON object, and returns
/// how many there were; `None` if it is not one (see the module doc).
pub fn visit<'a>(text: &'a str, field: impl FnMut(&'a str, Scalar<'a>)) -> Option<usize> {
    Reader { text, at: 0 }.object(field)
}

struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    #[inline(always)]
    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// Steps over `byte` if it is next.
    #[inline(always)]
    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn object(mut self, mut field: impl FnMut(&'a str, Scalar<'a>)) -> Option<usize> {
        self.skip_whitespace();
        self.eat(b'{')?;
        self.skip_whitespace();
        let mut fields = 0;
        if self.eat(b'}').is_none() {
            loop {
                self.eat(b'"')?;
                let key = self.string()?;
                self.skip_whitespace();
                self.eat(b':')?;
                self.skip_whitespace();
                field(key, self.value()?);
                fields += 1;
                self.skip_whitespace();
                match self.peek()? {
                    b',' => {
                        self.at += 1;
                        self.skip_whitespace();
                    }
                    b'}' => {
                        self.at += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.skip_whitespace();
        (self.at == self.text.len()).then_some(fields)
    }

    /// The rest of a string whose opening quote was read; `None` at an escape or a control
    /// character (JSON allows neither raw), or at the end.
    #[inline(always)]
    fn string(&mut self) -> Option<&'a str> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        let mut end = start;
        // Eight bytes at a time to the first quote, backslash or control character.
        while let Some(word) = bytes.get(end..end + 8) {
            let special = special_bytes(u64::from_le_bytes(word.try_into().ok()?));
            if special != 0 {
                end += (special.trailing_zeros() / 8) as usize;
                break;
            }
            end += 8;
        }
        loop {
            match *bytes.get(end)? {
                b'"' => break,
                b'\\' | 0..=0x1f => return None,
                _ => end += 1,
            }
        }
        self.at = end + 1;
        // Both ends are at ASCII quotes, so on character boundaries.
        self.text.get(start..end)
    }

    #[inline(always)]
    fn value(&mut self) -> Option<Scalar<'a>> {
        match self.peek()? {
            b'"' => {
                self.at += 1;
                Some(Scalar::Str(self.string()?))
            }
            b't' => self.word("true", Scalar::Bool(true)),
            b'f' => self.word("false", Scalar::Bool(false)),
            b'n' => self.word("null", Scalar::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    #[inline(always)]
    fn word(&mut self, word: &str, value: Scalar<'a>) -> Option<Scalar<'a>> {
        self.text.as_bytes()[self.at..]
            .starts_with(word.as_bytes())
            .then(|| {
                self.at += word.len();
                value
            })
    }

    #[inline(always)]
    fn digits(&mut self) -> usize {
        let from = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        self.at - from
    }

    /// A number by JSON's grammar: an integer of up to 18 digits exactly, one with a fraction or
    /// an exponent as the nearest `f64` (as simd-json's correct parsing does).
    fn number(&mut self) -> Option<Scalar<'a>> {
        let start = self.at;
        let negative = self.eat(b'-').is_some();
        let int_start = self.at;
        let int_digits = self.digits();
        let leading_zero = self.text.as_bytes().get(int_start) == Some(&b'0');
        if int_digits == 0 || (leading_zero && int_digits > 1) {
            return None;
        }
        let mut float = false;
        if self.eat(b'.').is_some() {
            if self.digits() == 0 {
                return None;
            }
            float = true;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return None;
            }
            float = true;
        }
        if float {
            let f: f64 = self.text.get(start..self.at)?.parse().ok()?;
            return f.is_finite().then_some(Scalar::Double(f));
        }
        if int_digits > 18 {
            return None;
        }
        let magnitude = self.text.as_bytes()[int_start..self.at]
            .iter()
            .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
        Some(Scalar::Int(if negative { -magnitude } else { magnitude }))
    }
}

/// A word with the high bit set in each byte that is a quote, a backslash or below 0x20, and
/// perhaps in bytes above the first of those (borrows), never below it: the lowest set bit
/// marks the first such byte exactly.
fn special_bytes(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let quote = zero_byte(word ^ (ONES * u64::from(b'"')));
    let backslash = zero_byte(word ^ (ONES * u64::from(b'\\')));
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    quote | backslash | control
}
