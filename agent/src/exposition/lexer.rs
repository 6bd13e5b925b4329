//! The line reader: one exposition line at a time, as slices of the body, without allocating.
//!
//! A sample line is read in one pass from its first byte: the metric name up to the first byte
//! that cannot be in one (so the name is checked on the way), the label set up to its closing
//! brace (a quoted value skipped to its unescaped closing quote), then the value, whose parse
//! usually ends on the line's `\n`, so that line costs no separate search for its end. The
//! runs are found 16 bytes at a time ([`super::scan`]). The label set is not checked here:
//! [`super::labels`] checks it the first time a series is seen, and a cached series is the
//! same bytes. Anything less common (leading blanks, `\r`, a timestamp, an exemplar, a
//! comment) takes the line whole, found with `memchr`.

use memchr::memchr;

use super::number::{decimal_prefix, parse_millis, parse_seconds_as_millis, parse_value};
use super::scan::{find, is_metric_name_byte, AnyOf, NotMetricName};
use super::{Format, Line, MetricType, ParseError, Sample};

/// Reads `body` line by line. After the last line, an OpenMetrics body without `# EOF` is an
/// error, as it is for Prometheus.
pub struct Lexer<'a> {
    body: &'a [u8],
    pos: usize,
    line: usize,
    format: Format,
    seen_eof: bool,
}

impl<'a> Lexer<'a> {
    pub fn new(body: &'a [u8], format: Format) -> Self {
        Self {
            body,
            pos: 0,
            line: 0,
            format,
            seen_eof: false,
        }
    }

    /// The number of the line last read (from 1).
    pub fn line(&self) -> usize {
        self.line
    }

    fn error(&self, reason: &'static str) -> ParseError {
        ParseError {
            line: self.line,
            reason,
        }
    }

