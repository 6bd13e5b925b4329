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
pub mod forward;
pub mod ingest;
pub mod retention;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use promql_parser::label::{MatchOp, Matcher};

use crate::labels::{Labels, METRIC_NAME};
use crate::promql::storage::{matches, Storage};
use crate::promql::value::{Point, Series};
pub use chunk::{Chunk, SealedChunk};
pub use filter::{LabelView, SelectorFilter};
use sextant_pipeline::flow::event::prometheus::push_key_pair;

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
    /// [`hash_key`] of the labels' series key.
    fn label_hash(&self) -> SeriesHash;
    /// The labels, sorted by name.
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)>;
}

impl Incoming for Labels {
    fn label_hash(&self) -> SeriesHash {
        let mut key = Vec::with_capacity(128);
        for label in self.iter() {
            push_key_pair(&mut key, &label.name, &label.value);
        }
        hash_key(&key)
    }
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.iter().map(|l| (&*l.name, &*l.value))
    }
}

/// A series' identity: two independent 64-bit hashes of its labels. A series is found by the
/// first and confirmed by the second, without comparing labels: two label sets agree on 128
/// bits by chance with odds near 2^-128 per pair, far below a memory error, while comparing
/// labels was a third of what an append cost.
pub type SeriesHash = [u64; 2];

/// The identity of a series key (the shared mapping's `push_key_pair` encoding: the same for
/// labels from metrics and from rules), with fixed seeds: the same on every run.
pub fn hash_key(key: &[u8]) -> SeriesHash {
    let mut first = foldhash::fast::FixedState::with_seed(0x005e_7a17).build_hasher();
    let mut second = foldhash::fast::FixedState::with_seed(0x0c0f_fee5).build_hasher();
    first.write(key);
    second.write(key);
    [first.finish(), second.finish()]
}

struct StoredSeries {
    labels: Labels,
    hash: SeriesHash,
    /// Full chunks, oldest first (in a window of minutes, none or one).
    sealed: Vec<SealedChunk>,
    /// The chunk appends go to; its last time is the series' last.
    head: Chunk,
}

impl StoredSeries {
    fn chunk_bytes(&self) -> usize {
        self.sealed.iter().map(SealedChunk::bytes).sum::<usize>()
            + (self.sealed.capacity() - self.sealed.len()) * std::mem::size_of::<SealedChunk>()
            + self.head.bytes()
    }

    fn last_t(&self) -> i64 {
        self.head.last_time()
    }
}

const NO_SERIES: u32 = u32::MAX;

/// The keys of `by_hash` are hashes already: used as they are.
#[derive(Default, Clone, Copy)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// First hash → (second hash, id): a lookup confirms the identity without touching the series.
type ByHash = HashMap<u64, (u64, u32), std::hash::BuildHasherDefault<Prehashed>>;

/// The store.
pub struct WindowStore {
    series: Vec<Option<StoredSeries>>,
    free: Vec<u32>,
    /// Hash → id; a second series with a hash already taken lives in `collisions`.
    by_hash: ByHash,
    collisions: HashMap<u64, Vec<u32>>,
    by_name: HashMap<String, Vec<u32>>,
    filter: SelectorFilter,
    retention_ms: i64,
    max_bytes: usize,
    /// Bytes of series and chunks; the texts of labels are in `strings`.
    bytes: usize,
    strings: Strings,
    stats: WindowStats,
    /// The id `find` tries first.
    next_guess: u32,
}

impl std::fmt::Debug for WindowStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowStore")
            .field("series", &self.series_count())
            .field("bytes", &self.bytes)
            .finish()
    }
}

/// Bytes a series costs besides its chunks and the texts of its labels (shared, see
/// [`Strings`]): its label list, its slot and index entries.
fn series_overhead(labels: &Labels) -> usize {
    labels.len() * std::mem::size_of::<crate::labels::Label>()
        + std::mem::size_of::<Option<StoredSeries>>()
        + 2 * (std::mem::size_of::<u64>() + std::mem::size_of::<u32>() + 16)
}

/// The texts of the stored series' label names and values, each held once: a window's series
/// share most of them (names, jobs, namespaces, a pod's name across its metrics), and a text
/// no series uses any more is dropped by a sweep once enough series have gone.
#[derive(Default)]
struct Strings {
    set: std::collections::HashSet<Arc<str>, foldhash::fast::RandomState>,
    bytes: usize,
    /// Series removed since the last sweep.
    removed: usize,
}

