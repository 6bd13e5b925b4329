#![no_main]
//! Rule-file text through the loader (YAML, groups, rules, expressions, templates): a file is
//! loaded or refused with errors, never a panic. What loads is evaluated once, templates
//! expanded, over an empty store.

use libfuzzer_sys::fuzz_target;
use sextant_rules::evaluator::{GroupState, Settings};
use sextant_rules::promql::MemoryStorage;
use sextant_rules::rule_files::parse_rule_file;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(groups) = parse_rule_file("fuzz.yml", text) else { return };
    let mut store = MemoryStorage::new();
    let settings = Settings::default();
    for group in groups {
        let mut state = GroupState::new(group);
        let _ = state.evaluate(&mut store, 60_000, &settings);
    }
});
