#![no_main]
//! The multiline joiner (every preset at once, plus a start pattern) over CRI lines.

#[path = "common.rs"]
mod common;

use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sextant_pipeline::config::units::DurationValue;
use sextant_pipeline::sources::file::format::multiline::{self, MultilineConfig, Preset};
use sextant_pipeline::sources::file::format::{cri::CriDecoder, JsonMessages};

fuzz_target!(|data: &[u8]| {
    let Some((&which, data)) = data.split_first() else { return };
    let preset = [Preset::Java, Preset::Python, Preset::Go][usize::from(which) % 3];
    let rules = MultilineConfig {
        preset: Some(preset),
        start_pattern: (which & 4 != 0).then(|| r"^\d{4}-".to_owned()),
        continuation_pattern: None,
        timeout: DurationValue(Duration::from_millis(u64::from(which & 1))),
    }
    .compile()
    .unwrap_or_else(|e| panic!("presets compile: {e}"));
    let inner = Box::new(CriDecoder::new(JsonMessages::default()));
    let mut d = multiline::wrap(inner, Some(&Arc::new(rules)));
    common::run(data, d.as_mut(), true);
});
