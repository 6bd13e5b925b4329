//! A notification as the SNS message it becomes, shaped so SNS accepts it by construction:
//!
//! - **Subject**: Alertmanager's default (`[FIRING:2] <group label values> (<other common label
//!   values>)`) in printable ASCII (anything else becomes `?`), under 100 characters.
//! - **Message attributes** `severity`, `alertname`, `status` (String) for subscription filter
//!   policies: the common label, else the most severe of the firing alerts' / `multiple`.
//! - **Body**: JSON, at most 256 KiB together with the attributes. When the whole notification
//!   does not fit, label values and annotations are cut to 4 KiB and alerts to 64 labels, then
//!   alerts are left off from the end (`truncatedAlerts` says how many); a body still too large
//!   is cut on a UTF-8 boundary.
//! - **FIFO topics** (`.fifo`): MessageGroupId is the group's `dedup_key`; MessageDeduplicationId
//!   is derived from the group, receiver and the alerts' state, so a notification sent again
//!   (after a crash, say) is dropped by SNS within its 5-minute window.
//!
//! The body's schema (`schema: sextant.alert.v1`), one document for three readers:
//!
//! ```text
//! version, source ("custom"), id, content{textType, title, description}, metadata{threadId,
//!   summary, eventType, additionalContext}          -- an AWS Chatbot custom notification
//! event_action ("trigger" | "resolve"), dedup_key, payload{summary, source, severity,
//!   timestamp, custom_details}                     -- PagerDuty Events API v2 fields
//! schema, receiver, status, groupKey, groupLabels, commonLabels, commonAnnotations,
//!   externalURL, alerts[{status, labels, annotations, startsAt, endsAt, generatorURL,
//!   fingerprint}], truncatedAlerts                 -- Alertmanager's webhook fields
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::dispatch::{Notification, NotifiedAlert};
use super::fingerprint;
use crate::labels::Labels;

/// SNS's limit on a message and its attributes together.
pub const SNS_MAX_BYTES: usize = 256 * 1024;
/// SNS's subject limit: fewer than 100 characters.
pub const SUBJECT_MAX_CHARS: usize = 99;
/// A label value or annotation when the whole does not fit.
const VALUE_CAP_BYTES: usize = 4096;
/// Labels kept per alert when the whole does not fit.
const LABELS_CAP: usize = 64;
/// Lines of the chat description.
const DESCRIPTION_ALERTS: usize = 20;

/// What to publish.
#[derive(Clone, Debug, PartialEq)]
pub struct SnsMessage {
    pub topic_arn: String,
    pub subject: String,
    pub body: String,
    /// Name and String value of each message attribute.
    pub attributes: Vec<(String, String)>,
    pub message_group_id: Option<String>,
    pub deduplication_id: Option<String>,
}

/// Where the notification comes from, for links and the PagerDuty source.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    pub external_url: String,
}

/// Builds the message for `notification` to `topic_arn`.
pub fn build(notification: &Notification, topic_arn: &str, origin: &Origin) -> SnsMessage {
    let facts = Facts::of(notification);
    let attributes = vec![
        ("severity".to_string(), facts.severity.clone()),
        ("alertname".to_string(), facts.alertname.clone()),
        ("status".to_string(), facts.status.to_string()),
    ];
    let attribute_bytes: usize = attributes
        .iter()
        .map(|(k, v)| k.len() + "String".len() + v.len())
        .sum();
    let budget = SNS_MAX_BYTES - attribute_bytes;
    let dedup_key = hex(fingerprint(&Labels::from_pairs([(
        "group",
        notification.key.group_key.as_str(),
    )])));
    let state_id = deduplication_id(notification);
    let body = shape(notification, &facts, origin, &dedup_key, &state_id, budget);
    let fifo = topic_arn.ends_with(".fifo");
    SnsMessage {
        topic_arn: topic_arn.to_string(),
        subject: facts.subject.clone(),
        body,
        attributes,
        message_group_id: fifo.then(|| dedup_key.clone()),
        deduplication_id: fifo.then_some(state_id),
    }
}

/// What the subject, attributes and summaries are made of.
struct Facts {
    status: &'static str,
    firing: usize,
    common_labels: Labels,
    common_annotations: BTreeMap<String, String>,
    severity: String,
    alertname: String,
    subject: String,
}

