//! Aggregation operators (`sum`, `avg`, `min`, `max`, `count`, `group`, `stddev`, `stdvar`,
//! `topk`, `bottomk`, `quantile`, `count_values`) with `by`/`without`, computed as Prometheus
//! 2.42 computes them: groups in order of first appearance, its incremental mean and variance,
//! NaN handling in `min`/`max`/`topk`, Go's heap for `topk`/`bottomk`.

use std::collections::HashMap;

use promql_parser::parser::token::{
    T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_GROUP, T_MAX, T_MIN, T_QUANTILE, T_STDDEV,
    T_STDVAR, T_SUM, T_TOPK,
};
use promql_parser::parser::{AggregateExpr, LabelModifier};

use super::{heap, query_error, EvalError, Evaluator};
use crate::labels::{is_valid_label_name, Labels};
use crate::promql::value::{format_go_float, Sample, Value};

struct Group {
    labels: Labels,
    value: f64,
    mean: f64,
    count: u64,
    /// `topk`/`bottomk`: the kept samples as a heap; `quantile`: every value.
    samples: Vec<Sample>,
}

/// Prometheus's `vectorByValueHeap` order: NaN first, then ascending.
fn lower(a: &Sample, b: &Sample) -> bool {
    a.v.is_nan() || a.v < b.v
}

/// Prometheus's `vectorByReverseValueHeap` order: NaN first, then descending.
fn higher(a: &Sample, b: &Sample) -> bool {
    a.v.is_nan() || a.v > b.v
}

