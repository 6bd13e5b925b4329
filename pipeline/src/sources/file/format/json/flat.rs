//! A one-pass reader for the shape most JSON log messages have: one object of keys and scalar
//! values (strings without escapes, numbers, `true`, `false`, `null`), as structured loggers
//! (zap, logrus, slog, pino, structlog) write them. It makes the attributes straight from the
//! message's bytes: no copy of the message, no tape, one look at each byte.
//!
//! Anything else — a nested object or array, an escape in a string, a number it does not read
//! exactly as simd-json does (over 18 digits, not finite), anything that is not JSON — it
//! declines: `None`, with `out` as it was, and the caller parses the message with simd-json.
//! For what it accepts it gives exactly the attributes simd-json's path gives, in the same
//! order (duplicate keys kept, as there); `json::tests` holds that with a property test.

use crate::flow::event::{KeyValue, Text, Value};

use super::known_key;

/// Appends the fields of `message` to `out` if it is a flat JSON object, and returns how many.
pub fn fields_into(message: &[u8], out: &mut Vec<KeyValue>, keys: &mut Vec<Text>) -> Option<usize> {
    let before = out.len();
    let parsed = Reader {
        text: std::str::from_utf8(message).ok()?,
        at: 0,
    }
    .object(out, keys);
    if parsed.is_none() {
        out.truncate(before);
    }
    parsed
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

    fn object(mut self, out: &mut Vec<KeyValue>, keys: &mut Vec<Text>) -> Option<usize> {
        self.skip_whitespace();
        self.eat(b'{')?;
        self.skip_whitespace();
        let mut fields = 0;
        if self.eat(b'}').is_none() {
            loop {
                self.eat(b'"')?;
                let key = known_key(keys, fields, self.string()?);
                self.skip_whitespace();
                self.eat(b':')?;
                self.skip_whitespace();
                out.push(KeyValue {
                    key,
                    value: self.value()?,
                });
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
    fn value(&mut self) -> Option<Value> {
        match self.peek()? {
            b'"' => {
                self.at += 1;
                Some(Value::Str(Text::from(self.string()?)))
            }
            b't' => self.word("true", Value::Bool(true)),
            b'f' => self.word("false", Value::Bool(false)),
            b'n' => self.word("null", Value::Empty),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    #[inline(always)]
    fn word(&mut self, word: &str, value: Value) -> Option<Value> {
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
    fn number(&mut self) -> Option<Value> {
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
            return f.is_finite().then_some(Value::Double(f));
        }
        if int_digits > 18 {
            return None;
        }
        let magnitude = self.text.as_bytes()[int_start..self.at]
            .iter()
            .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
        Some(Value::Int(if negative { -magnitude } else { magnitude }))
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