impl Facts {
    fn of(n: &Notification) -> Self {
        let firing = n.alerts.iter().filter(|a| a.firing()).count();
        let status = if firing > 0 { "firing" } else { "resolved" };
        let common_labels = common_labels(&n.alerts);
        let common_annotations = common_annotations(&n.alerts);
        let severity = match common_labels.get("severity") {
            "" => n
                .alerts
                .iter()
                .filter(|a| a.firing() || firing == 0)
                .map(|a| a.labels.get("severity"))
                .max_by_key(|s| severity_rank(s))
                .filter(|s| !s.is_empty())
                .unwrap_or("none")
                .to_string(),
            s => s.to_string(),
        };
        let alertname = match common_labels.get("alertname") {
            "" => "multiple".to_string(),
            a => a.to_string(),
        };
        let mut subject = format!("[{}", status.to_uppercase());
        if firing > 0 {
            let _ = write!(subject, ":{firing}");
        }
        subject.push(']');
        for label in n.group_labels.iter() {
            subject.push(' ');
            subject.push_str(&label.value);
        }
        let others: Vec<&str> = common_labels
            .iter()
            .filter(|l| !n.group_labels.has(&l.name))
            .map(|l| &*l.value)
            .collect();
        if !others.is_empty() {
            let _ = write!(subject, " ({})", others.join(" "));
        }
        Self {
            status,
            firing,
            common_labels,
            common_annotations,
            severity: printable(&severity, 256),
            alertname: printable(&alertname, 256),
            subject: printable(&subject, SUBJECT_MAX_CHARS),
        }
    }
}

/// The rank of a severity name for "most severe".
fn severity_rank(severity: &str) -> u8 {
    match severity {
        "critical" | "page" | "emergency" => 5,
        "error" | "high" => 4,
        "warning" | "warn" | "medium" => 3,
        "info" | "low" => 2,
        "" => 0,
        _ => 1,
    }
}

/// PagerDuty's severity for ours.
fn pagerduty_severity(severity: &str) -> &'static str {
    match severity_rank(severity) {
        5 => "critical",
        4 => "error",
        3 => "warning",
        2 => "info",
        _ => "error",
    }
}

/// Printable ASCII only (others become `?`), at most `max` characters (`...` marks a cut).
pub fn printable(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect();
    if out.len() > max {
        out.truncate(max - 3);
        out.push_str("...");
    }
    out
}

fn common_labels(alerts: &[NotifiedAlert]) -> Labels {
    let Some((first, rest)) = alerts.split_first() else {
        return Labels::new();
    };
    Labels::from_pairs(
        first
            .labels
            .iter()
            .filter(|l| rest.iter().all(|a| a.labels.get(&l.name) == &*l.value))
            .map(|l| (l.name.clone(), l.value.clone())),
    )
}

