//! What the engine reads series from. The collector's window store implements it; so does
//! [`MemoryStorage`], which the PromQL test files and unit tests load.

use std::collections::HashMap;

use promql_parser::label::Matcher;

use crate::labels::Labels;
use crate::promql::value::{Point, Series};

/// A source of series. Samples are in time order and include stale markers; selectors apply
/// staleness and lookback themselves.
pub trait Storage {
    /// Every series whose labels satisfy all `matchers`, with its samples in `[mint, maxt]`
    /// (both ends included). A series without samples there may be left out.
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Series>;
}

/// Whether `labels` satisfy `matcher` (an absent label matches as the empty string).
pub fn matches(matcher: &Matcher, labels: &Labels) -> bool {
    matcher.is_match(labels.get(&matcher.name))
}

/// Series held whole in memory, in insertion order of their first sample.
#[derive(Default, Debug)]
pub struct MemoryStorage {
    series: Vec<Series>,
    index: HashMap<Labels, usize>,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a sample; samples of one series must come in time order (a sample at or before
    /// the series' last is replaced or ignored, as a TSDB rejects out-of-order samples).
    pub fn append(&mut self, labels: &Labels, t: i64, v: f64) {
        let next = self.series.len();
        let i = *self.index.entry(labels.clone()).or_insert(next);
        if i == next {
            self.series.push(Series {
                labels: labels.clone(),
                points: Vec::new(),
            });
        }
        let series = &mut self.series[i];
        match series.points.last_mut() {
            Some(last) if last.t == t => last.v = v,
            Some(last) if last.t > t => {}
            _ => series.points.push(Point { t, v }),
        }
    }

    /// Drops every series.
    pub fn clear(&mut self) {
        self.series.clear();
        self.index.clear();
    }
}

impl Storage for MemoryStorage {
    fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Series> {
        self.series
            .iter()
            .filter(|s| matchers.iter().all(|m| matches(m, &s.labels)))
            .filter_map(|s| {
                let start = s.points.partition_point(|p| p.t < mint);
                let end = s.points.partition_point(|p| p.t <= maxt);
                (start < end).then(|| Series {
                    labels: s.labels.clone(),
                    points: s.points[start..end].to_vec(),
                })
            })
            .collect()
    }
}
