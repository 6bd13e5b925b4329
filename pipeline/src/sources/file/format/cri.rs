//! CRI (containerd, CRI-O) log lines: `<RFC3339Nano> <stdout|stderr> <P|F> <message>`.
//!
//! `P` lines are parts of one message, merged until the `F` line, up to `max_record_bytes`
//! (beyond it the merged part is emitted, marked `sextant.split`, and merging starts again). The
//! record takes the first part's time; the stream becomes `log.iostream`. A line that is not CRI
//! passes through raw with a `parse_error` attribute and is counted.

use crate::flow::event::LogEvent;

use super::super::lines::Line;
use super::{
    json, line_attributes, time::parse_rfc3339_nanos, DecodeContext, Held, JsonMessages,
    LineDecoder,
};

/// The parts of one CRI line.
#[derive(Debug, PartialEq, Eq)]
pub struct CriLine<'a> {
    pub time_unix_nano: u64,
    pub stream: &'a [u8],
    pub partial: bool,
    pub message: &'a [u8],
}

/// Splits a CRI line with `memchr`; `None` if it is not one.
pub fn parse(line: &[u8]) -> Option<CriLine<'_>> {
    let t_end = memchr::memchr(b' ', line)?;
    let time_unix_nano = parse_rfc3339_nanos(&line[..t_end])?;
    let rest = &line[t_end + 1..];
    let s_end = memchr::memchr(b' ', rest)?;
    let stream = &rest[..s_end];
    if stream != b"stdout" && stream != b"stderr" {
        return None;
    }
    let rest = &rest[s_end + 1..];
    let (tag, message) = match memchr::memchr(b' ', rest) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &rest[rest.len()..]), // an empty message
    };
    // The tag is `P` or `F`, possibly with more `:`-separated flags after it.
    let partial = match tag.first() {
        Some(b'P') => true,
        Some(b'F') => false,
        _ => return None,
    };
    Some(CriLine {
        time_unix_nano,
        stream,
        partial,
        message,
    })
}

pub struct CriDecoder {
    json: JsonMessages,
    held: Vec<u8>,
    held_time: u64,
    held_stream: &'static str,
    /// The previous line was cut by `max_line_bytes`: this one is the rest of it (no header).
    continuing: bool,
}

fn stream_name(s: &[u8]) -> &'static str {
    if s == b"stderr" {
        "stderr"
    } else {
        "stdout"
    }
}

impl CriDecoder {
    pub fn new(json: JsonMessages) -> Self {
        Self {
            json,
            held: Vec::new(),
            held_time: 0,
            held_stream: "stdout",
            continuing: false,
        }
    }

    fn emit(
        &self,
        time: u64,
        stream: &'static str,
        message: &[u8],
        split: bool,
        cx: &DecodeContext<'_>,
        out: &mut Vec<LogEvent>,
    ) {
        let body_json = if split {
            JsonMessages::default()
        } else {
            self.json
        };
        let leading = line_attributes(Some(stream), split);
        let (body, attributes) = json::message_body(message, body_json, cx, leading);
        out.push(cx.event(time, body, attributes));
    }
}

impl LineDecoder for CriDecoder {
    fn decode(&mut self, line: Line<'_>, cx: &DecodeContext<'_>, out: &mut Vec<LogEvent>) -> Held {
        let was_holding = !self.held.is_empty();
        if self.continuing {
            // The rest of an over-long line: its own part of the record, marked split.
            self.emit(
                self.held_time,
                self.held_stream,
                line.bytes,
                line.split,
                cx,
                out,
            );
            self.continuing = line.split;
            return Held::No;
        }
        let Some(cri) = parse(line.bytes) else {
            return cx.pass_through(&line, "not_cri", "not a CRI log line", was_holding, out);
        };
        let stream = stream_name(cri.stream);
        if self.held.is_empty() {
            self.held_time = cri.time_unix_nano;
            self.held_stream = stream;
        }
        if line.split || (!cri.partial && self.held.is_empty()) {
            // The common case: a whole message on one line, no copy. (Or the first part of a line
            // cut by max_line_bytes, emitted as is, with its rest to follow.)
            if !self.held.is_empty() {
                let held = std::mem::take(&mut self.held);
                self.emit(self.held_time, self.held_stream, &held, true, cx, out);
            }
            self.held_time = cri.time_unix_nano;
            self.held_stream = stream;
            self.continuing = line.split;
            self.emit(cri.time_unix_nano, stream, cri.message, line.split, cx, out);
            return Held::No;
        }
        self.held.extend_from_slice(cri.message);
        // Bounded: past max_record_bytes, emit full parts marked split (more follows).
        while self.held.len() > cx.max_record_bytes {
            let part: Vec<u8> = self.held.drain(..cx.max_record_bytes).collect();
            self.emit(self.held_time, self.held_stream, &part, true, cx, out);
        }
        if cri.partial {
            return if self.held.is_empty() {
                Held::No
            } else {
                Held::holding(was_holding)
            };
        }
        let held = std::mem::take(&mut self.held);
        self.emit(self.held_time, self.held_stream, &held, false, cx, out);
        Held::No
    }

    fn reset(&mut self) {
        self.held.clear();
        self.continuing = false;
    }
}
