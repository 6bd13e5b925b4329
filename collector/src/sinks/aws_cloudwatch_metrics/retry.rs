//! CloudWatch's own error codes on top of the AWS-wide rules: its internal errors are retried;
//! invalid or missing parameters are permanent (the request builder should never produce them);
//! everything else as in [`crate::sinks::aws::retry`].

use sextant_pipeline::sink::request::Retry;

use crate::sinks::aws::{retry as aws_retry, AwsError};

pub fn classify(e: &AwsError) -> Retry {
    match e.code.as_deref() {
        Some("InternalServiceError" | "InternalServiceFault") => Retry::Transient {
            kind: "server_error",
            after: None,
        },
        Some("InvalidParameterValue" | "InvalidParameterCombination" | "MissingParameter") => {
            Retry::Permanent {
                kind: "invalid_request",
            }
        }
        _ => aws_retry::classify(e),
    }
}
