//! The window store: the recent samples of only the series some rule can read, for as long as
//! the rules look back, compressed (see `chunk`), bounded in bytes.
//!
//! - Admission: a series is stored only if a rule's selector can match it (`filter`);
//!   everything else passes by untouched and is counted.
//! - Appends are in time order per series; an older or equal timestamp is counted and dropped
//!   (as a TSDB rejects out-of-order samples). Stale markers are stored like any value.
//! - `truncate(now)` drops chunks that ended before `now - retention` and series with nothing
//!   left; the collector calls it every evaluation.
//! - Over `max_bytes`, new series are refused (counted); known series keep receiving samples,
//!   and truncation makes room again.
//!
//! Reads go through [`Storage`]: series are found by metric name when a matcher names one.

mod chunk;
pub mod filter;
pub mod ingest;
pub mod retention;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use promql_parser::label::{MatchOp, Matcher};

use crate::labels::{Labels, METRIC_NAME};
use crate::promql::storage::{matches, Storage};
use crate::promql::value::{Point, Series};
pub use chunk::Chunk;
pub use filter::{LabelView, SelectorFilter};

/// Counters of what the store did with what it was given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WindowStats {
    pub appended: u64,
    pub out_of_order: u64,
    /// Samples of series no rule can read.
    pub not_selected: u64,
    /// Samples of new series refused because the store was full.
    pub over_limit: u64,
    pub series_created: u64,
    pub series_removed: u64,
}

/// What happened to one sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Appended {
    Stored,
    OutOfOrder,
    NotSelected,
    OverLimit,
}

/// A series arriving: labels readable without allocating, built only for a new series.
pub trait Incoming: LabelView {
    /// [`hash_labels`] of the labels.
    fn label_hash(&self) -> u64;
    fn same_as(&self, labels: &Labels) -> bool;
    fn to_labels(&self) -> Labels;
}

impl Incoming for Labels {
    fn label_hash(&self) -> u64 {
        hash_labels(self.iter().map(|l| (l.name.as_str(), l.value.as_str())))
    }
    fn same_as(&self, labels: &Labels) -> bool {
        self == labels
    }
    fn to_labels(&self) -> Labels {
        self.clone()
    }
}

/// The hash of a label set given as pairs sorted by name (a fixed seed: the same on every
/// run and for every caller).
pub fn hash_labels<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut hasher = foldhash::fast::FixedState::with_seed(0x005e_7a17).build_hasher();
    for (name, value) in pairs {
        hasher.write(name.as_bytes());
        hasher.write_u8(0xff);
        hasher.write(value.as_bytes());
        hasher.write_u8(0xfe);
    }
    hasher.finish()
}

struct StoredSeries {
    labels: Labels,
    hash: u64,
    chunks: Vec<Chunk>,
    last_t: i64,
}

const NO_SERIES: u32 = u32::MAX;

/// The store.
pub struct WindowStore {
    series: Vec<Option<StoredSeries>>,
    free: Vec<u32>,
    /// Hash → ids (a collision keeps both).
    by_hash: HashMap<u64, Vec<u32>>,
    by_name: HashMap<String, Vec<u32>>,
    filter: SelectorFilter,
    retention_ms: i64,
    max_bytes: usize,
    bytes: usize,
    stats: WindowStats,
}

impl std::fmt::Debug for WindowStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowStore")
            .field("series", &self.series_count())
            .field("bytes", &self.bytes)
            .finish()
    }
}

/// Bytes a series costs besides its chunks: its labels, its slot and index entries.
fn series_overhead(labels: &Labels) -> usize {
    let text: usize = labels.iter().map(|l| l.name.len() + l.value.len()).sum();
    text + labels.len() * std::mem::size_of::<crate::labels::Label>()
        + std::mem::size_of::<Option<StoredSeries>>()
        + 2 * (std::mem::size_of::<u64>() + std::mem::size_of::<u32>() + 16)
}

impl WindowStore {
    pub fn new(filter: SelectorFilter, retention_ms: i64, max_bytes: usize) -> Self {
        Self {
            series: Vec::new(),
            free: Vec::new(),
            by_hash: HashMap::new(),
            by_name: HashMap::new(),
            filter,
            retention_ms,
            max_bytes,
            bytes: 0,
            stats: WindowStats::default(),
        }
    }

    pub fn stats(&self) -> &WindowStats {
        &self.stats
    }

    /// Bytes held (chunks, labels, indexes), as counted against `max_bytes`.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Bytes of compressed samples alone.
    pub fn sample_bytes(&self) -> usize {
        self.series
            .iter()
            .flatten()
            .flat_map(|s| &s.chunks)
            .map(Chunk::bytes)
            .sum()
    }

    pub fn series_count(&self) -> usize {
        self.series.len() - self.free.len()
    }

    pub fn sample_count(&self) -> usize {
        self.series
            .iter()
            .flatten()
            .flat_map(|s| &s.chunks)
            .map(|c| usize::from(c.count()))
            .sum()
    }

    /// Replaces the filter (the rules changed); series already stored stay until they age out.
    pub fn set_filter(&mut self, filter: SelectorFilter, retention_ms: i64) {
        self.filter = filter;
        self.retention_ms = retention_ms;
    }

