//! Docker json-file lines: `{"log":"message\n","stream":"stdout","time":"<RFC3339Nano>"}`,
//! parsed with simd-json. Docker splits messages over 16 KiB into several records whose `log`
//! does not end in a newline; they are merged like CRI partial lines. A line that is not such a
//! record passes through raw with a `parse_error` attribute and is counted.

use crate::flow::event::LogEvent;

use super::super::lines::Line;
use super::{
    json, line_attributes, split_attribute, time::parse_rfc3339_nanos, DecodeContext, Held,
    JsonMessages, LineDecoder,
};

pub struct DockerDecoder {
    json: JsonMessages,
    buffers: simd_json::Buffers,
    scratch: Vec<u8>,
    held: Vec<u8>,
    held_time: u64,
    held_stream: &'static str,
}

/// The fields of one docker record.
struct Record {
    log: Vec<u8>,
    stream: &'static str,
    time: Option<u64>,
}

impl DockerDecoder {
    pub fn new(json: JsonMessages) -> Self {
        Self {
            json,
            buffers: simd_json::Buffers::default(),
            scratch: Vec::new(),
            held: Vec::new(),
            held_time: 0,
            held_stream: "stdout",
        }
    }

    fn parse(&mut self, line: &[u8]) -> Option<Record> {
        use simd_json::prelude::*;
        self.scratch.clear();
        self.scratch.extend_from_slice(line);
        let v =
            simd_json::value::to_borrowed_value_with_buffers(&mut self.scratch, &mut self.buffers)
                .ok()?;
        let obj = v.as_object()?;
        let log = obj.get("log")?.as_str()?.as_bytes().to_vec();
        let stream = match obj.get("stream").and_then(|s| s.as_str()) {
            Some("stderr") => "stderr",
            _ => "stdout",
        };
        let time = obj
            .get("time")
            .and_then(|t| t.as_str())
            .and_then(|t| parse_rfc3339_nanos(t.as_bytes()));
        Some(Record { log, stream, time })
    }

    fn emit(
        &self,
        time: u64,
        stream: &'static str,
        message: &[u8],
        cx: &DecodeContext<'_>,
        out: &mut Vec<LogEvent>,
    ) {
        // Room for the split mark too (pushed by the caller on a part of a long record).
        let leading = line_attributes(Some(stream), false);
        let (body, attributes) = json::message_body(message, self.json, cx, leading);
        out.push(cx.event(time, body, attributes));
    }
}

impl LineDecoder for DockerDecoder {
    fn decode(&mut self, line: Line<'_>, cx: &DecodeContext<'_>, out: &mut Vec<LogEvent>) -> Held {
        let was_holding = !self.held.is_empty();
        let record = if line.split {
            None
        } else {
            self.parse(line.bytes)
        };
        let Some(Record {
            mut log,
            stream,
            time,
        }) = record
        else {
            return cx.pass_through(
                &line,
                "not_docker_json",
                "not a docker json-file record",
                was_holding,
                out,
            );
        };
        let complete = log.last() == Some(&b'\n');
        if complete {
            log.pop();
            if log.last() == Some(&b'\r') {
                log.pop();
            }
        }
        let time = time.unwrap_or(cx.now);
        if self.held.is_empty() {
            if complete {
                self.emit(time, stream, &log, cx, out);
                return Held::No;
            }
            self.held_time = time;
            self.held_stream = stream;
        }
        self.held.extend_from_slice(&log);
        if complete || self.held.len() >= cx.max_record_bytes {
            let held = std::mem::take(&mut self.held);
            self.emit(self.held_time, self.held_stream, &held, cx, out);
            if !complete {
                if let Some(e) = out.last_mut() {
                    e.attributes.push(split_attribute());
                }
            }
            return Held::No;
        }
        Held::holding(was_holding)
    }

    fn reset(&mut self) {
        self.held.clear();
    }
}
