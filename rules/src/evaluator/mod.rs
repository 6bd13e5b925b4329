//! Evaluates rule groups: each rule's query at the evaluation time, recording rules' series
//! and alerting rules' `ALERTS`/`ALERTS_FOR_STATE` written back to the store (so later rules
//! of the group read them at the same time) and returned for the sinks, stale markers for
//! series a rule stopped returning. A rule that fails is counted with its error and skipped;
//! the others run. Prometheus 2.42's `Group.Eval`, rule by rule.

pub mod alerting;

use std::collections::{BTreeMap, HashSet};

use crate::labels::{Labels, METRIC_NAME};
use crate::promql::value::{stale_marker, Value};
use crate::promql::{instant_query, EvalOptions, Storage};
use crate::rule_files::{Rule, RuleGroup, RuleKind};
use crate::template::{Context, QuerySample};
use alerting::{AlertingState, Candidate};

/// A store rules read from and write their results into.
pub trait RuleStore: Storage {
    fn append(&mut self, labels: &Labels, t: i64, v: f64);
}

impl RuleStore for crate::promql::MemoryStorage {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) {
        crate::promql::MemoryStorage::append(self, labels, t, v);
    }
}

/// What every rule's evaluation shares.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
    pub options: EvalOptions,
}

/// A rule with what it remembers between evaluations.
#[derive(Debug)]
pub struct RuleState {
    pub rule: Rule,
    /// The series it returned last time (to mark the ones that go as stale).
    previous_series: HashSet<Labels>,
    pub alerts: AlertingState,
    pub last_error: Option<String>,
    pub evaluations: u64,
    pub failures: u64,
}

impl RuleState {
    /// Takes over what `previous` (this rule before a reload) remembered: its alerts and the
    /// series it returned.
    pub fn take_state_from(&mut self, previous: RuleState) {
        self.previous_series = previous.previous_series;
        self.alerts = previous.alerts;
        self.evaluations = previous.evaluations;
        self.failures = previous.failures;
    }
}

/// A group with its rules' state.
#[derive(Debug)]
pub struct GroupState {
    pub name: String,
    pub file: String,
    pub interval_ms: Option<i64>,
    pub limit: usize,
    pub rules: Vec<RuleState>,
}

/// One evaluation's result.
#[derive(Debug, Default)]
pub struct Evaluation {
    /// Every sample written (stale markers included), for the sinks.
    pub samples: Vec<(Labels, f64)>,
    /// The rules that failed, with why.
    pub errors: Vec<(String, String)>,
}

impl GroupState {
    pub fn new(group: RuleGroup) -> Self {
        Self {
            name: group.name,
            file: group.file,
            interval_ms: group.interval_ms,
            limit: group.limit,
            rules: group
                .rules
                .into_iter()
                .map(|rule| RuleState {
                    rule,
                    previous_series: HashSet::new(),
                    alerts: AlertingState::default(),
                    last_error: None,
                    evaluations: 0,
                    failures: 0,
                })
                .collect(),
        }
    }

    /// Evaluates every rule at `ts`, in order.
    pub fn evaluate<S: RuleStore>(
        &mut self,
        store: &mut S,
        ts: i64,
        settings: &Settings,
    ) -> Evaluation {
        let mut evaluation = Evaluation::default();
        for state in &mut self.rules {
            state.evaluations += 1;
            let result = evaluate_rule(state, store, ts, settings, self.limit);
            let samples = match result {
                Ok(samples) => samples,
                Err(error) => {
                    state.failures += 1;
                    state.last_error = Some(error.clone());
                    evaluation.errors.push((state.rule.name.clone(), error));
                    continue;
                }
            };
            state.last_error = None;
            let mut returned = HashSet::with_capacity(samples.len());
            for (labels, v) in samples {
                store.append(&labels, ts, v);
                returned.insert(labels.clone());
                evaluation.samples.push((labels, v));
            }
            for gone in state.previous_series.difference(&returned) {
                store.append(gone, ts, stale_marker());
                evaluation.samples.push((gone.clone(), stale_marker()));
            }
            state.previous_series = returned;
        }
        evaluation
    }
}

