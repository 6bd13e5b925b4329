//! Feeds arbitrary bytes through the line splitter and a decoder, in arbitrary chunk sizes, and
//! checks what must always hold: no panic, and no emitted part larger than the record bound.

use std::sync::Arc;

use sextant_pipeline::flow::event::{Origin, Value};
use sextant_pipeline::sources::file::config::InvalidUtf8;
use sextant_pipeline::sources::file::format::{DecodeContext, LineDecoder};
use sextant_pipeline::sources::file::lines::LineSplitter;
use sextant_pipeline::telemetry::{ComponentMetrics, LogLimiter};

pub const MAX_RECORD: usize = 64;

pub fn run(data: &[u8], decoder: &mut dyn LineDecoder, bounded: bool) {
    let Some((&cut, data)) = data.split_first() else { return };
    let origin = Arc::new(Origin::default());
    let metrics = ComponentMetrics::new("fuzz", "fuzz", "fuzz");
    let limiter = LogLimiter::default();
    let cx = DecodeContext {
        origin: &origin,
        now: 1,
        metrics: &metrics,
        invalid_utf8: InvalidUtf8::Lossy,
        max_record_bytes: MAX_RECORD,
        limiter: &limiter,
    };
    let mut splitter = LineSplitter::new(MAX_RECORD * 2);
    let mut events = Vec::new();
    for chunk in data.chunks(usize::from(cut).max(1)) {
        splitter.push(chunk, |line| {
            decoder.decode(line, &cx, &mut events);
        });
        decoder.flush_expired(&cx, &mut events);
        if bounded {
            for e in &events {
                if let Value::Str(s) = &e.body {
                    // Lines are cut at MAX_RECORD * 2 bytes; lossy UTF-8 may turn each invalid
                    // byte into U+FFFD (3 bytes). Bounded, whatever the input.
                    assert!(s.len() <= MAX_RECORD * 2 * 3, "record of {} bytes", s.len());
                }
            }
        }
        events.clear();
    }
}
