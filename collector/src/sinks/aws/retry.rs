//! What every AWS API means by its errors: throttling and 5xx are retried with backoff, expired
//! or missing credentials are retried slowly (the data waits while someone fixes IAM), timeouts
//! and connection failures are retried, validation errors are permanent. Sinks add their own
//! codes in their `retry.rs` and fall back to this.

use std::time::Duration;

use sextant_pipeline::sink::request::Retry;

use super::{AwsError, AwsErrorKind};

/// How long to wait before retrying a credentials problem.
const AUTH_RETRY_DELAY: Duration = Duration::from_secs(30);

const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
];

const AUTH_CODES: &[&str] = &[
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "AccessDenied",
    "AccessDeniedException",
    "SignatureDoesNotMatch",
    "MissingAuthenticationToken",
];

pub fn classify(e: &AwsError) -> Retry {
    match e.kind {
        AwsErrorKind::Timeout => {
            return Retry::Transient {
                kind: "timeout",
                after: None,
            }
        }
        AwsErrorKind::Dispatch => {
            return Retry::Transient {
                kind: "dispatch",
                after: None,
            }
        }
        AwsErrorKind::Construction => {
            return Retry::Permanent {
                kind: "construction",
            }
        }
        AwsErrorKind::Service => {}
    }
    let code = e.code.as_deref().unwrap_or("");
    if THROTTLING_CODES.contains(&code) || e.status == Some(429) {
        return Retry::Transient {
            kind: "throttled",
            after: None,
        };
    }
    if AUTH_CODES.contains(&code) || e.status == Some(403) {
        return Retry::Transient {
            kind: "auth",
            after: Some(AUTH_RETRY_DELAY),
        };
    }
    if code == "ServiceUnavailableException"
        || code == "InternalFailure"
        || e.status.is_some_and(|s| s >= 500)
    {
        return Retry::Transient {
            kind: "server_error",
            after: None,
        };
    }
    Retry::Permanent {
        kind: "invalid_request",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: &str, status: u16) -> AwsError {
        AwsError {
            kind: AwsErrorKind::Service,
            code: Some(code.into()),
            status: Some(status),
            message: String::new(),
        }
    }

    #[test]
    fn throttling_and_5xx_retry_validation_does_not() {
        assert!(matches!(
            classify(&err("ThrottlingException", 400)),
            Retry::Transient {
                kind: "throttled",
                ..
            }
        ));
        assert!(matches!(
            classify(&err("", 503)),
            Retry::Transient {
                kind: "server_error",
                ..
            }
        ));
        assert!(matches!(
            classify(&err("InvalidParameterException", 400)),
            Retry::Permanent { .. }
        ));
        assert!(matches!(
            classify(&err("AccessDeniedException", 400)),
            Retry::Transient {
                kind: "auth",
                after: Some(_)
            }
        ));
        let timeout = AwsError {
            kind: AwsErrorKind::Timeout,
            code: None,
            status: None,
            message: String::new(),
        };
        assert!(matches!(
            classify(&timeout),
            Retry::Transient {
                kind: "timeout",
                ..
            }
        ));
    }
}
