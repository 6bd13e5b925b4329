//! Function calls: the range functions (see `range_functions`), the element-wise math,
//! `clamp*`, `round`, `absent*`, `histogram_quantile`, `label_replace`/`label_join`, `sort*`,
//! `time`/`timestamp`/`vector`/`scalar` and the date functions. Like Prometheus, every function
//! but `last_over_time`, `sort*`, `label_*` drops the metric name from its output.

use chrono::{Datelike, Timelike};
use promql_parser::label::MatchOp;
use promql_parser::parser::{Call, Expr};

use super::range_functions as range;
use super::{check_unique_label_sets, query_error, EvalError, Evaluator};
use crate::labels::{is_valid_label_name, Labels, METRIC_NAME};
use crate::promql::value::{go_max, go_min, Sample, Value};

/// Every function `eval` computes.
pub(crate) const SUPPORTED: &[&str] = &[
    "time",
    "vector",
    "scalar",
    "timestamp",
    "absent",
    "absent_over_time",
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "deriv",
    "predict_linear",
    "changes",
    "resets",
    "avg_over_time",
    "sum_over_time",
    "count_over_time",
    "min_over_time",
    "max_over_time",
    "last_over_time",
    "present_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "quantile_over_time",
    "abs",
    "ceil",
    "floor",
    "exp",
    "ln",
    "log2",
    "log10",
    "sqrt",
    "sgn",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "cos",
    "cosh",
    "sin",
    "sinh",
    "tan",
    "tanh",
    "deg",
    "rad",
    "clamp",
    "clamp_min",
    "clamp_max",
    "round",
    "histogram_quantile",
    "label_replace",
    "label_join",
    "sort",
    "sort_desc",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "hour",
    "minute",
    "month",
    "year",
];

pub(super) fn eval(ev: &Evaluator<'_>, call: &Call, ts: i64) -> Result<Value, EvalError> {
    let name = call.func.name;
    let args: Vec<&Expr> = call.args.args.iter().map(|a| a.as_ref()).collect();
    let arg = |i: usize| {
        args.get(i)
            .copied()
            .ok_or_else(|| query_error(format!("missing argument {i} to {name}")))
    };
    let out = match name {
        "time" => return Ok(Value::Scalar(ts as f64 / 1000.0)),
        "vector" => {
            let v = ev.eval_scalar(arg(0)?, ts)?;
            return Ok(Value::Vector(vec![Sample {
                labels: Labels::new(),
                t: ts,
                v,
            }]));
        }
        "scalar" => {
            let samples = ev.eval_vector(arg(0)?, ts)?;
            return Ok(Value::Scalar(if samples.len() == 1 {
                samples[0].v
            } else {
                f64::NAN
            }));
        }
        "timestamp" => timestamp(ev, arg(0)?, ts)?,
        "absent" => {
            let samples = ev.eval_vector(arg(0)?, ts)?;
            absent(!samples.is_empty(), arg(0)?, ts)
        }
        "absent_over_time" => {
            let (series, _) = ev.eval_range(arg(0)?, ts)?;
            absent(!series.is_empty(), arg(0)?, ts)
        }
        "rate" | "increase" | "delta" | "irate" | "idelta" | "deriv" | "predict_linear"
        | "changes" | "resets" | "avg_over_time" | "sum_over_time" | "count_over_time"
        | "min_over_time" | "max_over_time" | "last_over_time" | "present_over_time"
        | "stddev_over_time" | "stdvar_over_time" | "quantile_over_time" => {
            range_call(ev, name, &args, ts)?
        }
        "abs" | "ceil" | "floor" | "exp" | "ln" | "log2" | "log10" | "sqrt" | "sgn" | "acos"
        | "acosh" | "asin" | "asinh" | "atan" | "atanh" | "cos" | "cosh" | "sin" | "sinh"
        | "tan" | "tanh" | "deg" | "rad" => {
            let f = math_function(name);
            map_values(ev.eval_vector(arg(0)?, ts)?, ts, f)
        }
        "clamp" => {
            let samples = ev.eval_vector(arg(0)?, ts)?;
            let (min, max) = (ev.eval_scalar(arg(1)?, ts)?, ev.eval_scalar(arg(2)?, ts)?);
            if max < min {
                Vec::new()
            } else {
                map_values(samples, ts, |v| go_max(min, go_min(max, v)))
            }
        }
        "clamp_min" => {
            let samples = ev.eval_vector(arg(0)?, ts)?;
            let min = ev.eval_scalar(arg(1)?, ts)?;
            map_values(samples, ts, |v| go_max(min, v))
        }
        "clamp_max" => {
            let samples = ev.eval_vector(arg(0)?, ts)?;
            let max = ev.eval_scalar(arg(1)?, ts)?;
            map_values(samples, ts, |v| go_min(max, v))
        }
        "round" => {
            let samples = ev.eval_vector(arg(0)?, ts)?;
            let to_nearest = match args.get(1) {
                Some(expr) => ev.eval_scalar(expr, ts)?,
                None => 1.0,
            };
            let inverse = 1.0 / to_nearest;
            map_values(samples, ts, |v| (v * inverse + 0.5).floor() / inverse)
        }
        "histogram_quantile" => {
            let q = ev.eval_scalar(arg(0)?, ts)?;
            histogram_quantile(q, ev.eval_vector(arg(1)?, ts)?, ts)
        }
        "label_replace" => label_replace(ev, &args, ts)?,
        "label_join" => label_join(ev, &args, ts)?,
        "sort" | "sort_desc" => {
            let mut samples = ev.eval_vector(arg(0)?, ts)?;
            let descending = name == "sort_desc";
            // NaN last either way, as Prometheus's reversed heap orders put it.
            samples.sort_by(|a, b| match (a.v.is_nan(), b.v.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ if descending => b.v.partial_cmp(&a.v).unwrap_or(std::cmp::Ordering::Equal),
                _ => a.v.partial_cmp(&b.v).unwrap_or(std::cmp::Ordering::Equal),
            });
            return Ok(Value::Vector(
                samples.into_iter().map(|s| Sample { t: ts, ..s }).collect(),
            ));
        }
        "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour" | "minute"
        | "month" | "year" => {
            let samples = match args.first() {
                Some(expr) => ev.eval_vector(expr, ts)?,
                None => vec![Sample {
                    labels: Labels::new(),
                    t: ts,
                    v: ts as f64 / 1000.0,
                }],
            };
            map_values(samples, ts, |v| date_part(name, v))
        }
        other => return Err(EvalError::Unsupported(format!("function {other}"))),
    };
    check_unique_label_sets(&out)?;
    Ok(Value::Vector(out))
}

