//! The only place that calls CloudWatch Logs: creates groups and streams on first use (an
//! "already exists" answer is success), sets retention on groups it creates, and puts events.
//!
//! Creating a destination is three steps — the group, its retention, the stream — and each is
//! remembered once it succeeded and retried on its own until it does: a throttled
//! `PutRetentionPolicy` is sent again with the next attempt, never skipped because the group
//! now "already exists".

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_cloudwatchlogs::Client;

use sextant_pipeline::sink::sender::{Accepted, Refusal};

use super::request_builder::{PutRequest, StreamKey};
use crate::sinks::aws::{sdk_config, AwsError, AwsErrorKind, AwsSettings};

/// Events CloudWatch Logs refused inside an accepted request, as counts from the ends of the
/// request's time-sorted events: too old and expired ones lead, too new ones trail.
#[derive(Debug, Default, PartialEq)]
pub struct Rejected {
    /// Events in the request.
    pub events: u64,
    pub too_old: u64,
    pub too_new: u64,
    pub expired: u64,
}

impl Accepted for Rejected {
    /// Expired events first, then those too old that had not expired, then those too new; no
    /// event in two.
    fn refusals(&self) -> Vec<Refusal> {
        let n = self.events as usize;
        let expired = (self.expired as usize).min(n);
        let old = (self.too_old as usize).clamp(expired, n);
        let new = (self.too_new as usize).min(n - old);
        [
            ("expired", 0..expired),
            ("too_old", expired..old),
            ("too_new", n - new..n),
        ]
        .into_iter()
        .filter(|(_, range)| !range.is_empty())
        .map(|(reason, events)| Refusal {
            reason,
            events,
            detail: format!("PutLogEvents rejected {reason} events"),
        })
        .collect()
    }
}

pub struct CloudWatchLogsService {
    client: Client,
    create_missing: bool,
    retention_days: Option<i32>,
    groups: Mutex<HashMap<String, GroupStep>>,
    known_streams: Mutex<HashSet<StreamKey>>,
}

/// How far a log group's set-up has come in this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GroupStep {
    /// `CreateLogGroup` was sent and its outcome is unknown (failed, throttled, timed out): an
    /// "already exists" next time may be our own group, which still needs its retention.
    CreateAttempted,
    /// Created by us; `PutRetentionPolicy` has not succeeded yet.
    NeedsRetention,
    Ready,
}

fn already_exists(e: &AwsError) -> bool {
    e.code.as_deref() == Some("ResourceAlreadyExistsException")
}

impl CloudWatchLogsService {
    pub async fn new(aws: &AwsSettings, create_missing: bool, retention_days: Option<i32>) -> Self {
        let config = sdk_config(aws).await;
        Self {
            client: Client::new(&config),
            create_missing,
            retention_days,
            groups: Mutex::new(HashMap::new()),
            known_streams: Mutex::new(HashSet::new()),
        }
    }

    /// A cheap read (one log group): credentials, endpoint and permission.
    pub async fn healthcheck(&self) -> Result<(), AwsError> {
        self.client
            .describe_log_groups()
            .limit(1)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::from_sdk(&e))
    }

    fn is_known(&self, key: &StreamKey) -> bool {
        self.known_streams
            .lock()
            .map(|s| s.contains(key))
            .unwrap_or(false)
    }

    fn set_known(&self, key: &StreamKey, known: bool) {
        if let Ok(mut s) = self.known_streams.lock() {
            if known {
                s.insert(key.clone());
            } else {
                s.remove(key);
            }
        }
    }

    fn group_step(&self, group: &str) -> Option<GroupStep> {
        self.groups.lock().ok().and_then(|g| g.get(group).copied())
    }

    fn set_group_step(&self, group: &str, step: Option<GroupStep>) {
        if let Ok(mut g) = self.groups.lock() {
            match step {
                Some(step) => g.insert(group.to_owned(), step),
                None => g.remove(group),
            };
        }
    }

    /// The group exists, with its retention if we created it; each step that succeeded is
    /// remembered, so a retry resumes at the step that failed.
    async fn ensure_group(&self, group: &str) -> Result<(), AwsError> {
        let mut step = self.group_step(group);
        if matches!(step, None | Some(GroupStep::CreateAttempted)) {
            let attempted_before = step.is_some();
            self.set_group_step(group, Some(GroupStep::CreateAttempted));
            let created = match self
                .client
                .create_log_group()
                .log_group_name(group)
                .send()
                .await
            {
                Ok(_) => true,
                Err(e) => {
                    let e = AwsError::from_sdk(&e);
                    if !already_exists(&e) {
                        return Err(e);
                    }
                    // Someone else's group, unless an earlier attempt of ours created it.
                    attempted_before
                }
            };
            let next = if created && self.retention_days.is_some() {
                GroupStep::NeedsRetention
            } else {
                GroupStep::Ready
            };
            self.set_group_step(group, Some(next));
            step = Some(next);
        }
        if step == Some(GroupStep::NeedsRetention) {
            if let Some(days) = self.retention_days {
                self.client
                    .put_retention_policy()
                    .log_group_name(group)
                    .retention_in_days(days)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk(&e))?;
            }
            self.set_group_step(group, Some(GroupStep::Ready));
        }
        Ok(())
    }

    async fn ensure_stream(&self, key: &StreamKey) -> Result<(), AwsError> {
        if !self.create_missing || self.is_known(key) {
            return Ok(());
        }
        self.ensure_group(&key.group).await?;
        match self
            .client
            .create_log_stream()
            .log_group_name(&key.group)
            .log_stream_name(&key.stream)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) => {
                let e = AwsError::from_sdk(&e);
                if !already_exists(&e) {
                    return Err(e);
                }
            }
        }
        self.set_known(key, true);
        Ok(())
    }

    pub async fn put(&self, req: &PutRequest) -> Result<Rejected, AwsError> {
        self.ensure_stream(&req.key).await?;
        let mut events = Vec::with_capacity(req.events.len());
        for e in &req.events {
            let event = InputLogEvent::builder()
                .timestamp(e.timestamp_ms)
                .message(e.message.clone())
                .build()
                .map_err(|err| AwsError {
                    kind: AwsErrorKind::Construction,
                    code: None,
                    status: None,
                    message: err.to_string(),
                })?;
            events.push(event);
        }
        let result = self
            .client
            .put_log_events()
            .log_group_name(&req.key.group)
            .log_stream_name(&req.key.stream)
            .set_log_events(Some(events))
            .send()
            .await;
        let output = match result {
            Ok(o) => o,
            Err(e) => {
                let e = AwsError::from_sdk(&e);
                if e.code.as_deref() == Some("ResourceNotFoundException") {
                    // Deleted behind our back: create it (and its group) again on the retry.
                    self.set_known(&req.key, false);
                    self.set_group_step(&req.key.group, None);
                }
                return Err(e);
            }
        };
        let n = req.events.len() as i64;
        let mut rejected = Rejected {
            events: n as u64,
            ..Default::default()
        };
        if let Some(info) = output.rejected_log_events_info() {
            // Indices are into the request's (time-sorted) events.
            if let Some(end) = info.too_old_log_event_end_index() {
                rejected.too_old = (i64::from(end) + 1).clamp(0, n) as u64;
            }
            if let Some(end) = info.expired_log_event_end_index() {
                rejected.expired = (i64::from(end) + 1).clamp(0, n) as u64;
            }
            if let Some(start) = info.too_new_log_event_start_index() {
                rejected.too_new = (n - i64::from(start)).clamp(0, n) as u64;
            }
        }
        Ok(rejected)
    }
}
