//! Source `otlp`: receives OTLP/HTTP (`/v1/logs`, `/v1/metrics`, `/v1/traces`, protobuf; gzip,
//! zstd or not) and answers each request only when the batch's delivery is known:
//! `200` (with a partial success naming malformed records that were skipped) once every sink
//! delivered it or refused it for good; `503` with `Retry-After` when it failed, or when
//! `ack_timeout` passed (the sender retries: at least once, with bounded duplicates). A request
//! that cannot be read or decoded is answered `400` and counted; it never stops the receiver.

pub mod config;
#[cfg(test)]
mod tests;

use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use prost::Message;

use opentelemetry_proto::tonic::collector::{
    logs::v1::{ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse},
    metrics::v1::{
        ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
    },
    trace::v1::{ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse},
};

use crate::ack::{Ack, AckStatus, Acks};
use crate::batch::Batch;
use crate::component::{BuildError, SourceContext, Task};
use crate::event::{otlp, Events};
use crate::fanout::Fanout;
use crate::http::{self, Body};
use crate::telemetry::{ComponentMetrics, LogLimiter};

pub use config::OtlpSourceConfig;

struct Receiver {
    config: OtlpSourceConfig,
    out: Fanout,
    metrics: ComponentMetrics,
    bad_input: LogLimiter,
}

pub fn build(config: &OtlpSourceConfig, cx: SourceContext) -> Result<Task, BuildError> {
    config.validate(&cx.name)?;
    let addr = config.address;
    let tls = match &config.tls {
        Some(tls) => {
            let server = tls
                .server_config()
                .map_err(|e| BuildError::invalid(&cx.name, format!("tls: {e}")))?;
            Some((
                tokio_rustls::TlsAcceptor::from(Arc::new(server)),
                cx.metrics.clone(),
            ))
        }
        None => None,
    };
    // Bind now so a port in use is a start-up error, not a silent dead receiver.
    let std_listener =
        std::net::TcpListener::bind(addr).map_err(|e| BuildError::io(&cx.name, e))?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| BuildError::io(&cx.name, e))?;
    let receiver = Arc::new(Receiver {
        config: config.clone(),
        out: cx.out,
        metrics: cx.metrics,
        bad_input: LogLimiter::default(),
    });
    let shutdown = cx.shutdown;
    Ok(Box::pin(async move {
        let listener = match tokio::net::TcpListener::from_std(std_listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "otlp receiver cannot use its socket");
                return;
            }
        };
        receiver.metrics.set_up(true);
        let scheme = if tls.is_some() {
            "OTLP/HTTPS"
        } else {
            "OTLP/HTTP"
        };
        tracing::info!(component = %receiver.metrics.name, %addr, "receiving {scheme}");
        let r = receiver.clone();
        http::serve_with(listener, tls, shutdown, move |req| {
            let r = r.clone();
            async move { r.handle(req).await }
        })
        .await;
        receiver.metrics.set_up(false);
    }))
}

enum Decoded {
    Logs(ExportLogsServiceRequest),
    Metrics(ExportMetricsServiceRequest),
    Traces(ExportTraceServiceRequest),
}