/// Applies `f` to every value; the metric name goes.
fn map_values(samples: Vec<Sample>, ts: i64, f: impl Fn(f64) -> f64) -> Vec<Sample> {
    samples
        .into_iter()
        .map(|s| Sample {
            labels: s.labels.without_metric_name(),
            t: ts,
            v: f(s.v),
        })
        .collect()
}

fn math_function(name: &str) -> fn(f64) -> f64 {
    match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sqrt" => f64::sqrt,
        "sgn" => |v| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        },
        "acos" => f64::acos,
        "acosh" => f64::acosh,
        "asin" => f64::asin,
        "asinh" => f64::asinh,
        "atan" => f64::atan,
        "atanh" => f64::atanh,
        "cos" => f64::cos,
        "cosh" => f64::cosh,
        "sin" => f64::sin,
        "sinh" => f64::sinh,
        "tan" => f64::tan,
        "tanh" => f64::tanh,
        "deg" => f64::to_degrees,
        "rad" => f64::to_radians,
        _ => |v| v,
    }
}

fn range_call(
    ev: &Evaluator<'_>,
    name: &str,
    args: &[&Expr],
    ts: i64,
) -> Result<Vec<Sample>, EvalError> {
    // The scalar argument, where there is one: quantile_over_time's first, predict_linear's second.
    let (range_arg, scalar) = match name {
        "quantile_over_time" => (args[1], ev.eval_scalar(args[0], ts)?),
        "predict_linear" => (args[0], ev.eval_scalar(args[1], ts)?),
        _ => (args[0], 0.0),
    };
    let (series, window) = ev.eval_range(range_arg, ts)?;
    let mut out = Vec::with_capacity(series.len());
    for s in series {
        let points = &s.points;
        let value = match name {
            "rate" => range::extrapolated_rate(points, window, true, true),
            "increase" => range::extrapolated_rate(points, window, true, false),
            "delta" => range::extrapolated_rate(points, window, false, false),
            "irate" => range::instant_value(points, true),
            "idelta" => range::instant_value(points, false),
            "deriv" => range::deriv(points),
            "predict_linear" => range::predict_linear(points, ts, scalar),
            "changes" => Some(range::changes(points)),
            "resets" => Some(range::resets(points)),
            _ if points.is_empty() => None,
            over_time => range::over_time(over_time, points, scalar),
        };
        if let Some(v) = value {
            let labels = if name == "last_over_time" {
                s.labels
            } else {
                s.labels.without_metric_name()
            };
            out.push(Sample { labels, t: ts, v });
        }
    }
    Ok(out)
}

