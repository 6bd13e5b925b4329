//! The only place the OTLP sink talks to the network: one POST per request.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

use super::request_builder::OtlpRequest;
use super::retry::{parse_retry_after, OtlpError};

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
    ) -> Self {
        let mut connector = HttpConnector::new_with_resolver(Pinned(addr));
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let builder = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .clone();
        let client = match tls {
            Some(config) => Transport::Tls(
                builder.build(
                    hyper_rustls::HttpsConnectorBuilder::new()
                        .with_tls_config(config)
                        .https_only()
                        .enable_http1()
                        .enable_http2()
                        .wrap_connector(connector),
                ),
            ),
            None => Transport::Plain(builder.build(connector)),
        };
        Self {
            client,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            headers,
        }
    }

    pub async fn send(&self, req: &OtlpRequest) -> Result<(), OtlpError> {
        let mut builder = http::Request::post(format!("{}{}", self.endpoint, req.path))
            .header(http::header::CONTENT_TYPE, "application/x-protobuf");
        if let Some(encoding) = req.encoding {
            builder = builder.header(http::header::CONTENT_ENCODING, encoding);
        }
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
