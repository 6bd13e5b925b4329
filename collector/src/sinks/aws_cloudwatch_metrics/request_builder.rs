//! Pure: datums in, PutMetricData requests out, each within CloudWatch's limits — at most 1000
//! datums and at most 1 MB of form body (each datum already holds at most 150 values and 30
//! dimensions, see [`super::convert`]).
//!
//! The body size is estimated from above: every field counted at its longest form (four-digit
//! member indexes, 25 characters per number, each byte that form encoding escapes as three), so
//! a request that the estimate admits is never over the limit, whatever the SDK writes.

use super::datum::{Datum, DatumValue};
use super::limits::{MAX_DATUMS_PER_REQUEST, MAX_REQUEST_BYTES};

/// `&MetricData.member.NNNN.` and `=`.
const MEMBER_PREFIX: usize = 1 + 23 + 1;
/// `Dimensions.member.NN.Value`: the longer of a dimension's two field names.
const DIMENSION_FIELD: usize = 26;
/// `Values.member.NNN` / `Counts.member.NNN`.
const VALUES_FIELD: usize = 17;
/// A number as the SDK writes it (`-1.2345678901234567e-100` and then some).
const NUMBER: usize = 25;
/// `Action=PutMetricData&Version=2010-08-01&Namespace=`.
const REQUEST_OVERHEAD: usize = 50;

/// The length of `s` in an `application/x-www-form-urlencoded` body.
pub fn form_encoded_len(s: &str) -> usize {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                1
            } else {
                3
            }
        })
        .sum()
}

/// An upper bound of a datum's bytes in a PutMetricData form body.
pub fn estimated_bytes(d: &Datum) -> usize {
    let field = |name_len: usize, value_len: usize| MEMBER_PREFIX + name_len + value_len;
    let mut n = field("MetricName".len(), form_encoded_len(&d.name))
        + field("Timestamp".len(), 30)
        + field("Unit".len(), form_encoded_len(d.unit))
        + field("StorageResolution".len(), 2);
    for (name, value) in &d.dimensions {
        n += field(DIMENSION_FIELD, form_encoded_len(name))
            + field(DIMENSION_FIELD, form_encoded_len(value));
    }
    n += match &d.value {
        DatumValue::Single(_) => field("Value".len(), NUMBER),
        DatumValue::Distribution { values, counts, .. } => {
            (values.len() + counts.len()) * field(VALUES_FIELD, NUMBER)
        }
        DatumValue::Statistics { .. } => 4 * field("StatisticValues.SampleCount".len(), NUMBER),
    };
    n
}

/// One PutMetricData call.
#[derive(Clone, Debug, PartialEq)]
pub struct PutRequest {
    pub datums: Vec<Datum>,
    /// The estimated body size.
    pub bytes: usize,
}

impl sextant_pipeline::sink::sender::Request for PutRequest {
    fn events(&self) -> usize {
        self.datums.len()
    }
    fn bytes(&self) -> usize {
        self.bytes
    }
}

/// Splits `datums` into requests, keeping their order.
pub fn build(namespace: &str, datums: Vec<Datum>) -> Vec<PutRequest> {
    let overhead = REQUEST_OVERHEAD + form_encoded_len(namespace);
    let mut requests = Vec::new();
    let mut current = PutRequest {
        datums: Vec::new(),
        bytes: overhead,
    };
    for d in datums {
        let size = estimated_bytes(&d);
        if !current.datums.is_empty()
            && (current.datums.len() == MAX_DATUMS_PER_REQUEST
                || current.bytes + size > MAX_REQUEST_BYTES)
        {
            requests.push(std::mem::replace(
                &mut current,
                PutRequest {
                    datums: Vec::new(),
                    bytes: overhead,
                },
            ));
        }
        current.bytes += size;
        current.datums.push(d);
    }
    if !current.datums.is_empty() {
        requests.push(current);
    }
    requests
}
