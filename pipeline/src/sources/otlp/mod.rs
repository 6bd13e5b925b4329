//! Source `otlp`: receives OTLP/HTTP (`/v1/logs`, `/v1/metrics`, `/v1/traces`, protobuf or
//! JSON, answered in kind, see [`encoding`]; gzip, zstd or not) and OTLP/gRPC (the three Export methods, on the same listener by HTTP/2 and
//! `application/grpc`, see [`crate::net::grpc`]) and answers each request only when the batch's delivery is known:
//! `200` (with a partial success counting the records with malformed ids that were skipped, the
//! rest delivered) once every sink
//! delivered it or refused it for good; `503` with `Retry-After` when it failed, or when
//! `ack_timeout` passed (the sender retries: at least once, with bounded duplicates). A request
//! that cannot be read or decoded is answered `400` and counted; it never stops the receiver.
//! Over gRPC the same answers are `OK`, `UNAVAILABLE` with a one-second `RetryInfo`, and
//! `INVALID_ARGUMENT` / `RESOURCE_EXHAUSTED` / `UNIMPLEMENTED`.
//!
//! On the agent, what a pod sends gets that pod's `k8s.*` resource attributes, found by the
//! sender's IP (see [`crate::sources::pod_association`]).
//!
//! Memory: requests being read and decoded hold a share of `max_in_flight_bytes` (their
//! declared length, and as much again up to the connection's read buffer, while read; then each
//! chunk of their decompressed output before it is
//! allocated, see [`crate::net::inflate`]) until their batch is in the sinks' queues; one that does
//! not fit, or any while memory is over its soft limit, is answered retry-later
//! (`sextant_component_errors_total{error_type="memory_pressure"}`). Twice that share counts
//! towards the memory estimate (the body and what it decodes to). A body over
//! `max_request_bytes` (by its `Content-Length`, before it is read) or over
//! `max_decompressed_bytes` once inflated, or one that could never fit `max_in_flight_bytes`,
//! is answered 413 (`RESOURCE_EXHAUSTED`); decompression runs off the async threads.

pub(crate) mod config;
mod encoding;
#[cfg(test)]
mod json_tests;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};

use crate::component::{BuildError, SourceContext, Task};
use crate::flow::ack::{Ack, AckStatus, Acks};
use crate::flow::batch::Batch;
use crate::flow::event::{Events, Signal};
use crate::flow::fanout::Fanout;
use crate::net::grpc;
use crate::net::http::{self, Body};
use crate::net::inflate::{self, Chunks, Encoding, InflateError};
use crate::sources::pod_association::{associate, peer_pods, PeerPods};
use crate::telemetry::{ComponentMetrics, LogLimiter};

pub use config::OtlpSourceConfig;
use encoding::{Decoded, Format};

struct Receiver {
    config: OtlpSourceConfig,
    /// Bytes of requests being read and decoded (see the module doc).
    in_flight: Arc<tokio::sync::Semaphore>,
    /// Inflations running at once: one per core. They are CPU-bound, so more would not go
    /// faster; each would only add a thread and a decoder's memory.
    inflating: tokio::sync::Semaphore,
    out: Fanout,
    metrics: ComponentMetrics,
    bad_input: LogLimiter,
    /// This node's pods, to add a sender's to its resources (agent only).
    pods: Option<Arc<dyn PeerPods>>,
}

