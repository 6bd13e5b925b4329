//! Alertmanager's dispatcher and notification pipeline in one process, driven by the clock the
//! caller passes (so it is exact under test):
//!
//! - [`Dispatcher::receive`] takes one rule group's alerts after its evaluation (firing, and
//!   resolved ones while the rule keeps them); an alert that group sent before and no longer
//!   sends is resolved now. Each alert joins an aggregation group per route it lands in (its
//!   route's key plus its `group_by` labels); a resolved alert never starts a group.
//! - [`Dispatcher::flush`] flushes the groups that are due: first `group_wait` after the group
//!   began (at once when its alert started longer ago than that, as after a restart), then every
//!   `group_interval`. Alerts muted by inhibition or a silence are left out; each of the
//!   receiver's integrations gets a [`Notification`] only when Alertmanager's dedup stage would
//!   send one — new firing alerts, newly resolved ones (when it sends resolved), everything
//!   resolved, or `repeat_interval` passed — judged against the notification log.
//! - [`Dispatcher::settle`] records the answer: a delivered notification enters the log (what
//!   was firing and resolved, and when), a failed one is tried again at the group's next flush.
//!   While one is out, that integration is not flushed again, so a slow backend never doubles.
//! - The log is what a restart needs ([`Dispatcher::log_entries`], [`Dispatcher::restore_log`]):
//!   the groups rebuild from the next evaluation and flush at once, and the log keeps them from
//!   sending what was already sent.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::inhibit::{InhibitRule, Inhibition};
use super::route::Route;
use super::silence::Silences;
use super::{fingerprint, AlertInput};
use crate::labels::Labels;

/// What one receiver integration was last told about one group.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogEntry {
    pub firing: HashSet<u64>,
    pub resolved: HashSet<u64>,
    pub timestamp_ms: i64,
}

/// Which integration of which receiver, for which group.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogKey {
    pub group_key: String,
    pub receiver: String,
    pub integration: usize,
}

/// One alert as a notification carries it.
#[derive(Clone, Debug, PartialEq)]
pub struct NotifiedAlert {
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub starts_at_ms: i64,
    /// When it resolved; `None` while firing.
    pub ends_at_ms: Option<i64>,
    pub generator_url: String,
    pub fingerprint: u64,
}

impl NotifiedAlert {
    pub fn firing(&self) -> bool {
        self.ends_at_ms.is_none()
    }
}

/// A notification to send, and what to record once it is delivered.
#[derive(Clone, Debug)]
pub struct Notification {
    pub key: LogKey,
    pub group_labels: Labels,
    /// Firing alerts first, then resolved ones, each in label order.
    pub alerts: Vec<NotifiedAlert>,
    pub created_ms: i64,
    group: GroupId,
    firing: HashSet<u64>,
    resolved: HashSet<u64>,
}

impl Notification {
    pub fn firing_count(&self) -> usize {
        self.firing.len()
    }
    pub fn resolved_count(&self) -> usize {
        self.alerts.len() - self.firing_count()
    }
}

/// A receiver's integrations: whether each sends resolved notifications.
#[derive(Clone, Debug, Default)]
pub struct Receiver {
    pub send_resolved: Vec<bool>,
}

struct StoredAlert {
    alert: AlertInput,
    source: Arc<str>,
}

/// A group: its route's index and its `group_by` labels.
type GroupId = (usize, Labels);

struct Group {
    /// Alertmanager's group key: the route's key and the group labels.
    key: String,
    alerts: HashSet<u64>,
    next_flush_ms: i64,
    flushed: bool,
}

/// See the module doc.
pub struct Dispatcher {
    routes: Vec<Route>,
    receivers: HashMap<String, Receiver>,
    inhibit_rules: Vec<InhibitRule>,
    silences: Silences,
    alerts: HashMap<u64, StoredAlert>,
    by_source: HashMap<Arc<str>, HashSet<u64>>,
    groups: HashMap<GroupId, Group>,
    /// How many groups hold each alert.
    held: HashMap<u64, u32>,
    log: HashMap<LogKey, LogEntry>,
    in_flight: HashSet<LogKey>,
}

