//! The line reader: one exposition line at a time, as slices of the body, without allocating.
//!
//! A sample's series (its name and label set exactly as written) is found with `memchr`: after
//! `{`, the next `"` or `}` decides, and a quoted value is skipped to its unescaped closing quote.
//! Neither the sample's metric name nor its label set is checked here: [`super::labels`] checks
//! them the first time a series is seen, and a cached series is the same bytes, so checking them
//! again would only repeat the work. Names in `# HELP`/`# TYPE`/`# UNIT` lines are checked.

use memchr::{memchr, memchr2, memchr3};

use super::number::{parse_millis, parse_seconds_as_millis, parse_value};
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
            if self.pos >= self.body.len() {
                if self.format == Format::OpenMetrics && !self.seen_eof {
                    self.line += 1;
                    return Err(self.error("the body does not end with # EOF"));
                }
                return Ok(None);
            }
            let rest = &self.body[self.pos..];
            let end = memchr(b'\n', rest).unwrap_or(rest.len());
            let mut line = &rest[..end];
            self.pos += end + 1;
            self.line += 1;
            if self.seen_eof {
                return Err(self.error("content after # EOF"));
            }
            if self.format == Format::Text {
                if let Some(stripped) = line.strip_suffix(b"\r") {
                    line = stripped;
                }
                line = trim_start(line);
                if line.is_empty() {
                    continue;
                }
            } else if line.is_empty() {
                return Err(self.error("an empty line"));
            }
            if line[0] == b'#' {
                match self.comment(line)? {
                    Some(l) => return Ok(Some(l)),
                    None => continue,
                }
            }
            return self.sample(line).map(|s| Some(Line::Sample(s)));
        }
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
        let (name, after) = rest.split_at(memchr2(b' ', b'\t', rest).unwrap_or(rest.len()));
        if name.is_empty() {
            if om || !after.is_empty() {
                return Err(self.error("an invalid metric name"));
            }
            return Ok(None);
        }
        if !crate::exposition::labels::valid_metric_name_bytes(name) {
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

    #[inline]
    fn sample(&self, line: &'a [u8]) -> Result<Sample<'a>, ParseError> {
        // The name ends at `{` or a space; it is checked when its series is new
        // (`labels::valid_metric_name`), as the label set is.
        let name_end = memchr3(b'{', b' ', b'\t', line).unwrap_or(line.len());
        let name = &line[..name_end];
        if name.is_empty() {
            return Err(self.error("a sample without a metric name"));
        }
        let mut pos = name_end;
        let mut labels: &[u8] = &[];
        match line.get(pos) {
            Some(b'{') => {
                let start = pos + 1;
                let close = find_closing_brace(line, start)
                    .ok_or_else(|| self.error("a label set without its closing brace"))?;
                labels = &line[start..close];
                pos = close + 1;
            }
            Some(_) => {}
            None => return Err(self.error("no space before the value")),
        }
        let series = &line[..pos];
        let rest = &line[pos..];
        let after = trim_start(rest);
        if after.len() == rest.len() {
            return Err(self.error("no space before the value"));
        }
        let (value_text, rest) = split_word(after);
        let value =
            parse_value(value_text).ok_or_else(|| self.error("a value that is not a number"))?;
        let rest = trim_start(rest);
        let (mut timestamp_ms, mut exemplar) = (None, None);
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
        if !rest.is_empty() {
            let (ts, tail) = split_word(rest);
            if !trim_end(tail).is_empty() {
                return Err(self.error("text after the timestamp"));
            }
            timestamp_ms = Some(
                match self.format {
                    Format::Text => parse_millis(ts),
                    Format::OpenMetrics => parse_seconds_as_millis(ts),
                }
                .ok_or_else(|| self.error("a timestamp that is not a number"))?,
            );
        }
        Ok(Sample {
            series,
            name,
            labels,
            value,
            timestamp_ms,
            exemplar,
        })
    }
}

/// The index of the `}` that closes a label set starting at `start`, skipping quoted values
/// (with their escapes).
#[inline]
pub(super) fn find_closing_brace(line: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let i = pos + memchr2(b'"', b'}', &line[pos..])?;
        if line[i] == b'}' {
            return Some(i);
        }
        // Skip the quoted value.
        let mut j = i + 1;
        loop {
            let k = j + memchr2(b'"', b'\\', &line[j..])?;
            if line[k] == b'\\' {
                j = k + 2;
                if j > line.len() {
                    return None;
                }
                continue;
            }
            pos = k + 1;
            break;
        }
    }
}

#[inline]
fn trim_start(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
    &s[n..]
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
