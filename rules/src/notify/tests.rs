//! The dispatcher against Alertmanager's timing and dedup rules, on a clock the tests hold, and
//! the SNS messages it leads to.

use std::collections::BTreeMap;

use super::dispatch::{Dispatcher, Notification};
use super::message::{self, Origin, SNS_MAX_BYTES, SUBJECT_MAX_CHARS};
use super::silence::Silences;
use super::*;

const S: i64 = 1_000;
const M: i64 = 60 * S;

const CONFIG: &str = r#"
route:
  receiver: slack
  group_by: [alertname, cluster]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      continue: true
receivers:
  - name: slack
    sns_configs:
      - topic_arn: arn:aws:sns:eu-west-1:123456789012:slack
  - name: pager
    sns_configs:
      - topic_arn: arn:aws:sns:eu-west-1:123456789012:pager.fifo
        send_resolved: false
inhibit_rules:
  - source_matchers: ['alertname="ClusterDown"']
    target_matchers: ['alertname!="ClusterDown"']
    equal: [cluster]
"#;

fn notifier() -> Notifier {
    let config: NotifyConfig = serde_yaml_ng::from_str(CONFIG).unwrap();
    Notifier::compile(&config).unwrap()
}

fn alert(name: &str, cluster: &str, instance: &str, starts: i64) -> AlertInput {
    AlertInput {
        labels: Labels::from_pairs([
            ("alertname", name),
            ("cluster", cluster),
            ("instance", instance),
            ("severity", "warning"),
        ]),
        annotations: BTreeMap::from([("summary".to_string(), format!("{name} on {instance}"))]),
        starts_at_ms: starts,
        ends_at_ms: None,
        generator_url: String::new(),
    }
}

fn resolved(mut a: AlertInput, at: i64) -> AlertInput {
    a.ends_at_ms = Some(at);
    a
}

/// (receiver, firing instances, resolved instances) of each notification, delivered at once.
fn flush(d: &mut Dispatcher, now: i64) -> Vec<(String, Vec<String>, Vec<String>)> {
    let notifications = d.flush(now);
    for n in &notifications {
        d.settle(n, true, now);
    }
    summarize(&notifications)
}

fn summarize(notifications: &[Notification]) -> Vec<(String, Vec<String>, Vec<String>)> {
    let mut out: Vec<_> = notifications
        .iter()
        .map(|n| {
            let pick = |firing: bool| {
                n.alerts
                    .iter()
                    .filter(|a| a.firing() == firing)
                    .map(|a| a.labels.get("instance").to_string())
                    .collect::<Vec<_>>()
            };
            (n.key.receiver.clone(), pick(true), pick(false))
        })
        .collect();
    out.sort();
    out
}

fn one(receiver: &str, firing: &[&str], resolved: &[&str]) -> (String, Vec<String>, Vec<String>) {
    (
        receiver.to_string(),
        firing.iter().map(|s| s.to_string()).collect(),
        resolved.iter().map(|s| s.to_string()).collect(),
    )
}

#[test]
fn a_group_waits_then_flushes_every_interval_with_what_changed() {
    let mut d = notifier().dispatcher();
    let t0 = 1_000 * M;
    d.receive(
        "g",
        vec![alert("Lag", "a", "1", t0), alert("Lag", "a", "2", t0)],
        t0,
    );
    assert_eq!(d.next_due_ms(), Some(t0 + 30 * S));
    assert!(flush(&mut d, t0 + 29 * S).is_empty());
    assert_eq!(flush(&mut d, t0 + 30 * S), [one("slack", &["1", "2"], &[])]);
    // A third alert joins; it waits for the group's interval, not its own group_wait.
    d.receive(
        "g",
        vec![
            alert("Lag", "a", "1", t0),
            alert("Lag", "a", "2", t0),
            alert("Lag", "a", "3", t0 + M),
        ],
        t0 + M,
    );
    assert!(flush(&mut d, t0 + 5 * M).is_empty());
    assert_eq!(
        flush(&mut d, t0 + 30 * S + 5 * M),
        [one("slack", &["1", "2", "3"], &[])]
    );
    // Nothing new: silent until the repeat interval.
    assert!(flush(&mut d, t0 + 30 * S + 10 * M).is_empty());
    assert!(flush(&mut d, t0 + 30 * S + 55 * M).is_empty());
    assert_eq!(
        flush(&mut d, t0 + 30 * S + 65 * M),
        [one("slack", &["1", "2", "3"], &[])]
    );
}

