//! Alertmanager's inhibition rules (`inhibit_rules:`, the same keys): an alert matching a
//! rule's target matchers is muted while a firing alert matches its source matchers and has
//! the same values for every `equal` label. An alert matching both sides cannot be muted by
//! another alert matching both (Alertmanager's two-sided exclusion), so a rule never mutes
//! every alert it names.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

use super::matcher::{MatchOp, Matcher, Matchers};
use crate::labels::Labels;

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InhibitRuleConfig {
    #[serde(default)]
    pub source_matchers: Vec<String>,
    #[serde(default)]
    pub target_matchers: Vec<String>,
    #[serde(default)]
    pub source_match: BTreeMap<String, String>,
    #[serde(default)]
    pub source_match_re: BTreeMap<String, String>,
    #[serde(default)]
    pub target_match: BTreeMap<String, String>,
    #[serde(default)]
    pub target_match_re: BTreeMap<String, String>,
    #[serde(default)]
    pub equal: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct InhibitRule {
    source: Matchers,
    target: Matchers,
    equal: Vec<String>,
}

impl InhibitRule {
    pub fn compile(config: &InhibitRuleConfig, path: &str) -> Result<Self, String> {
        let side = |matchers: &Vec<String>,
                    eq: &BTreeMap<String, String>,
                    re: &BTreeMap<String, String>,
                    name: &str|
         -> Result<Matchers, String> {
            let mut all =
                Matchers::parse_all(matchers).map_err(|e| format!("{path}.{name}: {e}"))?;
            for (map, op) in [(eq, MatchOp::Equal), (re, MatchOp::Regex)] {
                for (label, value) in map {
                    all.0.push(
                        Matcher::new(label, op, value)
                            .map_err(|e| format!("{path}.{name}: {e}"))?,
                    );
                }
            }
            Ok(all)
        };
        let source = side(
            &config.source_matchers,
            &config.source_match,
            &config.source_match_re,
            "source_matchers",
        )?;
        let target = side(
            &config.target_matchers,
            &config.target_match,
            &config.target_match_re,
            "target_matchers",
        )?;
        if target.is_empty() {
            return Err(format!(
                "{path}.target_matchers: at least one, or the rule mutes every alert"
            ));
        }
        Ok(Self {
            source,
            target,
            equal: config.equal.clone(),
        })
    }
}

/// The inhibition in force for one set of firing alerts.
pub struct Inhibition<'a> {
    rules: &'a [InhibitRule],
    /// Per rule: the `equal` values of the firing sources, and whether that source also
    /// matches the target side.
    sources: Vec<HashSet<(Vec<String>, bool)>>,
}

impl<'a> Inhibition<'a> {
    /// Gathers, for every rule, the firing alerts that match its source side.
    pub fn new<'l>(rules: &'a [InhibitRule], firing: impl Iterator<Item = &'l Labels>) -> Self {
        let mut sources: Vec<HashSet<(Vec<String>, bool)>> = vec![HashSet::new(); rules.len()];
        for alert in firing {
            for (rule, found) in rules.iter().zip(sources.iter_mut()) {
                if rule.source.matches(alert) {
                    found.insert((equal_values(rule, alert), rule.target.matches(alert)));
                }
            }
        }
        Self { rules, sources }
    }

    pub fn mutes(&self, alert: &Labels) -> bool {
        self.rules.iter().zip(&self.sources).any(|(rule, sources)| {
            if sources.is_empty() || !rule.target.matches(alert) {
                return false;
            }
            let values = equal_values(rule, alert);
            let also_source = rule.source.matches(alert);
            sources.contains(&(values.clone(), false))
                || (!also_source && sources.contains(&(values, true)))
        })
    }
}

fn equal_values(rule: &InhibitRule, alert: &Labels) -> Vec<String> {
    rule.equal
        .iter()
        .map(|name| alert.get(name).to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(yaml: &str) -> InhibitRule {
        let config: InhibitRuleConfig = serde_yaml_ng::from_str(yaml).unwrap();
        InhibitRule::compile(&config, "inhibit_rules[0]").unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn a_critical_alert_mutes_warnings_of_the_same_cluster_only() {
        let rules = [rule(
            "source_matchers: ['severity=\"critical\"']\ntarget_matchers: ['severity=\"warning\"']\nequal: [cluster]",
        )];
        let critical = labels(&[("severity", "critical"), ("cluster", "a")]);
        let inhibition = Inhibition::new(&rules, [&critical].into_iter());
        assert!(inhibition.mutes(&labels(&[("severity", "warning"), ("cluster", "a")])));
        assert!(!inhibition.mutes(&labels(&[("severity", "warning"), ("cluster", "b")])));
        assert!(!inhibition.mutes(&critical));
        let nothing_firing = Inhibition::new(&rules, std::iter::empty());
        assert!(!nothing_firing.mutes(&labels(&[("severity", "warning"), ("cluster", "a")])));
    }

    #[test]
    fn alerts_matching_both_sides_do_not_mute_each_other() {
        let rules = [rule(
            "source_match: {team: db}\ntarget_match_re: {team: 'db|web'}\nequal: [cluster]",
        )];
        let db1 = labels(&[("team", "db"), ("cluster", "a"), ("i", "1")]);
        let db2 = labels(&[("team", "db"), ("cluster", "a"), ("i", "2")]);
        let inhibition = Inhibition::new(&rules, [&db1, &db2].into_iter());
        assert!(!inhibition.mutes(&db1));
        assert!(!inhibition.mutes(&db2));
        assert!(inhibition.mutes(&labels(&[("team", "web"), ("cluster", "a")])));
    }

    #[test]
    fn a_rule_without_a_target_is_refused() {
        let config: InhibitRuleConfig =
            serde_yaml_ng::from_str("source_matchers: ['a=\"b\"']").unwrap();
        assert!(InhibitRule::compile(&config, "inhibit_rules[3]")
            .unwrap_err()
            .starts_with("inhibit_rules[3].target_matchers"));
    }
}
