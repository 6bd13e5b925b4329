//! One target's series between scrapes: what turns an exposition body into OTLP metrics.
//!
//! The cache is keyed by each series' raw text (name and label set as the target wrote them),
//! so a series seen before costs a hash lookup and a number parse: no label parsing, no
//! relabelling, no allocation. Only a new series has its labels checked, merged with the
//! target's (`honor_labels`), relabelled (`metric_relabel_configs`) and placed: in a *point*
//! (one OTLP data point: a counter or gauge series, or the buckets, sum, count and `_created`
//! of one histogram or summary label set).
//!
//! A body is ingested whole or not at all ([`TargetSeries::ingest`]): a parse error, or a limit
//! exceeded, fails the scrape as in Prometheus, and the points of the last good scrape are then
//! marked stale. After a good scrape, points that were live and are no longer exposed are marked
//! stale (OTLP's no-recorded-value flag), and their series forgotten.
//!
//! Cumulative points (counters, histograms, summaries) keep their start time from scrape to
//! scrape: `_created` when the target gives it, else the time of the first observation (a point
//! whose start equals its time is a baseline, as OpenTelemetry says of unknown starts); a value
//! that goes down is a reset, and the start moves to just after the previous scrape.
//!
//! Memory per series is its raw text, a 40-byte slot and its point's 64 bytes (shared by the
//! series of one histogram), plus a few bytes of hash table: the tables hold only ids and the
//! labels of a point are derived again from its series' text when it is sent.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

use super::shared_text::shared;
use std::sync::Arc;

use hashbrown::HashTable;
use sextant_pipeline::flow::event::{
    Exemplar, HistogramPoint, KeyValue, Metric, MetricData, Number, NumberPoint, Origin,
    SummaryPoint, Temporality, Text, FLAG_NO_RECORDED_VALUE,
};

use super::relabel::{relabel, Labels, Rule};
use crate::exposition::labels::parse_labels;
use crate::exposition::{Format, Lexer, Line, MetricType, ParseError, SampleRole};

const NO_TIMESTAMP: i64 = i64::MIN;

/// The per-target settings that shape its series.
#[derive(Clone, Debug, Default)]
pub struct SeriesSettings {
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    /// Fails the scrape past this many samples after relabelling; 0 for no limit.
    pub sample_limit: usize,
    pub label_limit: usize,
    pub label_name_length_limit: usize,
    pub label_value_length_limit: usize,
    pub metric_relabel: Arc<[Rule]>,
}

/// Why a body was refused whole.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ScrapeFailure {
    #[error("{0}")]
    Parse(#[from] ParseError),
    #[error("line {line}: {reason}")]
    Series { line: usize, reason: &'static str },
    #[error("{samples} samples after relabelling, over sample_limit {limit}")]
    SampleLimit { samples: usize, limit: usize },
}

impl ScrapeFailure {
    /// The `reason` label of the failure's counter.
    pub fn reason(&self) -> &'static str {
        match self {
            ScrapeFailure::Parse(_) => "parse_error",
            ScrapeFailure::Series { .. } => "invalid_series",
            ScrapeFailure::SampleLimit { .. } => "sample_limit",
        }
    }
}

/// What a good scrape held, for Prometheus's `scrape_*` series and the counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ingested {
    /// Samples in the body (`scrape_samples_scraped`).
    pub scraped: usize,
    /// Samples kept after relabelling (`scrape_samples_post_metric_relabeling`).
    pub post_relabel: usize,
    /// Series not seen in the previous scrape (`scrape_series_added`).
    pub added: usize,
    /// Samples of a series already seen in this body: dropped.
    pub duplicates: usize,
}

/// What a point that could not be sent was, by reason: histograms without `+Inf`, or whose
/// buckets go down, and gauge histograms (which OTLP cannot carry).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    pub histogram_without_inf: usize,
    pub histogram_not_cumulative: usize,
    pub gauge_histogram: usize,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Role {
    Value,
    /// Its bound (`le`) is stored after its text (see [`SeriesSlot`]).
    Bucket,
    /// Its quantile is stored after its text.
    Quantile,
    Sum,
    Count,
    Created,
    /// Dropped by relabelling: remembered so it is not relabelled again.
    Dropped,
}

/// A series: 16 bytes, beside its text in the arena.
struct SeriesSlot {
    /// Where its bytes start in the arena: its raw text (after its length, 4 bytes, when that
    /// is [`LONG`] or more), then, for a bucket or a quantile, its bound as 8 bytes (only those
    /// series pay for one).
    key_at: u32,
    point: u32,
    /// The scrape attempt that last saw it.
    seen: u32,
    /// Its text's length, or [`LONG`] when the arena has it; 0 once the slot is freed.
    key_len: u16,
    role: Role,
}

/// `SeriesSlot::key_len` of a text of 65,535 bytes or more.
const LONG: u16 = u16::MAX;

