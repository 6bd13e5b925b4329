//! Which attributes become dimensions. Each dimension set is a separate CloudWatch metric (and
//! bill), so the sets are configured: every point is published once per set whose keys it has
//! (looked up on the point, then on its resource), like the CloudWatch agent's rollups
//! `[[ClusterName], [ClusterName, Namespace]]`. Without configured sets, a point's own attributes
//! are its one set, sorted by key and cut at 30.

use std::collections::BTreeMap;

use sextant_pipeline::flow::event::{find_attribute, KeyValue, Value};

use super::datum::{clean_name, clean_value, Text};
use super::limits::MAX_DIMENSIONS;

/// One configured dimension: the attribute to read and the name it has in CloudWatch.
#[derive(Clone, Debug)]
pub struct Key {
    attribute: String,
    name: Text,
}

#[derive(Clone, Debug)]
pub enum Plan {
    AllAttributes { names: BTreeMap<String, Text> },
    Sets(Vec<Vec<Key>>),
}

/// What choosing dimensions had to fix or leave out, for the caller to count.
#[derive(Debug, Default, PartialEq)]
pub struct DimensionStats {
    pub fixed: u64,
    pub over_limit: u64,
}

fn renamed(names: &BTreeMap<String, String>, key: &str) -> Text {
    let name = names.get(key).map_or(key, String::as_str);
    clean_name(name).map_or_else(|| Text::from("_"), |c| Text::from(c.text.as_ref()))
}

impl Plan {
    pub fn new(sets: Option<&[Vec<String>]>, names: &BTreeMap<String, String>) -> Self {
        match sets {
            None => Plan::AllAttributes {
                names: names
                    .keys()
                    .map(|k| (k.clone(), renamed(names, k)))
                    .collect(),
            },
            Some(sets) => Plan::Sets(
                sets.iter()
                    .map(|set| {
                        set.iter()
                            .map(|k| Key {
                                attribute: k.clone(),
                                name: renamed(names, k),
                            })
                            .collect()
                    })
                    .collect(),
            ),
        }
    }

    /// The dimension sets `point` is published under, each as (name, value) pairs.
    pub fn sets(
        &self,
        point: &[KeyValue],
        resource: &[KeyValue],
        stats: &mut DimensionStats,
    ) -> Vec<Vec<(Text, Text)>> {
        match self {
            Plan::AllAttributes { names } => vec![all_attributes(point, names, stats)],
            Plan::Sets(sets) => sets
                .iter()
                .filter_map(|set| {
                    set.iter()
                        .map(|k| {
                            let v = find_attribute(point, &k.attribute)
                                .or_else(|| find_attribute(resource, &k.attribute))?;
                            Some((k.name.clone(), dimension_value(v, stats)?))
                        })
                        .collect::<Option<Vec<_>>>()
                })
                .collect(),
        }
    }
}

fn dimension_value(v: &Value, stats: &mut DimensionStats) -> Option<Text> {
    let text = v.to_text();
    let cleaned = clean_value(&text)?;
    if cleaned.fixed {
        stats.fixed += 1;
    }
    Some(Text::from(cleaned.text.as_ref()))
}

fn all_attributes(
    point: &[KeyValue],
    names: &BTreeMap<String, Text>,
    stats: &mut DimensionStats,
) -> Vec<(Text, Text)> {
    let mut out: Vec<(Text, Text)> = Vec::with_capacity(point.len().min(MAX_DIMENSIONS));
    let mut keys: Vec<&KeyValue> = point.iter().collect();
    keys.sort_by(|a, b| a.key.cmp(&b.key));
    keys.dedup_by(|a, b| a.key == b.key);
    for kv in keys {
        let Some(value) = dimension_value(&kv.value, stats) else {
            continue;
        };
        if out.len() == MAX_DIMENSIONS {
            stats.over_limit += 1;
            continue;
        }
        let name = match names.get(kv.key.as_str()) {
            Some(n) => n.clone(),
            None => match clean_name(&kv.key) {
                Some(c) => {
                    if c.fixed {
                        stats.fixed += 1;
                    }
                    Text::from(c.text.as_ref())
                }
                None => continue,
            },
        };
        out.push((name, value));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue::new(k, v)
    }

    #[test]
    fn rollups_take_keys_from_point_then_resource_and_skip_sets_a_point_lacks() {
        let names = BTreeMap::from([
            ("k8s.cluster.name".to_string(), "ClusterName".to_string()),
            ("k8s.namespace.name".to_string(), "Namespace".to_string()),
        ]);
        let sets = vec![
            vec!["k8s.cluster.name".to_string()],
            vec![
                "k8s.cluster.name".to_string(),
                "k8s.namespace.name".to_string(),
            ],
            vec!["missing".to_string()],
        ];
        let plan = Plan::new(Some(&sets), &names);
        let resource = [kv("k8s.cluster.name", "prod")];
        let point = [kv("k8s.namespace.name", "shop"), kv("code", "200")];
        let mut stats = DimensionStats::default();
        let got = plan.sets(&point, &resource, &mut stats);
        let t = |a: &str, b: &str| (Text::from(a), Text::from(b));
        assert_eq!(
            got,
            vec![
                vec![t("ClusterName", "prod")],
                vec![t("ClusterName", "prod"), t("Namespace", "shop")],
            ]
        );
        // An empty value counts as missing.
        let empty = [kv("k8s.cluster.name", " ")];
        assert!(plan.sets(&[], &empty, &mut stats).is_empty());
    }

    #[test]
    fn all_attributes_are_sorted_deduplicated_and_cut_at_30() {
        let plan = Plan::new(None, &BTreeMap::new());
        let point: Vec<KeyValue> = (0..35)
            .rev()
            .map(|i| kv(&format!("k{i:02}"), "v"))
            .chain([kv("k00", "repeat"), kv("empty", "")])
            .collect();
        let mut stats = DimensionStats::default();
        let got = plan.sets(&point, &[], &mut stats);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].len(), 30);
        assert_eq!(got[0][0], (Text::from("k00"), Text::from("v")));
        assert_eq!(got[0][29].0, "k29");
        assert_eq!(stats.over_limit, 5);
    }
}
