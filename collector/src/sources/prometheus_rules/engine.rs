//! The rules' state, driven by the source's task: the window store, the groups with their
//! alerts, each group's last evaluation, and the notifier (when `alerting:` is set), which
//! takes each group's alerts after its evaluation and flushes what is due in the same tick.
//! Runs on blocking threads (an evaluation of a thousand rules takes up to a second); the task
//! hands it in and out.

use std::path::Path;

use sextant_pipeline::flow::event::{LogEvent, Metric};
use sextant_rules::evaluator::{GroupState, Settings};
use sextant_rules::labels::Labels;
use sextant_rules::notify::dispatch::{Dispatcher, Notification};
use sextant_rules::notify::message;
use sextant_rules::notify::silence::Silences;
use sextant_rules::notify::Notifier;
use sextant_rules::rule_files::RuleGroup;
use sextant_rules::window::ingest::{ingest, Ingested};
use sextant_rules::window::retention::window_of;
use sextant_rules::window::{SelectorFilter, WindowStore};

struct Group {
    state: GroupState,
    interval_ms: i64,
    last_slot: i64,
}

/// One tick's work.
pub(super) struct Evaluated {
    /// (evaluation time, results) per group that ran.
    pub results: Vec<(i64, Vec<(Labels, f64)>)>,
    /// The rules that failed.
    pub failures: Vec<Failure>,
    /// Notifications due, each with the record that carries it to the SNS sink.
    pub notifications: Vec<(Notification, LogEvent)>,
    /// Notifications whose receiver integration is gone (after a reload).
    pub unroutable: usize,
}

/// The notifier's part of the engine.
struct Notify {
    notifier: Notifier,
    dispatcher: Dispatcher,
    origin: message::Origin,
}

/// How long the notification log remembers a group that is gone (Alertmanager's 120 h).
const LOG_RETENTION_MS: i64 = 120 * 3_600_000;

/// A rule whose evaluation failed.
pub(super) struct Failure {
    pub file: String,
    pub group: String,
    pub rule: String,
    pub error: String,
}

pub(super) struct Engine {
    store: WindowStore,
    groups: Vec<Group>,
    settings: Settings,
    default_interval_ms: i64,
    notify: Option<Notify>,
}

impl Engine {
    pub fn new(
        groups: Vec<RuleGroup>,
        settings: Settings,
        default_interval_ms: i64,
        max_bytes: usize,
        notifier: Option<Notifier>,
    ) -> Self {
        let (filter, retention) = plan(&groups, &settings, default_interval_ms);
        let notify = notifier.map(|notifier| Notify {
            dispatcher: notifier.dispatcher(),
            notifier,
            origin: message::Origin {
                external_url: settings.external_url.clone(),
            },
        });
        let mut engine = Self {
            store: WindowStore::new(filter, retention, max_bytes),
            groups: Vec::new(),
            settings,
            default_interval_ms,
            notify,
        };
        engine.groups = engine.wrap(groups, Vec::new());
        engine
    }

    fn wrap(&self, groups: Vec<RuleGroup>, mut old: Vec<Group>) -> Vec<Group> {
        groups
            .into_iter()
            .map(|group| {
                let interval_ms = group.interval_ms.unwrap_or(self.default_interval_ms);
                let mut state = GroupState::new(group);
                let mut last_slot = i64::MIN;
                // A group that is still there keeps its rules' alerts and series (by rule
                // name and expression), as Prometheus keeps them across a reload.
                if let Some(i) = old
                    .iter()
                    .position(|g| g.state.name == state.name && g.state.file == state.file)
                {
                    let previous = old.swap_remove(i);
                    last_slot = previous.last_slot;
                    let mut rules = previous.state.rules;
                    for rule in &mut state.rules {
                        if let Some(j) = rules.iter().position(|r| {
                            r.rule.name == rule.rule.name && r.rule.expr_text == rule.rule.expr_text
                        }) {
                            let kept = rules.swap_remove(j);
                            rule.take_state_from(kept);
                        }
                    }
                }
                Group {
                    state,
                    interval_ms,
                    last_slot,
                }
            })
            .collect()
    }

    /// Replaces the rules, keeping the state of the ones that stay.
    pub fn reload(&mut self, groups: Vec<RuleGroup>) {
        let (filter, retention) = plan(&groups, &self.settings, self.default_interval_ms);
        self.store.set_filter(filter, retention);
        let old = std::mem::take(&mut self.groups);
        self.groups = self.wrap(groups, old);
    }

    pub fn ingest(&mut self, metrics: &[Metric]) -> Ingested {
        ingest(&mut self.store, metrics)
    }