    fn find(&self, incoming: &impl Incoming, hash: u64) -> Option<u32> {
        self.by_hash.get(&hash)?.iter().copied().find(|&id| {
            self.series[id as usize]
                .as_ref()
                .is_some_and(|s| incoming.same_as(&s.labels))
        })
    }

    /// Appends one sample.
    pub fn append(&mut self, incoming: &impl Incoming, t: i64, v: f64) -> Appended {
        let hash = incoming.label_hash();
        let id = match self.find(incoming, hash) {
            Some(id) => id,
            None => {
                if !self.filter.may_admit_name(incoming.value(METRIC_NAME))
                    || !self.filter.admits(incoming)
                {
                    self.stats.not_selected += 1;
                    return Appended::NotSelected;
                }
                if self.bytes >= self.max_bytes {
                    self.stats.over_limit += 1;
                    return Appended::OverLimit;
                }
                self.create(incoming.to_labels(), hash)
            }
        };
        let Some(series) = self.series[id as usize].as_mut() else {
            return Appended::NotSelected;
        };
        if t <= series.last_t {
            self.stats.out_of_order += 1;
            return Appended::OutOfOrder;
        }
        match series.chunks.last_mut() {
            Some(chunk) if !chunk.is_full() => {
                let before = chunk.bytes();
                series.last_t = chunk.append(t, v);
                self.bytes = self.bytes + chunk.bytes() - before;
            }
            last => {
                if let Some(full) = last {
                    let before = full.bytes();
                    full.shrink();
                    self.bytes -= before - full.bytes();
                }
                let chunk = Chunk::new(t, v);
                series.last_t = t;
                self.bytes += chunk.bytes();
                series.chunks.push(chunk);
            }
        }
        self.stats.appended += 1;
        Appended::Stored
    }

    fn create(&mut self, labels: Labels, hash: u64) -> u32 {
        self.bytes += series_overhead(&labels);
        let name = labels.metric_name().to_string();
        let stored = StoredSeries {
            labels,
            hash,
            chunks: Vec::new(),
            last_t: i64::MIN,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.series[id as usize] = Some(stored);
                id
            }
            None => {
                self.series.push(Some(stored));
                u32::try_from(self.series.len() - 1).unwrap_or(NO_SERIES)
            }
        };
        self.by_hash.entry(hash).or_default().push(id);
        self.by_name.entry(name).or_default().push(id);
        self.stats.series_created += 1;
        id
    }

    /// Drops what is older than the window at `now`.
    pub fn truncate(&mut self, now: i64) {
        let horizon = now - self.retention_ms;
        let mut emptied = Vec::new();
        for (id, slot) in self.series.iter_mut().enumerate() {
            let Some(series) = slot else { continue };
            let keep_from = series
                .chunks
                .iter()
                .position(|c| c.last_time() >= horizon)
                .unwrap_or(series.chunks.len());
            if keep_from > 0 {
                let freed: usize = series.chunks[..keep_from].iter().map(Chunk::bytes).sum();
                series.chunks.drain(..keep_from);
                self.bytes -= freed;
            }
            if series.chunks.is_empty() && series.last_t < horizon {
                emptied.push(id as u32);
            }
        }
        for id in emptied {
            self.remove(id);
        }
    }

    fn remove(&mut self, id: u32) {
        let Some(series) = self.series[id as usize].take() else {
            return;
        };
        self.bytes -= series_overhead(&series.labels);
        if let Some(ids) = self.by_hash.get_mut(&series.hash) {
            ids.retain(|&i| i != id);
            if ids.is_empty() {
                self.by_hash.remove(&series.hash);
            }
        }
        if let Some(ids) = self.by_name.get_mut(series.labels.metric_name()) {
            ids.retain(|&i| i != id);
            if ids.is_empty() {
                self.by_name.remove(series.labels.metric_name());
            }
        }
        self.free.push(id);
        self.stats.series_removed += 1;
    }

    fn candidates(&self, matchers: &[Matcher]) -> Box<dyn Iterator<Item = &StoredSeries> + '_> {
        let name = matchers
            .iter()
            .find(|m| m.name == METRIC_NAME && m.op == MatchOp::Equal);
        match name {
            Some(m) => Box::new(
                self.by_name
                    .get(&m.value)
                    .into_iter()
                    .flatten()
                    .filter_map(|&id| self.series[id as usize].as_ref()),
            ),
            None => Box::new(self.series.iter().flatten()),
        }
    }
}

impl Storage for WindowStore {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Series> {
        let mut out = Vec::new();
        for series in self.candidates(matchers) {
            if series.last_t < mint || !matchers.iter().all(|m| matches(m, &series.labels)) {
                continue;
            }
            let mut points: Vec<Point> = Vec::new();
            for chunk in &series.chunks {
                chunk.decode_into(mint, maxt, &mut points);
            }
            if !points.is_empty() {
                out.push(Series {
                    labels: series.labels.clone(),
                    points,
                });
            }
        }
        out
    }
}

impl crate::evaluator::RuleStore for WindowStore {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) {
        WindowStore::append(self, labels, t, v);
    }
}

#[cfg(test)]
mod tests;