impl Strings {
    /// Bytes a text costs: its own, the shared count's header, its slot in the set.
    fn cost(text: &str) -> usize {
        text.len() + 16 + std::mem::size_of::<Arc<str>>()
    }

    fn intern(&mut self, text: &str) -> Arc<str> {
        if let Some(shared) = self.set.get(text) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(text);
        self.bytes += Self::cost(text);
        self.set.insert(shared.clone());
        shared
    }

    /// Drops texts only the set holds, once a quarter as many series as there are texts went.
    fn sweep_if_due(&mut self) {
        if self.removed * 4 < self.set.len() {
            return;
        }
        self.removed = 0;
        let mut freed = 0;
        self.set.retain(|text| {
            let used = Arc::strong_count(text) > 1;
            if !used {
                freed += Self::cost(text);
            }
            used
        });
        self.bytes -= freed;
        self.set.shrink_to_fit();
    }
}

impl WindowStore {
    pub fn new(filter: SelectorFilter, retention_ms: i64, max_bytes: usize) -> Self {
        Self {
            series: Vec::new(),
            free: Vec::new(),
            by_hash: ByHash::default(),
            collisions: HashMap::new(),
            by_name: HashMap::new(),
            filter,
            retention_ms,
            max_bytes,
            bytes: 0,
            strings: Strings::default(),
            stats: WindowStats::default(),
            next_guess: 0,
        }
    }

    pub fn stats(&self) -> &WindowStats {
        &self.stats
    }

    /// Bytes held (chunks, labels, indexes), as counted against `max_bytes`.
    pub fn bytes(&self) -> usize {
        self.bytes + self.strings.bytes
    }

    /// Bytes of chunks: encoded samples, each chunk's first sample and times, the head
    /// chunks' append state and spare room.
    pub fn chunk_bytes(&self) -> usize {
        self.series
            .iter()
            .flatten()
            .map(StoredSeries::chunk_bytes)
            .sum()
    }

    /// Bytes of encoded samples alone (without any chunk's fixed fields or spare room).
    pub fn encoded_bytes(&self) -> usize {
        self.series
            .iter()
            .flatten()
            .map(|s| {
                s.sealed
                    .iter()
                    .map(SealedChunk::encoded_bytes)
                    .sum::<usize>()
                    + s.head.encoded_bytes()
            })
            .sum()
    }

    /// Chunks held: sealed and head.
    pub fn chunk_count(&self) -> usize {
        self.series
            .iter()
            .flatten()
            .map(|s| s.sealed.len() + 1)
            .sum()
    }

    pub fn series_count(&self) -> usize {
        self.series.len() - self.free.len()
    }

    pub fn sample_count(&self) -> usize {
        self.series
            .iter()
            .flatten()
            .map(|s| {
                s.sealed
                    .iter()
                    .map(|c| usize::from(c.count()))
                    .sum::<usize>()
                    + usize::from(s.head.count())
            })
            .sum()
    }

    /// Replaces the filter (the rules changed); series already stored stay until they age out.
    pub fn set_filter(&mut self, filter: SelectorFilter, retention_ms: i64) {
        self.filter = filter;
        self.retention_ms = retention_ms;
    }

    /// The series with `hash`. The one after the last series found is tried first: sources
    /// send a target's series in the same order every time, so runs of appends walk the
    /// series in the order they were created and skip the index (whose random reads missed
    /// the cache on most appends).
    fn find(&mut self, hash: SeriesHash) -> Option<u32> {
        let guess = self.next_guess as usize;
        if let Some(Some(series)) = self.series.get(guess) {
            if series.hash == hash {
                self.next_guess = self.next_guess.saturating_add(1);
                return Some(guess as u32);
            }
        }
        let id = self.find_indexed(hash)?;
        self.next_guess = id.saturating_add(1);
        Some(id)
    }

    fn find_indexed(&self, hash: SeriesHash) -> Option<u32> {
        let &(check, id) = self.by_hash.get(&hash[0])?;
        if check == hash[1] {
            return Some(id);
        }
        let same = |id: &u32| {
            self.series[*id as usize]
                .as_ref()
                .is_some_and(|s| s.hash == hash)
        };
        self.collisions.get(&hash[0])?.iter().copied().find(same)
    }

