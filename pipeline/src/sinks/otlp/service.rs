//! The only place the OTLP sink talks to the network: one POST per request, OTLP/HTTP or a
//! unary OTLP/gRPC call (HTTP/2 only; the outcome read from `grpc-status`).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

use super::config::Protocol;
use super::request_builder::OtlpRequest;
use super::retry::{parse_retry_after, OtlpError};
use crate::net::grpc;

/// A "resolver" that always answers one address: each backend of a balanced sink connects to
/// its own collector, while the URL keeps the DNS name (for `Host`, SNI and certificate checks).
#[derive(Clone, Copy, Debug)]
pub struct Pinned(pub std::net::SocketAddr);

impl tower_service::Service<Name> for Pinned {
    type Response = std::iter::Once<std::net::SocketAddr>;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _name: Name) -> Self::Future {
        std::future::ready(Ok(std::iter::once(self.0)))
    }
}

/// Plain HTTP, or HTTPS through rustls.
#[derive(Clone)]
enum Transport {
    Plain(Client<HttpConnector<Pinned>, Full<Bytes>>),
    Tls(Client<HttpsConnector<HttpConnector<Pinned>>, Full<Bytes>>),
}

impl Transport {
    async fn request(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error> {
        match self {
            Transport::Plain(c) => c.request(request).await,
            Transport::Tls(c) => c.request(request).await,
        }
    }
}

#[derive(Clone)]
pub struct OtlpService {
    client: Transport,
    endpoint: String,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

impl OtlpService {
    /// A client for `endpoint` connecting to `addr`; `tls` for an `https://` endpoint (HTTP/2
    /// or HTTP/1.1 by ALPN).
    pub fn new(
        endpoint: &str,
        addr: std::net::SocketAddr,
        headers: Vec<(http::HeaderName, http::HeaderValue)>,
        tls: Option<rustls::ClientConfig>,
        protocol: Protocol,
    ) -> Self {
        let mut connector = HttpConnector::new_with_resolver(Pinned(addr));
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let grpc = protocol == Protocol::Grpc;
        let builder = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            // gRPC is HTTP/2 only: cleartext by prior knowledge.
            .http2_only(grpc)
            .clone();
        let client = match tls {
            Some(config) => {
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(config)
                    .https_only();
                let https = if grpc {
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
        Self {
            client,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            headers,
        }
    }

    pub async fn send(&self, req: &OtlpRequest) -> Result<(), OtlpError> {
        let mut builder = http::Request::post(format!("{}{}", self.endpoint, req.path));
        builder = match req.protocol {
            Protocol::Http => {
                let b = builder.header(http::header::CONTENT_TYPE, "application/x-protobuf");
                match req.encoding {
                    Some(encoding) => b.header(http::header::CONTENT_ENCODING, encoding),
                    None => b,
                }
            }
            Protocol::Grpc => {
                let b = builder
                    .header(http::header::CONTENT_TYPE, grpc::CONTENT_TYPE)
                    .header(http::header::TE, "trailers")
                    .header("grpc-accept-encoding", "gzip");
                match req.encoding {
                    Some(encoding) => b.header("grpc-encoding", encoding),
                    None => b,
                }
            }
        };
        for (k, v) in &self.headers {
            builder = builder.header(k, v);
        }
        let request = builder
            .body(Full::new(req.body.clone()))
            .map_err(|e| OtlpError::Transport(e.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| OtlpError::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        if req.protocol == Protocol::Grpc && status == 200 {
            return grpc_outcome(response).await;
        }
        if (200..300).contains(&status) {
            // Drain the body so the connection can be reused.
            let _ = response.into_body().collect().await;
            return Ok(());
        }
        let retry_after = parse_retry_after(response.headers().get(http::header::RETRY_AFTER));
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| {
                String::from_utf8_lossy(&b.to_bytes()[..])
                    .chars()
                    .take(512)
                    .collect()
            })
            .unwrap_or_default();
        Err(OtlpError::Status {
            status,
            retry_after,
            body,
        })
    }
}

/// The outcome of a gRPC call: `grpc-status` from the trailers, or from the headers of a
/// trailers-only answer.
async fn grpc_outcome(response: http::Response<hyper::body::Incoming>) -> Result<(), OtlpError> {
    let in_headers = grpc::Status::from_headers(response.headers());
    let collected = response
        .into_body()
        .collect()
        .await
        .map_err(|e| OtlpError::Transport(e.to_string()))?;
    let status = collected
        .trailers()
        .and_then(grpc::Status::from_headers)
        .or(in_headers)
        .ok_or_else(|| OtlpError::Transport("gRPC answer without grpc-status".into()))?;
    if status.code == grpc::code::OK {
        return Ok(());
    }
    Err(OtlpError::Grpc(status))
}
