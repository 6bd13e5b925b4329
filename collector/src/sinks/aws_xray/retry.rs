//! X-Ray's own error codes on top of the AWS-wide rules: `ThrottledException` is throttling;
//! a request with unprocessed documents is retried with just those; everything else as in
//! [`crate::sinks::aws::retry`].

use sextant_pipeline::sink::request::Retry;

use crate::sinks::aws::{retry as aws_retry, AwsError};

/// The code Sextant gives a request that X-Ray accepted with some documents unprocessed.
pub const UNPROCESSED: &str = "UnprocessedTraceSegments";

pub fn classify(e: &AwsError) -> Retry {
    match e.code.as_deref() {
        Some(UNPROCESSED) => Retry::Transient {
            kind: "unprocessed_segments",
            after: None,
        },
        Some("ThrottledException") => Retry::Transient {
            kind: "throttled",
            after: None,
        },
        _ => aws_retry::classify(e),
    }
}
