//! Datums as CloudWatch Embedded Metric Format documents, for `mode: emf`: CloudWatch Logs
//! extracts the metrics from log events, so metrics ride the logs API's larger quotas and keep
//! their dimensions as searchable fields.
//!
//! Datums of the same dimensions and timestamp share documents; a document holds at most 100
//! metrics (CloudWatch ignores the ones past it without an error, the failure users of other
//! agents report), so larger groups are split. A metric repeated in a group becomes an array of
//! at most 100 values. EMF has no counts per value nor statistic sets: a histogram or summary is
//! published as `{name}_count` (Count) and `{name}_sum` (its unit). The documents' dimensions are
//! also their attributes, so `emf.log_stream: "{ClusterName}"` renders from them.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Map, Value as Json};

use sextant_pipeline::flow::event::{KeyValue, LogEvent, Origin, Value};

use super::datum::{Datum, DatumValue, Text};
use super::limits::{EMF_MAX_METRICS, EMF_MAX_VALUES};

/// One metric of a document: its name, unit and values.
struct Entry {
    name: String,
    unit: &'static str,
    values: Vec<f64>,
}

/// Datums that share documents: the same dimensions at the same time.
type GroupKey<'a> = (&'a [(Text, Text)], i64);

/// A group's metrics in first-seen order, and where each name is among them.
struct Group<'a> {
    key: GroupKey<'a>,
    entries: Vec<Entry>,
    index: HashMap<String, usize>,
}

/// What building documents left out, for the caller to count.
#[derive(Debug, Default, PartialEq)]
pub struct EmfStats {
    /// Values past 100 of one metric in one document group.
    pub values_over_limit: u64,
    /// Metrics named like one of their dimensions (the field can hold only one).
    pub name_collisions: u64,
}

fn push(
    entries: &mut Vec<Entry>,
    index: &mut HashMap<String, usize>,
    name: String,
    unit: &'static str,
    value: f64,
    stats: &mut EmfStats,
) {
    match index.get(&name) {
        Some(&i) => {
            let e = &mut entries[i];
            if e.values.len() < EMF_MAX_VALUES {
                e.values.push(value);
            } else {
                stats.values_over_limit += 1;
            }
        }
        None => {
            index.insert(name.clone(), entries.len());
            entries.push(Entry {
                name,
                unit,
                values: vec![value],
            });
        }
    }
}

/// Adds `value` to the last value of metric `name` (a point split over several datums).
fn add_to_last(entries: &mut [Entry], index: &HashMap<String, usize>, name: &str, value: f64) {
    if let Some(last) = index.get(name).and_then(|&i| entries[i].values.last_mut()) {
        *last += value;
    }
}

/// EMF log events for `datums`, in namespace `namespace`.
pub fn documents(
    namespace: &str,
    storage_resolution: i32,
    datums: &[Datum],
    stats: &mut EmfStats,
) -> Vec<LogEvent> {
    // Groups in first-seen order.
    let mut groups: Vec<Group<'_>> = Vec::new();
    let mut group_index: HashMap<GroupKey<'_>, usize> = HashMap::new();
    for d in datums {
        let key = (d.dimensions.as_slice(), d.timestamp_ms);
        let g = *group_index.entry(key).or_insert_with(|| {
            groups.push(Group {
                key,
                entries: Vec::new(),
                index: HashMap::new(),
            });
            groups.len() - 1
        });
        let Group { entries, index, .. } = &mut groups[g];
        if d.dimensions
            .iter()
            .any(|(n, _)| n.as_str() == d.name.as_str())
        {
            stats.name_collisions += 1;
            continue;
        }
        match &d.value {
            DatumValue::Single(v) => push(entries, index, d.name.to_string(), d.unit, *v, stats),
            DatumValue::Distribution { counts, sum, .. } => {
                let count: f64 = counts.iter().sum();
                let count_name = format!("{}_count", d.name);
                match sum {
                    // The point's own sum: bucket values only approximate the observations.
                    Some(sum) => {
                        push(entries, index, count_name, "Count", count, stats);
                        push(
                            entries,
                            index,
                            format!("{}_sum", d.name),
                            d.unit,
                            *sum,
                            stats,
                        );
                    }
                    // More buckets of the same point: one observation count, not two.
                    None => add_to_last(entries, index, &count_name, count),
                }
            }
            DatumValue::Statistics { count, sum, .. } => {
                push(
                    entries,
                    index,
                    format!("{}_count", d.name),
                    "Count",
                    *count,
                    stats,
                );
                push(
                    entries,
                    index,
                    format!("{}_sum", d.name),
                    d.unit,
                    *sum,
                    stats,
                );
            }
        }
    }
    let mut out = Vec::new();
    for Group {
        key: (dimensions, timestamp_ms),
        entries,
        ..
    } in groups
    {
        let origin = Arc::new(Origin::default());
        let attributes: Vec<KeyValue> = dimensions
            .iter()
            .map(|(n, v)| KeyValue::new(n.clone(), Value::Str(v.clone())))
            .collect();
        let names: Vec<&str> = dimensions.iter().map(|(n, _)| n.as_str()).collect();
        for chunk in entries.chunks(EMF_MAX_METRICS) {
            let mut doc = Map::new();
            let metrics: Vec<Json> = chunk
                .iter()
                .map(|e| {
                    let mut m = json!({"Name": e.name, "Unit": e.unit});
                    if storage_resolution == 1 {
                        m["StorageResolution"] = json!(1);
                    }
                    m
                })
                .collect();
            doc.insert(
                "_aws".into(),
                json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": [{"Namespace": namespace, "Dimensions": [names], "Metrics": metrics}]}),
            );
            for (n, v) in dimensions {
                doc.insert(n.to_string(), json!(v.as_str()));
            }
            for e in chunk {
                let value = if e.values.len() == 1 {
                    json!(e.values[0])
                } else {
                    json!(e.values)
                };
                doc.insert(e.name.clone(), value);
            }
            out.push(LogEvent {
                origin: origin.clone(),
                time_unix_nano: (timestamp_ms.max(0) as u64) * 1_000_000,
                body: Value::Str(Json::Object(doc).to_string().into()),
                attributes: attributes.clone().into(),
                ..Default::default()
            });
        }
    }
    out
}