    /// The next line, `Ok(None)` at the end.
    #[inline]
    pub fn next_line(&mut self) -> Result<Option<Line<'a>>, ParseError> {
        loop {
            let body = self.body;
            let Some(&first) = body.get(self.pos) else {
                if self.format == Format::OpenMetrics && !self.seen_eof {
                    self.line += 1;
                    return Err(self.error("the body does not end with # EOF"));
                }
                return Ok(None);
            };
            self.line += 1;
            if self.seen_eof {
                return Err(self.error("content after # EOF"));
            }
            if is_metric_name_byte(first) {
                return self.sample(self.pos).map(|s| Some(Line::Sample(s)));
            }
            let mut start = self.pos;
            if self.format == Format::Text {
                start = skip_blanks(body, start);
                let blank = match body.get(start) {
                    None | Some(b'\n') => true,
                    Some(b'\r') => matches!(body.get(start + 1), None | Some(b'\n')),
                    Some(_) => false,
                };
                if blank {
                    self.pos = self.line_end(start) + 1;
                    continue;
                }
            } else if first == b'\n' {
                return Err(self.error("an empty line"));
            }
            if body[start] != b'#' {
                return self.sample(start).map(|s| Some(Line::Sample(s)));
            }
            let end = self.line_end(start);
            self.pos = end + 1;
            let mut line = &body[start..end];
            if self.format == Format::Text {
                line = line.strip_suffix(b"\r").unwrap_or(line);
            }
            if let Some(l) = self.comment(line)? {
                return Ok(Some(l));
            }
        }
    }

    /// The index of the `\n` ending the line that `at` is in, or the body's length.
    #[inline]
    fn line_end(&self, at: usize) -> usize {
        find(self.body, at, AnyOf(b'\n', b'\n', b'\n'))
    }

    fn comment(&mut self, line: &'a [u8]) -> Result<Option<Line<'a>>, ParseError> {
        let om = self.format == Format::OpenMetrics;
        if om && line == b"# EOF" {
            self.seen_eof = true;
            return Ok(Some(Line::Eof));
        }
        // `# HELP name text`, `# TYPE name type` as every exporter writes them; other spacing
        // the slow way.
        let (keyword, rest) = match line.get(..7) {
            Some(b"# HELP " | b"# TYPE " | b"# UNIT ") => (&line[2..6], &line[7..]),
            _ => split_word(trim_start(&line[1..])),
        };
        let kind = match keyword {
            b"HELP" | b"TYPE" => keyword,
            b"UNIT" if om => keyword,
            _ if om => return Err(self.error("a comment that is not HELP, TYPE, UNIT or EOF")),
            _ => return Ok(None),
        };
        let rest = trim_start(rest);
        let name_end = find(rest, 0, NotMetricName);
        let (name, after) = rest.split_at(name_end);
        if name.is_empty() {
            if om || !after.is_empty() {
                return Err(self.error("an invalid metric name"));
            }
            return Ok(None);
        }
        if name[0].is_ascii_digit() || !matches!(after.first(), None | Some(b' ' | b'\t')) {
            return Err(self.error("an invalid metric name"));
        }
        let text = trim_end(trim_start(after));
        Ok(Some(match kind {
            b"HELP" => Line::Help { family: name, text },
            b"UNIT" => Line::Unit {
                family: name,
                unit: text,
            },
            _ => Line::Type {
                family: name,
                kind: MetricType::parse(text, self.format)
                    .ok_or_else(|| self.error("an unknown metric type"))?,
            },
        }))
    }

    /// The sample line starting at `start`; leaves `pos` at the next line.
    #[inline]
    fn sample(&mut self, start: usize) -> Result<Sample<'a>, ParseError> {
        let body = self.body;
        let name_end = find(body, start, NotMetricName);
        if name_end == start {
            return Err(self.error("a sample without a metric name"));
        }
        if body[start].is_ascii_digit() {
            return Err(self.error("an invalid metric name"));
        }
        let name = &body[start..name_end];
        let mut pos = name_end;
        let mut labels: &[u8] = &[];
        match body.get(pos) {
            Some(b'{') => {
                let close = closing_brace(body, pos + 1)
                    .ok_or_else(|| self.error("a label set without its closing brace"))?;
                labels = &body[pos + 1..close];
                pos = close + 1;
            }
            Some(b' ' | b'\t') => {}
            None | Some(b'\n' | b'\r') => return Err(self.error("no space before the value")),
            Some(_) => return Err(self.error("an invalid metric name")),
        }
        let series = &body[start..pos];
        let value_at = skip_blanks(body, pos);
        if value_at == pos {
            return Err(self.error("no space before the value"));
        }
        let (value, value_end) = self.value(value_at)?;
        let (timestamp_ms, exemplar) = if matches!(body.get(value_end), None | Some(b'\n')) {
            self.pos = value_end + 1;
            (None, None)
        } else {
            let end = self.line_end(value_end);
            self.pos = end + 1;
            self.after_value(&body[value_end..end])?
        };
        Ok(Sample {
            series,
            name,
            labels,
            value,
            timestamp_ms,
            exemplar,
        })
    }

    /// The value starting at `at`, and where it ends.
    #[inline]
    fn value(&self, at: usize) -> Result<(f64, usize), ParseError> {
        let body = self.body;
        if let Some((value, len)) = decimal_prefix(&body[at..]) {
            if matches!(body.get(at + len), None | Some(b' ' | b'\t' | b'\n')) {
                return Ok((value, at + len));
            }
        }
        let end = find(body, at, AnyOf(b' ', b'\t', b'\n'));
        let mut word = &body[at..end];
        if self.format == Format::Text && matches!(body.get(end), None | Some(b'\n')) {
            word = word.strip_suffix(b"\r").unwrap_or(word);
        }
        let value = parse_value(word).ok_or_else(|| self.error("a value that is not a number"))?;
        Ok((value, at + word.len()))
    }

    /// What follows the value on its line: a timestamp and an OpenMetrics exemplar, either
    /// may be missing.
    fn after_value(&self, rest: &'a [u8]) -> Result<(Option<i64>, Option<&'a [u8]>), ParseError> {
        let rest = if self.format == Format::Text {
            rest.strip_suffix(b"\r").unwrap_or(rest)
        } else {
            rest
        };
        let rest = trim_start(rest);
        let mut exemplar = None;
        let rest = if self.format == Format::OpenMetrics {
            match memchr(b'#', rest) {
                Some(i) => {
                    exemplar = Some(trim_start(&rest[i + 1..]));
                    trim_end(&rest[..i])
                }
                None => rest,
            }
        } else {
            trim_end(rest)
        };
        if rest.is_empty() {
            return Ok((None, exemplar));
        }
        let (ts, tail) = split_word(rest);
        if !trim_end(tail).is_empty() {
            return Err(self.error("text after the timestamp"));
        }
        let timestamp_ms = match self.format {
            Format::Text => parse_millis(ts),
            Format::OpenMetrics => parse_seconds_as_millis(ts),
        }
        .ok_or_else(|| self.error("a timestamp that is not a number"))?;
        Ok((Some(timestamp_ms), exemplar))
    }
}

/// The index of the `}` that closes a label set starting at `pos`, skipping quoted values
/// (with their escapes); `None` if the line (or `text`) ends first.
#[inline]
pub(super) fn closing_brace(text: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let i = find(text, pos, AnyOf(b'"', b'}', b'\n'));
        match text.get(i)? {
            b'}' => return Some(i),
            b'\n' => return None,
            _ => {}
        }
        // Skip the quoted value.
        let mut j = i + 1;
        loop {
            let k = find(text, j, AnyOf(b'"', b'\\', b'\n'));
            match text.get(k)? {
                b'"' => break pos = k + 1,
                b'\\' if !matches!(text.get(k + 1), None | Some(b'\n')) => j = k + 2,
                _ => return None,
            }
        }
    }
}

#[inline]
fn skip_blanks(s: &[u8], mut at: usize) -> usize {
    while matches!(s.get(at), Some(b' ' | b'\t')) {
        at += 1;
    }
    at
}

#[inline]
fn trim_start(s: &[u8]) -> &[u8] {
    &s[skip_blanks(s, 0)..]
}

#[inline]
fn trim_end(s: &[u8]) -> &[u8] {
    let n = s
        .iter()
        .rev()
        .take_while(|&&b| b == b' ' || b == b'\t' || b == b'\r')
        .count();
    &s[..s.len() - n]
}

/// The first word (up to a space or tab) and what follows it.
#[inline]
fn split_word(s: &[u8]) -> (&[u8], &[u8]) {
    match s.iter().position(|&b| b == b' ' || b == b'\t') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &[]),
    }
}
