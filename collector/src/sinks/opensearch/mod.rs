//! Sink `opensearch`: logs and traces to OpenSearch (or Elasticsearch: the bulk API is the same)
//! with the bulk API — NDJSON, gzip, `create` actions with content ids ([`document`]), into
//! indices or data streams named per record ([`request_builder`]).
//!
//! Every item of an answer is read ([`retry`]): a conflict is a resend of a document already
//! indexed and counts as delivered, so each record is indexed once however often it is sent;
//! items refused with 429 or 5xx are sent again alone, with the request's backoff; items
//! refused for mapping or parse errors are counted and kept in the dead-letter file with
//! OpenSearch's reason, and the rest of the batch is delivered. An index template and an ISM
//! policy are installed before the first write when configured. Batches go one at a time, the
//! requests of one in parallel up to `request.concurrency`.

pub mod config;
pub mod document;
pub mod json;
pub mod request_builder;
pub(crate) mod retry;
pub(crate) mod service;
#[cfg(test)]
mod tests;

use std::ops::Range;
use std::sync::Mutex;

use bytes::Bytes;

use sextant_pipeline::component::{BuildError, SinkContext, Task};
use sextant_pipeline::flow::ack::AckStatus;
use sextant_pipeline::flow::event::Events;
use sextant_pipeline::sink::dead_letter::DeadLetter;
use sextant_pipeline::sink::request::Retry;
use sextant_pipeline::sink::sender::{
    self, Accepted, Drive, Encoder, Groups, Refusal, Request, Sender, Service,
};
use sextant_pipeline::telemetry::ComponentMetrics;

pub use config::{OpenSearchConfig, PreparedOpenSearch};
use request_builder::{BuildStats, BulkBody, Settings};
use retry::{item_outcome, ItemOutcome, OpenSearchError};
use service::OpenSearchService;

pub(crate) fn build(prepared: &PreparedOpenSearch, cx: SinkContext) -> Result<Task, BuildError> {
    let config = &prepared.config;
    let dead_letter = config
        .dead_letter
        .as_ref()
        .map(|d| DeadLetter::open(d, cx.metrics.clone()))
        .transpose()?;
    let encoder = BulkEncoder(Settings {
        index: prepared.index.clone(),
        missing: config.missing_value.clone(),
        layout: config.layout,
        max_request_bytes: config.max_request_bytes.as_usize(),
    });
    let sender = Sender::new(OpenSearchService::new(prepared), &config.request, &cx)
        .with_dead_letter(dead_letter);
    Ok(sender::run(
        cx,
        config.batch.clone(),
        Drive::Batches(1),
        config.healthcheck,
        encoder,
        sender,
    ))
}

/// Records into bulk requests.
pub struct BulkEncoder(pub Settings);

impl Encoder for BulkEncoder {
    type Request = Bulk;

    fn encode(
        &self,
        events: Events,
        metrics: &ComponentMetrics,
    ) -> Result<Groups<Bulk>, AckStatus> {
        if matches!(events, Events::Metrics(_)) {
            metrics.dropped("not_logs_or_spans", events.len() as u64);
            return Err(AckStatus::Rejected);
        }
        let mut stats = BuildStats::default();
        let bodies = request_builder::build(&events, &self.0, &mut stats);
        if stats.too_large > 0 {
            metrics.dropped("too_large", stats.too_large);
        }
        Ok(bodies.into_iter().map(|b| vec![Bulk::new(b)]).collect())
    }
}

/// One bulk request, the items still to send (a retry sends only those), and the items
/// OpenSearch refused so far.
pub struct Bulk {
    body: BulkBody,
    pending: Mutex<Vec<usize>>,
    refused: Mutex<Vec<Refusal>>,
}

impl Bulk {
    fn new(body: BulkBody) -> Self {
        Self {
            pending: Mutex::new((0..body.ends.len()).collect()),
            refused: Mutex::new(Vec::new()),
            body,
        }
    }

    /// The NDJSON of `items`.
    fn ndjson(&self, items: &[usize]) -> Bytes {
        if items.len() == self.body.ends.len() {
            return Bytes::copy_from_slice(&self.body.ndjson);
        }
        let mut out = Vec::new();
        for &i in items {
            out.extend_from_slice(self.body.item(i));
        }
        out.into()
    }
}

impl Request for Bulk {
    fn events(&self) -> usize {
        self.body.ends.len()
    }
    fn bytes(&self) -> usize {
        self.body.ndjson.len()
    }
    /// The refused items: the index and the document as sent.
    fn dead_letter(&self, range: Range<usize>) -> Vec<serde_json::Value> {
        range
            .filter(|&i| i < self.body.ends.len())
            .map(|i| {
                let text = String::from_utf8_lossy(self.body.item(i)).into_owned();
                let mut lines = text.lines();
                let action: serde_json::Value =
                    serde_json::from_str(lines.next().unwrap_or("")).unwrap_or_default();
                let document: serde_json::Value =
                    serde_json::from_str(lines.next().unwrap_or("")).unwrap_or_default();
                serde_json::json!({
                    "index": action["create"]["_index"],
                    "id": action["create"]["_id"],
                    "document": document,
                })
            })
            .collect()
    }
}

/// Items refused inside a delivered request.
pub struct Indexed(Vec<Refusal>);

impl Accepted for Indexed {
    fn refusals(&self) -> Vec<Refusal> {
        self.0.clone()
    }
}

impl Service for OpenSearchService {
    type Request = Bulk;
    type Response = Indexed;
    type Error = OpenSearchError;
    const BACKEND: &'static str = "OpenSearch";

    async fn call(&self, request: &Bulk) -> Result<Indexed, OpenSearchError> {
        let pending = request
            .pending
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default();
        let answers = self.bulk(request.ndjson(&pending), pending.len()).await?;
        let mut retry = Vec::new();
        let mut first_retry_reason = String::new();
        let mut refused = Vec::new();
        for (&item, answer) in pending.iter().zip(&answers) {
            match item_outcome(answer.status, &answer.error_type) {
                ItemOutcome::Delivered => {}
                ItemOutcome::Retry => {
                    if first_retry_reason.is_empty() {
                        first_retry_reason = format!("{} {}", answer.status, answer.error_type);
                    }
                    retry.push(item);
                }
                ItemOutcome::Refused(reason) => refused.push(Refusal {
                    reason,
                    events: item..item + 1,
                    detail: format!("{} {}: {}", answer.status, answer.error_type, answer.reason),
                }),
            }
        }
        if let Ok(mut all) = request.refused.lock() {
            all.extend(refused);
        }
        if retry.is_empty() {
            let all = request
                .refused
                .lock()
                .map(|r| r.clone())
                .unwrap_or_default();
            return Ok(Indexed(all));
        }
        let count = retry.len();
        if let Ok(mut p) = request.pending.lock() {
            *p = retry;
        }
        Err(OpenSearchError::ItemsToRetry {
            count,
            reason: first_retry_reason,
        })
    }

    fn classify(&self, error: &OpenSearchError) -> Retry {
        retry::classify(error)
    }

    async fn healthcheck(&self) -> Result<(), String> {
        self.health().await.map_err(|e| e.to_string())
    }
}