impl Dispatcher {
    pub fn new(
        route: &Route,
        receivers: HashMap<String, Receiver>,
        inhibit_rules: Vec<InhibitRule>,
    ) -> Self {
        Self {
            routes: route.walk().into_iter().cloned().collect(),
            receivers,
            inhibit_rules,
            silences: Silences::default(),
            alerts: HashMap::new(),
            by_source: HashMap::new(),
            groups: HashMap::new(),
            held: HashMap::new(),
            log: HashMap::new(),
            in_flight: HashSet::new(),
        }
    }

    pub fn set_silences(&mut self, silences: Silences) {
        self.silences = silences;
    }

    /// Takes one source's (rule group's) alerts as of `now_ms`; see the module doc.
    pub fn receive(&mut self, source: &str, alerts: Vec<AlertInput>, now_ms: i64) {
        let source: Arc<str> = Arc::from(source);
        let mut sent = HashSet::with_capacity(alerts.len());
        for alert in alerts {
            let fp = fingerprint(&alert.labels);
            // A resolved alert no group holds has nothing to tell: it is not kept.
            if !self.place(fp, &alert, now_ms) {
                self.alerts.remove(&fp);
                continue;
            }
            sent.insert(fp);
            self.alerts.insert(
                fp,
                StoredAlert {
                    alert,
                    source: source.clone(),
                },
            );
        }
        let before = self.by_source.insert(source.clone(), sent);
        for fp in before.unwrap_or_default() {
            if self.by_source.get(&source).is_some_and(|s| s.contains(&fp)) {
                continue;
            }
            let held = self.held.contains_key(&fp);
            match self.alerts.get_mut(&fp) {
                Some(stored) if stored.source != source => {}
                Some(_) if !held => {
                    self.alerts.remove(&fp);
                }
                Some(stored) => {
                    if stored.alert.ends_at_ms.is_none() {
                        stored.alert.ends_at_ms = Some(now_ms);
                    }
                    // Still held by a group until its resolution is told: keep it with its
                    // source so a later evaluation can resolve it again.
                    if let Some(fps) = self.by_source.get_mut(&source) {
                        fps.insert(fp);
                    }
                }
                None => {}
            }
        }
    }

    /// Puts the alert in the groups of the routes it lands in; whether any group holds it.
    fn place(&mut self, fp: u64, alert: &AlertInput, now_ms: i64) -> bool {
        let mut held = false;
        let routes: Vec<usize> = self.routes[0]
            .matching(&alert.labels)
            .iter()
            .map(|matched| matched.index)
            .collect();
        for index in routes {
            let route = &self.routes[index];
            let id: GroupId = (index, route.group_by.group_labels(&alert.labels));
            let started_long_ago = alert.starts_at_ms + route.group_wait_ms < now_ms;
            // A resolved alert matters only to a group that holds it or told it firing
            // (before a restart, say).
            if alert.ends_at_ms.is_some()
                && !self.groups.get(&id).is_some_and(|g| g.alerts.contains(&fp))
                && !self.told_firing(&group_key(route, &id.1), &route.receiver, fp)
            {
                continue;
            }
            let group = self.groups.entry(id).or_insert_with_key(|id| Group {
                key: group_key(route, &id.1),
                alerts: HashSet::new(),
                next_flush_ms: now_ms + route.group_wait_ms,
                flushed: false,
            });
            if !group.flushed && started_long_ago {
                group.next_flush_ms = group.next_flush_ms.min(now_ms);
            }
            if group.alerts.insert(fp) {
                *self.held.entry(fp).or_default() += 1;
            }
            held = true;
        }
        held
    }

    /// Whether an integration of `receiver` was told `fp` firing in group `group_key` and not
    /// yet told it resolved.
    fn told_firing(&self, group_key: &str, receiver: &str, fp: u64) -> bool {
        let integrations = self
            .receivers
            .get(receiver)
            .map_or(0, |r| r.send_resolved.len());
        (0..integrations).any(|integration| {
            let key = LogKey {
                group_key: group_key.to_string(),
                receiver: receiver.to_string(),
                integration,
            };
            self.log
                .get(&key)
                .is_some_and(|e| e.firing.contains(&fp) && !e.resolved.contains(&fp))
        })
    }