impl SeriesSlot {
    /// Where its text starts in the arena, and its length.
    fn text(&self, keys: &[u8]) -> (usize, usize) {
        let at = self.key_at as usize;
        if self.key_len != LONG {
            return (at, self.key_len as usize);
        }
        let len = keys
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes);
        (at + 4, len as usize)
    }

    /// Its bytes in the arena: length, text and bound.
    fn stored_len(&self, keys: &[u8]) -> usize {
        let (at, len) = self.text(keys);
        let bound = matches!(self.role, Role::Bucket | Role::Quantile);
        at - self.key_at as usize + len + if bound { 8 } else { 0 }
    }
}

fn key_of<'a>(keys: &'a [u8], slot: &SeriesSlot) -> &'a [u8] {
    let (at, len) = slot.text(keys);
    keys.get(at..at + len).unwrap_or_default()
}

/// The bound of a bucket or quantile series.
fn bound_of(keys: &[u8], slot: &SeriesSlot) -> f64 {
    let (at, len) = slot.text(keys);
    let at = at + len;
    keys.get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(f64::NAN, f64::from_le_bytes)
}

struct Grouped {
    /// (upper bound, cumulative count) of a histogram, (quantile, value) of a summary.
    parts: Vec<(f64, f64)>,
    sum: Option<f64>,
    /// Whether this scrape gave `_count`.
    counted: bool,
}

/// One OTLP data point of each scrape (a counter's, a gauge's, a whole histogram's): 32 bytes.
/// Its time is the scrape's, or the series' own in `explicit_ms`.
struct Point {
    /// The last value (counter, gauge) or count (histogram, summary).
    value: f64,
    start_ms: i64,
    /// Its family, and in the top bit whether the last scrape gave it a value ([`LIVE`]).
    family_live: u32,
    /// A series of this point: its labels (without `le` or `quantile`) are the point's (and
    /// its hash in `groups` is [`TargetSeries::point_hash`] of them).
    repr: u32,
    seen: u32,
    /// A histogram's or summary's parts: its index in `TargetSeries::grouped`, or [`NONE`].
    grouped: u32,
}

const LIVE: u32 = 1 << 31;
const NONE: u32 = u32::MAX;

impl Point {
    fn family(&self) -> u32 {
        self.family_live & !LIVE
    }

    fn live(&self) -> bool {
        self.family_live & LIVE != 0
    }

    fn set_live(&mut self, live: bool) {
        self.family_live = self.family() | if live { LIVE } else { 0 };
    }
}

/// A metric family; its texts are shared with every target that has the same
/// ([`super::shared_text`]).
struct Family {
    name: Arc<str>,
    kind: MetricType,
    help: Arc<str>,
    unit: Arc<str>,
    format: Format,
}

/// The metadata lines in force while reading a body.
#[derive(Default)]
struct Current<'a> {
    name: &'a [u8],
    kind: Option<MetricType>,
    help: &'a [u8],
    unit: &'a [u8],
}

impl<'a> Current<'a> {
    /// The metadata of `family`: what is in force if the lines are still about it, else none.
    fn of(&mut self, family: &'a [u8]) -> &mut Self {
        if self.name != family {
            *self = Current {
                name: family,
                ..Current::default()
            };
        }
        self
    }
}

/// One target's series cache. See the module documentation.
pub struct TargetSeries {
    settings: SeriesSettings,
    /// Target labels (`job`, `instance` and the rest after relabelling), merged into every series.
    target: Labels,
    hasher: foldhash::fast::FixedState,
    index: HashTable<u32>,
    /// The raw texts of the series, one after another (an allocation per series would cost
    /// its header and size-class rounding); compacted when half of it is freed.
    keys: Vec<u8>,
    freed_key_bytes: usize,
    series: Vec<SeriesSlot>,
    free_series: Vec<u32>,
    groups: HashTable<u32>,
    points: Vec<Point>,
    free_points: Vec<u32>,
    families: Vec<Family>,
    attempt: u32,
    /// (series, value, timestamp) of the body being read.
    pending: Vec<(u32, f64, i64)>,
    /// Exemplars of the body being read, by series.
    pending_exemplars: Vec<(u32, crate::exposition::Exemplar)>,
    /// The last exemplar of each series that had one: an exemplar is sent once, when it changes.
    last_exemplars: HashMap<u32, crate::exposition::Exemplar>,
    /// Exemplars to send with the points of this scrape.
    fresh_exemplars: HashMap<u32, Vec<Exemplar>>,
    /// OpenMetrics `_created` of the points of this scrape that had one (ms): few targets
    /// expose it, so it is not a field of every point.
    created_ms: HashMap<u32, f64>,
    /// The parts of the histogram and summary points (`Point::grouped`), and the free ones.
    grouped: Vec<Grouped>,
    free_grouped: Vec<u32>,
    /// The time of the last good scrape (`NO_TIMESTAMP` before one).
    scrape_ms: i64,
    /// The points whose time this scrape, and the one before, was the target's own
    /// (`honor_timestamps`), not the scrape's: few targets give one.
    explicit_ms: HashMap<u32, i64>,
    previous_explicit_ms: HashMap<u32, i64>,
    /// Points in the order the body first gave them.
    order: Vec<u32>,
    scratch: Labels,
}

