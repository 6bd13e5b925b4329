//! Which OpenSearch failures are worth retrying. A request: connection failures, timeouts, 429
//! and 5xx (honouring `Retry-After`), an answer that does not parse, and items still to retry
//! are retried; other 4xx refuse the request. An item of a bulk answer: 2xx, and 409 (a
//! `create` of a document already there: a resend) are delivered; 429 and 5xx are sent again
//! alone; anything else is refused — `mapping` for mapping and parse errors, `refused`
//! otherwise — and dead-lettered with OpenSearch's reason.

use std::time::Duration;

use sextant_pipeline::sink::request::Retry;

#[derive(Debug, thiserror::Error)]
pub enum OpenSearchError {
    #[error("http {status}: {body}")]
    Status {
        status: u16,
        retry_after: Option<Duration>,
        body: String,
    },
    #[error("transport: {0}")]
    Transport(String),
    #[error("auth: {0}")]
    Auth(String),
    /// A 2xx whose body is not a bulk answer.
    #[error("unreadable bulk answer: {0}")]
    Answer(String),
    /// Items OpenSearch asked to send again (429, 5xx), and its first reason.
    #[error("{count} documents to send again: {reason}")]
    ItemsToRetry { count: usize, reason: String },
    /// Installing the index template or ISM policy failed.
    #[error("installing {what}: {error}")]
    Install {
        what: String,
        error: Box<OpenSearchError>,
    },
}

/// What one item's answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemOutcome {
    Delivered,
    Retry,
    Refused(&'static str),
}

pub fn item_outcome(status: u16, error_type: &str) -> ItemOutcome {
    match status {
        200..=299 | 409 => ItemOutcome::Delivered,
        429 | 500..=599 => ItemOutcome::Retry,
        _ if error_type.contains("mapper_parsing")
            || error_type.contains("parse")
            || error_type.contains("illegal_argument") =>
        {
            ItemOutcome::Refused("mapping")
        }
        _ => ItemOutcome::Refused("refused"),
    }
}

pub fn classify(e: &OpenSearchError) -> Retry {
    match e {
        OpenSearchError::Transport(_) => Retry::Transient {
            kind: "transport",
            after: None,
        },
        OpenSearchError::Auth(_) => Retry::Transient {
            kind: "credentials",
            after: None,
        },
        OpenSearchError::Answer(_) => Retry::Transient {
            kind: "bad_answer",
            after: None,
        },
        OpenSearchError::ItemsToRetry { .. } => Retry::Transient {
            kind: "items_retry",
            after: None,
        },
        OpenSearchError::Install { error, .. } => classify(error),
        OpenSearchError::Status {
            status,
            retry_after,
            ..
        } => Retry::for_http_status(*status, *retry_after),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_are_resends_throttled_items_retry_and_mapping_errors_are_refused() {
        assert_eq!(item_outcome(201, ""), ItemOutcome::Delivered);
        assert_eq!(
            item_outcome(409, "version_conflict_engine_exception"),
            ItemOutcome::Delivered
        );
        assert_eq!(
            item_outcome(429, "es_rejected_execution_exception"),
            ItemOutcome::Retry
        );
        assert_eq!(
            item_outcome(503, "unavailable_shards_exception"),
            ItemOutcome::Retry
        );
        assert_eq!(
            item_outcome(400, "mapper_parsing_exception"),
            ItemOutcome::Refused("mapping")
        );
        assert_eq!(
            item_outcome(403, "cluster_block_exception"),
            ItemOutcome::Refused("refused")
        );
        assert!(matches!(
            classify(&OpenSearchError::Status {
                status: 413,
                retry_after: None,
                body: String::new()
            }),
            Retry::Permanent { .. }
        ));
    }
}
