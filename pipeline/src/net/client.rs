//! The HTTP client every network sink sends through: hyper over plain TCP or rustls (HTTP/2 or
//! HTTP/1.1 by ALPN), connections pooled and kept for 30 s idle, names resolved by the system
//! resolver or pinned to one address (a balanced OTLP backend keeps its DNS name for `Host`,
//! SNI and certificate checks while connecting to the address it was given).
//!
//! It answers with the response or a transport error as text; what a status means is each
//! sink's `retry.rs`. [`error_body`] and [`retry_after`] read a refusal the same way for all.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

/// How a client finds the address of a host.
#[derive(Clone)]
pub enum Resolve {
    /// The system resolver.
    Dns(GaiResolver),
    /// Always this address, whatever the URL's host.
    Pinned(SocketAddr),
}

impl Resolve {
    pub fn dns() -> Self {
        Resolve::Dns(GaiResolver::new())
    }
}

type Addresses = std::vec::IntoIter<SocketAddr>;

impl tower_service::Service<Name> for Resolve {
    type Response = Addresses;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Addresses, std::io::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        match self {
            Resolve::Pinned(addr) => {
                let addr = *addr;
                Box::pin(async move { Ok(vec![addr].into_iter()) })
            }
            Resolve::Dns(resolver) => {
                let lookup = resolver.call(name);
                Box::pin(async move {
                    let found: Vec<SocketAddr> = lookup.await?.collect();
                    Ok(found.into_iter())
                })
            }
        }
    }
}

/// Plain HTTP, or HTTPS through rustls.
#[derive(Clone)]
enum Transport {
    Plain(Client<HttpConnector<Resolve>, Full<Bytes>>),
    Tls(Client<HttpsConnector<HttpConnector<Resolve>>, Full<Bytes>>),
}

/// A pooled HTTP client; see the module doc.
#[derive(Clone)]
pub struct HttpClient {
    transport: Transport,
}

/// A response whose body has not been read.
pub type Response = http::Response<hyper::body::Incoming>;

impl HttpClient {
    /// A client resolving with `resolve`; `tls` for `https://` URLs; `http2_only` speaks HTTP/2
    /// by prior knowledge on cleartext (gRPC).
    pub fn new(resolve: Resolve, tls: Option<rustls::ClientConfig>, http2_only: bool) -> Self {
        let mut connector = HttpConnector::new_with_resolver(resolve);
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let builder = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .http2_only(http2_only)
            .clone();
        let transport = match tls {
            Some(config) => {
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(config)
                    .https_only();
                let https = if http2_only {
                    https.enable_http2().wrap_connector(connector)
                } else {
                    https
                        .enable_http1()
                        .enable_http2()
                        .wrap_connector(connector)
                };
                Transport::Tls(builder.build(https))
            }
            None => Transport::Plain(builder.build(connector)),
        };
        Self { transport }
    }

    /// Sends `request`; `Err` is a transport failure (connect, TLS, reset), as text.
    pub async fn request(&self, request: http::Request<Full<Bytes>>) -> Result<Response, String> {
        let sent = match &self.transport {
            Transport::Plain(c) => c.request(request).await,
            Transport::Tls(c) => c.request(request).await,
        };
        sent.map_err(|e| {
            // hyper-util's error names only the stage; the cause says what happened.
            match std::error::Error::source(&e) {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            }
        })
    }
}

/// Reads and drops a response's body, so its connection can be used again.
pub async fn drain(response: Response) {
    let _ = response.into_body().collect().await;
}

/// The first 512 characters of a response's body, for an error message.
pub async fn error_body(response: Response) -> String {
    response
        .into_body()
        .collect()
        .await
        .map(|b| {
            String::from_utf8_lossy(&b.to_bytes()[..])
                .chars()
                .take(512)
                .collect()
        })
        .unwrap_or_default()
}

/// `Retry-After` in seconds (the HTTP-date form is rare from these backends and is treated as
/// absent).
pub fn retry_after(response: &Response) -> Option<Duration> {
    parse_retry_after(response.headers().get(http::header::RETRY_AFTER))
}

/// `Retry-After`'s value as seconds.
pub fn parse_retry_after(v: Option<&http::HeaderValue>) -> Option<Duration> {
    v?.to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}
