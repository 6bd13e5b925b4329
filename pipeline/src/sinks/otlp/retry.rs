//! Which OTLP/HTTP failures are worth retrying. Per the OTLP specification, 429, 502, 503 and 504
//! are retryable (honouring `Retry-After`), as are connection failures and timeouts; any other
//! status is a permanent refusal of that batch.

use std::time::Duration;

use crate::request::Retry;

#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("http {status}: {body}")]
    Status {
        status: u16,
        retry_after: Option<Duration>,
        body: String,
    },
    #[error("transport: {0}")]
    Transport(String),
}

pub fn classify(e: &OtlpError) -> Retry {
    match e {
        OtlpError::Transport(_) => Retry::Transient {
            kind: "transport",
            after: None,
        },
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

/// `Retry-After` as seconds (the HTTP-date form is rare for OTLP and is treated as absent).
pub fn parse_retry_after(v: Option<&http::HeaderValue>) -> Option<Duration> {
    v?.to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            parse_retry_after(Some(&http::HeaderValue::from_static("7"))),
            Some(Duration::from_secs(7))
        );
    }
}
