//! PromQL evaluation: an expression at one instant, or at each step of a range.
//!
//! Semantics are Prometheus 2.42's (the reference CI runs): range selectors and the lookback
//! window include their left boundary, stale markers end a series, `@` and `offset` move the
//! selection time, subqueries evaluate their inner expression at absolute multiples of their
//! step. A range query is the instant evaluation at each step, which is what Prometheus's
//! step-wise evaluator computes. Errors carry Prometheus's messages, so `expect fail msg:`
//! lines of its test files compare equal.

mod aggregate;
mod binary;
mod functions;
mod heap;
mod range_functions;

pub(crate) use functions::SUPPORTED as SUPPORTED_FUNCTIONS;

use std::cell::Cell;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{
    AtModifier, Expr, MatrixSelector, Offset, SubqueryExpr, VectorSelector,
};

use crate::labels::{Labels, METRIC_NAME};
use crate::promql::storage::Storage;
use crate::promql::value::{is_stale_marker, Point, Sample, Series, Value};

/// Settings of an evaluation.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// How far back an instant selector looks for a sample (Prometheus's 5 minutes).
    pub lookback_delta_ms: i64,
    /// A subquery's step when it names none (the rule group's interval).
    pub default_subquery_step_ms: i64,
    /// Samples one evaluation may read before it fails (Prometheus's `query.max-samples`).
    pub max_samples: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            lookback_delta_ms: 5 * 60 * 1000,
            default_subquery_step_ms: 60 * 1000,
            max_samples: 50_000_000,
        }
    }
}

/// Why an evaluation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// The query is valid but cannot be computed on this data (many-to-many matching, a
    /// duplicate label set, a bad regex in `label_replace`...).
    #[error("{0}")]
    Query(String),
    /// The sample limit was reached.
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    /// A construct the engine does not evaluate (native histograms, Prometheus 3 additions).
    #[error("not supported: {0}")]
    Unsupported(String),
}

pub(crate) fn query_error(message: impl Into<String>) -> EvalError {
    EvalError::Query(message.into())
}

/// Evaluates `expr` at `ts` (milliseconds).
pub fn instant_query(
    storage: &dyn Storage,
    expr: &Expr,
    ts: i64,
    options: &EvalOptions,
) -> Result<Value, EvalError> {
    let evaluator = Evaluator::new(storage, options, ts, ts);
    let value = evaluator.eval(expr, ts)?;
    if let Value::Vector(samples) = &value {
        check_unique_label_sets(samples)?;
    }
    Ok(value)
}

/// Evaluates `expr` at `start`, `start + step`, ... up to `end`: one series per label set,
/// a scalar as a series without labels.
pub fn range_query(
    storage: &dyn Storage,
    expr: &Expr,
    start: i64,
    end: i64,
    step: i64,
    options: &EvalOptions,
) -> Result<Vec<Series>, EvalError> {
    if step <= 0 {
        return Err(query_error(
            "zero or negative query resolution step widths are not accepted",
        ));
    }
    let evaluator = Evaluator::new(storage, options, start, end);
    let mut out = SeriesBuilder::default();
    let mut ts = start;
    while ts <= end {
        match evaluator.eval(expr, ts)? {
            Value::Scalar(v) => out.push(&Labels::new(), Point { t: ts, v }),
            Value::Vector(samples) => {
                check_unique_label_sets(&samples)?;
                for sample in samples {
                    out.push(&sample.labels, Point { t: ts, v: sample.v });
                }
            }
            other => {
                return Err(query_error(format!(
                "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                range_type_name(&other)
            )))
            }
        }
        ts += step;
    }
    Ok(out.finish())
}

fn range_type_name(value: &Value) -> &'static str {
    match value {
        Value::Matrix(_) => "range vector",
        other => other.type_name(),
    }
}

/// Collects points into series by label set, keeping first-seen order.
#[derive(Default)]
pub(crate) struct SeriesBuilder {
    index: HashMap<Labels, usize>,
    series: Vec<Series>,
}

impl SeriesBuilder {
    pub(crate) fn push(&mut self, labels: &Labels, point: Point) {
        let next = self.series.len();
        let i = match self.index.get(labels) {
            Some(&i) => i,
            None => {
                self.index.insert(labels.clone(), next);
                self.series.push(Series {
                    labels: labels.clone(),
                    points: Vec::new(),
                });
                next
            }
        };
        self.series[i].points.push(point);
    }

    pub(crate) fn finish(self) -> Vec<Series> {
        self.series
    }
}