/// `timestamp(v)`: a selector's own sample times (through parentheses), else the evaluation time.
fn timestamp(ev: &Evaluator<'_>, arg: &Expr, ts: i64) -> Result<Vec<Sample>, EvalError> {
    let mut inner = arg;
    while let Expr::Paren(p) = inner {
        inner = &p.expr;
    }
    let direct = matches!(inner, Expr::VectorSelector(_));
    let samples = ev.eval_vector(inner, ts)?;
    Ok(samples
        .into_iter()
        .map(|s| {
            let t = if direct { s.t } else { ts };
            Sample {
                labels: s.labels.without_metric_name(),
                t: ts,
                v: t as f64 / 1000.0,
            }
        })
        .collect())
}

/// `absent`/`absent_over_time`: nothing when the argument had series, else one sample whose
/// labels come from the selector's equality matchers (a label matched twice is left out).
fn absent(had_series: bool, arg: &Expr, ts: i64) -> Vec<Sample> {
    if had_series {
        return Vec::new();
    }
    let matchers = match arg {
        Expr::VectorSelector(vs) => Some(&vs.matchers.matchers),
        Expr::MatrixSelector(ms) => Some(&ms.vs.matchers.matchers),
        _ => None,
    };
    let mut labels = Labels::new();
    if let Some(matchers) = matchers {
        let mut ambiguous = Vec::new();
        for m in matchers {
            if m.name == METRIC_NAME {
                continue;
            }
            if m.op == MatchOp::Equal && !labels.has(&m.name) {
                labels.set(m.name.clone(), m.value.clone());
            } else {
                ambiguous.push(m.name.clone());
            }
        }
        for name in ambiguous {
            labels.remove(&name);
        }
    }
    vec![Sample {
        labels,
        t: ts,
        v: 1.0,
    }]
}

struct Bucket {
    upper_bound: f64,
    count: f64,
}