#[test]
fn resolved_alerts_are_told_once_and_the_group_goes() {
    let mut d = notifier().dispatcher();
    let t0 = 1_000 * M;
    let a1 = alert("Lag", "a", "1", t0);
    let a2 = alert("Lag", "a", "2", t0);
    d.receive("g", vec![a1.clone(), a2.clone()], t0);
    assert_eq!(flush(&mut d, t0 + 30 * S).len(), 1);
    d.receive("g", vec![a1.clone(), resolved(a2.clone(), t0 + M)], t0 + M);
    assert_eq!(
        flush(&mut d, t0 + 30 * S + 5 * M),
        [one("slack", &["1"], &["2"])]
    );
    // The rule keeps reporting the resolved alert for a while: it is not told again.
    d.receive(
        "g",
        vec![a1.clone(), resolved(a2.clone(), t0 + M)],
        t0 + 6 * M,
    );
    assert!(flush(&mut d, t0 + 30 * S + 10 * M).is_empty());
    // The last one resolves by going away from its rule group's alerts.
    d.receive("g", vec![], t0 + 11 * M);
    assert_eq!(
        flush(&mut d, t0 + 30 * S + 15 * M),
        [one("slack", &[], &["1"])]
    );
    assert_eq!(d.counts(), (0, 0));
    assert!(flush(&mut d, t0 + 2 * 60 * M).is_empty());
}

#[test]
fn an_integration_that_does_not_send_resolved_hears_only_of_firing() {
    let mut d = notifier().dispatcher();
    let t0 = 1_000 * M;
    let mut crit = alert("Down", "a", "1", t0);
    crit.labels.set("severity", "critical");
    d.receive("g", vec![crit.clone()], t0);
    // The pager route matched (and continues, but no sibling matches): the root's receiver
    // is not used, as in Alertmanager.
    assert_eq!(flush(&mut d, t0 + 30 * S), [one("pager", &["1"], &[])]);
    d.receive("g", vec![resolved(crit, t0 + M)], t0 + M);
    assert!(flush(&mut d, t0 + 30 * S + 5 * M).is_empty());
    assert_eq!(d.counts(), (0, 0));
}

#[test]
fn a_notification_out_is_not_doubled_and_a_failed_one_is_sent_again() {
    let mut d = notifier().dispatcher();
    let t0 = 1_000 * M;
    d.receive("g", vec![alert("Lag", "a", "1", t0)], t0);
    let first = d.flush(t0 + 30 * S);
    assert_eq!(first.len(), 1);
    d.receive(
        "g",
        vec![alert("Lag", "a", "1", t0), alert("Lag", "a", "2", t0)],
        t0 + M,
    );
    // Still out at the next interval: nothing more for that integration.
    assert!(d.flush(t0 + 30 * S + 5 * M).is_empty());
    d.settle(&first[0], false, t0 + 6 * M);
    assert_eq!(
        flush(&mut d, t0 + 30 * S + 10 * M),
        [one("slack", &["1", "2"], &[])]
    );
}

#[test]
fn the_restored_log_keeps_a_restart_from_sending_again_and_tells_what_resolved_meanwhile() {
    let n = notifier();
    let mut d = n.dispatcher();
    let t0 = 1_000 * M;
    let a1 = alert("Lag", "a", "1", t0);
    let a2 = alert("Lag", "a", "2", t0);
    d.receive("g", vec![a1.clone(), a2.clone()], t0);
    assert_eq!(flush(&mut d, t0 + 30 * S).len(), 1);
    let saved: Vec<_> = d
        .log_entries()
        .map(|(k, e)| (k.clone(), e.clone()))
        .collect();

    // Restarted: the same alerts come back and flush at once (they started long ago); the
    // log says they were told.
    let mut restarted = n.dispatcher();
    restarted.restore_log(saved.clone());
    restarted.receive("g", vec![a1.clone(), a2.clone()], t0 + 2 * M);
    assert_eq!(restarted.next_due_ms(), Some(t0 + 2 * M));
    assert!(flush(&mut restarted, t0 + 2 * M).is_empty());

    // Restarted after a2 resolved while down: its resolution is told, once.
    let mut restarted = n.dispatcher();
    restarted.restore_log(saved);
    restarted.receive("g", vec![a1.clone(), resolved(a2, t0 + M)], t0 + 2 * M);
    assert_eq!(
        flush(&mut restarted, t0 + 2 * M),
        [one("slack", &["1"], &["2"])]
    );
    restarted.receive("g", vec![a1], t0 + 3 * M);
    assert!(flush(&mut restarted, t0 + 2 * M + 5 * M).is_empty());
}

