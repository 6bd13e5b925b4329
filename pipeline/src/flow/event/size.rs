//! Estimated in-memory size of events, the unit in which queues and batches are bounded.
//!
//! The estimate counts the bytes of strings and byte arrays plus the in-memory size of each
//! record and attribute struct, so that a queue bound in bytes is close to the memory it holds
//! (allocator rounding aside). It is computed once when a batch is made and carried with it,
//! never per queue operation.

use super::{Events, KeyValue, LogEvent, Metric, MetricData, NumberPoint, Span, Value};

/// Charged per record: the size of the largest record struct.
const RECORD_OVERHEAD: usize = std::mem::size_of::<LogEvent>();
/// Charged per attribute: the struct itself (its key and value bytes are counted apart).
const ATTRIBUTE_OVERHEAD: usize = std::mem::size_of::<KeyValue>();

/// Something whose memory footprint can be estimated.
pub trait ByteSize {
    fn byte_size(&self) -> usize;
}

impl ByteSize for Value {
    fn byte_size(&self) -> usize {
        match self {
            Value::Empty | Value::Bool(_) | Value::Int(_) | Value::Double(_) => 8,
            Value::Str(s) => s.len(),
            Value::Bytes(b) => b.len(),
            Value::Array(a) => a
                .iter()
                .map(|v| v.byte_size() + std::mem::size_of::<Value>())
                .sum::<usize>(),
            Value::Map(m) => attributes_size(m),
        }
    }
}

impl ByteSize for KeyValue {
    fn byte_size(&self) -> usize {
        self.key.len() + self.value.byte_size() + ATTRIBUTE_OVERHEAD
    }
}

pub(crate) fn attributes_size(attributes: &[KeyValue]) -> usize {
    attributes.iter().map(ByteSize::byte_size).sum()
}

impl ByteSize for LogEvent {
    fn byte_size(&self) -> usize {
        RECORD_OVERHEAD
            + self.body.byte_size()
            + self.attributes.byte_size()
            + self.severity_text.len()
            + self.event_name.len()
    }
}

fn number_points_size(points: &[NumberPoint]) -> usize {
    points
        .iter()
        .map(|p| RECORD_OVERHEAD + attributes_size(&p.attributes))
        .sum()
}

impl ByteSize for Metric {
    fn byte_size(&self) -> usize {
        let points = match &self.data {
            None => 0,
            Some(MetricData::Gauge(p)) => number_points_size(p),
            Some(MetricData::Sum { points, .. }) => number_points_size(points),
            Some(MetricData::Histogram { points, .. }) => points
                .iter()
                .map(|p| {
                    RECORD_OVERHEAD
                        + attributes_size(&p.attributes)
                        + 8 * (p.bucket_counts.len() + p.explicit_bounds.len())
                })
                .sum(),
            Some(MetricData::ExponentialHistogram { points, .. }) => points
                .iter()
                .map(|p| {
                    let buckets = p.positive.as_ref().map_or(0, |b| b.bucket_counts.len())
                        + p.negative.as_ref().map_or(0, |b| b.bucket_counts.len());
                    RECORD_OVERHEAD + attributes_size(&p.attributes) + 8 * buckets
                })
                .sum(),
            Some(MetricData::Summary(points)) => points
                .iter()
                .map(|p| {
                    RECORD_OVERHEAD + attributes_size(&p.attributes) + 16 * p.quantile_values.len()
                })
                .sum(),
        };
        RECORD_OVERHEAD + self.name.len() + self.description.len() + self.unit.len() + points
    }
}

impl ByteSize for Span {
    fn byte_size(&self) -> usize {
        RECORD_OVERHEAD
            + self.name.len()
            + self.trace_state.len()
            + attributes_size(&self.attributes)
            + self
                .events
                .iter()
                .map(|e| RECORD_OVERHEAD + e.name.len() + attributes_size(&e.attributes))
                .sum::<usize>()
            + self
                .links
                .iter()
                .map(|l| RECORD_OVERHEAD + attributes_size(&l.attributes))
                .sum::<usize>()
    }
}

impl ByteSize for Events {
    fn byte_size(&self) -> usize {
        match self {
            Events::Logs(v) => v.iter().map(ByteSize::byte_size).sum(),
            Events::Metrics(v) => v.iter().map(ByteSize::byte_size).sum(),
            Events::Spans(v) => v.iter().map(ByteSize::byte_size).sum(),
        }
    }
}
