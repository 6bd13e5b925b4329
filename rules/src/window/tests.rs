use super::*;
use crate::promql::value::{is_stale_marker, stale_marker};
use crate::promql::{instant_query, EvalOptions, Value};

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn store_for(queries: &[&str], retention_ms: i64, max_bytes: usize) -> WindowStore {
    let exprs: Vec<_> = queries
        .iter()
        .map(|q| crate::promql::parse(q).unwrap())
        .collect();
    WindowStore::new(SelectorFilter::new(&exprs), retention_ms, max_bytes)
}

#[test]
fn keeps_only_selected_series_and_answers_queries_like_the_reference() {
    let mut store = store_for(&["rate(http_requests_total[5m])"], 600_000, 1 << 20);
    let mut reference = crate::promql::MemoryStorage::new();
    let a = labels(&[("__name__", "http_requests_total"), ("job", "api")]);
    let other = labels(&[("__name__", "go_goroutines"), ("job", "api")]);
    for i in 0..200 {
        let t = i * 15_000;
        assert_eq!(store.append(&a, t, i as f64 * 10.0), Appended::Stored);
        reference.append(&a, t, i as f64 * 10.0);
        assert_eq!(store.append(&other, t, 1.0), Appended::NotSelected);
    }
    assert_eq!(store.series_count(), 1);
    assert_eq!(store.stats().not_selected, 200);
    let expr = crate::promql::parse("rate(http_requests_total[5m])").unwrap();
    let at = 199 * 15_000;
    let got = instant_query(&store, &expr, at, &EvalOptions::default()).unwrap();
    let want = instant_query(&reference, &expr, at, &EvalOptions::default()).unwrap();
    assert_eq!(got, want);
    match got {
        Value::Vector(v) => assert!((v[0].v - 10.0 / 15.0).abs() < 1e-9, "{v:?}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn out_of_order_samples_are_refused_and_stale_markers_kept() {
    let mut store = WindowStore::new(SelectorFilter::everything(), 600_000, 1 << 20);
    let s = labels(&[("__name__", "x")]);
    assert_eq!(store.append(&s, 1000, 1.0), Appended::Stored);
    assert_eq!(store.append(&s, 1000, 2.0), Appended::OutOfOrder);
    assert_eq!(store.append(&s, 500, 2.0), Appended::OutOfOrder);
    assert_eq!(store.append(&s, 2000, stale_marker()), Appended::Stored);
    let series = store.select(&[], 0, 10_000);
    assert_eq!(series[0].points.len(), 2);
    assert!(is_stale_marker(series[0].points[1].v));
    assert_eq!(store.stats().out_of_order, 2);
}

#[test]
fn truncation_frees_old_chunks_and_series_and_the_byte_limit_refuses_new_series() {
    let mut store = WindowStore::new(SelectorFilter::everything(), 60_000, 1 << 20);
    let old = labels(&[("__name__", "old")]);
    let live = labels(&[("__name__", "live")]);
    for i in 0..300 {
        store.append(&old, i * 1000, 1.0);
        store.append(&live, i * 1000, 2.0);
    }
    for i in 300..600 {
        store.append(&live, i * 1000, 2.0);
    }
    let before = store.bytes();
    store.truncate(600_000);
    assert_eq!(store.series_count(), 1, "the series that stopped is gone");
    assert!(store.bytes() < before / 3, "{} of {before}", store.bytes());
    let kept = store.select(&[], 0, i64::MAX);
    assert!(
        kept[0]
            .points
            .iter()
            .all(|p| p.t >= 600_000 - 60_000 - 120_000),
        "whole chunks go"
    );

    drop(kept);
    store.truncate(10_000_000);
    assert_eq!(store.series_count(), 0);
    assert_eq!(store.bytes(), 0, "every byte counted in is counted out");

    let mut tiny = WindowStore::new(SelectorFilter::everything(), 60_000, 1);
    assert_eq!(tiny.append(&old, 0, 1.0), Appended::Stored);
    assert_eq!(tiny.append(&live, 0, 1.0), Appended::OverLimit);
    assert_eq!(
        tiny.append(&old, 1000, 1.0),
        Appended::Stored,
        "known series keep receiving"
    );
}

#[test]
fn series_share_the_texts_of_their_labels_until_the_last_one_goes() {
    let mut store = WindowStore::new(SelectorFilter::everything(), 60_000, usize::MAX);
    let long = "a-long-label-value-that-many-series-share-".repeat(4);
    let first = labels(&[("__name__", "m"), ("shared", &long), ("pod", "a")]);
    store.append(&first, 0, 1.0);
    let one = store.bytes();
    let second = labels(&[("__name__", "m"), ("shared", &long), ("pod", "b")]);
    store.append(&second, 0, 1.0);
    assert!(
        store.bytes() - one < one - long.len(),
        "the second series does not pay for the shared text again: {} then {}",
        one,
        store.bytes()
    );
    // The series answer with their own labels.
    let selected = store.select(&[], 0, 0);
    let pods: Vec<&str> = selected.iter().map(|s| s.labels.get("pod")).collect();
    assert_eq!(pods, ["a", "b"]);
    assert!(selected.iter().all(|s| s.labels.get("shared") == long));
    drop(selected);
    store.truncate(100_000);
    assert_eq!(store.series_count(), 0);
    assert_eq!(
        store.bytes(),
        0,
        "the texts went with the last series using them"
    );
}
