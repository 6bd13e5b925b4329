//! The exporter's series: the latest value of every series the sink received, by family, each
//! with its exposition line prefix (`name{labels}`) rendered once when the series is first seen.
//!
//! - Samples come through the shared Prometheus mapping, so names and labels are the ones
//!   remote write and the rules see. A stale marker removes its series.
//! - Delta sums and histograms are accumulated: each point adds to the series' total, which is
//!   exposed as a cumulative counter (its start is the first point this exporter saw).
//! - Each resource gives one `target_info` series (`job`, `instance` and its other attributes),
//!   as the OpenTelemetry specification's Prometheus compatibility says.
//! - A series not updated for `expire_after` goes; over `max_series`, the tenth of the series
//!   updated longest ago goes (counted), so memory stays bounded whatever the senders do.

use std::collections::HashMap;
use std::hash::BuildHasher as _;
use std::sync::Arc;

use sextant_pipeline::flow::event::prometheus::{
    family, for_each_sample, label_name, FamilyType, SeriesLabels, Unmapped, STALE_NAN,
};
use sextant_pipeline::flow::event::{Metric, MetricData, Origin, Temporality};

/// The name of the series a resource gives.
pub const TARGET_INFO: &str = "target_info";

pub struct Family {
    pub name: String,
    pub kind: FamilyType,
    pub help: String,
    pub unit: String,
    /// Its series, in the order first seen (a histogram point's buckets, sum and count stay
    /// together); removed ones are skipped and swept out at the next render.
    pub members: Vec<u32>,
}

pub struct Series {
    pub family: u32,
    /// `name{label="value",...}` as the exposition writes it.
    pub prefix: Box<str>,
    pub value: f64,
    key_hash: u64,
    key: Box<[u8]>,
    /// The store's clock at the last update.
    touched: u64,
}

/// What one ingest did, for the sink's counters.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Ingested {
    pub unmapped: Unmapped,
    pub evicted: u64,
}

pub struct Store {
    pub families: Vec<Family>,
    family_index: HashMap<String, u32>,
    /// Series slots; `None` once removed (reused after the next sweep).
    pub series: Vec<Option<Series>>,
    free: Vec<u32>,
    /// Slots removed since the last sweep.
    removed: Vec<u32>,
    index: hashbrown::HashTable<u32>,
    hasher: foldhash::fast::FixedState,
    live: usize,
    max_series: usize,
}

impl Store {
    pub fn new(max_series: usize) -> Self {
        Self {
            families: Vec::new(),
            family_index: HashMap::new(),
            series: Vec::new(),
            free: Vec::new(),
            removed: Vec::new(),
            index: hashbrown::HashTable::new(),
            hasher: foldhash::fast::FixedState::with_seed(11),
            live: 0,
            max_series: max_series.max(1),
        }
    }

    /// Series exposed now.
    pub fn series_count(&self) -> usize {
        self.live
    }

    /// Takes a batch's metrics at time `now` (any clock that only grows: milliseconds).
    pub fn ingest(&mut self, metrics: &[Metric], now: u64) -> Ingested {
        let mut out = Ingested::default();
        let mut resources: Vec<*const Origin> = Vec::new();
        for metric in metrics {
            let origin = Arc::as_ptr(&metric.origin);
            if !resources.contains(&origin) {
                resources.push(origin);
                self.target_info(metric, now);
            }
            self.metric(metric, now, &mut out.unmapped);
        }
        if self.live > self.max_series {
            out.evicted = self.evict_oldest(self.live - self.max_series + self.max_series / 10);
        }
        out
    }

    fn metric(&mut self, metric: &Metric, now: u64, unmapped: &mut Unmapped) {
        // A delta metric is read as cumulative, its points added to the totals.
        let delta = matches!(
            metric.data,
            Some(MetricData::Sum {
                temporality: Temporality::Delta,
                ..
            }) | Some(MetricData::Histogram {
                temporality: Temporality::Delta,
                ..
            }) | Some(MetricData::ExponentialHistogram {
                temporality: Temporality::Delta,
                ..
            })
        );
        let as_cumulative;
        let metric = if delta {
            let mut m = metric.clone();
            match &mut m.data {
                Some(MetricData::Sum { temporality, .. })
                | Some(MetricData::Histogram { temporality, .. })
                | Some(MetricData::ExponentialHistogram { temporality, .. }) => {
                    *temporality = Temporality::Cumulative
                }
                _ => {}
            }
            as_cumulative = m;
            &as_cumulative
        } else {
            metric
        };
        let Some((name, kind)) = family(metric) else {
            let counted = for_each_sample(metric, |_, _, _| {});
            add(unmapped, &counted);
            return;
        };
        let family = self.family(&name, kind, &metric.description, &metric.unit);
        let counted = for_each_sample(metric, |labels, _t, v| {
            self.sample(family, labels, v, delta, now);
        });
        add(unmapped, &counted);
    }

    fn family(&mut self, name: &str, kind: FamilyType, help: &str, unit: &str) -> u32 {
        if let Some(&id) = self.family_index.get(name) {
            return id;
        }
        let id = self.families.len() as u32;
        self.families.push(Family {
            name: name.to_owned(),
            kind,
            help: help.to_owned(),
            unit: unit.to_owned(),
            members: Vec::new(),
        });
        self.family_index.insert(name.to_owned(), id);
        id
    }

