//! Which OTLP failures are worth retrying, per the OTLP specification. OTLP/HTTP: 429, 502, 503
//! and 504 (honouring `Retry-After`). OTLP/gRPC: CANCELLED, DEADLINE_EXCEEDED, ABORTED,
//! OUT_OF_RANGE, UNAVAILABLE and DATA_LOSS, and RESOURCE_EXHAUSTED only when the server sent a
//! `RetryInfo` (honouring its delay). Connection failures and timeouts are retried; anything else
//! is a permanent refusal of that batch.

use std::time::Duration;

use crate::sink::request::Retry;

#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("http {status}: {body}")]
    Status {
        status: u16,
        retry_after: Option<Duration>,
        body: String,
    },
    #[error("grpc status {}: {}", .0.code, .0.message)]
    Grpc(crate::net::grpc::Status),
    #[error("transport: {0}")]
    Transport(String),
}

pub fn classify(e: &OtlpError) -> Retry {
    match e {
        OtlpError::Transport(_) => Retry::Transient {
            kind: "transport",
            after: None,
        },
        OtlpError::Grpc(status) => classify_grpc(status),
        OtlpError::Status {
            status,
            retry_after,
            ..
        } => match status {
            429 => Retry::Transient {
                kind: "http_429",
                after: *retry_after,
            },
            502 => Retry::Transient {
                kind: "http_502",
                after: *retry_after,
            },
            503 => Retry::Transient {
                kind: "http_503",
                after: *retry_after,
            },
            504 => Retry::Transient {
                kind: "http_504",
                after: *retry_after,
            },
            _ => Retry::Permanent {
                kind: "http_permanent",
            },
        },
    }
}

fn classify_grpc(status: &crate::net::grpc::Status) -> Retry {
    use crate::net::grpc::code;
    let after = status.retry_delay;
    match status.code {
        code::CANCELLED
        | code::DEADLINE_EXCEEDED
        | code::ABORTED
        | code::OUT_OF_RANGE
        | code::DATA_LOSS => Retry::Transient {
            kind: "grpc_retryable",
            after,
        },
        code::UNAVAILABLE => Retry::Transient {
            kind: "grpc_unavailable",
            after,
        },
        code::RESOURCE_EXHAUSTED if after.is_some() => Retry::Transient {
            kind: "grpc_resource_exhausted",
            after,
        },
        _ => Retry::Permanent {
            kind: "grpc_permanent",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::client::parse_retry_after;

    #[test]
    fn spec_retryable_codes_retry_and_others_do_not() {
        for s in [429, 502, 503, 504] {
            assert!(matches!(
                classify(&OtlpError::Status {
                    status: s,
                    retry_after: None,
                    body: String::new()
                }),
                Retry::Transient { .. }
            ));
        }
        for s in [400, 401, 404, 413, 500] {
            assert!(matches!(
                classify(&OtlpError::Status {
                    status: s,
                    retry_after: None,
                    body: String::new()
                }),
                Retry::Permanent { .. }
            ));
        }
        use crate::net::grpc::{code, Status};
        let grpc = |s: Status| classify(&OtlpError::Grpc(s));
        assert_eq!(
            grpc(Status::new(code::UNAVAILABLE, "").with_retry_delay(Duration::from_secs(2))),
            Retry::Transient {
                kind: "grpc_unavailable",
                after: Some(Duration::from_secs(2))
            }
        );
        assert!(matches!(
            grpc(Status::new(code::RESOURCE_EXHAUSTED, "")),
            Retry::Permanent { .. }
        ));
        assert!(matches!(
            grpc(
                Status::new(code::RESOURCE_EXHAUSTED, "").with_retry_delay(Duration::from_secs(1))
            ),
            Retry::Transient { .. }
        ));
        assert!(matches!(
            grpc(Status::new(code::INVALID_ARGUMENT, "")),
            Retry::Permanent { .. }
        ));
        assert_eq!(
            parse_retry_after(Some(&http::HeaderValue::from_static("7"))),
            Some(Duration::from_secs(7))
        );
    }
}