#[test]
fn inhibited_and_silenced_alerts_are_left_out() {
    let mut d = notifier().dispatcher();
    let t0 = 1_000 * M;
    let silences = Silences::parse(
        "silences:\n  - matchers: ['instance=\"9\"']\n    starts_at: 1970-01-01T00:00:00Z\n    ends_at: 2100-01-01T00:00:00Z\n",
    )
    .unwrap();
    d.set_silences(silences);
    d.receive(
        "g",
        vec![
            alert("ClusterDown", "a", "0", t0),
            alert("Lag", "a", "1", t0),
            alert("Lag", "b", "2", t0),
            alert("Lag", "b", "9", t0),
        ],
        t0,
    );
    // Lag in cluster a is inhibited by ClusterDown there; instance 9 is silenced.
    assert_eq!(
        flush(&mut d, t0 + 30 * S),
        [one("slack", &["0"], &[]), one("slack", &["2"], &[])]
    );
}

#[test]
fn a_configuration_with_problems_names_each() {
    let config: NotifyConfig = serde_yaml_ng::from_str(
        r#"
route:
  receiver: nobody
  routes: [{matchers: ['x~"y"']}]
receivers:
  - name: a
    sns_configs: [{topic_arn: "not-an-arn"}]
  - name: a
inhibit_rules:
  - source_matchers: ['a="b"']
"#,
    )
    .unwrap();
    let errors = Notifier::compile(&config).unwrap_err();
    assert_eq!(errors.len(), 4, "{errors:#?}");
    for expected in [
        "route.routes[0].matchers",
        "receivers[0].sns_configs[0].topic_arn",
        "receivers[1].name",
        "inhibit_rules[0].target_matchers",
    ] {
        assert!(
            errors.iter().any(|e| e.starts_with(expected)),
            "{expected} not in {errors:#?}"
        );
    }
    // With the tree itself sound, a receiver it names that does not exist is found.
    let config: NotifyConfig =
        serde_yaml_ng::from_str("route: {receiver: nobody}\nreceivers: [{name: a}]").unwrap();
    assert_eq!(
        Notifier::compile(&config).unwrap_err(),
        ["route: receiver \"nobody\" is not among the receivers"]
    );
}

fn notification_for(alerts: Vec<AlertInput>) -> Notification {
    let config: NotifyConfig = serde_yaml_ng::from_str(
        "route: {receiver: r, group_by: [alertname], group_wait: 0s}\nreceivers: [{name: r, sns_configs: [{topic_arn: 'arn:aws:sns:eu-west-1:1:t'}]}]",
    )
    .unwrap();
    let mut d = Notifier::compile(&config).unwrap().dispatcher();
    d.receive("g", alerts, 10 * M);
    let mut out = d.flush(10 * M);
    assert_eq!(out.len(), 1);
    out.remove(0)
}

fn body(message: &message::SnsMessage) -> serde_json::Value {
    serde_json::from_str(&message.body).unwrap()
}

