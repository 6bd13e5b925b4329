//! The alert state that outlives the process, in `<data_dir>/alerts.json` (replaced whole and
//! crash-safe after every evaluation that ran): each alerting rule's alerts — state, value,
//! annotations, active-at, fired-at, resolved-at, keep-firing-since — and the notification log.
//!
//! At start-up the alerts go back to the rules with the same file, group, name and expression
//! (as Prometheus restores `for` from `ALERTS_FOR_STATE`, but with every field), so a restart
//! in the middle of `for` does not restart the clock, a firing alert is not told again, and
//! one that resolved while the process was down is told resolved. A file that does not read is
//! logged and set aside (`alerts.json.unreadable`); the rules start fresh.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use sextant_rules::evaluator::alerting::{Alert, AlertState};
use sextant_rules::evaluator::GroupState;
use sextant_rules::labels::Labels;
use sextant_rules::notify::dispatch::{LogEntry, LogKey};

const VERSION: u32 = 1;
pub(super) const FILE_NAME: &str = "alerts.json";

#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct OnDisk {
    version: u32,
    saved_at_ms: i64,
    rules: Vec<SavedRule>,
    notification_log: Vec<SavedLogEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedRule {
    file: String,
    group: String,
    rule: String,
    expr: String,
    alerts: Vec<SavedAlert>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedAlert {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    state: String,
    /// Text, so NaN and infinities survive JSON.
    value: String,
    active_at: i64,
    fired_at: Option<i64>,
    resolved_at: Option<i64>,
    keep_firing_since: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedLogEntry {
    group_key: String,
    receiver: String,
    integration: usize,
    firing: Vec<String>,
    resolved: Vec<String>,
    timestamp_ms: i64,
}

/// What the state holds now.
pub(super) fn capture<'a>(
    groups: impl Iterator<Item = &'a GroupState>,
    log: impl Iterator<Item = (&'a LogKey, &'a LogEntry)>,
    now_ms: i64,
) -> OnDisk {
    let mut rules = Vec::new();
    for group in groups {
        for state in &group.rules {
            if state.alerts.active.is_empty() && state.alerts.restored.is_empty() {
                continue;
            }
            // Alerts still held aside since the last restart are saved too.
            let mut alerts: Vec<SavedAlert> = state
                .alerts
                .active
                .values()
                .chain(state.alerts.restored.values())
                .map(|a| SavedAlert {
                    labels: a
                        .labels
                        .iter()
                        .map(|l| (l.name.to_string(), l.value.to_string()))
                        .collect(),
                    annotations: a.annotations.clone(),
                    state: a.state.as_str().to_string(),
                    value: a.value.to_string(),
                    active_at: a.active_at,
                    fired_at: a.fired_at,
                    resolved_at: a.resolved_at,
                    keep_firing_since: a.keep_firing_since,
                })
                .collect();
            alerts.sort_by(|a, b| a.labels.cmp(&b.labels));
            rules.push(SavedRule {
                file: group.file.clone(),
                group: group.name.clone(),
                rule: state.rule.name.clone(),
                expr: state.rule.expr_text.clone(),
                alerts,
            });
        }
    }
    let hexes = |set: &std::collections::HashSet<u64>| {
        let mut v: Vec<String> = set.iter().map(|fp| format!("{fp:016x}")).collect();
        v.sort();
        v
    };
    let mut notification_log: Vec<SavedLogEntry> = log
        .map(|(k, e)| SavedLogEntry {
            group_key: k.group_key.clone(),
            receiver: k.receiver.clone(),
            integration: k.integration,
            firing: hexes(&e.firing),
            resolved: hexes(&e.resolved),
            timestamp_ms: e.timestamp_ms,
        })
        .collect();
    notification_log.sort_by(|a, b| {
        (&a.group_key, &a.receiver, a.integration).cmp(&(&b.group_key, &b.receiver, b.integration))
    });
    OnDisk {
        version: VERSION,
        saved_at_ms: now_ms,
        rules,
        notification_log,
    }
}

pub(super) fn save(path: &Path, state: &OnDisk) -> std::io::Result<()> {
    let body = serde_json::to_vec(state).map_err(std::io::Error::other)?;
    sextant_pipeline::state_file::write_atomically(path, &body)
}

/// Reads the saved state; `Ok(None)` when there is none.
pub(super) fn load(path: &Path) -> Result<Option<OnDisk>, String> {
    let body = match std::fs::read(path) {
        Ok(body) => body,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let state: OnDisk = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    if state.version != VERSION {
        return Err(format!("unknown version {}", state.version));
    }
    Ok(Some(state))
}

/// What a restore put back.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Restored {
    pub alerts: usize,
    /// Saved alerts whose rule is gone or changed.
    pub orphaned: usize,
}

/// Gives the saved alerts back to their rules — pending and firing ones held aside until
/// `restore_until` (see [`sextant_rules::evaluator::alerting::AlertingState::restored`]) — and
/// returns the notification log.
pub(super) fn restore<'a>(
    state: OnDisk,
    groups: impl Iterator<Item = &'a mut GroupState>,
    restore_until: i64,
) -> (Restored, Vec<(LogKey, LogEntry)>) {
    let mut by_rule: BTreeMap<(String, String, String, String), Vec<SavedAlert>> = state
        .rules
        .into_iter()
        .map(|r| ((r.file, r.group, r.rule, r.expr), r.alerts))
        .collect();
    let mut restored = Restored::default();
    for group in groups {
        for rule in &mut group.rules {
            let key = (
                group.file.clone(),
                group.name.clone(),
                rule.rule.name.clone(),
                rule.rule.expr_text.clone(),
            );
            let Some(saved) = by_rule.remove(&key) else {
                continue;
            };
            for alert in saved {
                let Some(state) = parse_state(&alert.state) else {
                    restored.orphaned += 1;
                    continue;
                };
                let labels = Labels::from_pairs(alert.labels);
                restored.alerts += 1;
                rule.alerts.restore_until = restore_until;
                let place = if state == AlertState::Inactive {
                    &mut rule.alerts.active
                } else {
                    &mut rule.alerts.restored
                };
                place.insert(
                    labels.clone(),
                    Alert {
                        labels,
                        annotations: alert.annotations,
                        state,
                        value: alert.value.parse().unwrap_or(f64::NAN),
                        active_at: alert.active_at,
                        fired_at: alert.fired_at,
                        resolved_at: alert.resolved_at,
                        keep_firing_since: alert.keep_firing_since,
                    },
                );
            }
        }
    }
    restored.orphaned += by_rule.values().map(Vec::len).sum::<usize>();
    let log = state
        .notification_log
        .into_iter()
        .map(|e| {
            let set = |hexes: Vec<String>| {
                hexes
                    .iter()
                    .filter_map(|h| u64::from_str_radix(h, 16).ok())
                    .collect()
            };
            (
                LogKey {
                    group_key: e.group_key,
                    receiver: e.receiver,
                    integration: e.integration,
                },
                LogEntry {
                    firing: set(e.firing),
                    resolved: set(e.resolved),
                    timestamp_ms: e.timestamp_ms,
                },
            )
        })
        .collect();
    (restored, log)
}

fn parse_state(text: &str) -> Option<AlertState> {
    match text {
        "pending" => Some(AlertState::Pending),
        "firing" => Some(AlertState::Firing),
        "inactive" => Some(AlertState::Inactive),
        _ => None,
    }
}