    /// Appends one sample.
    pub fn append(&mut self, incoming: &impl Incoming, t: i64, v: f64) -> Appended {
        let hash = incoming.label_hash();
        let Some(id) = self.find(hash) else {
            if !self.filter.may_admit_name(incoming.value(METRIC_NAME))
                || !self.filter.admits(incoming)
            {
                self.stats.not_selected += 1;
                return Appended::NotSelected;
            }
            if self.bytes() >= self.max_bytes {
                self.stats.over_limit += 1;
                return Appended::OverLimit;
            }
            let pairs: Vec<(Arc<str>, Arc<str>)> = incoming
                .pairs()
                .map(|(name, value)| (self.strings.intern(name), self.strings.intern(value)))
                .collect();
            self.create(Labels::from_pairs(pairs), hash, t, v);
            self.stats.appended += 1;
            return Appended::Stored;
        };
        let Some(series) = self.series[id as usize].as_mut() else {
            return Appended::NotSelected;
        };
        if t <= series.last_t() {
            self.stats.out_of_order += 1;
            return Appended::OutOfOrder;
        }
        if series.head.full_for(t).is_none() {
            let before = series.head.bytes();
            series.head.append(t, v);
            self.bytes = self.bytes + series.head.bytes() - before;
        } else {
            let before = series.chunk_bytes();
            let full = std::mem::replace(&mut series.head, Chunk::new(t, v));
            series.sealed.reserve_exact(1);
            series.sealed.push(full.seal());
            self.bytes = self.bytes + series.chunk_bytes() - before;
        }
        self.stats.appended += 1;
        Appended::Stored
    }

    fn create(&mut self, labels: Labels, hash: SeriesHash, t: i64, v: f64) -> u32 {
        let name = labels.metric_name().to_string();
        let stored = StoredSeries {
            labels,
            hash,
            sealed: Vec::new(),
            head: Chunk::new(t, v),
        };
        self.bytes += series_overhead(&stored.labels) + stored.chunk_bytes();
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
        match self.by_hash.entry(hash[0]) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert((hash[1], id));
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.collisions.entry(hash[0]).or_default().push(id);
            }
        }
        self.by_name.entry(name).or_default().push(id);
        self.stats.series_created += 1;
        self.next_guess = id.saturating_add(1);
        id
    }

    /// Drops what is older than the window at `now`: sealed chunks that ended before it, and
    /// series whose last sample is before it.
    pub fn truncate(&mut self, now: i64) {
        let horizon = now - self.retention_ms;
        let mut emptied = Vec::new();
        for (id, slot) in self.series.iter_mut().enumerate() {
            let Some(series) = slot else { continue };
            if series.last_t() < horizon {
                emptied.push(id as u32);
                continue;
            }
            let keep_from = series
                .sealed
                .iter()
                .position(|c| c.last_time() >= horizon)
                .unwrap_or(series.sealed.len());
            if keep_from > 0 {
                let before = series.chunk_bytes();
                series.sealed.drain(..keep_from);
                series.sealed.shrink_to_fit();
                self.bytes -= before - series.chunk_bytes();
            }
        }
        for id in emptied {
            self.remove(id);
        }
        self.strings.sweep_if_due();
    }

    fn remove(&mut self, id: u32) {
        let Some(series) = self.series[id as usize].take() else {
            return;
        };
        self.bytes -= series_overhead(&series.labels) + series.chunk_bytes();
        if self
            .by_hash
            .get(&series.hash[0])
            .is_some_and(|&(_, first)| first == id)
        {
            // A colliding series, if any, takes the main slot.
            match self.collisions.get_mut(&series.hash[0]).and_then(Vec::pop) {
                Some(next) => {
                    let check = self.series[next as usize].as_ref().map_or(0, |s| s.hash[1]);
                    self.by_hash.insert(series.hash[0], (check, next));
                }
                None => {
                    self.by_hash.remove(&series.hash[0]);
                }
            }
        } else if let Some(ids) = self.collisions.get_mut(&series.hash[0]) {
            ids.retain(|&i| i != id);
        }
        if self
            .collisions
            .get(&series.hash[0])
            .is_some_and(Vec::is_empty)
        {
            self.collisions.remove(&series.hash[0]);
        }
        if let Some(ids) = self.by_name.get_mut(series.labels.metric_name()) {
            ids.retain(|&i| i != id);
            if ids.is_empty() {
                self.by_name.remove(series.labels.metric_name());
            }
        }
        self.free.push(id);
        self.stats.series_removed += 1;
        self.strings.removed += 1;
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
            if series.last_t() < mint || !matchers.iter().all(|m| matches(m, &series.labels)) {
                continue;
            }
            let mut points: Vec<Point> = Vec::new();
            for chunk in &series.sealed {
                chunk.decode_into(mint, maxt, &mut points);
            }
            series.head.decode_into(mint, maxt, &mut points);
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