    fn sample(&mut self, family: u32, labels: &SeriesLabels, v: f64, add: bool, now: u64) {
        let key = labels.key();
        let hash = self.hasher.hash_one(key);
        let series = &self.series;
        let found = self.index.find(hash, |&id| {
            series[id as usize].as_ref().is_some_and(|s| &*s.key == key)
        });
        let stale = v.to_bits() == STALE_NAN.to_bits();
        match found.copied() {
            Some(id) if stale => self.remove(id),
            Some(id) => {
                if let Some(s) = self.series[id as usize].as_mut() {
                    s.value = if add { s.value + v } else { v };
                    s.touched = now;
                }
            }
            None if stale => {}
            None => {
                let series = Series {
                    family,
                    prefix: prefix(labels).into_boxed_str(),
                    value: v,
                    key_hash: hash,
                    key: key.into(),
                    touched: now,
                };
                let id = match self.free.pop() {
                    Some(id) => {
                        self.series[id as usize] = Some(series);
                        id
                    }
                    None => {
                        self.series.push(Some(series));
                        (self.series.len() - 1) as u32
                    }
                };
                let all = &self.series;
                self.index.insert_unique(hash, id, |&id| {
                    all[id as usize].as_ref().map_or(0, |s| s.key_hash)
                });
                self.families[family as usize].members.push(id);
                self.live += 1;
            }
        }
    }

    /// `target_info` for the resource of `metric`.
    fn target_info(&mut self, metric: &Metric, now: u64) {
        let resource = &metric.origin.resource.attributes;
        if resource.is_empty() {
            return;
        }
        let mut info = Metric {
            origin: metric.origin.clone(),
            name: TARGET_INFO.into(),
            description: "Target metadata".into(),
            unit: String::new(),
            metadata: Vec::new(),
            data: None,
        };
        // The identifying attributes are `job` and `instance`; the rest become labels.
        let attributes = resource
            .iter()
            .filter(|kv| {
                !matches!(
                    kv.key.as_str(),
                    "service.name" | "service.namespace" | "service.instance.id"
                )
            })
            .cloned()
            .collect();
        let time = first_time(metric);
        info.data = Some(MetricData::Gauge(vec![
            sextant_pipeline::flow::event::NumberPoint {
                attributes,
                time_unix_nano: time,
                value: Some(sextant_pipeline::flow::event::Number::Double(1.0)),
                ..Default::default()
            },
        ]));
        // Its name is kept as it is (no unit suffix: none).
        let family = self.family(TARGET_INFO, FamilyType::Gauge, "Target metadata", "");
        for_each_sample(&info, |labels, _, v| {
            self.sample(family, labels, v, false, now);
        });
    }

    fn remove(&mut self, id: u32) {
        if let Some(s) = self.series[id as usize].take() {
            if let Ok(entry) = self.index.find_entry(s.key_hash, |&other| other == id) {
                entry.remove();
            }
            self.removed.push(id);
            self.live -= 1;
        }
    }

    /// Removes series not updated since `before`; how many.
    pub fn expire(&mut self, before: u64) -> u64 {
        let old: Vec<u32> = self
            .series
            .iter()
            .enumerate()
            .filter(|(_, s)| s.as_ref().is_some_and(|s| s.touched < before))
            .map(|(i, _)| i as u32)
            .collect();
        for &id in &old {
            self.remove(id);
        }
        old.len() as u64
    }

    /// Removes the `n` series updated longest ago; how many.
    fn evict_oldest(&mut self, n: usize) -> u64 {
        let mut by_age: Vec<(u64, u32)> = self
            .series
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((s.as_ref()?.touched, i as u32)))
            .collect();
        let n = n.min(by_age.len());
        if n == 0 {
            return 0;
        }
        by_age.select_nth_unstable(n - 1);
        for &(_, id) in &by_age[..n] {
            self.remove(id);
        }
        n as u64
    }

    /// Drops removed series from the families' member lists, and lets their slots be used
    /// again (not before: a member list must never name a slot twice).
    pub fn sweep_members(&mut self) {
        let series = &self.series;
        for (index, f) in self.families.iter_mut().enumerate() {
            f.members.retain(|&id| {
                series[id as usize]
                    .as_ref()
                    .is_some_and(|s| s.family as usize == index)
            });
        }
        self.free.append(&mut self.removed);
    }
}

fn add(total: &mut Unmapped, more: &Unmapped) {
    total.delta += more.delta;
    total.no_value += more.no_value;
}

fn first_time(metric: &Metric) -> u64 {
    use sextant_pipeline::flow::event::MetricData as D;
    match &metric.data {
        Some(D::Gauge(p)) | Some(D::Sum { points: p, .. }) => {
            p.first().map_or(0, |p| p.time_unix_nano)
        }
        Some(D::Histogram { points, .. }) => points.first().map_or(0, |p| p.time_unix_nano),
        Some(D::ExponentialHistogram { points, .. }) => {
            points.first().map_or(0, |p| p.time_unix_nano)
        }
        Some(D::Summary(points)) => points.first().map_or(0, |p| p.time_unix_nano),
        None => 0,
    }
}

/// `name{label="value",...}` of a series (its `__name__` as the name), values escaped as the
/// exposition formats require (`\\`, `\"`, `\n`).
fn prefix(labels: &SeriesLabels) -> String {
    let mut out = String::with_capacity(labels.key().len() + 16);
    out.push_str(labels.get("__name__"));
    let mut first = true;
    for (name, value) in labels.pairs() {
        if name == "__name__" {
            continue;
        }
        out.push(if first { '{' } else { ',' });
        first = false;
        out.push_str(&label_name(name));
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    if !first {
        out.push('}');
    }
    out
}
