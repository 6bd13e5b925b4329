//! An alerting rule's state: its active alerts and how they move between pending, firing and
//! resolved — Prometheus 2.42's `AlertingRule.Eval`, `for` and `keep_firing_for` included,
//! resolved alerts kept 15 minutes so they can be reported as resolved.

use std::collections::{BTreeMap, HashMap};

use crate::labels::{Labels, METRIC_NAME};

/// How long a resolved alert is kept (Prometheus's `resolvedRetention`).
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of a rule: its identity (labels) and state.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    pub value: f64,
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub keep_firing_since: Option<i64>,
}

/// The alerts of one rule.
#[derive(Debug, Default)]
pub struct AlertingState {
    pub active: HashMap<Labels, Alert>,
}

/// One evaluation's result of the rule's query, as alerts to be.
pub struct Candidate {
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub value: f64,
}

impl AlertingState {
    /// Moves the alerts to the state evaluation `ts` implies and returns the `ALERTS` and
    /// `ALERTS_FOR_STATE` samples for it; an error (the limit) clears the alerts.
    pub fn update(
        &mut self,
        candidates: Vec<Candidate>,
        ts: i64,
        for_ms: i64,
        keep_firing_for_ms: i64,
        limit: usize,
    ) -> Result<Vec<(Labels, f64)>, String> {
        let mut current = HashMap::with_capacity(candidates.len());
        for candidate in candidates {
            if current.contains_key(&candidate.labels) {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .into(),
                );
            }
            current.insert(candidate.labels.clone(), candidate);
        }
        for (labels, candidate) in &current {
            match self.active.get_mut(labels) {
                Some(alert) if alert.state != AlertState::Inactive => {
                    alert.value = candidate.value;
                    alert.annotations = candidate.annotations.clone();
                }
                _ => {
                    self.active.insert(
                        labels.clone(),
                        Alert {
                            labels: labels.clone(),
                            annotations: candidate.annotations.clone(),
                            state: AlertState::Pending,
                            value: candidate.value,
                            active_at: ts,
                            fired_at: None,
                            resolved_at: None,
                            keep_firing_since: None,
                        },
                    );
                }
            }
        }
        let mut output = Vec::new();
        let mut active_or_pending = 0usize;
        let mut remove = Vec::new();
        for (labels, alert) in self.active.iter_mut() {
            if !current.contains_key(labels) {
                let mut keep_firing = false;
                if alert.state == AlertState::Firing && keep_firing_for_ms > 0 {
                    let since = *alert.keep_firing_since.get_or_insert(ts);
                    keep_firing = ts - since < keep_firing_for_ms;
                }
                let expired = alert
                    .resolved_at
                    .is_some_and(|at| ts - at > RESOLVED_RETENTION_MS);
                if (alert.state == AlertState::Pending || expired) && !keep_firing {
                    remove.push(labels.clone());
                }
                if alert.state != AlertState::Inactive && !keep_firing {
                    alert.state = AlertState::Inactive;
                    alert.resolved_at = Some(ts);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                alert.keep_firing_since = None;
            }
            active_or_pending += 1;
            if alert.state == AlertState::Pending && ts - alert.active_at >= for_ms {
                alert.state = AlertState::Firing;
                alert.fired_at = Some(ts);
            }
            output.push((
                series_labels("ALERTS", &alert.labels, Some(alert.state)),
                1.0,
            ));
            output.push((
                series_labels("ALERTS_FOR_STATE", &alert.labels, None),
                (alert.active_at / 1000) as f64,
            ));
        }
        for labels in remove {
            self.active.remove(&labels);
        }
        if limit > 0 && active_or_pending > limit {
            self.active.clear();
            return Err(format!(
                "exceeded limit of {limit} with {active_or_pending} alerts"
            ));
        }
        Ok(output)
    }

    /// The alerts that are firing.
    pub fn firing(&self) -> impl Iterator<Item = &Alert> {
        self.active
            .values()
            .filter(|a| a.state == AlertState::Firing)
    }
}

fn series_labels(name: &str, alert: &Labels, state: Option<AlertState>) -> Labels {
    let mut labels = alert.clone();
    labels.set(METRIC_NAME.to_string(), name.to_string());
    if let Some(state) = state {
        labels.set("alertstate".to_string(), state.as_str().to_string());
    }
    labels
}
