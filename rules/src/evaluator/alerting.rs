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
    /// Pending and firing alerts restored after a restart, held aside until the rule returns
    /// them again (they take their place, with their active-at and state) or `restore_until`
    /// passes (firing ones are then resolved, pending ones dropped). After a restart the
    /// metrics the rule reads take a while to arrive; until then an absent alert is not
    /// believed gone.
    pub restored: HashMap<Labels, Alert>,
    pub restore_until: i64,
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
            if let Some(mut restored) = self.restored.remove(labels) {
                restored.value = candidate.value;
                restored.annotations = candidate.annotations.clone();
                self.active.insert(labels.clone(), restored);
                continue;
            }
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
        if !self.restored.is_empty() && ts >= self.restore_until {
            for (labels, mut alert) in self.restored.drain() {
                if alert.state == AlertState::Firing && !self.active.contains_key(&labels) {
                    alert.state = AlertState::Inactive;
                    alert.resolved_at = Some(ts);
                    self.active.insert(labels, alert);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(room: &str) -> Candidate {
        Candidate {
            labels: Labels::from_pairs([("alertname", "Hot"), ("room", room)]),
            annotations: BTreeMap::new(),
            value: 1.0,
        }
    }

    fn restored(room: &str, state: AlertState, active_at: i64) -> (Labels, Alert) {
        let labels = candidate(room).labels;
        let alert = Alert {
            labels: labels.clone(),
            annotations: BTreeMap::new(),
            state,
            value: 1.0,
            active_at,
            fired_at: (state == AlertState::Firing).then_some(active_at + 10_000),
            resolved_at: None,
            keep_firing_since: None,
        };
        (labels, alert)
    }

    #[test]
    fn restored_alerts_wait_for_their_rule_and_keep_their_clock() {
        let mut state = AlertingState {
            restored: HashMap::from([
                restored("lab", AlertState::Pending, 1_000),
                restored("server", AlertState::Firing, 1_000),
                restored("attic", AlertState::Firing, 1_000),
                restored("cellar", AlertState::Pending, 1_000),
            ]),
            restore_until: 100_000,
            ..Default::default()
        };
        // No data yet: nothing is believed gone, nothing is reported.
        assert!(state
            .update(vec![], 50_000, 20_000, 0, 0)
            .unwrap()
            .is_empty());
        assert_eq!(state.restored.len(), 4);
        // The rule returns lab and server: they keep their active-at; lab's `for` (20 s from
        // 1 s) has passed, so it fires now; server was firing and stays so.
        state
            .update(
                vec![candidate("lab"), candidate("server")],
                60_000,
                20_000,
                0,
                0,
            )
            .unwrap();
        let lab = &state.active[&candidate("lab").labels];
        assert_eq!(
            (lab.state, lab.active_at, lab.fired_at),
            (AlertState::Firing, 1_000, Some(60_000))
        );
        let server = &state.active[&candidate("server").labels];
        assert_eq!(
            (server.state, server.fired_at),
            (AlertState::Firing, Some(11_000))
        );
        // The grace passes: attic (firing) is resolved, cellar (pending) dropped.
        state
            .update(
                vec![candidate("lab"), candidate("server")],
                100_000,
                20_000,
                0,
                0,
            )
            .unwrap();
        assert!(state.restored.is_empty());
        let attic = &state.active[&candidate("attic").labels];
        assert_eq!(
            (attic.state, attic.resolved_at),
            (AlertState::Inactive, Some(100_000))
        );
        assert!(!state.active.contains_key(&candidate("cellar").labels));
    }
}