pub fn build(config: &OtlpSourceConfig, cx: SourceContext) -> Result<Task, BuildError> {
    config.validate(&cx.name)?;
    let pods = peer_pods(cx.pods.as_ref(), &config.pod_association, &cx.metrics)?;
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
    let mut listeners =
        vec![crate::net::http::bind_now(config.address).map_err(|e| BuildError::io(&cx.name, e))?];
    if let Some(grpc_address) = config.grpc_address {
        listeners.push(
            crate::net::http::bind_now(grpc_address).map_err(|e| BuildError::io(&cx.name, e))?,
        );
    }
    let receiver = Arc::new(Receiver {
        config: config.clone(),
        in_flight: Arc::new(tokio::sync::Semaphore::new(permits(
            config.max_in_flight_bytes.as_usize(),
        ))),
        inflating: tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
        ),
        out: cx.out,
        metrics: cx.metrics,
        bad_input: LogLimiter::default(),
        pods,
    });
    let shutdown = cx.shutdown;
    Ok(Box::pin(async move {
        let mut serving = Vec::new();
        for std_listener in listeners {
            let listener = match tokio::net::TcpListener::from_std(std_listener) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(error = %e, "otlp receiver cannot use its socket");
                    return;
                }
            };
            let addr = listener.local_addr().ok();
            let scheme = if tls.is_some() {
                "OTLP/HTTPS and OTLP/gRPC with TLS"
            } else {
                "OTLP/HTTP and OTLP/gRPC"
            };
            tracing::info!(component = %receiver.metrics.name, ?addr, "receiving {scheme}");
            let r = receiver.clone();
            serving.push(tokio::spawn(http::serve_with(
                listener,
                tls.clone(),
                shutdown.clone(),
                move |req| {
                    let r = r.clone();
                    async move { r.handle(req).await }
                },
            )));
        }
        receiver.metrics.set_up(true);
        for s in serving {
            let _ = s.await;
        }
        receiver.metrics.set_up(false);
    }))
}

/// A request's share of the in-flight bytes, and its count in the memory estimate.
struct InFlight {
    permit: tokio::sync::OwnedSemaphorePermit,
    held: crate::memory::Held,
}

impl InFlight {
    /// A share of `bytes` from `semaphore`, if free now.
    fn try_take(semaphore: &Arc<tokio::sync::Semaphore>, bytes: usize) -> Option<Self> {
        let n = u32::try_from(permits(bytes)).unwrap_or(u32::MAX);
        let permit = semaphore.clone().try_acquire_many_owned(n).ok()?;
        Some(InFlight {
            permit,
            held: crate::memory::Held::new(2 * bytes),
        })
    }

    fn merge(&mut self, more: Self) {
        self.permit.merge(more.permit);
        self.held.merge(more.held);
    }

    fn bytes(&self) -> usize {
        self.permit.num_permits()
    }
}

/// The most a connection's read buffer grows to while a body streams through it (hyper's
/// default largest read buffer).
const CONNECTION_READ_BUFFER_BYTES: usize = 400 * 1024;
/// Bodies up to this size are decoded on the async thread that read them; larger ones (and
/// every compressed one) on a blocking thread.
const DECODE_INLINE_BYTES: usize = 256 * 1024;
/// After inflating this much, the blocking thread gives its freed memory back to the OS.
const GIVE_BACK_AFTER_BYTES: usize = 4 * 1024 * 1024;

/// Decodes one OTLP/HTTP body as the receiver does, without its budgets: inflation by
/// `content_encoding` up to `limit` bytes, then protobuf or JSON by `content_type`. The events
/// and how many records were skipped for malformed ids, or why the body is refused. For fuzzing
/// and benches.
pub fn decode_body(
    signal: Signal,
    content_type: &str,
    content_encoding: &str,
    body: &[u8],
    limit: usize,
) -> Result<(Events, u64), String> {
    let format = Format::of_content_type(content_type).ok_or("unsupported content type")?;
    let chunks = match Encoding::parse(content_encoding).map_err(|e| e.to_string())? {
        Some(encoding) => {
            inflate::inflate(encoding, body, limit, &mut |_| true).map_err(|e| e.to_string())?
        }
        None => Chunks::whole(Bytes::copy_from_slice(body)),
    };
    format
        .decode(signal, chunks)
        .map_err(|e| format!("{}: {}", e.reason, e.detail))
}

/// Semaphore permits for `bytes` (the config keeps them under 4 GiB).
fn permits(bytes: usize) -> usize {
    bytes.min(u32::MAX as usize)
}

/// The wire protocol of a request: OTLP/HTTP, or OTLP/gRPC (HTTP/2, `application/grpc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wire {
    Http,
    Grpc,
}

