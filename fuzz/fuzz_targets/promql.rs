#![no_main]
//! PromQL text through the parser, the support check, and evaluation (instant and a short
//! range) over a small store: whatever parses must evaluate to a value or an error, never a
//! panic or a hang.

use libfuzzer_sys::fuzz_target;
use sextant_rules::labels::Labels;
use sextant_rules::promql::{instant_query, range_query, support, EvalOptions, MemoryStorage};

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else { return };
    if query.len() > 512 {
        return;
    }
    let Ok(expr) = sextant_rules::promql::parse(query) else { return };
    if support::check_supported(&expr).is_err() {
        return;
    }
    let mut store = MemoryStorage::new();
    for (i, job) in ["a", "b"].iter().enumerate() {
        let labels = Labels::from_pairs([("__name__", "x"), ("job", *job), ("le", "1")]);
        for k in 0..10 {
            store.append(&labels, k * 15_000, (k as f64) * (i as f64 + 1.0));
        }
    }
    // Small limits keep a pathological subquery from running for long.
    let options = EvalOptions { max_samples: 100_000, ..Default::default() };
    let _ = instant_query(&store, &expr, 120_000, &options);
    let _ = range_query(&store, &expr, 0, 120_000, 30_000, &options);
});