/// Prometheus's "vector cannot contain metrics with the same labelset".
pub(crate) fn check_unique_label_sets(samples: &[Sample]) -> Result<(), EvalError> {
    if samples.len() < 2 {
        return Ok(());
    }
    let mut seen = std::collections::HashSet::with_capacity(samples.len());
    for sample in samples {
        if !seen.insert(&sample.labels) {
            return Err(query_error(
                "vector cannot contain metrics with the same labelset",
            ));
        }
    }
    Ok(())
}

/// The window a range function sees: `[start, end]` of a selector or subquery, and its length.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub start: i64,
    pub end: i64,
    pub range_ms: i64,
}

/// One evaluation's context: the storage, the options, and the query's start and end (what
/// `@ start()` and `@ end()` name, inside subqueries too).
pub(crate) struct Evaluator<'a> {
    storage: &'a dyn Storage,
    pub(crate) options: &'a EvalOptions,
    query_start: i64,
    query_end: i64,
    samples_read: Cell<usize>,
}

impl<'a> Evaluator<'a> {
    fn new(
        storage: &'a dyn Storage,
        options: &'a EvalOptions,
        query_start: i64,
        query_end: i64,
    ) -> Self {
        Self {
            storage,
            options,
            query_start,
            query_end,
            samples_read: Cell::new(0),
        }
    }

    pub(crate) fn eval(&self, expr: &Expr, ts: i64) -> Result<Value, EvalError> {
        match expr {
            Expr::NumberLiteral(n) => Ok(Value::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Value::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, ts),
            Expr::Unary(u) => match self.eval(&u.expr, ts)? {
                Value::Scalar(v) => Ok(Value::Scalar(-v)),
                Value::Vector(samples) => Ok(Value::Vector(
                    samples
                        .into_iter()
                        .map(|s| Sample {
                            labels: s.labels.without_metric_name(),
                            t: ts,
                            v: -s.v,
                        })
                        .collect(),
                )),
                other => Err(query_error(format!("unary minus on {}", other.type_name()))),
            },
            Expr::VectorSelector(vs) => Ok(Value::Vector(self.vector_selector(vs, ts)?)),
            Expr::MatrixSelector(ms) => Ok(Value::Matrix(self.matrix_selector(ms, ts)?.0)),
            Expr::Subquery(sq) => Ok(Value::Matrix(self.subquery(sq, ts)?.0)),
            Expr::Aggregate(agg) => aggregate::eval(self, agg, ts),
            Expr::Binary(bin) => binary::eval(self, bin, ts),
            Expr::Call(call) => functions::eval(self, call, ts),
            Expr::Extension(_) => Err(EvalError::Unsupported("extension expressions".into())),
        }
    }

    /// Evaluates an expression the parser typed as an instant vector.
    pub(crate) fn eval_vector(&self, expr: &Expr, ts: i64) -> Result<Vec<Sample>, EvalError> {
        match self.eval(expr, ts)? {
            Value::Vector(samples) => Ok(samples),
            other => Err(query_error(format!(
                "expected instant vector, got {}",
                other.type_name()
            ))),
        }
    }

    /// Evaluates an expression the parser typed as a scalar.
    pub(crate) fn eval_scalar(&self, expr: &Expr, ts: i64) -> Result<f64, EvalError> {
        match self.eval(expr, ts)? {
            Value::Scalar(v) => Ok(v),
            other => Err(query_error(format!(
                "expected scalar, got {}",
                other.type_name()
            ))),
        }
    }

    /// Evaluates an expression the parser typed as a string.
    pub(crate) fn eval_string(&self, expr: &Expr, ts: i64) -> Result<String, EvalError> {
        match self.eval(expr, ts)? {
            Value::String(s) => Ok(s),
            other => Err(query_error(format!(
                "expected string, got {}",
                other.type_name()
            ))),
        }
    }

    /// Evaluates a range-vector argument (a matrix selector or a subquery, in parentheses or
    /// not) with the window a range function extrapolates against.
    pub(crate) fn eval_range(
        &self,
        expr: &Expr,
        ts: i64,
    ) -> Result<(Vec<Series>, Window), EvalError> {
        match expr {
            Expr::Paren(p) => self.eval_range(&p.expr, ts),
            Expr::MatrixSelector(ms) => self.matrix_selector(ms, ts),
            Expr::Subquery(sq) => self.subquery(sq, ts),
            other => Err(query_error(format!(
                "expected range vector, got {}",
                other.value_type()
            ))),
        }
    }