fn common_annotations(alerts: &[NotifiedAlert]) -> BTreeMap<String, String> {
    let Some((first, rest)) = alerts.split_first() else {
        return BTreeMap::new();
    };
    first
        .annotations
        .iter()
        .filter(|(k, v)| rest.iter().all(|a| a.annotations.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Hex of a 64-bit hash.
fn hex(value: u64) -> String {
    format!("{value:016x}")
}

/// A FIFO deduplication id: the group, receiver and integration, and each alert's state.
fn deduplication_id(n: &Notification) -> String {
    let mut state: Vec<(u64, bool)> = n
        .alerts
        .iter()
        .map(|a| (a.fingerprint, a.firing()))
        .collect();
    state.sort_unstable();
    let mut text = format!(
        "{}\u{0}{}\u{0}{}",
        n.key.group_key, n.key.receiver, n.key.integration
    );
    for (fp, firing) in state {
        let _ = write!(text, "\u{0}{fp:x}{}", if firing { 'f' } else { 'r' });
    }
    hex(fingerprint(&Labels::from_pairs([("state", text)])))
}

/// How much of the notification goes in.
#[derive(Clone, Copy)]
struct Cut {
    /// Cap label values and annotations, and labels per alert.
    capped: bool,
    /// Alerts kept.
    alerts: usize,
}

fn shape(
    n: &Notification,
    facts: &Facts,
    origin: &Origin,
    dedup_key: &str,
    id: &str,
    budget: usize,
) -> String {
    let parts = Parts::of(n, facts);
    let render = |cut: Cut| render(n, facts, &parts, origin, dedup_key, id, cut);
    let whole = render(Cut {
        capped: false,
        alerts: n.alerts.len(),
    });
    if whole.len() <= budget {
        return whole;
    }
    let capped = Cut {
        capped: true,
        alerts: n.alerts.len(),
    };
    let body = render(capped);
    if body.len() <= budget {
        return body;
    }
    // The most alerts that fit (rendering is monotone in the number kept).
    let (mut low, mut high) = (0usize, n.alerts.len());
    while low < high {
        let mid = (low + high).div_ceil(2);
        if render(Cut {
            alerts: mid,
            ..capped
        })
        .len()
            <= budget
        {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    let mut body = render(Cut {
        alerts: low,
        ..capped
    });
    if body.len() > budget {
        let mut end = budget;
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        body.truncate(end);
    }
    body
}

fn cap(value: &str, capped: bool) -> String {
    if !capped || value.len() <= VALUE_CAP_BYTES {
        return value.to_string();
    }
    let mut end = VALUE_CAP_BYTES - '…'.len_utf8();
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &value[..end])
}

/// A string, cut to [`VALUE_CAP_BYTES`] when capped.
struct CappedStr<'a>(&'a str, bool);

impl Serialize for CappedStr<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !self.1 || self.0.len() <= VALUE_CAP_BYTES {
            s.serialize_str(self.0)
        } else {
            s.serialize_str(&cap(self.0, true))
        }
    }
}

/// Labels as a JSON object (at most [`LABELS_CAP`] when capped).
struct LabelsJson<'a>(&'a Labels, bool);

impl Serialize for LabelsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let limit = if self.1 { LABELS_CAP } else { usize::MAX };
        let mut map = s.serialize_map(Some(self.0.len().min(limit)))?;
        for label in self.0.iter().take(limit) {
            map.serialize_entry(&*label.name, &CappedStr(&label.value, self.1))?;
        }
        map.end()
    }
}

/// Annotations as a JSON object.
struct AnnotationsJson<'a>(&'a BTreeMap<String, String>, bool);

impl Serialize for AnnotationsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, &CappedStr(v, self.1))?;
        }
        map.end()
    }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// One line of the chat description: status, summary (or alert name) and labels.
fn description_line(alert: &NotifiedAlert) -> String {
    let what = alert
        .annotations
        .get("summary")
        .or_else(|| alert.annotations.get("description"))
        .map(String::as_str)
        .unwrap_or_else(|| alert.labels.get("alertname"));
    let mut line = format!(
        "• *{}* {}",
        if alert.firing() { "FIRING" } else { "RESOLVED" },
        what
    );
    if line.len() > 300 {
        let mut end = 297;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push('…');
    }
    line
}

#[derive(Serialize)]
struct Body<'a> {
    version: &'static str,
    source: &'static str,
    id: &'a str,
    content: Content<'a>,
    metadata: Metadata<'a>,
    event_action: &'static str,
    dedup_key: &'a str,
    payload: Payload<'a>,
    schema: &'static str,
    receiver: &'a str,
    status: &'static str,
    #[serde(rename = "groupKey")]
    group_key: &'a str,
    #[serde(rename = "groupLabels")]
    group_labels: LabelsJson<'a>,
    #[serde(rename = "commonLabels")]
    common_labels: LabelsJson<'a>,
    #[serde(rename = "commonAnnotations")]
    common_annotations: AnnotationsJson<'a>,
    #[serde(rename = "externalURL")]
    external_url: &'a str,
    alerts: Vec<AlertJson<'a>>,
    #[serde(rename = "truncatedAlerts")]
    truncated_alerts: usize,
}

#[derive(Serialize)]
struct Content<'a> {
    #[serde(rename = "textType")]
    text_type: &'static str,
    title: &'a str,
    description: &'a str,
}

#[derive(Serialize)]
struct Metadata<'a> {
    #[serde(rename = "threadId")]
    thread_id: &'a str,
    summary: &'a str,
    #[serde(rename = "eventType")]
    event_type: String,
    #[serde(rename = "additionalContext")]
    additional_context: AdditionalContext<'a>,
}