/// What the receiver answers, before it is put on either wire.
enum Answer {
    /// Delivered, or refused for good by the sinks: the encoded Export*ServiceResponse.
    Accepted(Vec<u8>),
    /// Not delivered yet, or memory pressure: the sender keeps the data and retries after the
    /// hint (1 s with an empty backlog, growing to 10 s as the sinks' queues fill).
    RetryLater(&'static str, std::time::Duration),
    /// The request itself is bad; retrying it will not help.
    Refused {
        http: u16,
        grpc: u32,
        message: String,
    },
}

fn refused(http: u16, grpc: u32, message: impl Into<String>) -> Answer {
    Answer::Refused {
        http,
        grpc,
        message: message.into(),
    }
}

fn signal_of(wire: Wire, path: &str) -> Option<Signal> {
    [Signal::Logs, Signal::Metrics, Signal::Traces]
        .into_iter()
        .find(|s| match wire {
            Wire::Http => path == http_path(*s),
            Wire::Grpc => path == grpc::otlp_path(*s),
        })
}

fn http_path(signal: Signal) -> &'static str {
    match signal {
        Signal::Logs => "/v1/logs",
        Signal::Metrics => "/v1/metrics",
        Signal::Traces => "/v1/traces",
    }
}

fn header(req: &Request<Incoming>, name: impl hyper::header::AsHeaderName) -> &str {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

impl Receiver {
    /// Retry later, after a hint that grows with the sinks' backlog: 1 s with empty queues, up
    /// to 10 s with a full one, so a fleet of senders backs off while the collector catches up.
    fn retry_later(&self, message: &'static str) -> Answer {
        let seconds = 1 + (self.out.backlog() * 9.0).round() as u64;
        Answer::RetryLater(message, std::time::Duration::from_secs(seconds))
    }

    fn bad_request(&self, reason: &'static str, detail: String) -> Answer {
        self.metrics.discarded(reason, 1);
        if let Some(suppressed) = self.bad_input.allow() {
            tracing::warn!(component = %self.metrics.name, reason, %detail, suppressed, "refused an OTLP request");
        }
        refused(
            400,
            grpc::code::INVALID_ARGUMENT,
            format!("{reason}: {detail}"),
        )
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let content_type = header(&req, hyper::header::CONTENT_TYPE);
        let (wire, format) = if content_type.starts_with(grpc::CONTENT_TYPE) {
            (Wire::Grpc, Some(Format::Protobuf))
        } else {
            (Wire::Http, Format::of_content_type(content_type))
        };
        let answer = self.answer(wire, format, req).await;
        match wire {
            Wire::Http => http_answer(answer, format),
            Wire::Grpc => grpc_answer(answer),
        }
    }

    /// What to answer a request, read as `format` (`None`: a Content-Type we do not take).
    async fn answer(&self, wire: Wire, format: Option<Format>, req: Request<Incoming>) -> Answer {
        if req.method() != Method::POST {
            return refused(405, grpc::code::UNIMPLEMENTED, "use POST");
        }
        let Some(signal) = signal_of(wire, req.uri().path()) else {
            return refused(404, grpc::code::UNIMPLEMENTED, "unknown path");
        };
        if !self.out.accepts(signal) {
            // Configured out, as an OpenTelemetry Collector without that pipeline would be.
            self.metrics.discarded("no_sink_for_signal", 1);
            return refused(
                404,
                grpc::code::UNIMPLEMENTED,
                format!("no sink takes {} from this receiver", signal.as_str()),
            );
        }
        if crate::memory::over_soft_limit() {
            // The sender keeps the data and comes back; sinks drain meanwhile.
            self.metrics.error("memory_pressure");
            return self.retry_later("memory above its soft limit; retry");
        }
        // Held while the request is read: its declared length (the most a body may have when
        // it declares none). One that declares more than it may send is refused before its
        // body is read.
        let max_request = self.config.max_request_bytes.as_usize();
        let declared = match header(&req, hyper::header::CONTENT_LENGTH).parse::<usize>() {
            Ok(n) if n > max_request => {
                self.metrics.discarded("body_too_large_or_unreadable", 1);
                return refused(
                    413,
                    grpc::code::RESOURCE_EXHAUSTED,
                    format!("body of {n} bytes exceeds max_request_bytes ({max_request})"),
                );
            }
            Ok(n) => n,
            Err(_) => max_request,
        };
        // The body is read through the connection's buffer into its own: both count.
        let Some(held) = self.reserve(declared + declared.min(CONNECTION_READ_BUFFER_BYTES)) else {
            return self.retry_later("too many request bytes in flight; retry");
        };
        let Some(format) = format else {
            return refused(
                415,
                grpc::code::INVALID_ARGUMENT,
                "only application/x-protobuf and application/json are accepted",
            );
        };
        let peer = http::peer_of(&req);
        let encoding = match wire {
            Wire::Http => header(&req, hyper::header::CONTENT_ENCODING),
            Wire::Grpc => header(&req, "grpc-encoding"),
        }
        .to_owned();
        let body = match http::read_body(req.into_body(), max_request, declared).await {
            Ok(b) => b,
            Err(e) => {
                self.metrics.discarded("body_too_large_or_unreadable", 1);
                return refused(413, grpc::code::RESOURCE_EXHAUSTED, e);
            }
        };
        self.metrics.received_bytes.inc_by(body.len() as u64);
        let (compressed, payload) = match wire {
            Wire::Http => (true, body),
            Wire::Grpc => match grpc::unframe(&body) {
                Ok(framed) => framed,
                Err(e) => return self.bad_request("bad_encoding", e),
            },
        };
        let encoding = match Encoding::parse(if compressed { &encoding } else { "" }) {
            Ok(e) => e,
            Err(e) => return self.bad_request("bad_encoding", e.to_string()),
        };
        let (decoded, held) = match self.unpack(signal, format, encoding, payload, held).await {
            Ok(unpacked) => unpacked,
            Err(answer) => return answer,
        };
        let (mut events, rejected) = match decoded {
            Ok(d) => d,
            Err(e) => return self.bad_request(e.reason, e.detail),
        };
        if let Some(peer) = peer {
            associate(self.pods.as_ref(), peer.ip(), &mut events);
        }
        self.deliver(signal, format, events, rejected, held).await
    }

    /// A share of `max_in_flight_bytes`, or `None` (counted) when it is not free now.
    fn reserve(&self, bytes: usize) -> Option<InFlight> {
        let taken = InFlight::try_take(&self.in_flight, bytes);
        if taken.is_none() {
            self.metrics.error("memory_pressure");
        }
        taken
    }

    /// Inflates (when compressed) and decodes the body; large or compressed bodies off the
    /// async threads. Each chunk of inflated output is paid from `max_in_flight_bytes` (into
    /// `held`) before it is allocated; after a large inflation the freed memory goes back to
    /// the OS at once (the allocator would keep it with the blocking thread).
    async fn unpack(
        &self,
        signal: Signal,
        format: Format,
        encoding: Option<Encoding>,
        payload: Bytes,
        held: InFlight,
    ) -> Result<(Decoded, InFlight), Answer> {
        let limit = self.config.max_decompressed_bytes.as_usize();
        let too_large = |e: InflateError| {
            self.metrics.discarded("body_too_large_or_unreadable", 1);
            refused(413, grpc::code::RESOURCE_EXHAUSTED, e.to_string())
        };
        let Some(encoding) = encoding else {
            if payload.len() > limit {
                return Err(too_large(InflateError::TooLarge { limit }));
            }
            if payload.len() <= DECODE_INLINE_BYTES {
                return Ok((format.decode(signal, Chunks::whole(payload)), held));
            }
            return tokio::task::spawn_blocking(move || {
                (format.decode(signal, Chunks::whole(payload)), held)
            })
            .await
            .map_err(|e| self.bad_request("bad_protobuf", e.to_string()));
        };
        let semaphore = self.in_flight.clone();
        let capacity = self.config.max_in_flight_bytes.as_usize();
        let Ok(_turn) = self.inflating.acquire().await else {
            return Err(self.retry_later("shutting down; retry"));
        };
        let unpacked = tokio::task::spawn_blocking(move || {
            let mut held = held;
            let mut could_never_fit = false;
            let inflated = inflate::inflate(encoding, &payload, limit, &mut |n| {
                could_never_fit = held.bytes() + n > capacity;
                match InFlight::try_take(&semaphore, n) {
                    Some(more) => {
                        held.merge(more);
                        true
                    }
                    None => false,
                }
            });
            drop(payload);
            let large = held.bytes() >= GIVE_BACK_AFTER_BYTES;
            let decoded = inflated.map(|chunks| format.decode(signal, chunks));
            if large {
                crate::memory::give_back_now();
            }
            (decoded, could_never_fit, held)
        })
        .await;
        let (decoded, could_never_fit, held) = match unpacked {
            Ok(done) => done,
            Err(e) => return Err(self.bad_request("bad_encoding", e.to_string())),
        };
        match decoded {
            Ok(decoded) => Ok((decoded, held)),
            Err(e @ InflateError::TooLarge { .. }) => Err(too_large(e)),
            Err(InflateError::NoBudget) if could_never_fit => {
                Err(too_large(InflateError::TooLarge {
                    limit: capacity.saturating_sub(held.bytes()),
                }))
            }
            Err(InflateError::NoBudget) => {
                self.metrics.error("memory_pressure");
                Err(self.retry_later("too many request bytes in flight; retry"))
            }
            Err(e) => Err(self.bad_request("bad_encoding", e.to_string())),
        }
    }

    /// Sends the events on (then lets `held` go: the queues account for them) and waits for
    /// their delivery.
    async fn deliver(
        &self,
        signal: Signal,
        format: Format,
        events: Events,
        rejected: u64,
        held: InFlight,
    ) -> Answer {
        if rejected > 0 {
            self.metrics.discarded("malformed_id", rejected);
        }
        let count = events.len();
        self.metrics.received_events.inc_by(count as u64);
        let status = if events.is_empty() {
            AckStatus::Delivered
        } else {
            let (share, rx) = Ack::channel();
            // The client waits for this answer: no batch timer may add to it.
            let batch = Batch::new(events, Acks::one(share)).awaited();
            let waited = tokio::time::timeout(self.config.ack_timeout.0, async {
                self.out.send(batch).await;
                drop(held);
                rx.await.unwrap_or(AckStatus::Failed)
            })
            .await;
            waited.unwrap_or(AckStatus::Failed)
        };
        if status == AckStatus::Failed {
            self.metrics.failed_events.inc_by(count as u64);
            return self.retry_later("not delivered yet; retry");
        }
        self.metrics.sent_events.inc_by(count as u64);
        let message = if rejected > 0 {
            format!("{rejected} records with malformed ids were skipped")
        } else {
            String::new()
        };
        Answer::Accepted(format.response(signal, rejected, message))
    }
}

/// OTLP/HTTP: 200 with the response, 503 with `Retry-After`, or the refusal's status; an
/// error's body is a `google.rpc.Status` in the request's format (plain text when the format
/// was not one of ours).
fn http_answer(answer: Answer, format: Option<Format>) -> Response<Body> {
    let error = |status: u16, code: u32, message: &str| match format {
        Some(f) => http::response(status, f.content_type(), f.status(code, message)),
        None => http::response(status, "text/plain", message.to_owned()),
    };
    match answer {
        Answer::Accepted(body) => {
            http::response(200, format.unwrap_or(Format::Protobuf).content_type(), body)
        }
        Answer::RetryLater(message, after) => {
            let mut r = error(503, grpc::code::UNAVAILABLE, message);
            r.headers_mut().insert(
                hyper::header::RETRY_AFTER,
                hyper::header::HeaderValue::from(after.as_secs().max(1)),
            );
            r
        }
        Answer::Refused {
            http: status,
            grpc: code,
            message,
        } => error(status, code, &message),
    }
}

/// OTLP/gRPC: always HTTP 200; the response message and `grpc-status` 0 in the trailers, or a
/// trailers-only answer: UNAVAILABLE with a one-second RetryInfo, or the refusal's code.
fn grpc_answer(answer: Answer) -> Response<Body> {
    let status = match answer {
        Answer::Accepted(body) => match grpc::frame(&body, false) {
            Ok(framed) => {
                return http::response_with_trailers(
                    200,
                    grpc::CONTENT_TYPE,
                    framed,
                    grpc::Status::ok().to_headers(),
                )
            }
            Err(e) => grpc::Status::new(grpc::code::INTERNAL, e.to_string()),
        },
        Answer::RetryLater(message, after) => {
            grpc::Status::new(grpc::code::UNAVAILABLE, message).with_retry_delay(after)
        }
        Answer::Refused {
            grpc: code,
            message,
            ..
        } => grpc::Status::new(code, message),
    };
    let mut r = http::response(200, grpc::CONTENT_TYPE, Bytes::new());
    r.headers_mut().extend(status.to_headers());
    r
}