    /// The time a selector reads at: its `@` time (or the evaluation time) minus its offset.
    fn reference_time(&self, at: &Option<AtModifier>, offset: &Option<Offset>, ts: i64) -> i64 {
        let base = match at {
            None => ts,
            Some(AtModifier::Start) => self.query_start,
            Some(AtModifier::End) => self.query_end,
            Some(AtModifier::At(time)) => system_time_millis(*time),
        };
        base - offset_millis(offset)
    }

    fn select(&self, vs: &VectorSelector, mint: i64, maxt: i64) -> Result<Vec<Series>, EvalError> {
        let mut selected = Vec::new();
        let name = vs
            .name
            .as_ref()
            .map(|name| Matcher::new(MatchOp::Equal, METRIC_NAME, name));
        if vs.matchers.or_matchers.is_empty() {
            let mut matchers: Vec<Matcher> = name.into_iter().collect();
            matchers.extend(vs.matchers.matchers.iter().cloned());
            selected = self.storage.select(&matchers, mint, maxt);
        } else {
            // `{a="1" or b="2"}`: the union of the alternatives, each series once.
            let mut seen = std::collections::HashSet::new();
            for alternative in &vs.matchers.or_matchers {
                let mut matchers: Vec<Matcher> = name.iter().cloned().collect();
                matchers.extend(alternative.iter().cloned());
                for series in self.storage.select(&matchers, mint, maxt) {
                    if seen.insert(series.labels.clone()) {
                        selected.push(series);
                    }
                }
            }
        }
        let read: usize = selected.iter().map(|s| s.points.len()).sum();
        let total = self.samples_read.get().saturating_add(read);
        self.samples_read.set(total);
        if total > self.options.max_samples {
            return Err(EvalError::TooManySamples);
        }
        Ok(selected)
    }

    fn vector_selector(&self, vs: &VectorSelector, ts: i64) -> Result<Vec<Sample>, EvalError> {
        let t = self.reference_time(&vs.at, &vs.offset, ts);
        let series = self.select(vs, t - self.options.lookback_delta_ms, t)?;
        Ok(series
            .into_iter()
            .filter_map(|s| {
                let last = *s.points.last()?;
                (!is_stale_marker(last.v)).then_some(Sample {
                    labels: s.labels,
                    t: last.t,
                    v: last.v,
                })
            })
            .collect())
    }

    fn matrix_selector(
        &self,
        ms: &MatrixSelector,
        ts: i64,
    ) -> Result<(Vec<Series>, Window), EvalError> {
        let end = self.reference_time(&ms.vs.at, &ms.vs.offset, ts);
        let range_ms = duration_millis(ms.range);
        let start = end - range_ms;
        let mut series = self.select(&ms.vs, start, end)?;
        series.retain_mut(|s| {
            s.points.retain(|p| !is_stale_marker(p.v));
            !s.points.is_empty()
        });
        Ok((
            series,
            Window {
                start,
                end,
                range_ms,
            },
        ))
    }

    fn subquery(&self, sq: &SubqueryExpr, ts: i64) -> Result<(Vec<Series>, Window), EvalError> {
        let end = self.reference_time(&sq.at, &sq.offset, ts);
        let range_ms = duration_millis(sq.range);
        let step = sq
            .step
            .map(duration_millis)
            .filter(|&s| s > 0)
            .unwrap_or(self.options.default_subquery_step_ms);
        if step <= 0 {
            return Err(query_error("zero or negative subquery step"));
        }
        // The first multiple of the step at or after the window's start (Go's truncating
        // division, then one step on if that fell before it).
        let window_start = end - range_ms;
        let mut t = step * (window_start / step);
        if t < window_start {
            t += step;
        }
        let mut out = SeriesBuilder::default();
        while t <= end {
            for sample in self.eval_vector(&sq.expr, t)? {
                out.push(&sample.labels, Point { t, v: sample.v });
            }
            t += step;
        }
        Ok((
            out.finish(),
            Window {
                start: window_start,
                end,
                range_ms,
            },
        ))
    }
}

pub fn duration_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn offset_millis(offset: &Option<Offset>) -> i64 {
    match offset {
        None => 0,
        Some(Offset::Pos(d)) => duration_millis(*d),
        Some(Offset::Neg(d)) => -duration_millis(*d),
    }
}

fn system_time_millis(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => duration_millis(after),
        Err(before) => -duration_millis(before.duration()),
    }
}
