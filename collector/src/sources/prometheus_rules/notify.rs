//! Between the rules and the notifier: a group's alerts as Prometheus would send them to
//! Alertmanager (firing and resolved ones, never pending; external labels added; `startsAt`
//! the time it fired), and each notification as the log record an `aws_sns` sink publishes
//! (body, topic, subject, FIFO ids and the `severity`/`alertname`/`status` attributes).

use std::collections::BTreeMap;
use std::sync::Arc;

use sextant_pipeline::flow::event::prometheus::RULES_SCOPE;
use sextant_pipeline::flow::event::{KeyValue, LogEvent, Origin, Scope, Value};
use sextant_rules::evaluator::alerting::AlertState;
use sextant_rules::evaluator::GroupState;
use sextant_rules::notify::dispatch::Notification;
use sextant_rules::notify::message::{self, SnsMessage};
use sextant_rules::notify::{AlertInput, Notifier};

/// The group's alerts to hand the dispatcher after its evaluation.
pub(super) fn alert_inputs(
    group: &GroupState,
    external_labels: &BTreeMap<String, String>,
    external_url: &str,
) -> Vec<AlertInput> {
    let mut out = Vec::new();
    for rule in &group.rules {
        for alert in rule.alerts.active.values() {
            let ends_at_ms = match alert.state {
                AlertState::Pending => continue,
                AlertState::Firing => None,
                AlertState::Inactive => match (alert.fired_at, alert.resolved_at) {
                    (Some(_), Some(resolved)) => Some(resolved),
                    _ => continue,
                },
            };
            let mut labels = alert.labels.clone();
            for (name, value) in external_labels {
                if !labels.has(name) {
                    labels.set(name.clone(), value.clone());
                }
            }
            out.push(AlertInput {
                labels,
                annotations: alert.annotations.clone(),
                starts_at_ms: alert.fired_at.unwrap_or(alert.active_at),
                ends_at_ms,
                generator_url: generator_url(external_url, &rule.rule.expr_text),
            });
        }
    }
    out
}

/// Prometheus's link to the rule's expression in its graph page.
fn generator_url(external_url: &str, expr: &str) -> String {
    if external_url.is_empty() {
        return String::new();
    }
    let mut encoded = String::with_capacity(expr.len() * 2);
    for b in expr.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!(
        "{}/graph?g0.expr={encoded}&g0.tab=1",
        external_url.trim_end_matches('/')
    )
}

/// The SNS message of a notification, for the topic of its integration.
pub(super) fn message_for(
    notifier: &Notifier,
    notification: &Notification,
    origin: &message::Origin,
) -> Option<SnsMessage> {
    let config = notifier
        .receivers
        .get(&notification.key.receiver)?
        .get(notification.key.integration)?;
    Some(message::build(notification, &config.topic_arn, origin))
}

/// The log record an `aws_sns` sink turns back into `message`.
pub(super) fn record_for(message: SnsMessage, created_ms: i64) -> LogEvent {
    let mut attributes = vec![
        KeyValue::new("sns.topic_arn", message.topic_arn),
        KeyValue::new("sns.subject", message.subject),
    ];
    if let Some(group) = message.message_group_id {
        attributes.push(KeyValue::new("sns.message_group_id", group));
    }
    if let Some(id) = message.deduplication_id {
        attributes.push(KeyValue::new("sns.deduplication_id", id));
    }
    attributes.extend(
        message
            .attributes
            .into_iter()
            .map(|(k, v)| KeyValue::new(k, v)),
    );
    let time_unix_nano = u64::try_from(created_ms)
        .unwrap_or(0)
        .saturating_mul(1_000_000);
    LogEvent {
        origin: notification_origin(),
        time_unix_nano,
        observed_time_unix_nano: time_unix_nano,
        body: Value::Str(message.body.into()),
        attributes: attributes.into(),
        event_name: "alert.notification".into(),
        ..Default::default()
    }
}

fn notification_origin() -> Arc<Origin> {
    Arc::new(Origin {
        scope: Scope {
            name: RULES_SCOPE.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        },
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_url_links_the_expression() {
        assert_eq!(
            generator_url("https://p.example/", "rate(x[5m]) > 1"),
            "https://p.example/graph?g0.expr=rate%28x%5B5m%5D%29%20%3E%201&g0.tab=1"
        );
        assert_eq!(generator_url("", "x"), "");
    }
}