    /// Runs every group whose slot (a multiple of its interval) came since its last run, at
    /// that slot's time; missed slots are skipped, not caught up. `settled` are the answers to
    /// notifications handed out before (delivered or not); the notifications due now are
    /// returned — unless this ruler does not lead (`notifies` false): then they are settled as
    /// told at once, so its notification log keeps up with the leader's.
    pub fn tick(
        &mut self,
        now_ms: i64,
        settled: Vec<(Notification, bool)>,
        notifies: bool,
    ) -> Evaluated {
        let mut evaluated = Evaluated {
            results: Vec::new(),
            failures: Vec::new(),
            notifications: Vec::new(),
            unroutable: 0,
        };
        if let Some(notify) = &mut self.notify {
            for (notification, delivered) in &settled {
                notify.dispatcher.settle(notification, *delivered, now_ms);
            }
        }
        for group in &mut self.groups {
            let slot = now_ms.div_euclid(group.interval_ms) * group.interval_ms;
            if slot <= group.last_slot {
                continue;
            }
            group.last_slot = slot;
            let outcome = group.state.evaluate(&mut self.store, slot, &self.settings);
            for (rule, error) in outcome.errors {
                evaluated.failures.push(Failure {
                    file: group.state.file.clone(),
                    group: group.state.name.clone(),
                    rule,
                    error,
                });
            }
            evaluated.results.push((slot, outcome.samples));
            if let Some(notify) = &mut self.notify {
                let alerts = super::notify::alert_inputs(
                    &group.state,
                    &self.settings.external_labels,
                    &self.settings.external_url,
                );
                let source = format!("{};{}", group.state.file, group.state.name);
                notify.dispatcher.receive(&source, alerts, now_ms);
            }
        }
        self.store.truncate(now_ms);
        if let Some(notify) = &mut self.notify {
            for notification in notify.dispatcher.flush(now_ms) {
                if !notifies {
                    notify.dispatcher.settle(&notification, true, now_ms);
                    continue;
                }
                match super::notify::message_for(&notify.notifier, &notification, &notify.origin) {
                    Some(message) => {
                        let record = super::notify::record_for(message, notification.created_ms);
                        evaluated.notifications.push((notification, record));
                    }
                    None => {
                        evaluated.unroutable += 1;
                        notify.dispatcher.settle(&notification, false, now_ms);
                    }
                }
            }
            notify.dispatcher.expire_log(now_ms - LOG_RETENTION_MS);
        }
        evaluated
    }

    /// Replaces the silences in force.
    pub fn set_silences(&mut self, silences: Silences) {
        if let Some(notify) = &mut self.notify {
            notify.dispatcher.set_silences(silences);
        }
    }

    /// Saves the alerts and the notification log (see [`super::state`]).
    pub fn save_state(&self, path: &Path, now_ms: i64) -> std::io::Result<()> {
        let log: Vec<_> = self
            .notify
            .iter()
            .flat_map(|n| n.dispatcher.log_entries())
            .collect();
        let state = super::state::capture(
            self.groups.iter().map(|g| &g.state),
            log.into_iter(),
            now_ms,
        );
        super::state::save(path, &state)
    }

    /// Restores what [`Engine::save_state`] saved; pending and firing alerts wait for their
    /// rule to return them until `restore_until`.
    pub fn restore_state(
        &mut self,
        state: super::state::OnDisk,
        restore_until: i64,
    ) -> super::state::Restored {
        let (restored, log) = super::state::restore(
            state,
            self.groups.iter_mut().map(|g| &mut g.state),
            restore_until,
        );
        if let Some(notify) = &mut self.notify {
            notify.dispatcher.restore_log(log);
        }
        restored
    }

    /// Alerts and groups the notifier holds.
    pub fn notifier_counts(&self) -> (usize, usize) {
        self.notify
            .as_ref()
            .map_or((0, 0), |n| n.dispatcher.counts())
    }

    pub fn store(&self) -> &WindowStore {
        &self.store
    }
}

/// The store's filter and retention for `groups`.
fn plan(
    groups: &[RuleGroup],
    settings: &Settings,
    default_interval_ms: i64,
) -> (SelectorFilter, i64) {
    let exprs: Vec<_> = groups
        .iter()
        .flat_map(|g| g.rules.iter().map(|r| &r.expr))
        .collect();
    let lookback = settings.options.lookback_delta_ms;
    let reach = exprs
        .iter()
        .map(|e| window_of(e, lookback))
        .max()
        .unwrap_or(lookback);
    let longest_interval = groups
        .iter()
        .filter_map(|g| g.interval_ms)
        .max()
        .unwrap_or(0)
        .max(default_interval_ms);
    // Recorded series and ALERTS are read back too; keep a slot of slack beyond the reach.
    (
        SelectorFilter::new(exprs.iter().copied()),
        reach.max(lookback) + longest_interval,
    )
}
