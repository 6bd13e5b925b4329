//! The two encodings of an OTLP/HTTP body, chosen by its `Content-Type` and answered in kind:
//! binary protobuf (`application/x-protobuf`, also what gRPC carries) and the spec's JSON
//! mapping (`application/json`: lowerCamelCase keys, trace and span ids as hex, enums as
//! integers, 64-bit integers as strings or numbers, unknown keys ignored). Both decode to the
//! same `Export*ServiceRequest` messages, so everything after decoding is one path.
//!
//! An error answer over OTLP/HTTP carries a `google.rpc.Status` in the request's encoding, as
//! the spec asks; SDKs log its message.

use opentelemetry_proto::tonic::collector::{
    logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse},
    metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse},
    trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse},
};
use prost::Message;

use crate::flow::event::{otlp, Events, Signal};
use crate::net::inflate::Chunks;

/// How an OTLP body is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    Protobuf,
    Json,
}

/// A body that does not decode: the discard reason it is counted under, and why.
pub(super) struct Malformed {
    pub reason: &'static str,
    pub detail: String,
}

/// A decoded request: its events and how many records were skipped as malformed.
pub(super) type Decoded = Result<(Events, u64), Malformed>;

impl Format {
    /// The format a `Content-Type` names (parameters such as `charset` aside), if one of ours.
    pub fn of_content_type(content_type: &str) -> Option<Self> {
        let mime = content_type.split(';').next().unwrap_or("").trim();
        if mime.eq_ignore_ascii_case("application/x-protobuf") {
            Some(Self::Protobuf)
        } else if mime.eq_ignore_ascii_case("application/json") {
            Some(Self::Json)
        } else {
            None
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }

    /// Decodes the body of an Export request for `signal`.
    pub fn decode(self, signal: Signal, body: Chunks) -> Decoded {
        match signal {
            Signal::Logs => self.request::<ExportLogsServiceRequest>(body).map(|r| {
                let d = otlp::logs_from_proto(r);
                (Events::Logs(d.records), d.rejected)
            }),
            Signal::Metrics => self.request::<ExportMetricsServiceRequest>(body).map(|r| {
                let d = otlp::metrics_from_proto(r);
                (Events::Metrics(d.records), d.rejected)
            }),
            Signal::Traces => self.request::<ExportTraceServiceRequest>(body).map(|r| {
                let d = otlp::spans_from_proto(r);
                (Events::Spans(d.records), d.rejected)
            }),
        }
    }

    fn request<T>(self, body: Chunks) -> Result<T, Malformed>
    where
        T: Message + Default + serde::de::DeserializeOwned,
    {
        match self {
            Self::Protobuf => T::decode(body).map_err(|e| Malformed {
                reason: "bad_protobuf",
                detail: e.to_string(),
            }),
            Self::Json => {
                // serde_json parses a slice several times faster than a reader: an inflated
                // body in several chunks is joined first (its budget was paid as it inflated;
                // the copy lives only while it is parsed).
                use bytes::Buf;
                let mut body = body;
                let parsed = if body.chunk().len() == body.remaining() {
                    serde_json::from_slice(body.chunk())
                } else {
                    let joined = body.copy_to_bytes(body.remaining());
                    serde_json::from_slice(&joined)
                };
                parsed.map_err(|e| Malformed {
                    reason: "bad_json",
                    detail: e.to_string(),
                })
            }
        }
    }

    /// The Export response for `signal`, with a partial success when `rejected` records were
    /// skipped (`message` says why).
    pub fn response(self, signal: Signal, rejected: u64, message: String) -> Vec<u8> {
        use opentelemetry_proto::tonic::collector::{
            logs::v1::ExportLogsPartialSuccess, metrics::v1::ExportMetricsPartialSuccess,
            trace::v1::ExportTracePartialSuccess,
        };
        let rejected_count = i64::try_from(rejected).unwrap_or(i64::MAX);
        let partial = rejected > 0;
        match signal {
            Signal::Logs => self.encode(&ExportLogsServiceResponse {
                partial_success: partial.then_some(ExportLogsPartialSuccess {
                    rejected_log_records: rejected_count,
                    error_message: message,
                }),
            }),
            Signal::Metrics => self.encode(&ExportMetricsServiceResponse {
                partial_success: partial.then_some(ExportMetricsPartialSuccess {
                    rejected_data_points: rejected_count,
                    error_message: message,
                }),
            }),
            Signal::Traces => self.encode(&ExportTraceServiceResponse {
                partial_success: partial.then_some(ExportTracePartialSuccess {
                    rejected_spans: rejected_count,
                    error_message: message,
                }),
            }),
        }
    }

    /// A `google.rpc.Status` with `code` (a gRPC code) and `message`, for an error answer.
    pub fn status(self, code: u32, message: &str) -> Vec<u8> {
        match self {
            Self::Protobuf => crate::net::grpc::Status::new(code, message).to_rpc_status(),
            Self::Json => serde_json::to_vec(&serde_json::json!({
                "code": code,
                "message": message,
            }))
            .unwrap_or_default(),
        }
    }

    fn encode<T: Message + serde::Serialize>(self, message: &T) -> Vec<u8> {
        match self {
            Self::Protobuf => message.encode_to_vec(),
            // Serializing these generated types cannot fail: no maps with non-string keys.
            Self::Json => serde_json::to_vec(message).unwrap_or_default(),
        }
    }
}