/// The rule's query result as a vector (a scalar is one sample without labels).
fn query_vector(
    store: &dyn Storage,
    rule: &Rule,
    ts: i64,
    options: &EvalOptions,
) -> Result<Vec<(Labels, f64)>, String> {
    match instant_query(store, &rule.expr, ts, options).map_err(|e| e.to_string())? {
        Value::Vector(samples) => Ok(samples.into_iter().map(|s| (s.labels, s.v)).collect()),
        Value::Scalar(v) => Ok(vec![(Labels::new(), v)]),
        other => Err(format!(
            "rule result is not a vector or scalar: {}",
            other.type_name()
        )),
    }
}

fn evaluate_rule<S: RuleStore>(
    state: &mut RuleState,
    store: &S,
    ts: i64,
    settings: &Settings,
    limit: usize,
) -> Result<Vec<(Labels, f64)>, String> {
    let vector = query_vector(store, &state.rule, ts, &settings.options)?;
    match &state.rule.kind {
        RuleKind::Recording => {
            let mut out = Vec::with_capacity(vector.len());
            let mut seen = HashSet::with_capacity(vector.len());
            for (mut labels, v) in vector {
                labels.set(METRIC_NAME.to_string(), state.rule.name.clone());
                for (name, value) in &state.rule.labels {
                    labels.set(name.clone(), value.source().to_string());
                }
                if !seen.insert(labels.clone()) {
                    return Err(
                        "vector contains metrics with the same labelset after applying rule labels"
                            .into(),
                    );
                }
                out.push((labels, v));
            }
            if limit > 0 && out.len() > limit {
                return Err(format!(
                    "exceeded limit of {limit} with {} series",
                    out.len()
                ));
            }
            Ok(out)
        }
        RuleKind::Alerting {
            for_ms,
            keep_firing_for_ms,
            annotations,
        } => {
            let query = |q: &str| -> Result<Vec<QuerySample>, String> {
                template_query(store, q, ts, &settings.options)
            };
            let mut candidates = Vec::with_capacity(vector.len());
            for (labels, value) in vector {
                let label_map: BTreeMap<String, String> = labels
                    .iter()
                    .map(|l| (l.name.to_string(), l.value.to_string()))
                    .collect();
                let context = Context {
                    labels: &label_map,
                    external_labels: &settings.external_labels,
                    external_url: &settings.external_url,
                    value,
                    query: &query,
                };
                let mut alert_labels = labels.clone().without_metric_name();
                for (name, template) in &state.rule.labels {
                    alert_labels.set(name.clone(), template.expand(&context));
                }
                alert_labels.set("alertname".to_string(), state.rule.name.clone());
                let annotations = annotations
                    .iter()
                    .map(|(k, t)| (k.clone(), t.expand(&context)))
                    .collect();
                candidates.push(Candidate {
                    labels: alert_labels,
                    annotations,
                    value,
                });
            }
            state
                .alerts
                .update(candidates, ts, *for_ms, *keep_firing_for_ms, limit)
        }
    }
}

/// The `query` template function: an instant query at the evaluation time.
fn template_query(
    store: &dyn Storage,
    query: &str,
    ts: i64,
    options: &EvalOptions,
) -> Result<Vec<QuerySample>, String> {
    let expr = crate::promql::parse(query)?;
    let to_sample = |labels: Labels, value: f64| QuerySample {
        labels: labels
            .iter()
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect(),
        value,
    };
    match instant_query(store, &expr, ts, options).map_err(|e| e.to_string())? {
        Value::Vector(samples) => Ok(samples
            .into_iter()
            .map(|s| to_sample(s.labels, s.v))
            .collect()),
        Value::Scalar(v) => Ok(vec![to_sample(Labels::new(), v)]),
        other => Err(format!(
            "query result is not a vector or scalar: {}",
            other.type_name()
        )),
    }
}