fn histogram_quantile(q: f64, samples: Vec<Sample>, ts: i64) -> Vec<Sample> {
    let le = vec!["le".to_string()];
    let mut groups: Vec<(Labels, Vec<Bucket>)> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for sample in samples {
        let Some(upper_bound) = parse_go_float(sample.labels.get("le")) else {
            continue; // no `le`, or not a number: not a bucket
        };
        let labels = sample.labels.without(&le).without_metric_name();
        let i = *index.entry(labels.clone()).or_insert_with(|| {
            groups.push((labels, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(Bucket {
            upper_bound,
            count: sample.v,
        });
    }
    groups
        .into_iter()
        .map(|(labels, mut buckets)| Sample {
            labels,
            t: ts,
            v: bucket_quantile(q, &mut buckets),
        })
        .collect()
}

/// Go's `strconv.ParseFloat` for the values a `le` label holds.
fn parse_go_float(s: &str) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    s.parse::<f64>().ok()
}

fn bucket_quantile(q: f64, buckets: &mut Vec<Bucket>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| {
        a.upper_bound
            .partial_cmp(&b.upper_bound)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    match buckets.last() {
        Some(last) if last.upper_bound == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    // Coalesce buckets of the same bound, then make the counts monotonic.
    let mut coalesced: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets.drain(..) {
        match coalesced.last_mut() {
            Some(last) if last.upper_bound == b.upper_bound => last.count += b.count,
            _ => coalesced.push(b),
        }
    }
    let mut max = f64::NEG_INFINITY;
    for b in &mut coalesced {
        if b.count > max {
            max = b.count;
        } else if b.count < max {
            b.count = max;
        }
    }
    if coalesced.len() < 2 {
        return f64::NAN;
    }
    let observations = coalesced[coalesced.len() - 1].count;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let n = coalesced.len();
    let b = coalesced[..n - 1].partition_point(|bucket| bucket.count < rank);
    if b == n - 1 {
        return coalesced[n - 2].upper_bound;
    }
    if b == 0 && coalesced[0].upper_bound <= 0.0 {
        return coalesced[0].upper_bound;
    }
    let mut bucket_start = 0.0;
    let bucket_end = coalesced[b].upper_bound;
    let mut count = coalesced[b].count;
    if b > 0 {
        bucket_start = coalesced[b - 1].upper_bound;
        count -= coalesced[b - 1].count;
        rank -= coalesced[b - 1].count;
    }
    bucket_start + (bucket_end - bucket_start) * (rank / count)
}

/// Compiles a PromQL regex: anchored at both ends, as Prometheus's matchers and functions are.
fn anchored_regex(pattern: &str) -> Result<regex::Regex, EvalError> {
    regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|_| {
        query_error(format!(
            "invalid regular expression in label_replace(): {pattern}"
        ))
    })
}

fn label_replace(ev: &Evaluator<'_>, args: &[&Expr], ts: i64) -> Result<Vec<Sample>, EvalError> {
    let samples = ev.eval_vector(args[0], ts)?;
    let destination = ev.eval_string(args[1], ts)?;
    let replacement = ev.eval_string(args[2], ts)?;
    let source = ev.eval_string(args[3], ts)?;
    let pattern = ev.eval_string(args[4], ts)?;
    let regex = anchored_regex(&pattern)?;
    if !is_valid_label_name(&destination) {
        return Err(query_error(format!(
            "invalid destination label name in label_replace(): {destination}"
        )));
    }
    Ok(samples
        .into_iter()
        .map(|mut s| {
            let value = s.labels.get(&source).to_string();
            if let Some(captures) = regex.captures(&value) {
                let mut replaced = String::new();
                captures.expand(&replacement, &mut replaced);
                s.labels.set(destination.clone(), replaced);
            }
            Sample { t: ts, ..s }
        })
        .collect())
}

fn label_join(ev: &Evaluator<'_>, args: &[&Expr], ts: i64) -> Result<Vec<Sample>, EvalError> {
    let samples = ev.eval_vector(args[0], ts)?;
    let destination = ev.eval_string(args[1], ts)?;
    let separator = ev.eval_string(args[2], ts)?;
    let mut sources = Vec::with_capacity(args.len().saturating_sub(3));
    for arg in &args[3..] {
        let source = ev.eval_string(arg, ts)?;
        if !is_valid_label_name(&source) {
            return Err(query_error(format!(
                "invalid source label name in label_join(): {source}"
            )));
        }
        sources.push(source);
    }
    if !is_valid_label_name(&destination) {
        return Err(query_error(format!(
            "invalid destination label name in label_join(): {destination}"
        )));
    }
    Ok(samples
        .into_iter()
        .map(|mut s| {
            let joined = sources
                .iter()
                .map(|name| s.labels.get(name))
                .collect::<Vec<_>>()
                .join(&separator);
            s.labels.set(destination.clone(), joined);
            Sample { t: ts, ..s }
        })
        .collect())
}

/// A date function of a Unix time in seconds, in UTC (Go's `time.Unix(int64(v), 0).UTC()`).
fn date_part(name: &str, v: f64) -> f64 {
    if v.is_nan() || v.is_infinite() {
        return f64::NAN;
    }
    let Some(time) = chrono::DateTime::from_timestamp(v.trunc() as i64, 0) else {
        return f64::NAN;
    };
    let value = match name {
        "day_of_month" => time.day(),
        "day_of_week" => time.weekday().num_days_from_sunday(),
        "day_of_year" => time.ordinal(),
        "days_in_month" => days_in_month(time.year(), time.month()),
        "hour" => time.hour(),
        "minute" => time.minute(),
        "month" => time.month(),
        "year" => return f64::from(time.year()),
        _ => return f64::NAN,
    };
    f64::from(value)
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}
