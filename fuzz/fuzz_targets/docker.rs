#![no_main]
//! Docker json-file records (simd-json), including split-record merging.

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use sextant_pipeline::sources::file::format::{docker::DockerDecoder, JsonMessages};

fuzz_target!(|data: &[u8]| {
    let mut d = DockerDecoder::new(JsonMessages { parse: true, keep_original: false });
    // Docker records are not cut to the record bound before merging ends; only crash-freedom.
    common::run(data, &mut d, false);
});
