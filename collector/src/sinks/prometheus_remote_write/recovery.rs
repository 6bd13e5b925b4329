//! What a request refused for out-of-order (or duplicate, too-old) samples still delivers.
//!
//! Prometheus refuses a whole request at the first sample older than its series' newest, and
//! writes none of it. That happens after a resend — a collector killed before its
//! acknowledgement, a batch retried after one of its shards got through — and such a request
//! usually also holds samples the receiver has never seen. So the request is split in halves,
//! each sent alone, down to single series; a single series refused is sent again without its
//! oldest sample until the rest is accepted or nothing is left. The samples left out are the
//! ones the receiver has (or will never take); they are returned as refusals (`out_of_order`),
//! counted and dead-lettered, and the batch counts as delivered. A request refused for another
//! reason on the way is refused as a whole (`refused`); a transient failure hands the whole
//! request back to be retried (what got through is accepted again as duplicates or split off
//! again).

use std::ops::Range;

use prost::Message;

use sextant_pipeline::sink::sender::Refusal;

use super::request_builder::{compress, RemoteWrite};
use super::retry::{classify, RemoteWriteError};
use super::service::RemoteWriteService;
use super::wire::{decode_body, TimeSeries, WriteRequest};
use sextant_pipeline::sink::request::Retry;

/// Sends what of `request` the receiver will still take; see the module doc.
pub async fn deliver_the_rest(
    service: &RemoteWriteService,
    request: &RemoteWrite,
) -> Result<Vec<Refusal>, RemoteWriteError> {
    let Some(decoded) = decode_body(&request.body) else {
        // Our own encoding; unreachable unless memory is corrupt. Refuse it whole.
        return Ok(vec![Refusal {
            reason: "refused",
            events: 0..request.samples,
            detail: "the request could not be read back to split it".into(),
        }]);
    };
    let mut first_sample = Vec::with_capacity(decoded.timeseries.len() + 1);
    let mut at = 0;
    for ts in &decoded.timeseries {
        first_sample.push(at);
        at += ts.samples.len();
    }
    first_sample.push(at);
    let samples_of = |series: &Range<usize>| first_sample[series.start]..first_sample[series.end];

    let mut refusals = Vec::new();
    let mut pending: Vec<Range<usize>> = Vec::new();
    pending.push(0..decoded.timeseries.len());
    while let Some(series) = pending.pop() {
        if series.is_empty() {
            continue;
        }
        let part = &decoded.timeseries[series.clone()];
        match service.post(body(part, &decoded)).await {
            Ok(()) => {}
            Err(e) if e.is_out_of_order() && series.len() > 1 => {
                let mid = series.start + series.len() / 2;
                pending.push(mid..series.end);
                pending.push(series.start..mid);
            }
            Err(e) if e.is_out_of_order() => {
                let start = samples_of(&series).start;
                let left_out = without_oldest(service, &part[0], &decoded).await?;
                refusals.push(Refusal {
                    reason: "out_of_order",
                    events: start..start + left_out,
                    detail: e.to_string(),
                });
            }
            Err(e) => match classify(&e) {
                Retry::Transient { .. } => return Err(e),
                Retry::Permanent { .. } => refusals.push(Refusal {
                    reason: "refused",
                    events: samples_of(&series),
                    detail: e.to_string(),
                }),
            },
        }
    }
    Ok(refusals)
}

/// Sends `series` without its oldest samples, one more left out each time the receiver
/// refuses it as out of order; returns how many were left out.
async fn without_oldest(
    service: &RemoteWriteService,
    series: &TimeSeries,
    request: &WriteRequest,
) -> Result<usize, RemoteWriteError> {
    let mut rest = series.clone();
    let mut left_out = 0;
    while !rest.samples.is_empty() {
        rest.samples.remove(0);
        left_out += 1;
        if rest.samples.is_empty() {
            break;
        }
        match service
            .post(body(std::slice::from_ref(&rest), request))
            .await
        {
            Ok(()) => break,
            Err(e) if e.is_out_of_order() => continue,
            Err(e) => match classify(&e) {
                Retry::Transient { .. } => return Err(e),
                Retry::Permanent { .. } => return Ok(series.samples.len()),
            },
        }
    }
    Ok(left_out)
}

fn body(series: &[TimeSeries], request: &WriteRequest) -> bytes::Bytes {
    let part = WriteRequest {
        timeseries: series.to_vec(),
        metadata: request.metadata.clone(),
    };
    compress(&part.encode_to_vec()).unwrap_or_default()
}