impl TargetSeries {
    pub fn new(settings: SeriesSettings, target: Labels) -> Self {
        Self {
            settings,
            target,
            hasher: foldhash::fast::FixedState::with_seed(0x5e7_a17),
            index: HashTable::new(),
            keys: Vec::new(),
            freed_key_bytes: 0,
            series: Vec::new(),
            free_series: Vec::new(),
            groups: HashTable::new(),
            points: Vec::new(),
            free_points: Vec::new(),
            families: Vec::new(),
            attempt: 0,
            pending: Vec::new(),
            pending_exemplars: Vec::new(),
            last_exemplars: HashMap::new(),
            fresh_exemplars: HashMap::new(),
            created_ms: HashMap::new(),
            grouped: Vec::new(),
            free_grouped: Vec::new(),
            scrape_ms: NO_TIMESTAMP,
            explicit_ms: HashMap::new(),
            previous_explicit_ms: HashMap::new(),
            order: Vec::new(),
            scratch: Labels::new(),
        }
    }

    /// Series in the cache (dropped ones included): what the target costs in memory.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn hash_bytes(&self, bytes: &[u8]) -> u64 {
        self.hasher.hash_one(bytes)
    }

    /// Reads `body` and, if it is good, makes it the target's current scrape at `now_ms`. On
    /// failure nothing of the body is kept.
    pub fn ingest(
        &mut self,
        body: &[u8],
        format: Format,
        now_ms: i64,
    ) -> Result<Ingested, ScrapeFailure> {
        self.attempt = self.attempt.wrapping_add(1);
        self.pending.clear();
        let result = self.read(body, format);
        if result.is_err() {
            self.pending.clear();
            self.pending_exemplars.clear();
            return result;
        }
        self.commit(now_ms);
        // The samples of a body are needed only while it is read: between scrapes they would
        // cost 24 bytes per series.
        self.pending = Vec::new();
        result
    }

    fn read(&mut self, body: &[u8], format: Format) -> Result<Ingested, ScrapeFailure> {
        let mut lexer = Lexer::new(body, format);
        self.pending.reserve(self.index.len());
        let mut current = Current::default();
        let mut stats = Ingested::default();
        let attempt = self.attempt;
        while let Some(line) = lexer.next_line()? {
            let sample = match line {
                Line::Sample(s) => s,
                Line::Type { family, kind } => {
                    current.of(family).kind = Some(kind);
                    continue;
                }
                Line::Help { family, text } => {
                    current.of(family).help = text;
                    continue;
                }
                Line::Unit { family, unit } => {
                    current.of(family).unit = unit;
                    continue;
                }
                Line::Eof => continue,
            };
            stats.scraped += 1;
            let hash = self.hash_bytes(sample.series);
            let found = self
                .index
                .find(hash, |&id| {
                    key_of(&self.keys, &self.series[id as usize]) == sample.series
                })
                .copied();
            let id = match found {
                Some(id) => id,
                None => {
                    let id = self.add_series(&sample, hash, &current, format, lexer.line())?;
                    if self.series[id as usize].role != Role::Dropped {
                        stats.added += 1;
                    }
                    id
                }
            };
            let slot = &mut self.series[id as usize];
            if slot.seen == attempt {
                stats.duplicates += 1;
                continue;
            }
            slot.seen = attempt;
            if slot.role == Role::Dropped {
                continue;
            }
            stats.post_relabel += 1;
            let ts = match sample.timestamp_ms {
                Some(t) if self.settings.honor_timestamps => t,
                _ => NO_TIMESTAMP,
            };
            self.pending.push((id, sample.value, ts));
            if let Some(text) = sample.exemplar {
                let exemplar =
                    crate::exposition::parse_exemplar(text).ok_or(ScrapeFailure::Series {
                        line: lexer.line(),
                        reason: "an invalid exemplar",
                    })?;
                self.pending_exemplars.push((id, exemplar));
            }
        }
        let limit = self.settings.sample_limit;
        if limit > 0 && stats.post_relabel > limit {
            return Err(ScrapeFailure::SampleLimit {
                samples: stats.post_relabel,
                limit,
            });
        }
        Ok(stats)
    }

    /// A series seen for the first time: checked, relabelled, and placed in its point.
    fn add_series(
        &mut self,
        sample: &crate::exposition::Sample<'_>,
        hash: u64,
        current: &Current<'_>,
        format: Format,
        line: usize,
    ) -> Result<u32, ScrapeFailure> {
        let fail = |reason| ScrapeFailure::Series { line, reason };
        let name_ok = std::str::from_utf8(sample.name)
            .is_ok_and(crate::exposition::labels::valid_metric_name);
        if !name_ok {
            return Err(fail("an invalid metric name"));
        }
        // Checked names (here, and by the lexer in metadata lines) are ASCII.
        let ascii = |name: &[u8]| String::from_utf8_lossy(name).into_owned();
        let (family_name, kind, role) = match current.kind {
            Some(kind) => match kind.role_of(current.name, sample.name, format) {
                Some(role) => (current.name, kind, role),
                None => (sample.name, MetricType::Unknown, SampleRole::Value),
            },
            None => (sample.name, MetricType::Unknown, SampleRole::Value),
        };
        let mut labels = std::mem::take(&mut self.scratch);
        parse_labels(sample.labels, &mut labels).map_err(fail)?;
        let role = match role {
            SampleRole::Value => Role::Value,
            SampleRole::Sum => Role::Sum,
            SampleRole::Count => Role::Count,
            SampleRole::Created => Role::Created,
            SampleRole::Bucket => Role::Bucket,
            SampleRole::Quantile => Role::Quantile,
        };
        let bound = match role {
            Role::Bucket => Some(
                label_number(&labels, "le")
                    .ok_or_else(|| fail("a histogram bucket without a numeric le"))?,
            ),
            Role::Quantile => Some(
                label_number(&labels, "quantile")
                    .ok_or_else(|| fail("a summary quantile without a numeric quantile"))?,
            ),
            _ => None,
        };
        let kept = self.finish_labels(&mut labels, &ascii(sample.name));
        if kept {
            self.check_label_limits(&labels).map_err(fail)?;
        }
        let family = self.family(&ascii(family_name), kind, current, format);
        let point = if kept {
            self.point_for(family, &mut labels)
        } else {
            u32::MAX
        };
        self.scratch = labels;
        let key_at = u32::try_from(self.keys.len()).map_err(|_| fail("too many series"))?;
        let key_len = match u16::try_from(sample.series.len()) {
            Ok(len) if len != LONG => len,
            _ => {
                let len = sample.series.len() as u32;
                self.keys.extend_from_slice(&len.to_le_bytes());
                LONG
            }
        };
        self.keys.extend_from_slice(sample.series);
        if let Some(bound) = bound.filter(|_| kept) {
            self.keys.extend_from_slice(&bound.to_le_bytes());
        }
        let slot = SeriesSlot {
            key_at,
            key_len,
            point,
            role: if kept { role } else { Role::Dropped },
            seen: 0,
        };
        let id = match self.free_series.pop() {
            Some(id) => {
                self.series[id as usize] = slot;
                id
            }
            None => {
                self.series.push(slot);
                (self.series.len() - 1) as u32
            }
        };
        if point != u32::MAX && self.points[point as usize].repr == u32::MAX {
            self.points[point as usize].repr = id;
        }
        let (series, keys, hasher) = (&self.series, &self.keys, &self.hasher);
        self.index.insert_unique(hash, id, |&i| {
            hasher.hash_one(key_of(keys, &series[i as usize]))
        });
        Ok(id)
    }

    /// Merges the target's labels into a series' own and relabels: the point's labels (without
    /// `le` and `quantile`). `false` when relabelling drops the series.
    fn finish_labels(&self, labels: &mut Labels, name: &str) -> bool {
        for (tname, tvalue) in &self.target {
            match labels.iter().position(|(n, _)| n == tname) {
                Some(_) if self.settings.honor_labels => {}
                Some(i) => {
                    let mut exported = format!("exported_{tname}");
                    while labels.iter().any(|(n, _)| *n == exported) {
                        exported.insert_str(0, "exported_");
                    }
                    labels[i].0 = Text::from(exported);
                    labels.push((tname.clone(), tvalue.clone()));
                }
                None => labels.push((tname.clone(), tvalue.clone())),
            }
        }
        if !self.settings.metric_relabel.is_empty() {
            labels.push((Text::from("__name__"), Text::from(name)));
            if !relabel(&self.settings.metric_relabel, labels) {
                return false;
            }
            labels.retain(|(n, _)| n != "__name__");
        }
        true
    }

    fn check_label_limits(&self, labels: &Labels) -> Result<(), &'static str> {
        let s = &self.settings;
        // Counted as Prometheus counts them: with the name.
        if s.label_limit > 0 && labels.len() + 1 > s.label_limit {
            return Err("more labels than label_limit");
        }
        for (n, v) in labels {
            if s.label_name_length_limit > 0 && n.len() > s.label_name_length_limit {
                return Err("a label name longer than label_name_length_limit");
            }
            if s.label_value_length_limit > 0 && v.len() > s.label_value_length_limit {
                return Err("a label value longer than label_value_length_limit");
            }
        }
        Ok(())
    }

    fn family(
        &mut self,
        name: &str,
        kind: MetricType,
        current: &Current<'_>,
        format: Format,
    ) -> u32 {
        let (help, unit) = if current.name == name.as_bytes() {
            (current.help, String::from_utf8_lossy(current.unit))
        } else {
            (&b""[..], Default::default())
        };
        if let Some(i) = self
            .families
            .iter()
            .rposition(|f| *f.name == *name && f.kind == kind && f.format == format)
        {
            let f = &mut self.families[i];
            let help = unescape_help(help);
            if *f.help != *help {
                f.help = shared(&help);
            }
            if *f.unit != *unit {
                f.unit = shared(&unit);
            }
            return i as u32;
        }
        self.families.push(Family {
            name: shared(name),
            kind,
            help: shared(&unescape_help(help)),
            unit: shared(&unit),
            format,
        });
        (self.families.len() - 1) as u32
    }

    fn labels_hash(&self, family: u32, labels: &mut Labels) -> u64 {
        labels.sort_unstable();
        let mut h = self.hasher.build_hasher();
        family.hash(&mut h);
        for (n, v) in labels.iter() {
            if n != "le" && n != "quantile" {
                n.hash(&mut h);
                v.hash(&mut h);
            }
        }
        h.finish()
    }

    /// The point of a new series: the existing one with the same family and labels (another
    /// bucket of a histogram), or a new one.
    fn point_for(&mut self, family: u32, labels: &mut Labels) -> u32 {
        let hash = self.labels_hash(family, labels);
        let kind = self.families[family as usize].kind;
        let grouped = !matches!(
            kind,
            MetricType::Counter
                | MetricType::Gauge
                | MetricType::Unknown
                | MetricType::Info
                | MetricType::StateSet
        );
        let strip = |l: &Labels| -> Vec<(Text, Text)> {
            let mut l: Vec<_> = l
                .iter()
                .filter(|(n, _)| !grouped || (n != "le" && n != "quantile"))
                .cloned()
                .collect();
            l.sort_unstable();
            l
        };
        let wanted = strip(labels);
        let found = self
            .groups
            .find(hash, |&p| {
                let point = &self.points[p as usize];
                point.family() == family && strip(&self.labels_of(point.repr)) == wanted
            })
            .copied();
        if let Some(p) = found {
            return p;
        }
        let parts = if grouped {
            let fresh = Grouped {
                parts: Vec::new(),
                sum: None,
                counted: false,
            };
            match self.free_grouped.pop() {
                Some(g) => {
                    self.grouped[g as usize] = fresh;
                    g
                }
                None => {
                    self.grouped.push(fresh);
                    (self.grouped.len() - 1) as u32
                }
            }
        } else {
            NONE
        };
        let point = Point {
            family_live: family,
            repr: u32::MAX,
            seen: 0,
            value: 0.0,
            start_ms: NO_TIMESTAMP,
            grouped: parts,
        };
        let id = match self.free_points.pop() {
            Some(id) => {
                self.points[id as usize] = point;
                id
            }
            None => {
                self.points.push(point);
                (self.points.len() - 1) as u32
            }
        };
        // The table may grow, rehashing the points in it (all have their series by now).
        let mut groups = std::mem::take(&mut self.groups);
        groups.insert_unique(hash, id, |&p| self.point_hash(p));
        self.groups = groups;
        id
    }

    /// The hash a point has in `groups`: of its family and its series' labels.
    fn point_hash(&self, p: u32) -> u64 {
        let point = &self.points[p as usize];
        self.labels_hash(point.family(), &mut self.labels_of(point.repr))
    }

    /// The final labels of a series (target labels merged, relabelled, sorted).
    fn labels_of(&self, series: u32) -> Labels {
        let mut labels = Labels::new();
        let Some(slot) = self.series.get(series as usize) else {
            return labels;
        };
        let key = key_of(&self.keys, slot);
        let (name, text) = match memchr::memchr(b'{', key) {
            Some(i) => (&key[..i], &key[i + 1..key.len() - 1]),
            None => (key, &b""[..]),
        };
        // Checked when the series was added.
        let _ = parse_labels(text, &mut labels);
        let name = std::str::from_utf8(name).unwrap_or_default().trim_end();
        self.finish_labels(&mut labels, name);
        labels.sort_unstable();
        labels
    }

    fn commit(&mut self, now_ms: i64) {
        let attempt = self.attempt;
        self.order.clear();
        self.created_ms.clear();
        std::mem::swap(&mut self.explicit_ms, &mut self.previous_explicit_ms);
        self.explicit_ms.clear();
        let previous = Previous {
            scrape_ms: self.scrape_ms,
            explicit_ms: &self.previous_explicit_ms,
        };
        for i in 0..self.pending.len() {
            let (series, value, ts) = self.pending[i];
            let slot = &self.series[series as usize];
            let (p, role) = (slot.point, slot.role);
            let point = &mut self.points[p as usize];
            let mut parts = self.grouped.get_mut(point.grouped as usize);
            if point.seen != attempt {
                point.seen = attempt;
                self.order.push(p);
                if let Some(g) = parts.as_deref_mut() {
                    g.parts.clear();
                    g.sum = None;
                    g.counted = false;
                }
            }
            let t = if ts == NO_TIMESTAMP {
                now_ms
            } else {
                self.explicit_ms.insert(p, ts);
                ts
            };
            match role {
                Role::Value => advance(point, value, t, previous.time_of(p)),
                Role::Count => {
                    advance(point, value, t, previous.time_of(p));
                    if let Some(g) = parts {
                        g.counted = true;
                    }
                }
                Role::Sum => {
                    if let Some(g) = parts {
                        g.sum = Some(value);
                    }
                }
                Role::Bucket | Role::Quantile => {
                    if let Some(g) = parts {
                        g.parts.push((bound_of(&self.keys, slot), value));
                    }
                }
                Role::Created => {
                    self.created_ms.insert(p, value * 1000.0);
                }
                Role::Dropped => {}
            }
        }
        self.fresh_exemplars.clear();
        for (series, exemplar) in std::mem::take(&mut self.pending_exemplars) {
            if self.last_exemplars.get(&series) == Some(&exemplar) {
                continue;
            }
            let point = self.series[series as usize].point;
            self.fresh_exemplars
                .entry(point)
                .or_default()
                .push(to_otlp_exemplar(&exemplar, now_ms));
            self.last_exemplars.insert(series, exemplar);
        }
        // Buckets and quantiles in order; a histogram without `_count` takes its `+Inf` bucket.
        for &p in &self.order {
            let point = &mut self.points[p as usize];
            let Some(g) = self.grouped.get_mut(point.grouped as usize) else {
                continue;
            };
            g.parts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let inf = match g.parts.last() {
                Some(&(bound, count)) if !g.counted && bound == f64::INFINITY => Some(count),
                _ => None,
            };
            if let Some(count) = inf {
                advance(point, count, now_ms, previous.time_of(p));
            }
        }
        self.scrape_ms = now_ms;
        self.pending.clear();
    }

    /// The metrics of the last good scrape, then stale markers for points that were live and
    /// are gone (all of them when `failed`), at `now_ms`. Series gone are forgotten.
    pub fn emit(
        &mut self,
        origin: &Arc<Origin>,
        failed: bool,
        now_ms: i64,
        dropped: &mut Dropped,
    ) -> Vec<Metric> {
        let mut out: Vec<Metric> = Vec::new();
        if !failed {
            let order = std::mem::take(&mut self.order);
            for &p in &order {
                self.emit_point(p, origin, &mut out, dropped);
            }
            self.order = order;
        }
        let attempt = self.attempt;
        let mut stale = Vec::new();
        for (id, point) in self.points.iter_mut().enumerate() {
            let gone = failed || point.seen != attempt;
            if point.live() && gone && point.repr != u32::MAX {
                point.set_live(false);
                stale.push(id as u32);
            }
        }
        for p in stale {
            self.emit_stale(p, origin, now_ms, &mut out);
        }
        if !failed {
            self.forget_gone();
        }
        self.order = Vec::new();
        out
    }

    fn metric_for<'a>(
        &self,
        family: u32,
        origin: &Arc<Origin>,
        out: &'a mut Vec<Metric>,
    ) -> &'a mut Metric {
        let f = &self.families[family as usize];
        let name = match (f.kind, f.format) {
            (MetricType::Counter, Format::OpenMetrics) => format!("{}_total", f.name),
            (MetricType::Info, Format::OpenMetrics) => format!("{}_info", f.name),
            _ => f.name.to_string(),
        };
        let reuse = out
            .last()
            .is_some_and(|m| m.name == name && Arc::ptr_eq(&m.origin, origin));
        if !reuse {
            let data = match f.kind {
                MetricType::Counter => MetricData::Sum {
                    points: Vec::new(),
                    temporality: Temporality::Cumulative,
                    monotonic: true,
                },
                MetricType::Histogram | MetricType::GaugeHistogram => MetricData::Histogram {
                    points: Vec::new(),
                    temporality: Temporality::Cumulative,
                },
                MetricType::Summary => MetricData::Summary(Vec::new()),
                _ => MetricData::Gauge(Vec::new()),
            };
            out.push(Metric {
                origin: origin.clone(),
                name,
                description: f.help.to_string(),
                unit: f.unit.to_string(),
                metadata: Vec::new(),
                data: Some(data),
            });
        }
        let len = out.len();
        &mut out[len - 1]
    }

    fn attributes(&self, series: u32) -> Vec<KeyValue> {
        let labels = self.labels_of(series);
        labels
            .into_iter()
            .filter(|(n, v)| {
                n != "le"
                    && n != "quantile"
                    // `job` and `instance` are the resource's (service.name, service.instance.id)
                    // unless the target's own differ (honor_labels).
                    && !((n == "job" || n == "instance")
                        && self.target.iter().any(|(tn, tv)| tn == n && tv == v))
            })
            .map(|(n, v)| KeyValue::new(n, v))
            .collect()
    }

    fn emit_point(
        &mut self,
        p: u32,
        origin: &Arc<Origin>,
        out: &mut Vec<Metric>,
        dropped: &mut Dropped,
    ) {
        let point = &self.points[p as usize];
        let family = point.family();
        let kind = self.families[family as usize].kind;
        let start_ns = match self.created_ms.get(&p) {
            Some(&created) if created.is_finite() => millis_to_nanos(created as i64),
            _ => millis_to_nanos(point.start_ms),
        };
        let time_ns = millis_to_nanos(self.explicit_ms.get(&p).copied().unwrap_or(self.scrape_ms));
        let value = point.value;
        let attributes = self.attributes(point.repr);
        let exemplars = self.fresh_exemplars.remove(&p).unwrap_or_default();
        let point = &self.points[p as usize];
        let data_point = match (kind, self.grouped.get(point.grouped as usize)) {
            (MetricType::GaugeHistogram, _) => {
                dropped.gauge_histogram += 1;
                return;
            }
            (MetricType::Histogram, Some(g)) => match histogram(g) {
                Ok((bucket_counts, explicit_bounds)) => Emitted::Histogram(HistogramPoint {
                    attributes,
                    start_time_unix_nano: start_ns,
                    time_unix_nano: time_ns,
                    count: value.max(0.0) as u64,
                    sum: g.sum,
                    bucket_counts,
                    explicit_bounds,
                    exemplars,
                    ..Default::default()
                }),
                Err(HistogramError::NoInf) => {
                    dropped.histogram_without_inf += 1;
                    return;
                }
                Err(HistogramError::NotCumulative) => {
                    dropped.histogram_not_cumulative += 1;
                    return;
                }
            },
            (MetricType::Summary, Some(g)) => Emitted::Summary(SummaryPoint {
                attributes,
                start_time_unix_nano: start_ns,
                time_unix_nano: time_ns,
                count: value.max(0.0) as u64,
                sum: g.sum.unwrap_or(0.0),
                quantile_values: g.parts.clone(),
                flags: 0,
            }),
            _ => Emitted::Number(NumberPoint {
                attributes,
                start_time_unix_nano: if kind == MetricType::Counter {
                    start_ns
                } else {
                    0
                },
                time_unix_nano: time_ns,
                value: Some(Number::Double(value)),
                exemplars,
                flags: 0,
            }),
        };
        self.points[p as usize].set_live(true);
        let metric = self.metric_for(family, origin, out);
        push_point(metric, data_point);
    }

    fn emit_stale(&mut self, p: u32, origin: &Arc<Origin>, now_ms: i64, out: &mut Vec<Metric>) {
        let point = &self.points[p as usize];
        let family = point.family();
        let kind = self.families[family as usize].kind;
        let start_ns = millis_to_nanos(point.start_ms);
        let attributes = self.attributes(point.repr);
        let time_unix_nano = millis_to_nanos(now_ms);
        let data_point = match kind {
            MetricType::Histogram | MetricType::GaugeHistogram => {
                Emitted::Histogram(HistogramPoint {
                    attributes,
                    start_time_unix_nano: start_ns,
                    time_unix_nano,
                    flags: FLAG_NO_RECORDED_VALUE,
                    ..Default::default()
                })
            }
            MetricType::Summary => Emitted::Summary(SummaryPoint {
                attributes,
                start_time_unix_nano: start_ns,
                time_unix_nano,
                flags: FLAG_NO_RECORDED_VALUE,
                ..Default::default()
            }),
            _ => Emitted::Number(NumberPoint {
                attributes,
                start_time_unix_nano: if kind == MetricType::Counter {
                    start_ns
                } else {
                    0
                },
                time_unix_nano,
                value: None,
                exemplars: Vec::new(),
                flags: FLAG_NO_RECORDED_VALUE,
            }),
        };
        let metric = self.metric_for(family, origin, out);
        push_point(metric, data_point);
    }

    /// After a good scrape: series it did not have are forgotten, and points left without
    /// series.
    fn forget_gone(&mut self) {
        let attempt = self.attempt;
        let series = &mut self.series;
        let free_series = &mut self.free_series;
        let freed = &mut self.freed_key_bytes;
        let keys = &self.keys;
        self.index.retain(|&mut id| {
            let slot = &mut series[id as usize];
            if slot.seen == attempt {
                return true;
            }
            *freed += slot.stored_len(keys);
            slot.key_len = 0;
            free_series.push(id);
            false
        });
        if !self.last_exemplars.is_empty() {
            let series = &self.series;
            self.last_exemplars
                .retain(|&id, _| series.get(id as usize).is_some_and(|s| s.seen == attempt));
        }
        if self.freed_key_bytes > self.keys.len() / 2 {
            self.compact_keys();
        }
        let points = &mut self.points;
        let free_points = &mut self.free_points;
        let (grouped, free_grouped) = (&mut self.grouped, &mut self.free_grouped);
        self.groups.retain(|&mut p| {
            let point = &mut points[p as usize];
            if point.seen == attempt {
                return true;
            }
            point.repr = u32::MAX;
            if let Some(g) = grouped.get_mut(point.grouped as usize) {
                g.parts = Vec::new();
                free_grouped.push(point.grouped);
                point.grouped = NONE;
            }
            free_points.push(p);
            false
        });
        self.shrink_arenas();
        // A point kept may have lost the series that stood for its labels.
        for (id, slot) in self.series.iter().enumerate() {
            if slot.seen == attempt && slot.point != u32::MAX {
                let point = &mut self.points[slot.point as usize];
                if self
                    .series
                    .get(point.repr as usize)
                    .is_none_or(|s| s.seen != attempt)
                {
                    point.repr = id as u32;
                }
            }
        }
    }
}

