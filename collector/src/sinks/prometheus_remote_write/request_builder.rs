//! Pure: a batch of metrics in, remote-write requests out, in shards.
//!
//! - Every metric goes through the shared Prometheus mapping
//!   ([`sextant_pipeline::flow::event::prometheus`]): the same names and labels a rule or the
//!   exporter sees; stale points become Prometheus's stale NaN.
//! - A series' samples in the batch are gathered into one entry in time order. Two samples of
//!   one series at the same millisecond (Prometheus would refuse the whole request) keep the
//!   last one received; the others are counted (`duplicate_sample`).
//! - Series are hashed to shards (at most `shards`, no more than the batch's samples fill at
//!   `max_samples_per_send` each): a shard's requests go in order, shards in parallel, and a
//!   batch waits for the one before, so each series stays in time order at the receiver.
//! - A request holds at most `max_samples_per_send` samples and the metadata (type, help,
//!   unit) of the families it carries; it is snappy-compressed (block format), as remote write
//!   1.0 says.
//! - What the mapping cannot represent (delta temporality, points without a value) is counted
//!   and left out.

use std::collections::HashMap;
use std::hash::BuildHasher as _;

use bytes::Bytes;

use sextant_pipeline::flow::event::prometheus::{family, for_each_sample, FamilyType, Unmapped};
use sextant_pipeline::flow::event::{Metric, MetricData};

use super::wire;

/// One remote-write request: its snappy body and what it carries.
#[derive(Clone, Debug)]
pub struct RemoteWrite {
    pub body: Bytes,
    pub samples: usize,
    pub series: usize,
}

/// How requests are cut.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_samples_per_send: usize,
    pub shards: usize,
}

#[derive(Debug, Default, PartialEq)]
pub struct BuildStats {
    pub duplicate_samples: u64,
    pub unmapped: Unmapped,
    /// Requests snappy could not compress (over its 4 GiB bound; never at sane limits).
    pub uncompressible: u64,
}

struct Family {
    name: String,
    kind: FamilyType,
    help: String,
    unit: String,
}

struct Series {
    /// Its series key in `Gathered::keys`.
    key: std::ops::Range<usize>,
    /// Its labels as remote write encodes them, in `Gathered::labels`.
    labels: std::ops::Range<usize>,
    family: u32,
    /// The hash of its key (for the index, and its shard).
    hash: u64,
}

/// A batch's series and samples, before they are cut into requests.
#[derive(Default)]
struct Gathered {
    keys: Vec<u8>,
    labels: Vec<u8>,
    series: Vec<Series>,
    /// (series, time, value) in the order received.
    samples: Vec<(u32, i64, f64)>,
    families: Vec<Family>,
}

fn gather(metrics: &[Metric], stats: &mut BuildStats) -> Gathered {
    let mut g = Gathered::default();
    let points: usize = metrics
        .iter()
        .map(|m| m.data.as_ref().map_or(0, MetricData::point_count))
        .sum();
    g.samples.reserve(points);
    g.series.reserve(points);
    // Series ids by the hash of their key; the keys themselves are in `g.keys`.
    let mut index: hashbrown::HashTable<u32> = hashbrown::HashTable::with_capacity(points);
    let hasher = foldhash::fast::FixedState::with_seed(7);
    let mut families: HashMap<String, u32> = HashMap::new();
    for metric in metrics {
        let family_id = match family(metric) {
            Some((name, kind)) => {
                let next = g.families.len() as u32;
                *families.entry(name.clone()).or_insert_with(|| {
                    g.families.push(Family {
                        name,
                        kind,
                        help: metric.description.clone(),
                        unit: metric.unit.clone(),
                    });
                    next
                })
            }
            None => u32::MAX,
        };
        let unmapped = for_each_sample(metric, |labels, t, v| {
            let key = labels.key();
            let hash = hasher.hash_one(key);
            let (keys, series) = (&g.keys, &g.series);
            let found = index.find(hash, |&id| &keys[series[id as usize].key.clone()] == key);
            let id = match found {
                Some(&id) => id,
                None => {
                    let id = g.series.len() as u32;
                    let (start, labels_start) = (g.keys.len(), g.labels.len());
                    if id == 0 {
                        // Room for as many series as points, each like the first (a batch's
                        // series are mostly new to it): growing the arenas would copy them.
                        g.keys.reserve(points * (key.len() + key.len() / 4));
                        g.labels.reserve(points * (key.len() * 3 / 2));
                    }
                    g.keys.extend_from_slice(key);
                    wire::push_labels(&mut g.labels, labels.pair_bytes());
                    g.series.push(Series {
                        key: start..g.keys.len(),
                        labels: labels_start..g.labels.len(),
                        family: family_id,
                        hash,
                    });
                    let series = &g.series;
                    index.insert_unique(hash, id, |&id| series[id as usize].hash);
                    id
                }
            };
            g.samples.push((id, t, v));
        });
        stats.unmapped.delta += unmapped.delta;
        stats.unmapped.no_value += unmapped.no_value;
    }
    g
}

