//! SNS's own error codes on top of the AWS-wide rules: `Throttled` and `KMSThrottling` are
//! throttling; a topic that does not exist, a refused authorization and an invalid message are
//! permanent (dead-lettered); the rest as in [`crate::sinks::aws::retry`].

use sextant_pipeline::sink::request::Retry;

use crate::sinks::aws::{retry as aws_retry, AwsError};

pub fn classify(e: &AwsError) -> Retry {
    match e.code.as_deref() {
        Some("Throttled" | "KMSThrottling") => Retry::Transient {
            kind: "throttled",
            after: None,
        },
        Some("NotFound") => Retry::Permanent {
            kind: "topic_not_found",
        },
        Some("AuthorizationError") => Retry::Permanent {
            kind: "authorization",
        },
        Some("InvalidParameter" | "InvalidParameterValue" | "ValidationException") => {
            Retry::Permanent { kind: "invalid" }
        }
        _ => aws_retry::classify(e),
    }
}
