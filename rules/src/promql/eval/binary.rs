//! Binary operators: arithmetic, comparison (with and without `bool`), `and`/`or`/`unless`,
//! with `on`/`ignoring` and `group_left`/`group_right` — Prometheus 2.42's `VectorBinop`,
//! `VectorscalarBinop` and set operations, errors included.

use std::collections::{HashMap, HashSet};

use promql_parser::parser::token::TokenType;
use promql_parser::parser::token::{
    T_ADD, T_ATAN2, T_DIV, T_EQLC, T_GTE, T_GTR, T_LAND, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MOD,
    T_MUL, T_NEQ, T_POW, T_SUB,
};
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use super::{query_error, EvalError, Evaluator};
use crate::labels::Labels;
use crate::promql::value::{Sample, Value};

/// How two vectors' elements pair up.
struct Matching {
    card: Card,
    /// `on(...)` (true) or `ignoring(...)` (false).
    on: bool,
    labels: Vec<String>,
    /// `group_left(...)`/`group_right(...)`'s labels, copied from the "one" side.
    include: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Card {
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

fn matching_of(bin: &BinaryExpr) -> Matching {
    let mut matching = Matching {
        card: Card::OneToOne,
        on: false,
        labels: Vec::new(),
        include: Vec::new(),
    };
    if let Some(modifier) = &bin.modifier {
        match &modifier.card {
            VectorMatchCardinality::OneToOne => {}
            VectorMatchCardinality::ManyToOne(labels) => {
                matching.card = Card::ManyToOne;
                matching.include = labels.labels.clone();
            }
            VectorMatchCardinality::OneToMany(labels) => {
                matching.card = Card::OneToMany;
                matching.include = labels.labels.clone();
            }
            VectorMatchCardinality::ManyToMany => matching.card = Card::ManyToMany,
        }
        match &modifier.matching {
            Some(LabelModifier::Include(labels)) => {
                matching.on = true;
                matching.labels = labels.labels.clone();
            }
            Some(LabelModifier::Exclude(labels)) => matching.labels = labels.labels.clone(),
            None => {}
        }
    }
    matching
}

fn return_bool(bin: &BinaryExpr) -> bool {
    bin.modifier.as_ref().is_some_and(|m| m.return_bool)
}

fn is_comparison(op: u8) -> bool {
    matches!(op, T_EQLC | T_NEQ | T_GTR | T_LSS | T_GTE | T_LTE)
}

/// Arithmetic drops the metric name; comparisons keep it (unless `bool`).
fn drops_metric_name(op: u8) -> bool {
    matches!(op, T_ADD | T_SUB | T_MUL | T_DIV | T_POW | T_MOD | T_ATAN2)
}

pub(super) fn eval(ev: &Evaluator<'_>, bin: &BinaryExpr, ts: i64) -> Result<Value, EvalError> {
    let op = bin.op.id();
    let lhs = ev.eval(&bin.lhs, ts)?;
    let rhs = ev.eval(&bin.rhs, ts)?;
    let returns_bool = return_bool(bin);
    match (lhs, rhs) {
        (Value::Scalar(l), Value::Scalar(r)) => {
            let (value, keep) = element_op(op, l, r)?;
            Ok(Value::Scalar(if returns_bool {
                f64::from(u8::from(keep))
            } else {
                value
            }))
        }
        (Value::Vector(l), Value::Scalar(r)) => {
            vector_scalar(op, l, r, false, returns_bool, ts).map(Value::Vector)
        }
        (Value::Scalar(l), Value::Vector(r)) => {
            vector_scalar(op, r, l, true, returns_bool, ts).map(Value::Vector)
        }
        (Value::Vector(l), Value::Vector(r)) => {
            let matching = matching_of(bin);
            let out = match op {
                T_LAND => and(l, &r, &matching),
                T_LOR => or(l, r, &matching),
                T_LUNLESS => unless(l, &r, &matching),
                _ => vector_vector(op, l, r, &matching, returns_bool, ts)?,
            };
            Ok(Value::Vector(out))
        }
        (l, r) => Err(query_error(format!(
            "binary expression must contain only scalar and instant vector types, got {} and {}",
            l.type_name(),
            r.type_name()
        ))),
    }
}

/// One pair of values: the arithmetic result, or for comparisons the left value and whether
/// the comparison holds.
fn element_op(op: u8, l: f64, r: f64) -> Result<(f64, bool), EvalError> {
    Ok(match op {
        T_ADD => (l + r, true),
        T_SUB => (l - r, true),
        T_MUL => (l * r, true),
        T_DIV => (l / r, true),
        T_POW => (l.powf(r), true), // C and Go agree on pow's special cases
        T_MOD => (l % r, true),
        T_ATAN2 => (l.atan2(r), true),
        T_EQLC => (l, l == r),
        T_NEQ => (l, l != r),
        T_GTR => (l, l > r),
        T_LSS => (l, l < r),
        T_GTE => (l, l >= r),
        T_LTE => (l, l <= r),
        _ => {
            return Err(EvalError::Unsupported(format!(
                "operator {}",
                TokenType::new(op)
            )))
        }
    })
}

fn vector_scalar(
    op: u8,
    vector: Vec<Sample>,
    scalar: f64,
    scalar_on_left: bool,
    returns_bool: bool,
    ts: i64,
) -> Result<Vec<Sample>, EvalError> {
    let mut out = Vec::with_capacity(vector.len());
    for sample in vector {
        let (l, r) = if scalar_on_left {
            (scalar, sample.v)
        } else {
            (sample.v, scalar)
        };
        let (mut value, mut keep) = element_op(op, l, r)?;
        // A comparison keeps the vector's value, on whichever side it stands.
        if is_comparison(op) && scalar_on_left {
            value = r;
        }
        if returns_bool {
            value = f64::from(u8::from(keep));
            keep = true;
        }
        if keep {
            let labels = if drops_metric_name(op) || returns_bool {
                sample.labels.without_metric_name()
            } else {
                sample.labels
            };
            out.push(Sample {
                labels,
                t: ts,
                v: value,
            });
        }
    }
    Ok(out)
}

fn vector_vector(
    op: u8,
    lhs: Vec<Sample>,
    rhs: Vec<Sample>,
    matching: &Matching,
    returns_bool: bool,
    ts: i64,
) -> Result<Vec<Sample>, EvalError> {
    if matching.card == Card::ManyToMany {
        return Err(query_error("many-to-many only allowed for set operators"));
    }
    // One-to-many: swap the sides so the right is always the "one" side.
    let (many, one) = if matching.card == Card::OneToMany {
        (rhs, lhs)
    } else {
        (lhs, rhs)
    };
    let mut one_by_signature: HashMap<String, Sample> = HashMap::with_capacity(one.len());
    for sample in one {
        let signature = sample.labels.signature(matching.on, &matching.labels);
        if let Some(duplicate) = one_by_signature.get(&signature) {
            let side = if matching.card == Card::OneToMany {
                "left"
            } else {
                "right"
            };
            let group = if matching.on {
                sample.labels.keep_only(&matching.labels)
            } else {
                sample
                    .labels
                    .without(&matching.labels)
                    .without_metric_name()
            };
            return Err(query_error(format!(
                "found duplicate series for the match group {} on the {side} hand-side of the operation: \
                 [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                group.prometheus_string(),
                sample.labels.prometheus_string(),
                duplicate.labels.prometheus_string()
            )));
        }
        one_by_signature.insert(signature, sample);
    }

    // For one-to-one, which signatures matched; for many-to-one, the result label sets each
    // signature produced (to catch duplicates).
    let mut matched: HashMap<String, HashSet<Labels>> = HashMap::new();
    let mut out = Vec::new();
    for sample in many {
        let signature = sample.labels.signature(matching.on, &matching.labels);
        let Some(one_sample) = one_by_signature.get(&signature) else {
            continue;
        };
        let (l, r) = if matching.card == Card::OneToMany {
            (one_sample.v, sample.v)
        } else {
            (sample.v, one_sample.v)
        };
        let (mut value, keep) = element_op(op, l, r)?;
        if returns_bool {
            value = f64::from(u8::from(keep));
        } else if !keep {
            continue;
        }
        let mut labels = result_labels(&sample.labels, &one_sample.labels, op, matching);
        if returns_bool {
            labels = labels.without_metric_name();
        }
        let produced = matched.entry(signature);
        match matching.card {
            Card::OneToOne => {
                if matches!(produced, std::collections::hash_map::Entry::Occupied(_)) {
                    return Err(query_error(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                    ));
                }
                produced.or_default();
            }
            _ => {
                if !produced.or_default().insert(labels.clone()) {
                    return Err(query_error(
                        "multiple matches for labels: grouping labels must ensure unique matches",
                    ));
                }
            }
        }
        out.push(Sample {
            labels,
            t: ts,
            v: value,
        });
    }
    Ok(out)
}

/// The labels of a vector-vector result: the "many" side's, without the name for arithmetic,
/// reduced to the matching labels for one-to-one, plus `group_x(...)` labels from the "one" side.
fn result_labels(many: &Labels, one: &Labels, op: u8, matching: &Matching) -> Labels {
    let mut labels = if drops_metric_name(op) {
        many.clone().without_metric_name()
    } else {
        many.clone()
    };
    if matching.card == Card::OneToOne {
        labels = if matching.on {
            labels.keep_only(&matching.labels)
        } else {
            labels.without(&matching.labels)
        };
    }
    for name in &matching.include {
        labels.set(name.clone(), one.get(name).to_string());
    }
    labels
}

fn signatures(samples: &[Sample], matching: &Matching) -> HashSet<String> {
    samples
        .iter()
        .map(|s| s.labels.signature(matching.on, &matching.labels))
        .collect()
}

fn and(lhs: Vec<Sample>, rhs: &[Sample], matching: &Matching) -> Vec<Sample> {
    let right = signatures(rhs, matching);
    lhs.into_iter()
        .filter(|s| right.contains(&s.labels.signature(matching.on, &matching.labels)))
        .collect()
}

fn or(lhs: Vec<Sample>, rhs: Vec<Sample>, matching: &Matching) -> Vec<Sample> {
    let left = signatures(&lhs, matching);
    let mut out = lhs;
    out.extend(
        rhs.into_iter()
            .filter(|s| !left.contains(&s.labels.signature(matching.on, &matching.labels))),
    );
    out
}

fn unless(lhs: Vec<Sample>, rhs: &[Sample], matching: &Matching) -> Vec<Sample> {
    let right = signatures(rhs, matching);
    lhs.into_iter()
        .filter(|s| !right.contains(&s.labels.signature(matching.on, &matching.labels)))
        .collect()
}