impl TargetSeries {
    /// Gives back what growth by doubling left unused in the arenas (up to half of each):
    /// a target's series are mostly added at once and then kept for hours. Left alone within
    /// an eighth, so that a target adding a few series each scrape seldom copies them.
    fn shrink_arenas(&mut self) {
        fn shrink<T>(v: &mut Vec<T>) {
            if v.capacity() > v.len() + v.len() / 8 + 16 {
                // Moved to an allocation of their size: `shrink_to_fit` is a `realloc`, which
                // mimalloc answers in place (freeing nothing) unless it halves the block.
                let mut exact = Vec::with_capacity(v.len());
                exact.append(v);
                *v = exact;
            }
        }
        shrink(&mut self.keys);
        shrink(&mut self.series);
        shrink(&mut self.points);
        shrink(&mut self.families);
        shrink(&mut self.order);
    }

    /// Rewrites the key arena without the texts of forgotten series.
    fn compact_keys(&mut self) {
        let mut keys = Vec::with_capacity(self.keys.len() - self.freed_key_bytes);
        for slot in self.series.iter_mut().filter(|s| s.key_len > 0) {
            let at = slot.key_at as usize;
            let new_at = keys.len() as u32;
            let stored = slot.stored_len(&self.keys);
            keys.extend_from_slice(self.keys.get(at..at + stored).unwrap_or_default());
            slot.key_at = new_at;
        }
        self.keys = keys;
        self.freed_key_bytes = 0;
    }
}

