//! From active alerts to notifications, as Alertmanager does it, with no I/O: the routing tree
//! ([`route`]), aggregation groups and the notification log ([`dispatch`]), inhibition
//! ([`inhibit`]), silences ([`silence`]), and the SNS message each notification becomes
//! ([`message`]). The collector's `prometheus_rules` source drives it with its evaluations
//! and hands the messages to an `aws_sns` sink.
//!
//! `alerting:` takes Alertmanager's own keys for `route`, `receivers` (with `sns_configs`) and
//! `inhibit_rules`, so an Alertmanager configuration's routing pastes in unchanged.

pub mod dispatch;
pub mod inhibit;
pub mod matcher;
pub mod message;
pub mod route;
pub mod silence;

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Deserialize;

use crate::labels::Labels;
use dispatch::{Dispatcher, Receiver};
use inhibit::{InhibitRule, InhibitRuleConfig};
use route::{Route, RouteConfig};

/// An alert as the rules hand it over after an evaluation (Prometheus's `notifier.Alert`).
#[derive(Clone, Debug, PartialEq)]
pub struct AlertInput {
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    /// When it started firing.
    pub starts_at_ms: i64,
    /// When it resolved; `None` while firing.
    pub ends_at_ms: Option<i64>,
    pub generator_url: String,
}

/// An alert's identity: FNV-1a (64 bit) over its sorted labels, stable across restarts and
/// builds (the notification log is saved by it).
pub fn fingerprint(labels: &Labels) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for label in labels.iter() {
        feed(label.name.as_bytes());
        feed(&[0xff]);
        feed(label.value.as_bytes());
        feed(&[0xff]);
    }
    hash
}

/// `alerting:` of a `prometheus_rules` source.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    pub route: RouteConfig,
    pub receivers: Vec<ReceiverConfig>,
    #[serde(default)]
    pub inhibit_rules: Vec<InhibitRuleConfig>,
    /// A silences file (see [`silence`]), read at start and whenever it changes.
    #[serde(default)]
    pub silences_file: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    pub name: String,
    #[serde(default)]
    pub sns_configs: Vec<SnsConfig>,
}

/// One SNS topic a receiver publishes to.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SnsConfig {
    pub topic_arn: String,
    /// Whether resolved notifications are sent (Alertmanager's default for SNS: yes).
    #[serde(default = "default_true")]
    pub send_resolved: bool,
}

fn default_true() -> bool {
    true
}

/// Checked `alerting:`: the tree, the receivers and the inhibition rules.
#[derive(Clone, Debug)]
pub struct Notifier {
    pub route: Route,
    pub receivers: HashMap<String, Vec<SnsConfig>>,
    pub inhibit_rules: Vec<InhibitRule>,
}

impl Notifier {
    /// Checks the configuration; every problem named with its path.
    pub fn compile(config: &NotifyConfig) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let route = Route::compile(&config.route)
            .map_err(|e| errors.extend(e))
            .ok();
        let mut receivers = HashMap::new();
        let mut seen = HashSet::new();
        for (i, receiver) in config.receivers.iter().enumerate() {
            if !seen.insert(receiver.name.as_str()) {
                errors.push(format!(
                    "receivers[{i}].name: {:?} is named twice",
                    receiver.name
                ));
            }
            for (j, sns) in receiver.sns_configs.iter().enumerate() {
                if !sns.topic_arn.starts_with("arn:") || sns.topic_arn.split(':').count() != 6 {
                    errors.push(format!(
                        "receivers[{i}].sns_configs[{j}].topic_arn: {:?} is not a topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)",
                        sns.topic_arn
                    ));
                }
            }
            receivers.insert(receiver.name.clone(), receiver.sns_configs.clone());
        }
        if let Some(route) = &route {
            for r in route.walk() {
                if !receivers.contains_key(&r.receiver) {
                    errors.push(format!(
                        "route: receiver {:?} is not among the receivers",
                        r.receiver
                    ));
                }
            }
        }
        let inhibit_rules = config
            .inhibit_rules
            .iter()
            .enumerate()
            .filter_map(|(i, rule)| {
                InhibitRule::compile(rule, &format!("inhibit_rules[{i}]"))
                    .map_err(|e| errors.push(e))
                    .ok()
            })
            .collect();
        match route {
            Some(route) if errors.is_empty() => Ok(Self {
                route,
                receivers,
                inhibit_rules,
            }),
            _ => Err(errors),
        }
    }

    /// A dispatcher for this configuration, with an empty log.
    pub fn dispatcher(&self) -> Dispatcher {
        let receivers = self
            .receivers
            .iter()
            .map(|(name, configs)| {
                (
                    name.clone(),
                    Receiver {
                        send_resolved: configs.iter().map(|c| c.send_resolved).collect(),
                    },
                )
            })
            .collect();
        Dispatcher::new(&self.route, receivers, self.inhibit_rules.clone())
    }
}

#[cfg(test)]
mod tests;
