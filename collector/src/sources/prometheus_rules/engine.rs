//! The rules' state, driven by the source's task: the window store, the groups with their
//! alerts, and each group's last evaluation. Runs on blocking threads (an evaluation of a
//! thousand rules takes up to a second); the task hands it in and out.

use sextant_pipeline::flow::event::Metric;
use sextant_rules::evaluator::{GroupState, Settings};
use sextant_rules::labels::Labels;
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
}

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
}

impl Engine {
    pub fn new(
        groups: Vec<RuleGroup>,
        settings: Settings,
        default_interval_ms: i64,
        max_bytes: usize,
    ) -> Self {
        let (filter, retention) = plan(&groups, &settings, default_interval_ms);
        let mut engine = Self {
            store: WindowStore::new(filter, retention, max_bytes),
            groups: Vec::new(),
            settings,
            default_interval_ms,
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
    /// that slot's time; missed slots are skipped, not caught up.
    pub fn tick(&mut self, now_ms: i64) -> Evaluated {
        let mut evaluated = Evaluated {
            results: Vec::new(),
            failures: Vec::new(),
        };
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
        }
        self.store.truncate(now_ms);
        evaluated
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
