//! Sink `aws_sns`: log records published to SNS topics, one Publish a record
//! ([`request_builder`] shapes each into a message SNS accepts), in parallel up to
//! `request.concurrency`. Throttling and 5xx are retried with the request's backoff; a topic
//! that does not exist, a refused authorization or a message SNS calls invalid is refused for
//! good: counted, dead-lettered with the message, and the record acknowledged as rejected.
//!
//! The `prometheus_rules` source's alert notifications come here: it sets each record's topic,
//! subject, FIFO ids and the `severity`, `alertname` and `status` message attributes.

pub(crate) mod config;
pub(crate) mod request_builder;
pub(crate) mod retry;
pub(crate) mod service;

use sextant_pipeline::component::{BuildError, SinkContext, Task};
use sextant_pipeline::flow::ack::AckStatus;
use sextant_pipeline::flow::event::Events;
use sextant_pipeline::sink::dead_letter::DeadLetter;
use sextant_pipeline::sink::request::Retry;
use sextant_pipeline::sink::sender::{self, Drive, Encoder, Groups, Sender};
use sextant_pipeline::telemetry::ComponentMetrics;

use crate::sinks::aws::{AwsApi, AwsError, OnFirstUse};
pub use config::SnsConfig;
use request_builder::{BuildStats, Message};
use service::SnsService;

pub(crate) fn build(config: &SnsConfig, cx: SinkContext) -> Result<Task, BuildError> {
    let aws = config.aws.clone();
    let topic = config.topic_arn.clone();
    let service = OnFirstUse::new(move || {
        let (aws, topic) = (aws.clone(), topic.clone());
        async move { SnsService::new(&aws, topic).await }
    });
    let dead_letter = config
        .dead_letter
        .as_ref()
        .map(|d| DeadLetter::open(d, cx.metrics.clone()))
        .transpose()?;
    let sender = Sender::new(service, &config.request, &cx).with_dead_letter(dead_letter);
    Ok(sender::run(
        cx,
        config.batch.clone(),
        Drive::Batches(config.request.concurrency.max(1)),
        config.healthcheck,
        MessageEncoder(config.topic_arn.clone()),
        sender,
    ))
}

/// Records into one Publish each.
struct MessageEncoder(Option<String>);

impl Encoder for MessageEncoder {
    type Request = PublishRequest;

    fn encode(
        &self,
        events: Events,
        metrics: &ComponentMetrics,
    ) -> Result<Groups<PublishRequest>, AckStatus> {
        let Events::Logs(records) = events else {
            metrics.dropped("not_logs", events.len() as u64);
            return Err(AckStatus::Rejected);
        };
        let mut stats = BuildStats::default();
        // Messages are independent: each its own group, so they go in parallel and one
        // refused does not hold the others.
        let requests: Groups<PublishRequest> = records
            .iter()
            .filter_map(|r| request_builder::build(r, self.0.as_deref(), &mut stats))
            .map(|m| vec![PublishRequest(m)])
            .collect();
        count(metrics, &stats);
        Ok(requests)
    }
}

fn count(metrics: &ComponentMetrics, stats: &BuildStats) {
    if stats.no_topic > 0 {
        metrics.dropped("no_topic", stats.no_topic);
    }
    if stats.empty > 0 {
        metrics.dropped("empty", stats.empty);
    }
    if stats.truncated > 0 {
        metrics.discarded("message_truncated", stats.truncated);
    }
    if stats.attributes_dropped > 0 {
        metrics.discarded("attribute_dropped", stats.attributes_dropped);
    }
}

/// One Publish.
pub(crate) struct PublishRequest(Message);

impl sextant_pipeline::sink::sender::Request for PublishRequest {
    fn events(&self) -> usize {
        1
    }
    fn bytes(&self) -> usize {
        self.0.sns_bytes()
    }
    fn target(&self) -> String {
        self.0.topic_arn.clone()
    }
    fn dead_letter(&self, _range: std::ops::Range<usize>) -> Vec<serde_json::Value> {
        let m = &self.0;
        vec![serde_json::json!({
            "topic_arn": m.topic_arn,
            "subject": m.subject,
            "message": m.body,
            "attributes": m.attributes.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
            "message_group_id": m.message_group_id,
            "deduplication_id": m.deduplication_id,
        })]
    }
}

impl AwsApi for SnsService {
    type Request = PublishRequest;
    type Response = ();
    const BACKEND: &'static str = "SNS";

    async fn put(&self, request: &PublishRequest) -> Result<(), AwsError> {
        self.publish(&request.0).await.map(|_| ())
    }

    async fn healthcheck(&self) -> Result<(), AwsError> {
        SnsService::healthcheck(self).await
    }

    fn classify(error: &AwsError) -> Retry {
        retry::classify(error)
    }
}