    /// When the next group is due, if any.
    pub fn next_due_ms(&self) -> Option<i64> {
        self.groups.values().map(|g| g.next_flush_ms).min()
    }

    /// The notifications the groups due at `now_ms` call for; see the module doc.
    pub fn flush(&mut self, now_ms: i64) -> Vec<Notification> {
        let due: Vec<GroupId> = self
            .groups
            .iter()
            .filter(|(_, g)| g.next_flush_ms <= now_ms)
            .map(|(id, _)| id.clone())
            .collect();
        if due.is_empty() {
            return Vec::new();
        }
        let firing_now = self
            .alerts
            .values()
            .filter(|s| s.alert.ends_at_ms.is_none_or(|end| end > now_ms))
            .map(|s| &s.alert.labels);
        let inhibition = Inhibition::new(&self.inhibit_rules, firing_now);
        let mut notifications = Vec::new();
        for id in &due {
            let Some(group) = self.groups.get(id) else {
                continue;
            };
            let route = &self.routes[id.0];
            // The alerts to tell (not muted), and which are firing; copied into a
            // notification only when one is sent.
            let mut told: Vec<(u64, &AlertInput, bool)> = group
                .alerts
                .iter()
                .filter_map(|fp| Some((*fp, &self.alerts.get(fp)?.alert)))
                .filter(|(_, a)| {
                    !inhibition.mutes(&a.labels) && !self.silences.mutes(&a.labels, now_ms)
                })
                .map(|(fp, a)| (fp, a, a.ends_at_ms.is_none_or(|end| end > now_ms)))
                .collect();
            let firing: HashSet<u64> = told.iter().filter(|t| t.2).map(|t| t.0).collect();
            let resolved: HashSet<u64> = told.iter().filter(|t| !t.2).map(|t| t.0).collect();
            let mut alerts: Option<Vec<NotifiedAlert>> = None;
            let send_resolved = self
                .receivers
                .get(&route.receiver)
                .map(|r| r.send_resolved.clone())
                .unwrap_or_default();
            for (integration, sends_resolved) in send_resolved.into_iter().enumerate() {
                let log_key = LogKey {
                    group_key: group.key.clone(),
                    receiver: route.receiver.clone(),
                    integration,
                };
                if self.in_flight.contains(&log_key) {
                    continue;
                }
                let entry = self.log.get(&log_key);
                if !needs_update(
                    entry,
                    &firing,
                    &resolved,
                    sends_resolved,
                    route.repeat_interval_ms,
                    now_ms,
                ) {
                    continue;
                }
                let all = alerts.get_or_insert_with(|| {
                    told.sort_by(|a, b| (!a.2, &a.1.labels).cmp(&(!b.2, &b.1.labels)));
                    told.iter()
                        .map(|(fp, a, _)| NotifiedAlert {
                            labels: a.labels.clone(),
                            annotations: a.annotations.clone(),
                            starts_at_ms: a.starts_at_ms,
                            ends_at_ms: a.ends_at_ms.filter(|end| *end <= now_ms),
                            generator_url: a.generator_url.clone(),
                            fingerprint: *fp,
                        })
                        .collect()
                });
                let alerts: Vec<NotifiedAlert> = if sends_resolved {
                    all.clone()
                } else {
                    all.iter().filter(|a| a.firing()).cloned().collect()
                };
                if alerts.is_empty() {
                    // All resolved and this integration does not say so: the log forgets the
                    // firing ones without a message, as Alertmanager's does.
                    self.log.insert(
                        log_key,
                        LogEntry {
                            firing: HashSet::new(),
                            resolved: resolved.clone(),
                            timestamp_ms: now_ms,
                        },
                    );
                    continue;
                }
                self.in_flight.insert(log_key.clone());
                notifications.push(Notification {
                    key: log_key,
                    group_labels: id.1.clone(),
                    alerts,
                    created_ms: now_ms,
                    group: id.clone(),
                    firing: firing.clone(),
                    resolved: resolved.clone(),
                });
            }
        }
        for id in due {
            if let Some(group) = self.groups.get_mut(&id) {
                group.flushed = true;
                group.next_flush_ms = now_ms + self.routes[id.0].group_interval_ms;
            }
            self.prune(&id, now_ms);
        }
        notifications
    }

