//! Sources both roles can use: `file` (tail files), `otlp` (receive OTLP/HTTP) and `xray_udp`
//! (the X-Ray daemon protocol); [`pod_association`] adds a sender's pod to what it sends.

pub mod file;
pub mod otlp;
pub mod pod_association;
pub mod xray_udp;

/// Sends one collection of metrics (a scrape, a rule evaluation) as a batch, counting its
/// points received and sent. Nothing could replay a collection, so it is not acknowledged back;
/// the send waits for room.
pub async fn send_metrics(
    out: &crate::flow::fanout::Fanout,
    counters: &crate::telemetry::ComponentMetrics,
    metrics: Vec<crate::flow::event::Metric>,
) {
    let points: usize = metrics
        .iter()
        .filter_map(|m| m.data.as_ref())
        .map(crate::flow::event::MetricData::point_count)
        .sum();
    counters.received_events.inc_by(points as u64);
    out.send(crate::flow::batch::Batch::metrics(
        metrics,
        crate::flow::ack::Acks::none(),
    ))
    .await;
    counters.sent_events.inc_by(points as u64);
}