impl Receiver {
    fn bad_request(&self, reason: &'static str, detail: String) -> Response<Body> {
        self.metrics.discarded(reason, 1);
        if let Some(suppressed) = self.bad_input.allow() {
            tracing::warn!(component = %self.metrics.name, reason, %detail, suppressed, "refused an OTLP request");
        }
        http::response(400, "text/plain", format!("{reason}: {detail}"))
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().to_owned();
        if req.method() != Method::POST {
            return http::response(405, "text/plain", "use POST");
        }
        if crate::memory::over_soft_limit() {
            // The sender keeps the data and comes back; sinks drain meanwhile.
            self.metrics.error("memory_pressure");
            let mut r = http::response(503, "text/plain", "memory above its soft limit; retry");
            r.headers_mut().insert(
                hyper::header::RETRY_AFTER,
                hyper::header::HeaderValue::from_static("1"),
            );
            return r;
        }
        let ctype = req
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if !ctype.starts_with("application/x-protobuf") {
            return http::response(415, "text/plain", "only application/x-protobuf is accepted");
        }
        let encoding = req
            .headers()
            .get(hyper::header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("identity")
            .to_ascii_lowercase();
        let body = match http::read_body(req.into_body(), self.config.max_request_bytes.as_usize())
            .await
        {
            Ok(b) => b,
            Err(e) => {
                self.metrics.discarded("body_too_large_or_unreadable", 1);
                return http::response(413, "text/plain", e);
            }
        };
        self.metrics.received_bytes.inc_by(body.len() as u64);
        let body = match decompress(
            &encoding,
            body,
            self.config.max_decompressed_bytes.as_usize(),
        ) {
            Ok(b) => b,
            Err(e) => return self.bad_request("bad_encoding", e),
        };
        let decoded = match path.as_str() {
            "/v1/logs" => ExportLogsServiceRequest::decode(body).map(Decoded::Logs),
            "/v1/metrics" => ExportMetricsServiceRequest::decode(body).map(Decoded::Metrics),
            "/v1/traces" => ExportTraceServiceRequest::decode(body).map(Decoded::Traces),
            _ => return http::response(404, "text/plain", "unknown path"),
        };
        let decoded = match decoded {
            Ok(d) => d,
            Err(e) => return self.bad_request("bad_protobuf", e.to_string()),
        };
        let (events, rejected) = match decoded {
            Decoded::Logs(r) => {
                let d = otlp::logs_from_proto(r);
                (Events::Logs(d.records), d.rejected)
            }
            Decoded::Metrics(r) => {
                let d = otlp::metrics_from_proto(r);
                (Events::Metrics(d.records), d.rejected)
            }
            Decoded::Traces(r) => {
                let d = otlp::spans_from_proto(r);
                (Events::Spans(d.records), d.rejected)
            }
        };
        if rejected > 0 {
            self.metrics.discarded("malformed_id", rejected);
        }
        let signal = events.signal();
        let count = events.len();
        self.metrics.received_events.inc_by(count as u64);
        let status = if events.is_empty() {
            AckStatus::Delivered
        } else {
            let (share, rx) = Ack::channel();
            let batch = Batch::new(events, Acks::one(share));
            let waited = tokio::time::timeout(self.config.ack_timeout.0, async {
                self.out.send(batch).await;
                rx.await.unwrap_or(AckStatus::Failed)
            })
            .await;
            waited.unwrap_or(AckStatus::Failed)
        };
        match status {
            AckStatus::Delivered | AckStatus::Rejected => {
                self.metrics.sent_events.inc_by(count as u64);
                let message = if rejected > 0 {
                    format!("{rejected} records with malformed ids were skipped")
                } else {
                    String::new()
                };
                let body = match signal {
                    crate::event::Signal::Logs => ExportLogsServiceResponse {
                        partial_success: (rejected > 0).then_some(ExportLogsPartialSuccess {
                            rejected_log_records: rejected as i64,
                            error_message: message,
                        }),
                    }
                    .encode_to_vec(),
                    crate::event::Signal::Metrics => ExportMetricsServiceResponse {
                        partial_success: (rejected > 0).then_some(ExportMetricsPartialSuccess {
                            rejected_data_points: rejected as i64,
                            error_message: message,
                        }),
                    }
                    .encode_to_vec(),
                    crate::event::Signal::Traces => ExportTraceServiceResponse {
                        partial_success: (rejected > 0).then_some(ExportTracePartialSuccess {
                            rejected_spans: rejected as i64,
                            error_message: message,
                        }),
                    }
                    .encode_to_vec(),
                };
                http::response(200, "application/x-protobuf", body)
            }
            AckStatus::Failed => {
                self.metrics.failed_events.inc_by(count as u64);
                let mut r = http::response(503, "text/plain", "not delivered yet; retry");
                r.headers_mut().insert(
                    hyper::header::RETRY_AFTER,
                    hyper::header::HeaderValue::from_static("1"),
                );
                r
            }
        }
    }
}

/// Undoes `Content-Encoding`, refusing output above `limit` (a small body can expand hugely).
pub fn decompress(encoding: &str, body: Bytes, limit: usize) -> Result<Bytes, String> {
    match encoding {
        "identity" | "" => Ok(body),
        "gzip" => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| format!("gzip: {e}"))?;
            if out.len() > limit {
                return Err(format!("decompressed body exceeds {limit} bytes"));
            }
            Ok(Bytes::from(out))
        }
        "zstd" => {
            let mut out = Vec::new();
            zstd::stream::read::Decoder::new(&body[..])
                .map_err(|e| format!("zstd: {e}"))?
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| format!("zstd: {e}"))?;
            if out.len() > limit {
                return Err(format!("decompressed body exceeds {limit} bytes"));
            }
            Ok(Bytes::from(out))
        }
        other => Err(format!("unsupported content-encoding {other:?}")),
    }
}
