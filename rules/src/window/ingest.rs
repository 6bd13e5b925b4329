//! Metrics into the window store, through the shared Prometheus mapping
//! (`sextant_pipeline::flow::event::prometheus`): a sample of a series the store already holds
//! costs a hash, a comparison and an append, with no allocation for its labels.

use sextant_pipeline::flow::event::prometheus::{for_each_sample, SeriesLabels, Unmapped};
use sextant_pipeline::flow::event::Metric;

use super::{hash_key, Appended, Incoming, LabelView, SeriesHash, WindowStore};

impl LabelView for SeriesLabels {
    fn value(&self, name: &str) -> &str {
        self.get(name)
    }
}

impl Incoming for SeriesLabels {
    fn label_hash(&self) -> SeriesHash {
        hash_key(self.key())
    }

    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        SeriesLabels::pairs(self)
    }
}

/// What one ingest did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    pub stored: u64,
    pub not_selected: u64,
    pub out_of_order: u64,
    pub over_limit: u64,
    pub unmapped: u64,
}

/// Appends every sample of `metrics` the store's rules can read.
pub fn ingest(store: &mut WindowStore, metrics: &[Metric]) -> Ingested {
    let mut ingested = Ingested::default();
    for metric in metrics {
        let Unmapped { delta, no_value } =
            for_each_sample(metric, |labels, t, v| match store.append(labels, t, v) {
                Appended::Stored => ingested.stored += 1,
                Appended::NotSelected => ingested.not_selected += 1,
                Appended::OutOfOrder => ingested.out_of_order += 1,
                Appended::OverLimit => ingested.over_limit += 1,
            });
        ingested.unmapped += delta + no_value;
    }
    ingested
}
