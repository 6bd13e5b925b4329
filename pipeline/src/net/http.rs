//! Small HTTP helpers shared by the admin listener, the OTLP receiver and the OTLP exporter:
//! a hyper server loop and body helpers with size limits.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::shutdown::Shutdown;

/// A response body: bytes, and for gRPC, trailers after them.
pub type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

pub fn response(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).boxed());
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// A response of `body` followed by `trailers` (as gRPC answers).
pub fn response_with_trailers(
    status: u16,
    content_type: &str,
    body: Bytes,
    trailers: http::HeaderMap,
) -> Response<Body> {
    let frames = [
        Ok::<_, Infallible>(hyper::body::Frame::data(body)),
        Ok(hyper::body::Frame::trailers(trailers)),
    ];
    let body = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
    let mut r = Response::new(BodyExt::boxed(body));
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// Reads a request body into one buffer, refusing more than `limit` bytes. `expected` (its
/// declared length) sizes the buffer up front, so the body is copied once, never regrown.
pub async fn read_body(mut body: Incoming, limit: usize, expected: usize) -> Result<Bytes, String> {
    let mut out = bytes::BytesMut::with_capacity(expected.min(limit));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if out.len() + data.len() > limit {
            return Err(format!("body exceeds {limit} bytes"));
        }
        out.extend_from_slice(&data);
    }
    Ok(out.freeze())
}

/// Binds `addr` now, from a component's synchronous build (so a port in use is a start-up
/// error, not a silent dead listener); the listener is non-blocking, ready for
/// `tokio::net::TcpListener::from_std`.
pub fn bind_now(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Binds `addr` now (so a port in use fails at start-up) and returns the listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves HTTP/1 and HTTP/2 on `listener` until shutdown stops it.
pub async fn serve<F, Fut>(listener: TcpListener, shutdown: Shutdown, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    serve_with(listener, None, shutdown, handler).await
}

/// TLS for [`serve_with`]: the acceptor, and the metrics that count failed handshakes
/// (`sextant_component_errors_total{error_type="tls_handshake"}`).
pub type ServerTls = (
    tokio_rustls::TlsAcceptor,
    crate::telemetry::ComponentMetrics,
);

/// The address a request came from, in the request's extensions (set by [`serve_with`]).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub std::net::SocketAddr);

/// The address `req` came from, when [`serve_with`] received it.
pub fn peer_of<B>(req: &Request<B>) -> Option<std::net::SocketAddr> {
    req.extensions().get::<Peer>().map(|p| p.0)
}

/// [`serve`], over TLS when `tls` is given (HTTP/2 offered by ALPN).
pub async fn serve_with<F, Fut>(
    listener: TcpListener,
    tls: Option<ServerTls>,
    shutdown: Shutdown,
    handler: F,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = shutdown.stopped() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(Peer(peer));
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(req).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            match tls {
                None => {
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }
                Some((acceptor, metrics)) => match acceptor.accept(stream).await {
                    Ok(stream) => {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                    Err(e) => {
                        metrics.error("tls_handshake");
                        tracing::debug!(component = %metrics.name, %peer, error = %e, "TLS handshake failed");
                    }
                },
            }
        });
    }
}
