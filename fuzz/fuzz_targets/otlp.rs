#![no_main]
//! OTLP/HTTP bodies of each signal, protobuf or JSON, through the receiver's decoding: plain,
//! declared gzip or zstd as they are (the decompressors on arbitrary bytes), or compressed here
//! first (the decoders behind a decompressor), with a 1 MiB inflation limit. Must never panic.

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use sextant_pipeline::flow::event::Signal;
use sextant_pipeline::sources::otlp::decode_body;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else { return };
    let signal = [Signal::Logs, Signal::Metrics, Signal::Traces][usize::from(flags % 3)];
    let content_type = if flags & 4 == 0 { "application/x-protobuf" } else { "application/json" };
    let encoding = ["", "gzip", "zstd", ""][usize::from((flags >> 3) & 3)];
    let compress_here = flags & 32 != 0;
    let body = match (encoding, compress_here) {
        ("gzip", true) => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let _ = enc.write_all(body);
            enc.finish().unwrap_or_default()
        }
        ("zstd", true) => zstd::bulk::compress(body, 1).unwrap_or_default(),
        _ => body.to_vec(),
    };
    let _ = decode_body(signal, content_type, encoding, &body, 1 << 20);
});
