//! Remote write 1.0's protobuf (`prometheus.WriteRequest`), written by hand on the hot path:
//! a series is appended straight from its series key and samples, its length worked out first,
//! with no message objects in between. The prost types below are the same messages for the
//! rare paths that read a request back (dead letters, a series resent without its oldest
//! sample) and for tests.

use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};

use sextant_pipeline::flow::event::prometheus::{push_key_pair, FamilyType};

/// `WriteRequest.metadata`.
const METADATA: u32 = 3;

/// A Prometheus label, as remote write carries it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricMetadata {
    /// 0 unknown, 1 counter, 2 gauge, 3 histogram, 4 gauge histogram, 5 summary.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    #[prost(string, tag = "4")]
    pub help: String,
    #[prost(string, tag = "5")]
    pub unit: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// Metadata's type number for a family type.
pub fn metadata_type(kind: FamilyType) -> i32 {
    match kind {
        FamilyType::Counter => 1,
        FamilyType::Gauge => 2,
        FamilyType::Histogram => 3,
        FamilyType::Summary => 5,
    }
}

fn string_field_len(tag_and_len: usize, text: usize) -> usize {
    tag_and_len + encoded_len_varint(text as u64) + text
}

/// A sample's message body: the double (tag 1, fixed 64) and the timestamp (tag 2, varint).
fn sample_len(timestamp: i64) -> usize {
    1 + 8 + 1 + encoded_len_varint(timestamp as u64)
}

/// A varint into a `Vec` (prost's takes any buffer and is slower at this).
#[inline]
fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn bytes_field_len(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

/// Appends the `TimeSeries.labels` of a series, from its pairs sorted by name (as Prometheus
/// requires): what [`push_series`] copies for each of its entries.
pub fn push_labels<'a>(out: &mut Vec<u8>, pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>) {
    for (name, value) in pairs {
        out.push(0x0a); // Label, field 1, length-delimited
        varint(
            out,
            (bytes_field_len(name.len()) + bytes_field_len(value.len())) as u64,
        );
        push_bytes(out, 0x0a, name);
        push_bytes(out, 0x12, value);
    }
}

/// Appends one `WriteRequest.timeseries` entry: `labels` (from [`push_labels`]) and `samples`
/// (in time order).
pub fn push_series(out: &mut Vec<u8>, labels: &[u8], samples: &[(i64, f64)]) {
    let mut len = labels.len();
    for &(t, _) in samples {
        len += bytes_field_len(sample_len(t));
    }
    out.reserve(len + 6);
    out.push(0x0a); // WriteRequest.timeseries, field 1, length-delimited
    varint(out, len as u64);
    out.extend_from_slice(labels);
    for &(t, v) in samples {
        out.push(0x12); // Sample, field 2, length-delimited
        out.push(sample_len(t) as u8);
        out.push(0x09); // value, field 1, 64-bit
        out.extend_from_slice(&v.to_bits().to_le_bytes());
        out.push(0x10); // timestamp, field 2, varint
        varint(out, t as u64);
    }
}

/// A length-delimited field whose key byte is `key`.
fn push_bytes(out: &mut Vec<u8>, key: u8, bytes: &[u8]) {
    out.push(key);
    varint(out, bytes.len() as u64);
    out.extend(bytes.iter().copied());
}

fn push_string(out: &mut Vec<u8>, tag: u32, text: &str) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(text.len() as u64, out);
    out.extend_from_slice(text.as_bytes());
}

/// Appends one `WriteRequest.metadata` entry.
pub fn push_metadata(out: &mut Vec<u8>, kind: FamilyType, family: &str, help: &str, unit: &str) {
    let kind = metadata_type(kind);
    let mut len = 1 + encoded_len_varint(kind as u64);
    len += string_field_len(1, family.len());
    if !help.is_empty() {
        len += string_field_len(1, help.len());
    }
    if !unit.is_empty() {
        len += string_field_len(1, unit.len());
    }
    encode_key(METADATA, WireType::LengthDelimited, out);
    encode_varint(len as u64, out);
    encode_key(1, WireType::Varint, out);
    encode_varint(kind as u64, out);
    push_string(out, 2, family);
    if !help.is_empty() {
        push_string(out, 4, help);
    }
    if !unit.is_empty() {
        push_string(out, 5, unit);
    }
}

/// A request body (snappy block format) read back.
pub fn decode_body(body: &[u8]) -> Option<WriteRequest> {
    let proto = snap::raw::Decoder::new().decompress_vec(body).ok()?;
    prost::Message::decode(&proto[..]).ok()
}

/// The series key of a decoded series' labels (for tests and re-encoding).
pub fn key_of(labels: &[Label]) -> Vec<u8> {
    let mut key = Vec::new();
    for l in labels {
        push_key_pair(&mut key, &l.name, &l.value);
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn hand_written_series_and_metadata_decode_as_the_protobuf_messages() {
        let labels = [
            ("__name__", "http_requests_total"),
            ("code", "200"),
            ("job", "api"),
        ];
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let samples = [
            (1_700_000_000_000, 1.5),
            (1_700_000_015_000, stale),
            (1_700_000_030_000, 2.0),
        ];
        let mut out = Vec::new();
        let mut block = Vec::new();
        push_labels(
            &mut block,
            labels.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
        );
        push_series(&mut out, &block, &samples);
        push_series(&mut out, &block, &samples[..1]);
        push_metadata(
            &mut out,
            FamilyType::Counter,
            "http_requests_total",
            "Requests.",
            "",
        );
        let decoded = WriteRequest::decode(&out[..]).unwrap();
        assert_eq!(decoded.timeseries.len(), 2);
        let first = &decoded.timeseries[0];
        let names: Vec<(&str, &str)> = first
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(names, labels);
        assert_eq!(first.samples.len(), 3);
        assert_eq!(first.samples[0].timestamp, 1_700_000_000_000);
        assert_eq!(first.samples[0].value, 1.5);
        assert_eq!(
            first.samples[1].value.to_bits(),
            stale.to_bits(),
            "the stale marker's bits are kept"
        );
        assert_eq!(first.samples[2].value, 2.0);
        assert_eq!(decoded.timeseries[1].samples.len(), 1);
        assert_eq!(
            decoded.metadata,
            vec![MetricMetadata {
                r#type: 1,
                metric_family_name: "http_requests_total".into(),
                help: "Requests.".into(),
                unit: String::new(),
            }]
        );
        // And byte for byte what prost writes for the same messages.
        assert_eq!(decoded.encode_to_vec(), out);
    }
}
