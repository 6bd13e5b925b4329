//! Sink `aws_xray`: spans to X-Ray as segment documents ([`segment`]), PutTraceSegments in
//! requests of at most 50 documents of at most 64 kB ([`request_builder`]), sent in parallel up
//! to `request.concurrency`.
//!
//! Documents X-Ray returns as UnprocessedTraceSegments are sent again, alone, with the request's
//! backoff; after 5 such rounds the ones still refused are dropped and counted
//! (`reason="unprocessed"`) with X-Ray's error code logged, so one document X-Ray will never
//! take cannot hold the queue. A request refused for good is counted and the batch rejected.

pub(crate) mod annotations;
pub(crate) mod config;
pub(crate) mod ids;
pub(crate) mod request_builder;
pub(crate) mod retry;
pub(crate) mod segment;
pub(crate) mod service;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use sextant_pipeline::component::{BuildError, SinkContext, Task};
use sextant_pipeline::flow::ack::AckStatus;
use sextant_pipeline::flow::event::Events;
use sextant_pipeline::sink::request::Retry;
use sextant_pipeline::sink::sender::{self, Accepted, Drive, Encoder, Groups, Refusal, Sender};
use sextant_pipeline::telemetry::ComponentMetrics;

use crate::sinks::aws::{AwsApi, AwsError, AwsErrorKind, OnFirstUse};
pub use config::XRayConfig;
use request_builder::{BuildStats, Document};
use segment::Indexing;
use service::{Unprocessed, XRayService};

/// Rounds of resending unprocessed documents before they are given up.
pub const MAX_UNPROCESSED_ROUNDS: u32 = 5;

/// Checked settings and the annotation choice.
pub struct PreparedXRay {
    config: XRayConfig,
    indexing: Indexing,
}

pub(crate) fn build(prepared: &PreparedXRay, cx: SinkContext) -> Result<Task, BuildError> {
    let (config, indexing) = (&prepared.config, prepared.indexing.clone());
    let aws = config.aws.clone();
    let service = OnFirstUse::new(move || {
        let aws = aws.clone();
        async move { XRayService::new(&aws).await }
    });
    let sender = Sender::new(service, &config.request, &cx);
    // Segments are independent documents: batches may go in parallel.
    Ok(sender::run(
        cx,
        config.batch.clone(),
        Drive::Batches(config.request.concurrency.max(1)),
        config.healthcheck,
        SegmentEncoder(indexing),
        sender,
    ))
}

/// Spans into segment documents, in PutTraceSegments requests.
struct SegmentEncoder(Indexing);

impl Encoder for SegmentEncoder {
    type Request = SegmentsRequest;

    fn encode(
        &self,
        events: Events,
        metrics: &ComponentMetrics,
    ) -> Result<Groups<SegmentsRequest>, AckStatus> {
        let Events::Spans(spans) = events else {
            metrics.dropped("not_spans", events.len() as u64);
            return Err(AckStatus::Rejected);
        };
        let mut stats = BuildStats::default();
        let requests = request_builder::build(&spans, &self.0, &mut stats);
        count(metrics, &stats);
        Ok(requests
            .into_iter()
            .map(|docs| vec![SegmentsRequest::new(docs)])
            .collect())
    }
}

fn count(metrics: &ComponentMetrics, stats: &BuildStats) {
    if stats.too_large > 0 {
        metrics.dropped("too_large", stats.too_large);
    }
    if stats.trimmed > 0 {
        metrics.discarded("document_trimmed", stats.trimmed);
    }
    if stats.annotations.demoted > 0 {
        metrics.discarded("annotation_to_metadata", stats.annotations.demoted);
    }
    if stats.annotations.fixed > 0 {
        metrics.error("name_sanitized");
    }
}

/// One PutTraceSegments request, and which of its documents X-Ray has yet to process: a retry
/// sends only those.
pub(crate) struct SegmentsRequest {
    documents: Vec<Document>,
    pending: Mutex<Vec<usize>>,
    rounds: AtomicU32,
    bytes: usize,
}

impl SegmentsRequest {
    fn new(documents: Vec<Document>) -> Self {
        Self {
            pending: Mutex::new((0..documents.len()).collect()),
            rounds: AtomicU32::new(0),
            bytes: documents.iter().map(|d| d.json.len()).sum(),
            documents,
        }
    }

    fn pending(&self) -> Vec<usize> {
        self.pending.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

impl sextant_pipeline::sink::sender::Request for SegmentsRequest {
    fn events(&self) -> usize {
        self.documents.len()
    }
    fn bytes(&self) -> usize {
        self.bytes
    }
}

/// Documents given up after [`MAX_UNPROCESSED_ROUNDS`], by index, with what X-Ray said.
#[derive(Default)]
pub(crate) struct GivenUp(Vec<(usize, Unprocessed)>);

impl Accepted for GivenUp {
    fn refusals(&self) -> Vec<Refusal> {
        self.0
            .iter()
            .map(|(i, u)| Refusal {
                reason: "unprocessed",
                events: *i..*i + 1,
                detail: format!(
                    "not processed after {MAX_UNPROCESSED_ROUNDS} rounds: {} {}",
                    u.error_code, u.message
                ),
            })
            .collect()
    }
}

impl AwsApi for XRayService {
    type Request = SegmentsRequest;
    type Response = GivenUp;
    const BACKEND: &'static str = "X-Ray";

    /// Sends the documents still pending; those X-Ray did not process stay pending and make the
    /// attempt fail (to be retried with backoff) until the last round, which gives them up.
    async fn put(&self, request: &SegmentsRequest) -> Result<GivenUp, AwsError> {
        let pending = request.pending();
        let documents: Vec<Document> = pending
            .iter()
            .filter_map(|&i| request.documents.get(i).cloned())
            .collect();
        let unprocessed = XRayService::put(self, &documents).await?;
        if unprocessed.is_empty() {
            return Ok(GivenUp::default());
        }
        let by_id: HashMap<&str, &Unprocessed> =
            unprocessed.iter().map(|u| (u.id.as_str(), u)).collect();
        let still: Vec<(usize, Unprocessed)> = pending
            .iter()
            .filter_map(|&i| {
                let doc = request.documents.get(i)?;
                Some((i, (*by_id.get(doc.id.as_str())?).clone()))
            })
            .collect();
        if request.rounds.fetch_add(1, Ordering::Relaxed) + 1 >= MAX_UNPROCESSED_ROUNDS {
            return Ok(GivenUp(still));
        }
        if let Ok(mut p) = request.pending.lock() {
            *p = still.iter().map(|(i, _)| *i).collect();
        }
        Err(unprocessed_error(&unprocessed))
    }

    async fn healthcheck(&self) -> Result<(), AwsError> {
        XRayService::healthcheck(self).await
    }

    fn classify(error: &AwsError) -> Retry {
        retry::classify(error)
    }
}

fn unprocessed_error(unprocessed: &[Unprocessed]) -> AwsError {
    let first = &unprocessed[0];
    AwsError {
        kind: AwsErrorKind::Service,
        code: Some(retry::UNPROCESSED.into()),
        status: None,
        message: format!(
            "{} segments unprocessed (first: {} {})",
            unprocessed.len(),
            first.error_code,
            first.message
        ),
    }
}