pub(super) fn eval(ev: &Evaluator<'_>, agg: &AggregateExpr, ts: i64) -> Result<Value, EvalError> {
    let op = agg.op.id();
    if !crate::promql::support::SUPPORTED_AGGREGATIONS.contains(&op) {
        return Err(EvalError::Unsupported(format!("aggregation {}", agg.op)));
    }
    let mut k = 0usize;
    let mut q = 0.0;
    let mut value_label = String::new();
    if let Some(param) = &agg.param {
        match op {
            T_TOPK | T_BOTTOMK => {
                let f = ev.eval_scalar(param, ts)?;
                if !(-9.223_372_036_854_776e18..=9.223_372_036_854_776e18).contains(&f)
                    || f.is_nan()
                {
                    return Err(query_error(format!(
                        "Scalar value {} overflows int64",
                        format_go_float(f)
                    )));
                }
                let k_int = f as i64;
                if k_int < 1 {
                    return Ok(Value::Vector(Vec::new()));
                }
                k = usize::try_from(k_int).unwrap_or(usize::MAX);
            }
            T_QUANTILE => q = ev.eval_scalar(param, ts)?,
            T_COUNT_VALUES => {
                value_label = ev.eval_string(param, ts)?;
                if !is_valid_label_name(&value_label) {
                    return Err(query_error(format!("invalid label name {value_label:?}")));
                }
            }
            _ => {}
        }
    }
    let input = ev.eval_vector(&agg.expr, ts)?;
    let (without, mut grouping): (bool, Vec<String>) = match &agg.modifier {
        None => (false, Vec::new()),
        Some(LabelModifier::Include(labels)) => (false, labels.labels.clone()),
        Some(LabelModifier::Exclude(labels)) => (true, labels.labels.clone()),
    };
    if op == T_COUNT_VALUES && !without {
        grouping.push(value_label.clone());
    }

    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for mut sample in input {
        if op == T_COUNT_VALUES {
            sample
                .labels
                .set(value_label.clone(), format_go_float(sample.v));
        }
        let key = sample.labels.signature(!without, &grouping);
        let Some(&gi) = index.get(&key) else {
            let labels = if without {
                sample.labels.without(&grouping).without_metric_name()
            } else if grouping.is_empty() {
                Labels::new()
            } else {
                sample.labels.keep_only(&grouping)
            };
            let mut group = Group {
                labels,
                value: sample.v,
                mean: sample.v,
                count: 1,
                samples: Vec::new(),
            };
            match op {
                T_STDVAR | T_STDDEV => group.value = 0.0,
                T_GROUP => group.value = 1.0,
                T_TOPK | T_BOTTOMK | T_QUANTILE => group.samples.push(sample),
                _ => {}
            }
            index.insert(key, groups.len());
            groups.push(group);
            continue;
        };
        let group = &mut groups[gi];
        match op {
            T_SUM => group.value += sample.v,
            T_AVG => {
                group.count += 1;
                let n = group.count as f64;
                if group.mean.is_infinite() {
                    if sample.v.is_infinite() && (group.mean > 0.0) == (sample.v > 0.0) {
                        continue;
                    }
                    if !sample.v.is_infinite() && !sample.v.is_nan() {
                        continue;
                    }
                }
                group.mean += sample.v / n - group.mean / n;
            }
            T_GROUP => {}
            T_MAX if group.value < sample.v || group.value.is_nan() => group.value = sample.v,
            T_MIN if group.value > sample.v || group.value.is_nan() => group.value = sample.v,
            T_COUNT | T_COUNT_VALUES => group.count += 1,
            T_STDVAR | T_STDDEV => {
                group.count += 1;
                let delta = sample.v - group.mean;
                group.mean += delta / group.count as f64;
                group.value += delta * (sample.v - group.mean);
            }
            T_TOPK => {
                if group.samples.len() < k {
                    heap::push(&mut group.samples, sample, lower);
                } else if group.samples[0].v < sample.v
                    || (group.samples[0].v.is_nan() && !sample.v.is_nan())
                {
                    group.samples[0] = sample;
                    if k > 1 {
                        heap::fix(&mut group.samples, 0, lower);
                    }
                }
            }
            T_BOTTOMK => {
                if group.samples.len() < k {
                    heap::push(&mut group.samples, sample, higher);
                } else if group.samples[0].v > sample.v
                    || (group.samples[0].v.is_nan() && !sample.v.is_nan())
                {
                    group.samples[0] = sample;
                    if k > 1 {
                        heap::fix(&mut group.samples, 0, higher);
                    }
                }
            }
            T_QUANTILE => group.samples.push(sample),
            _ => {}
        }
    }

    let mut out = Vec::with_capacity(groups.len());
    for mut group in groups {
        let value = match op {
            T_AVG => group.mean,
            T_COUNT | T_COUNT_VALUES => group.count as f64,
            T_STDVAR => group.value / group.count as f64,
            T_STDDEV => (group.value / group.count as f64).sqrt(),
            T_TOPK | T_BOTTOMK => {
                let order = if op == T_TOPK { lower } else { higher };
                // The heap's root is the first to go; the output is the reverse of its order.
                group.samples.sort_by(|a, b| {
                    if order(b, a) {
                        std::cmp::Ordering::Less
                    } else if order(a, b) {
                        std::cmp::Ordering::Greater
                    } else {
                        std::cmp::Ordering::Equal
                    }
                });
                out.extend(group.samples.into_iter().map(|s| Sample {
                    labels: s.labels,
                    t: ts,
                    v: s.v,
                }));
                continue;
            }
            T_QUANTILE => quantile(q, &mut group.samples),
            _ => group.value,
        };
        out.push(Sample {
            labels: group.labels,
            t: ts,
            v: value,
        });
    }
    Ok(Value::Vector(out))
}

/// Prometheus's `quantile`: NaN for no values or a NaN `q`, ±Inf outside [0, 1], else the
/// weighted average of the two neighbouring ranks.
pub(crate) fn quantile(q: f64, samples: &mut [Sample]) -> f64 {
    let mut values: Vec<f64> = samples.iter().map(|s| s.v).collect();
    quantile_of(q, &mut values)
}

/// [`quantile`] over bare values (`quantile_over_time`).
pub(crate) fn quantile_of(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| {
        if a.is_nan() && !b.is_nan() {
            std::cmp::Ordering::Less
        } else if b.is_nan() && !a.is_nan() {
            std::cmp::Ordering::Greater
        } else {
            a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal)
        }
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (n - 1.0).min(lower + 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}