/// Each series' samples together, in time order, one per millisecond (the last received).
/// Returns where each series' samples start in the returned list (and the end, last).
fn by_series(g: &Gathered, stats: &mut BuildStats) -> (Vec<(i64, f64)>, Vec<usize>) {
    let mut starts = vec![0usize; g.series.len() + 1];
    for &(s, _, _) in &g.samples {
        starts[s as usize + 1] += 1;
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    let mut next = starts.clone();
    let mut out = vec![(0i64, 0f64); g.samples.len()];
    for &(s, t, v) in &g.samples {
        out[next[s as usize]] = (t, v);
        next[s as usize] += 1;
    }
    // Sort and de-duplicate each series in place, compacting as we go.
    let mut write = 0;
    let mut kept_starts = Vec::with_capacity(starts.len());
    for s in 0..g.series.len() {
        kept_starts.push(write);
        let run = &mut out[starts[s]..starts[s + 1]];
        if !run.windows(2).all(|w| w[0].0 < w[1].0) {
            run.sort_by_key(|&(t, _)| t); // stable: the last received stays last
        }
        let (begin, end) = (starts[s], starts[s + 1]);
        for i in begin..end {
            let sample = out[i];
            if i + 1 < end && out[i + 1].0 == sample.0 {
                stats.duplicate_samples += 1;
                continue;
            }
            out[write] = sample;
            write += 1;
        }
    }
    kept_starts.push(write);
    out.truncate(write);
    (out, kept_starts)
}

/// A request being filled.
struct Open {
    proto: Vec<u8>,
    samples: usize,
    series: usize,
    families: Vec<u32>,
}

impl Open {
    fn new(bytes: usize) -> Self {
        Self {
            proto: Vec::with_capacity(bytes),
            samples: 0,
            series: 0,
            families: Vec::new(),
        }
    }
}

/// The requests of one batch, grouped by shard (see the module doc).
pub fn build(metrics: &[Metric], limits: &Limits, stats: &mut BuildStats) -> Vec<Vec<RemoteWrite>> {
    let g = gather(metrics, stats);
    let (samples, starts) = by_series(&g, stats);
    let per_request = limits.max_samples_per_send.max(1);
    let shards = samples
        .len()
        .div_ceil(per_request)
        .clamp(1, limits.shards.max(1));
    let mut shard_of: Vec<Vec<u32>> = vec![Vec::new(); shards];
    for (i, series) in g.series.iter().enumerate() {
        // The high bits: the table used the low ones.
        let shard = ((series.hash >> 32) % shards as u64) as usize;
        shard_of[shard].push(i as u32);
    }
    // Room for a full request: its share of the labels and samples, plus metadata.
    let per_sample = (g.labels.len() + 24 * samples.len()) / samples.len().max(1) + 8;
    let request_bytes = per_request.min(samples.len()) * per_sample + 4096;
    let mut groups = Vec::with_capacity(shards);
    let mut in_request = vec![u32::MAX; g.families.len()];
    let mut request_no = 0u32;
    for members in shard_of {
        let mut group = Vec::new();
        let mut open = Open::new(request_bytes);
        for s in members {
            let series = &g.series[s as usize];
            let labels = &g.labels[series.labels.clone()];
            let mut rest = &samples[starts[s as usize]..starts[s as usize + 1]];
            while !rest.is_empty() {
                let room = per_request - open.samples;
                let (now, later) = rest.split_at(room.min(rest.len()));
                wire::push_series(&mut open.proto, labels, now);
                open.samples += now.len();
                open.series += 1;
                if let Some(seen) = in_request.get_mut(series.family as usize) {
                    if *seen != request_no {
                        *seen = request_no;
                        open.families.push(series.family);
                    }
                }
                rest = later;
                if open.samples >= per_request {
                    group.extend(finish(
                        std::mem::replace(&mut open, Open::new(request_bytes)),
                        &g,
                        stats,
                    ));
                    request_no += 1;
                }
            }
        }
        if open.samples > 0 {
            group.extend(finish(open, &g, stats));
            request_no += 1;
        }
        if !group.is_empty() {
            groups.push(group);
        }
    }
    groups
}

fn finish(mut open: Open, g: &Gathered, stats: &mut BuildStats) -> Option<RemoteWrite> {
    for &f in &open.families {
        let f = &g.families[f as usize];
        wire::push_metadata(&mut open.proto, f.kind, &f.name, &f.help, &f.unit);
    }
    match compress(&open.proto) {
        Some(body) => Some(RemoteWrite {
            body,
            samples: open.samples,
            series: open.series,
        }),
        None => {
            stats.uncompressible += open.samples as u64;
            None
        }
    }
}

/// Snappy's block format, as remote write sends it.
pub fn compress(proto: &[u8]) -> Option<Bytes> {
    snap::raw::Encoder::new()
        .compress_vec(proto)
        .ok()
        .map(Bytes::from)
}
