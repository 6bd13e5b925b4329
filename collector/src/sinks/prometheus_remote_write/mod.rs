//! Sink `prometheus_remote_write`: metrics to anything that takes Prometheus remote write 1.0
//! (Prometheus with `--web.enable-remote-write-receiver`, Amazon Managed Prometheus with
//! SigV4, Mimir, Thanos, VictoriaMetrics).
//!
//! Series are named and labelled by the shared Prometheus mapping, gathered per series and
//! hashed to shards ([`request_builder`]); one batch at a time, its shards in parallel up to
//! `request.concurrency` (adaptive by default: the receiver's latency and push-back move it),
//! so each series arrives in time order. Requests are retried on 5xx, 429 (honouring
//! `Retry-After`) and connection failures, not on other 4xx (counted, dead-lettered, logged).
//! Samples the receiver refuses as out of order, too old or duplicate — after a resend, ones it
//! already has — are split off and the rest delivered ([`recovery`]); they are counted as
//! `dropped{reason="out_of_order"}`, not as failures.

pub(crate) mod config;
pub(crate) mod recovery;
pub mod request_builder;
pub(crate) mod retry;
pub(crate) mod service;
#[cfg(test)]
mod tests;
pub mod wire;

use std::ops::Range;

use sextant_pipeline::component::{BuildError, SinkContext, Task};
use sextant_pipeline::flow::ack::AckStatus;
use sextant_pipeline::flow::event::Events;
use sextant_pipeline::sink::dead_letter::DeadLetter;
use sextant_pipeline::sink::request::Retry;
use sextant_pipeline::sink::sender::{
    self, Accepted, Drive, Encoder, Groups, Refusal, Request, Sender, Service,
};
use sextant_pipeline::telemetry::ComponentMetrics;

pub use config::{PreparedRemoteWrite, RemoteWriteConfig};
use request_builder::{BuildStats, Limits, RemoteWrite};
use retry::RemoteWriteError;
use service::RemoteWriteService;

pub(crate) fn build(prepared: &PreparedRemoteWrite, cx: SinkContext) -> Result<Task, BuildError> {
    let config = &prepared.config;
    let dead_letter = config
        .dead_letter
        .as_ref()
        .map(|d| DeadLetter::open(d, cx.metrics.clone()))
        .transpose()?;
    let encoder = SeriesEncoder(Limits {
        max_samples_per_send: config.max_samples_per_send,
        shards: config.request.concurrency.max(1),
    });
    let sender = Sender::new(RemoteWriteService::new(prepared), &config.request, &cx)
        .with_dead_letter(dead_letter);
    // One batch at a time: a series' samples of the next batch never overtake this one's.
    Ok(sender::run(
        cx,
        config.batch.clone(),
        Drive::Batches(1),
        false,
        encoder,
        sender,
    ))
}

/// Metrics into sharded remote-write requests.
pub struct SeriesEncoder(pub Limits);

impl Encoder for SeriesEncoder {
    type Request = RemoteWrite;

    fn encode(
        &self,
        events: Events,
        metrics: &ComponentMetrics,
    ) -> Result<Groups<RemoteWrite>, AckStatus> {
        let Events::Metrics(batch) = events else {
            metrics.dropped("not_metrics", events.len() as u64);
            return Err(AckStatus::Rejected);
        };
        let mut stats = BuildStats::default();
        let groups = request_builder::build(&batch, &self.0, &mut stats);
        count(metrics, &stats);
        Ok(groups)
    }
}

fn count(metrics: &ComponentMetrics, stats: &BuildStats) {
    let unmapped = &stats.unmapped;
    for (reason, n) in [
        ("duplicate_sample", stats.duplicate_samples),
        ("delta_temporality", unmapped.delta),
        ("no_value", unmapped.no_value),
        ("too_large", stats.uncompressible),
    ] {
        if n > 0 {
            metrics.dropped(reason, n);
        }
    }
}

impl Request for RemoteWrite {
    fn events(&self) -> usize {
        self.samples
    }
    fn bytes(&self) -> usize {
        self.body.len()
    }
    /// The samples in `range`: labels, timestamp (ms), value (stale markers as `"stale"`).
    fn dead_letter(&self, range: Range<usize>) -> Vec<serde_json::Value> {
        let Some(decoded) = wire::decode_body(&self.body) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut index = 0;
        for series in &decoded.timeseries {
            let labels: serde_json::Map<String, serde_json::Value> = series
                .labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone().into()))
                .collect();
            for sample in &series.samples {
                if range.contains(&index) {
                    let value = if sample.value.to_bits()
                        == sextant_pipeline::flow::event::prometheus::STALE_NAN.to_bits()
                    {
                        serde_json::Value::from("stale")
                    } else {
                        serde_json::Number::from_f64(sample.value)
                            .map_or_else(|| sample.value.to_string().into(), Into::into)
                    };
                    out.push(serde_json::json!({
                        "labels": labels,
                        "timestamp_ms": sample.timestamp,
                        "value": value,
                    }));
                }
                index += 1;
            }
        }
        out
    }
}

/// Samples refused inside a request that was otherwise delivered.
#[derive(Default)]
pub struct Written(Vec<Refusal>);

impl Accepted for Written {
    fn refusals(&self) -> Vec<Refusal> {
        self.0.clone()
    }
}

impl Service for RemoteWriteService {
    type Request = RemoteWrite;
    type Response = Written;
    type Error = RemoteWriteError;
    const BACKEND: &'static str = "the remote-write receiver";

    async fn call(&self, request: &RemoteWrite) -> Result<Written, RemoteWriteError> {
        match self.post(request.body.clone()).await {
            Ok(()) => Ok(Written::default()),
            Err(e) if e.is_out_of_order() => {
                recovery::deliver_the_rest(self, request).await.map(Written)
            }
            Err(e) => Err(e),
        }
    }

    fn classify(&self, error: &RemoteWriteError) -> Retry {
        retry::classify(error)
    }
}
