//! The scraper's parse path on one core, on a real node_exporter 1.5 exposition
//! (`benches/data/node_exporter.prom`, captured from Debian's package): throughput in samples.
//!
//! - `lexer`: the line reader alone (what every sample costs before the cache);
//! - `ingest_cached`: a scrape of a target already seen (series cache hits: lookup and value);
//! - `ingest_and_emit`: the same plus building the OTLP metrics sent downstream.
//!
//! Before the timings it prints the memory the series cache holds per series, counted by a
//! counting allocator around mimalloc.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sextant_agent::exposition::{Format, Lexer, Line};
use sextant_agent::sources::prometheus_scrape::series::{Dropped, SeriesSettings, TargetSeries};
use sextant_pipeline::flow::event::{Origin, Text};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to mimalloc unchanged; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const BODY: &[u8] = include_bytes!("data/node_exporter.prom");

fn samples() -> u64 {
    let mut lexer = Lexer::new(BODY, Format::Text);
    let mut n = 0;
    while let Some(line) = lexer.next_line().unwrap() {
        if matches!(line, Line::Sample(_)) {
            n += 1;
        }
    }
    n
}

fn target() -> Vec<(Text, Text)> {
    vec![
        (Text::from("job"), Text::from("node")),
        (Text::from("instance"), Text::from("10.0.12.7:9100")),
    ]
}

fn memory_per_series() {
    let before = LIVE.load(Ordering::Relaxed);
    let mut series = TargetSeries::new(SeriesSettings::default(), target());
    series.ingest(BODY, Format::Text, 1).unwrap();
    let _ = series.emit(
        &Arc::new(Origin::default()),
        false,
        1,
        &mut Dropped::default(),
    );
    series.ingest(BODY, Format::Text, 2).unwrap();
    let held = LIVE.load(Ordering::Relaxed) - before;
    eprintln!(
        "series cache: {} series, {} bytes held, {:.0} bytes per series",
        series.len(),
        held,
        held as f64 / series.len() as f64
    );
    drop(series);
}

fn exposition(c: &mut Criterion) {
    memory_per_series();
    let n = samples();
    let mut group = c.benchmark_group("exposition");
    group.throughput(Throughput::Elements(n));
    group.bench_function("lexer", |b| {
        b.iter(|| {
            let mut lexer = Lexer::new(BODY, Format::Text);
            let mut sum = 0.0;
            while let Some(line) = lexer.next_line().unwrap() {
                if let Line::Sample(s) = line {
                    sum += s.value;
                }
            }
            sum
        })
    });
    let mut series = TargetSeries::new(SeriesSettings::default(), target());
    series.ingest(BODY, Format::Text, 1).unwrap();
    let mut now = 1;
    group.bench_function("ingest_cached", |b| {
        b.iter(|| {
            now += 1;
            series.ingest(BODY, Format::Text, now).unwrap()
        })
    });
    let origin = Arc::new(Origin::default());
    group.bench_function("ingest_and_emit", |b| {
        b.iter(|| {
            now += 1;
            series.ingest(BODY, Format::Text, now).unwrap();
            series.emit(&origin, false, now, &mut Dropped::default())
        })
    });
    group.finish();
}

criterion_group!(benches, exposition);
criterion_main!(benches);