    /// Records a notification's answer; see the module doc.
    pub fn settle(&mut self, notification: &Notification, delivered: bool, now_ms: i64) {
        self.in_flight.remove(&notification.key);
        if delivered {
            self.log.insert(
                notification.key.clone(),
                LogEntry {
                    firing: notification.firing.clone(),
                    resolved: notification.resolved.clone(),
                    timestamp_ms: notification.created_ms,
                },
            );
            self.prune(&notification.group, now_ms);
        }
    }

    /// Drops the group's resolved alerts every integration has nothing left to say about, and
    /// the group once it is empty.
    fn prune(&mut self, id: &GroupId, now_ms: i64) {
        let Some(group) = self.groups.get(id) else {
            return;
        };
        let receiver = &self.routes[id.0].receiver;
        let integrations = self
            .receivers
            .get(receiver)
            .map_or(0, |r| r.send_resolved.len());
        let keys: Vec<LogKey> = (0..integrations)
            .map(|integration| LogKey {
                group_key: group.key.clone(),
                receiver: receiver.clone(),
                integration,
            })
            .collect();
        if keys.iter().any(|k| self.in_flight.contains(k)) {
            return;
        }
        let done: Vec<u64> = group
            .alerts
            .iter()
            .copied()
            .filter(|fp| {
                let resolved = self
                    .alerts
                    .get(fp)
                    .is_none_or(|s| s.alert.ends_at_ms.is_some_and(|end| end <= now_ms));
                resolved
                    && keys.iter().all(|k| {
                        self.log.get(k).is_none_or(|entry| {
                            !entry.firing.contains(fp) || entry.resolved.contains(fp)
                        })
                    })
            })
            .collect();
        let Some(group) = self.groups.get_mut(id) else {
            return;
        };
        for fp in &done {
            group.alerts.remove(fp);
        }
        if group.alerts.is_empty() {
            self.groups.remove(id);
        }
        for fp in done {
            let still_held = match self.held.get_mut(&fp) {
                Some(count) if *count > 1 => {
                    *count -= 1;
                    true
                }
                _ => {
                    self.held.remove(&fp);
                    false
                }
            };
            if !still_held {
                if let Some(stored) = self.alerts.remove(&fp) {
                    if let Some(fps) = self.by_source.get_mut(&stored.source) {
                        fps.remove(&fp);
                    }
                }
            }
        }
    }

    /// The notification log, for saving.
    pub fn log_entries(&self) -> impl Iterator<Item = (&LogKey, &LogEntry)> {
        self.log.iter()
    }

    /// Restores a saved log (before the first `receive`).
    pub fn restore_log(&mut self, entries: impl IntoIterator<Item = (LogKey, LogEntry)>) {
        self.log.extend(entries);
    }

    /// Drops log entries of groups that are gone and were last told long ago (Alertmanager
    /// keeps its log for 120 h).
    pub fn expire_log(&mut self, older_than_ms: i64) {
        let live: HashSet<&str> = self.groups.values().map(|g| g.key.as_str()).collect();
        self.log
            .retain(|k, e| live.contains(k.group_key.as_str()) || e.timestamp_ms >= older_than_ms);
    }

    /// Alerts and groups held, for metrics.
    pub fn counts(&self) -> (usize, usize) {
        (self.alerts.len(), self.groups.len())
    }
}

/// Alertmanager's group key: the route's key and the group labels.
fn group_key(route: &Route, labels: &Labels) -> String {
    format!("{}:{}", route.key, labels)
}

/// Alertmanager's `DedupStage.needsUpdate`.
fn needs_update(
    entry: Option<&LogEntry>,
    firing: &HashSet<u64>,
    resolved: &HashSet<u64>,
    send_resolved: bool,
    repeat_interval_ms: i64,
    now_ms: i64,
) -> bool {
    let Some(entry) = entry else {
        return !firing.is_empty();
    };
    if !firing.is_subset(&entry.firing) {
        return true;
    }
    if firing.is_empty() {
        return !entry.firing.is_empty();
    }
    if send_resolved && !resolved.is_subset(&entry.resolved) {
        return true;
    }
    entry.timestamp_ms + repeat_interval_ms <= now_ms
}
