//! Which remote-write failures are worth retrying, as Prometheus's own sender decides: 5xx and
//! 429 (honouring `Retry-After`), connection failures and timeouts are retried; other 4xx are
//! refusals of the request. A 400 that says a sample is out of order, too old, out of bounds or
//! a duplicate is told apart ([`is_out_of_order`]): after a resend those are samples the
//! receiver already has, and the sink sends the rest of the request without them.

use std::time::Duration;

use sextant_pipeline::sink::request::Retry;

#[derive(Debug, thiserror::Error)]
pub enum RemoteWriteError {
    #[error("http {status}: {body}")]
    Status {
        status: u16,
        retry_after: Option<Duration>,
        body: String,
    },
    #[error("transport: {0}")]
    Transport(String),
    /// Signing or credentials.
    #[error("auth: {0}")]
    Auth(String),
}

impl RemoteWriteError {
    /// A refusal of samples the receiver has newer (or the same) of.
    pub fn is_out_of_order(&self) -> bool {
        matches!(self, RemoteWriteError::Status { status: 400, body, .. } if is_out_of_order(body))
    }
}

/// Whether a 400's body names out-of-order, too-old, out-of-bounds or duplicate samples
/// (Prometheus, Cortex/Amazon Managed Prometheus and Mimir word them so).
pub fn is_out_of_order(body: &str) -> bool {
    let body = body.to_ascii_lowercase();
    [
        "out of order",
        "out-of-order",
        "out of bounds",
        "too old",
        "too-old",
        "duplicate sample",
        "duplicate-timestamp",
    ]
    .iter()
    .any(|needle| body.contains(needle))
}

pub fn classify(e: &RemoteWriteError) -> Retry {
    match e {
        RemoteWriteError::Transport(_) => Retry::Transient {
            kind: "transport",
            after: None,
        },
        RemoteWriteError::Auth(_) => Retry::Transient {
            kind: "credentials",
            after: None,
        },
        RemoteWriteError::Status {
            status,
            retry_after,
            ..
        } => Retry::for_http_status(*status, *retry_after),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, body: &str) -> RemoteWriteError {
        RemoteWriteError::Status {
            status,
            retry_after: Some(Duration::from_secs(3)),
            body: body.into(),
        }
    }

    #[test]
    fn server_errors_and_throttling_retry_with_the_hint_other_client_errors_do_not() {
        for s in [500, 502, 503, 504] {
            assert!(matches!(
                classify(&status(s, "")),
                Retry::Transient { after: Some(d), .. } if d == Duration::from_secs(3)
            ));
        }
        assert!(matches!(
            classify(&status(429, "")),
            Retry::Transient {
                kind: "http_429",
                ..
            }
        ));
        for s in [400, 401, 403, 404, 413] {
            assert!(matches!(classify(&status(s, "")), Retry::Permanent { .. }));
        }
        assert!(matches!(
            classify(&RemoteWriteError::Transport("reset".into())),
            Retry::Transient { .. }
        ));
    }

    #[test]
    fn the_receivers_words_for_samples_it_already_has_are_recognised() {
        // Prometheus 2.42's answers, and Mimir's.
        for body in [
            "out of order sample\n",
            "out of bounds\n",
            "duplicate sample for timestamp\n",
            "err-mimir-sample-out-of-order: the sample has been rejected",
            "err-mimir-sample-timestamp-too-old",
        ] {
            assert!(status(400, body).is_out_of_order(), "{body}");
        }
        assert!(!status(400, "invalid label name").is_out_of_order());
        assert!(!status(500, "out of order sample").is_out_of_order());
    }
}
