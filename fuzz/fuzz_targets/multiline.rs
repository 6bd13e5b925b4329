#![no_main]
//! The multiline joiner (every preset at once, plus a start pattern) over CRI lines.

#[path = "common.rs"]
mod common;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sextant_pipeline::config::units::DurationValue;
use sextant_pipeline::sources::file::format::multiline::{self, MultilineConfig, MultilineRules, Preset};
use sextant_pipeline::sources::file::format::{cri::CriDecoder, JsonMessages};

/// Compiled once: regex compilation would otherwise dominate every run.
fn rules() -> &'static [Arc<MultilineRules>] {
    static RULES: OnceLock<Vec<Arc<MultilineRules>>> = OnceLock::new();
    RULES.get_or_init(|| {
        let mut v = Vec::new();
        for preset in [Preset::Java, Preset::Python, Preset::Go] {
            for start in [None, Some(r"^\d{4}-".to_owned())] {
                for timeout_ms in [0, 1000] {
                    let rules = MultilineConfig {
                        preset: Some(preset),
                        start_pattern: start.clone(),
                        continuation_pattern: None,
                        timeout: DurationValue(Duration::from_millis(timeout_ms)),
                    }
                    .compile()
                    .unwrap_or_else(|e| panic!("presets compile: {e}"));
                    v.push(Arc::new(rules));
                }
            }
        }
        v
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, data)) = data.split_first() else { return };
    let all = rules();
    let inner = Box::new(CriDecoder::new(JsonMessages::default()));
    let mut d = multiline::wrap(inner, Some(&all[usize::from(which) % all.len()]));
    common::run(data, d.as_mut(), true);
});
