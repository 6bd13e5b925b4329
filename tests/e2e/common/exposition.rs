//! The tests' own reading of Prometheus text (independent of Sextant's parser): series keyed by
//! (family name, labels), with histogram buckets and summary quantiles folded into their
//! family's point.

use std::collections::{BTreeMap, HashMap};

pub type Labels = BTreeMap<String, String>;

/// A series of the reference parse: family type, and its value (counter, gauge), count
/// (histogram, summary) and bucket bounds.
#[derive(Clone, Debug, PartialEq)]
pub struct RefSeries {
    pub kind: String,
    pub value: f64,
    pub bounds: Vec<f64>,
}

/// The test's own reading of Prometheus text: series keyed by (family name, labels), with
/// histogram buckets and summary quantiles folded into their family's point.
pub fn reference(body: &str) -> HashMap<(String, Labels), RefSeries> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut out: HashMap<(String, Labels), RefSeries> = HashMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            types.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap();
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n.to_string(), parse_labels(rest.strip_suffix('}').unwrap())),
            None => (series.to_string(), Labels::new()),
        };
        let family = |suffix: &str| {
            name.strip_suffix(suffix)
                .filter(|f| {
                    matches!(
                        types.get(*f).map(String::as_str),
                        Some("histogram" | "summary")
                    )
                })
                .map(str::to_string)
        };
        if let Some(f) = family("_bucket") {
            let mut l = labels.clone();
            let le = l.remove("le").unwrap();
            let e = out.entry((f, l)).or_insert(RefSeries {
                kind: "histogram".into(),
                value: 0.0,
                bounds: vec![],
            });
            if le != "+Inf" {
                e.bounds.push(le.parse().unwrap());
            }
        } else if let Some(f) = family("_count") {
            let kind = types[&f].clone();
            out.entry((f, labels))
                .or_insert(RefSeries {
                    kind,
                    value: 0.0,
                    bounds: vec![],
                })
                .value = value;
        } else if family("_sum").is_some() {
        } else if types.get(&name).map(String::as_str) == Some("summary") {
            let mut l = labels.clone();
            l.remove("quantile");
            out.entry((name, l)).or_insert(RefSeries {
                kind: "summary".into(),
                value: 0.0,
                bounds: vec![],
            });
        } else {
            let kind = types
                .get(&name)
                .cloned()
                .unwrap_or_else(|| "untyped".into());
            out.insert(
                (name, labels),
                RefSeries {
                    kind,
                    value,
                    bounds: vec![],
                },
            );
        }
    }
    out
}

fn parse_labels(text: &str) -> Labels {
    let mut out = Labels::new();
    let mut chars = text.chars().peekable();
    loop {
        let name: String = chars.by_ref().take_while(|&c| c != '=').collect();
        let name = name.trim().trim_start_matches(',').trim().to_string();
        if name.is_empty() {
            return out;
        }
        assert_eq!(chars.next(), Some('"'));
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.insert(name, value);
    }
}

/// A point's attributes (as the file sink writes them) as labels.
pub fn point_labels(point: &serde_json::Value) -> Labels {
    point["attributes"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}