/// An OpenMetrics exemplar as OTLP's: `trace_id` and `span_id` (hex) become the ids, other
/// labels the filtered attributes; without its own time, the scrape's.
fn to_otlp_exemplar(e: &crate::exposition::Exemplar, now_ms: i64) -> Exemplar {
    fn hex<const N: usize>(s: &str) -> Option<[u8; N]> {
        if s.len() != 2 * N {
            return None;
        }
        let mut out = [0u8; N];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(out)
    }
    let mut out = Exemplar {
        time_unix_nano: millis_to_nanos(e.timestamp_ms.unwrap_or(now_ms)),
        value: Some(Number::Double(e.value)),
        ..Default::default()
    };
    for (name, value) in &e.labels {
        match name.as_str() {
            "trace_id" if hex::<16>(value).is_some() => out.trace_id = hex::<16>(value),
            "span_id" if hex::<8>(value).is_some() => out.span_id = hex::<8>(value),
            _ => out
                .filtered_attributes
                .push(KeyValue::new(name.clone(), value.clone())),
        }
    }
    out
}

/// When the points' values before this scrape's were taken.
struct Previous<'a> {
    scrape_ms: i64,
    explicit_ms: &'a HashMap<u32, i64>,
}

impl Previous<'_> {
    fn time_of(&self, p: u32) -> i64 {
        self.explicit_ms.get(&p).copied().unwrap_or(self.scrape_ms)
    }
}