#[test]
fn a_message_carries_every_alert_and_the_three_readers_fields() {
    let mut a = alert("Lag", "a", "1", 5 * M);
    a.labels.set("severity", "critical");
    let b = alert("Lag", "a", "2", 6 * M);
    let n = notification_for(vec![a, b]);
    let m = message::build(
        &n,
        "arn:aws:sns:eu-west-1:1:t",
        &Origin {
            external_url: "https://sextant.example".into(),
        },
    );
    assert_eq!(m.subject, "[FIRING:2] Lag (a)");
    assert_eq!(
        m.attributes,
        [
            ("severity".to_string(), "critical".to_string()),
            ("alertname".to_string(), "Lag".to_string()),
            ("status".to_string(), "firing".to_string())
        ]
    );
    assert_eq!((&m.message_group_id, &m.deduplication_id), (&None, &None));
    let v = body(&m);
    assert_eq!(v["version"], "1.0");
    assert_eq!(v["source"], "custom");
    assert_eq!(v["content"]["textType"], "client-markdown");
    assert_eq!(v["content"]["title"], "[FIRING:2] Lag (a)");
    assert_eq!(
        v["content"]["description"],
        "• *FIRING* Lag on 1\n• *FIRING* Lag on 2"
    );
    assert_eq!(v["event_action"], "trigger");
    assert_eq!(v["payload"]["severity"], "critical");
    assert_eq!(v["payload"]["source"], "https://sextant.example");
    assert_eq!(v["metadata"]["threadId"], v["dedup_key"]);
    assert_eq!(v["status"], "firing");
    assert_eq!(v["groupLabels"], serde_json::json!({"alertname": "Lag"}));
    assert_eq!(
        v["commonLabels"],
        serde_json::json!({"alertname": "Lag", "cluster": "a"})
    );
    assert_eq!(v["truncatedAlerts"], 0);
    let alerts = v["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0]["labels"]["instance"], "1");
    assert_eq!(alerts[0]["labels"]["severity"], "critical");
    assert_eq!(alerts[0]["annotations"]["summary"], "Lag on 1");
    assert_eq!(alerts[0]["startsAt"], "1970-01-01T00:05:00.000Z");
    assert_eq!(alerts[0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(alerts[1]["labels"]["instance"], "2");
}

#[test]
fn a_fifo_topic_gets_a_group_id_and_a_dedup_id_that_follow_the_state() {
    let n = notification_for(vec![alert("Lag", "a", "1", 0)]);
    let fifo = "arn:aws:sns:eu-west-1:1:t.fifo";
    let m1 = message::build(&n, fifo, &Origin::default());
    let again = message::build(&n, fifo, &Origin::default());
    assert_eq!(m1.deduplication_id, again.deduplication_id);
    let n2 = notification_for(vec![alert("Lag", "a", "1", 0), alert("Lag", "a", "2", 0)]);
    let m2 = message::build(&n2, fifo, &Origin::default());
    assert_eq!(m1.message_group_id, m2.message_group_id);
    assert_ne!(m1.deduplication_id, m2.deduplication_id);
    assert_eq!(m1.message_group_id.unwrap().len(), 16);
}

fn sns_size(m: &message::SnsMessage) -> usize {
    m.body.len()
        + m.attributes
            .iter()
            .map(|(k, v)| k.len() + "String".len() + v.len())
            .sum::<usize>()
}

#[test]
fn oversized_notifications_are_shaped_to_what_sns_accepts() {
    // A long, non-ASCII subject.
    let mut long = alert(&"Überlast".repeat(30), "a", "1", 0);
    // A 1 MB annotation of multi-byte characters.
    long.annotations
        .insert("description".into(), "ж".repeat(500_000));
    let m = message::build(
        &notification_for(vec![long]),
        "arn:aws:sns:eu-west-1:1:t",
        &Origin::default(),
    );
    assert!(m.subject.len() <= SUBJECT_MAX_CHARS, "{}", m.subject);
    assert!(m.subject.bytes().all(|b| (b' '..=b'~').contains(&b)));
    assert!(m.subject.ends_with("..."));
    assert!(sns_size(&m) <= SNS_MAX_BYTES);
    let v = body(&m);
    let description = v["alerts"][0]["annotations"]["description"]
        .as_str()
        .unwrap();
    assert!(description.len() <= 4096 && description.ends_with('…'));

    // An alert with 10,000 labels.
    let mut wide = alert("Wide", "a", "1", 0);
    for i in 0..10_000 {
        wide.labels
            .set(format!("label_{i:05}"), format!("value-{i}"));
    }
    let m = message::build(
        &notification_for(vec![wide]),
        "arn:aws:sns:eu-west-1:1:t",
        &Origin::default(),
    );
    assert!(sns_size(&m) <= SNS_MAX_BYTES);
    let v = body(&m);
    assert_eq!(v["alerts"][0]["labels"].as_object().unwrap().len(), 64);

    // Many alerts of 2 KiB each: the tail is left off and counted.
    let many: Vec<AlertInput> = (0..400)
        .map(|i| {
            let mut a = alert("Many", "a", &format!("{i:03}"), 0);
            a.annotations.insert("detail".into(), "é".repeat(1024));
            a
        })
        .collect();
    let m = message::build(
        &notification_for(many),
        "arn:aws:sns:eu-west-1:1:t",
        &Origin::default(),
    );
    assert!(sns_size(&m) <= SNS_MAX_BYTES);
    let v = body(&m);
    let kept = v["alerts"].as_array().unwrap().len();
    assert!(kept > 50 && kept < 400, "{kept}");
    assert_eq!(v["truncatedAlerts"], 400 - kept);
    assert_eq!(v["alerts"][0]["labels"]["instance"], "000");
}
