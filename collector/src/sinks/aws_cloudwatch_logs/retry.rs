//! CloudWatch Logs' own error codes on top of the AWS-wide rules: a missing group or stream is
//! retried (the service creates it again on the next attempt); everything else as in
//! [`crate::sinks::aws::retry`].

use sextant_pipeline::sink::request::Retry;

use crate::sinks::aws::{retry as aws_retry, AwsError};

pub fn classify(e: &AwsError) -> Retry {
    match e.code.as_deref() {
        Some("ResourceNotFoundException") => Retry::Transient {
            kind: "resource_not_found",
            after: None,
        },
        Some("OperationAbortedException") => Retry::Transient {
            kind: "operation_aborted",
            after: None,
        },
        _ => aws_retry::classify(e),
    }
}