/// A new cumulative value at `time_ms`: a reset when it went down (the start moves to just
/// after `previous_ms`, when the value before was taken), the first observation's time as the
/// start otherwise.
fn advance(point: &mut Point, value: f64, time_ms: i64, previous_ms: i64) {
    if point.start_ms == NO_TIMESTAMP {
        point.start_ms = time_ms;
    } else if value < point.value && previous_ms != NO_TIMESTAMP {
        point.start_ms = previous_ms + 1;
    }
    point.value = value;
}

enum Emitted {
    Number(NumberPoint),
    Histogram(HistogramPoint),
    Summary(SummaryPoint),
}

fn push_point(metric: &mut Metric, point: Emitted) {
    match (metric.data.as_mut(), point) {
        (Some(MetricData::Gauge(points)), Emitted::Number(p))
        | (Some(MetricData::Sum { points, .. }), Emitted::Number(p)) => points.push(p),
        (Some(MetricData::Histogram { points, .. }), Emitted::Histogram(p)) => points.push(p),
        (Some(MetricData::Summary(points)), Emitted::Summary(p)) => points.push(p),
        _ => {}
    }
}

enum HistogramError {
    NoInf,
    NotCumulative,
}

/// Cumulative `le` buckets to OTLP's per-bucket counts and bounds (without `+Inf`).
fn histogram(g: &Grouped) -> Result<(Vec<u64>, Vec<f64>), HistogramError> {
    if g.parts.last().is_none_or(|&(b, _)| b != f64::INFINITY) {
        return Err(HistogramError::NoInf);
    }
    let mut counts = Vec::with_capacity(g.parts.len());
    let mut bounds = Vec::with_capacity(g.parts.len().saturating_sub(1));
    let mut previous = 0.0;
    for &(bound, cumulative) in &g.parts {
        if cumulative < previous || cumulative.is_nan() {
            return Err(HistogramError::NotCumulative);
        }
        counts.push((cumulative - previous) as u64);
        previous = cumulative;
        if bound != f64::INFINITY {
            bounds.push(bound);
        }
    }
    Ok((counts, bounds))
}

fn label_number(labels: &Labels, name: &str) -> Option<f64> {
    let v = labels.iter().find(|(n, _)| n == name)?;
    crate::exposition::number::parse_value(v.1.as_bytes())
}

fn unescape_help(text: &[u8]) -> String {
    let s = String::from_utf8_lossy(text);
    if !s.contains('\\') {
        return s.into_owned();
    }
    s.replace("\\n", "\n").replace("\\\\", "\\")
}

fn millis_to_nanos(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000)
}

#[cfg(test)]
#[path = "series_tests.rs"]
mod tests;