#[derive(Serialize)]
struct AdditionalContext<'a> {
    receiver: &'a str,
    severity: &'a str,
    alertname: &'a str,
}

#[derive(Serialize)]
struct Payload<'a> {
    summary: &'a str,
    source: &'a str,
    severity: &'static str,
    timestamp: String,
    custom_details: CustomDetails<'a>,
}

#[derive(Serialize)]
struct CustomDetails<'a> {
    firing: usize,
    resolved: usize,
    alerts: &'a [String],
}

#[derive(Serialize)]
struct AlertJson<'a> {
    status: &'static str,
    labels: LabelsJson<'a>,
    annotations: AnnotationsJson<'a>,
    #[serde(rename = "startsAt")]
    starts_at: String,
    #[serde(rename = "endsAt")]
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
    fingerprint: String,
}

/// What every rendering of one notification shares.
struct Parts {
    description: String,
    lines: Vec<String>,
    summary: String,
    timestamp: String,
}

impl Parts {
    fn of(n: &Notification, facts: &Facts) -> Self {
        let lines: Vec<String> = n
            .alerts
            .iter()
            .take(DESCRIPTION_ALERTS)
            .map(description_line)
            .collect();
        let mut description = lines.join("\n");
        if n.alerts.len() > DESCRIPTION_ALERTS {
            let _ = write!(
                description,
                "\n… and {} more",
                n.alerts.len() - DESCRIPTION_ALERTS
            );
        }
        let summary = match facts.common_annotations.get("summary") {
            Some(s) if facts.firing > 0 => format!("{}: {}", facts.subject, cap(s, true)),
            _ => facts.subject.clone(),
        };
        Self {
            description,
            lines,
            summary: printable_utf8(&summary, 1024),
            timestamp: rfc3339(n.created_ms),
        }
    }
}

fn render(
    n: &Notification,
    facts: &Facts,
    parts: &Parts,
    origin: &Origin,
    dedup_key: &str,
    id: &str,
    cut: Cut,
) -> String {
    let kept = &n.alerts[..cut.alerts.min(n.alerts.len())];
    let alerts = kept
        .iter()
        .map(|a| AlertJson {
            status: if a.firing() { "firing" } else { "resolved" },
            labels: LabelsJson(&a.labels, cut.capped),
            annotations: AnnotationsJson(&a.annotations, cut.capped),
            starts_at: rfc3339(a.starts_at_ms),
            ends_at: a
                .ends_at_ms
                .map(rfc3339)
                .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string()),
            generator_url: &a.generator_url,
            fingerprint: hex(a.fingerprint),
        })
        .collect();
    let source = if origin.external_url.is_empty() {
        "sextant"
    } else {
        origin.external_url.as_str()
    };
    let body = Body {
        version: "1.0",
        source: "custom",
        id,
        content: Content {
            text_type: "client-markdown",
            title: &facts.subject,
            description: &parts.description,
        },
        metadata: Metadata {
            thread_id: dedup_key,
            summary: &parts.summary,
            event_type: format!("alert_{}", facts.status),
            additional_context: AdditionalContext {
                receiver: &n.key.receiver,
                severity: &facts.severity,
                alertname: &facts.alertname,
            },
        },
        event_action: if facts.firing > 0 {
            "trigger"
        } else {
            "resolve"
        },
        dedup_key,
        payload: Payload {
            summary: &parts.summary,
            source,
            severity: pagerduty_severity(&facts.severity),
            timestamp: parts.timestamp.clone(),
            custom_details: CustomDetails {
                firing: facts.firing,
                resolved: n.alerts.len() - facts.firing,
                alerts: &parts.lines,
            },
        },
        schema: "sextant.alert.v1",
        receiver: &n.key.receiver,
        status: facts.status,
        group_key: &n.key.group_key,
        group_labels: LabelsJson(&n.group_labels, cut.capped),
        common_labels: LabelsJson(&facts.common_labels, cut.capped),
        common_annotations: AnnotationsJson(&facts.common_annotations, cut.capped),
        external_url: &origin.external_url,
        alerts,
        truncated_alerts: n.alerts.len() - kept.len(),
    };
    serde_json::to_string(&body).unwrap_or_default()
}

/// At most `max` bytes, cut on a character boundary.
fn printable_utf8(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}
