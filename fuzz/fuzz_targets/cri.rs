#![no_main]
//! CRI lines, including partial-line merging.

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use sextant_pipeline::sources::file::format::{cri::CriDecoder, JsonMessages};

fuzz_target!(|data: &[u8]| {
    let mut d = CriDecoder::new(JsonMessages { parse: true, keep_original: false });
    common::run(data, &mut d, true);
});
