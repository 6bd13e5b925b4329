//! Fetching one exposition: `GET` with Prometheus's `Accept`, gzip, a deadline and a body limit
//! (compressed and inflated), over HTTP or HTTPS (a CA, client certificates, or no verification
//! for kubelets with self-signed certificates), with a bearer token read from its file each time.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sextant_pipeline::net::tls::ClientTls;

use super::config::TlsConfig;
use crate::exposition::{Format, ACCEPT};

/// Why a fetch failed; `reason()` is the label of its counter.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Connect(String),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("body over body_size_limit ({0} bytes)")]
    TooLarge(usize),
    #[error("gzip: {0}")]
    Gzip(String),
    #[error("bearer token file {0}: {1}")]
    Token(PathBuf, String),
}

impl FetchError {
    pub fn reason(&self) -> &'static str {
        match self {
            FetchError::Timeout(_) => "timeout",
            FetchError::Connect(_) => "connect",
            FetchError::Status(_) => "http_status",
            FetchError::TooLarge(_) => "body_size_limit",
            FetchError::Gzip(_) => "gzip",
            FetchError::Token(..) => "bearer_token",
        }
    }
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// One job's HTTP client (connections are kept between scrapes).
#[derive(Clone)]
pub struct ScrapeClient {
    client: Client<Connector, Empty<Bytes>>,
    bearer_token_file: Option<PathBuf>,
}

/// A fetched body and the format its `Content-Type` says.
pub struct Fetched {
    pub body: Bytes,
    pub format: Format,
}

impl ScrapeClient {
    pub fn new(tls: &TlsConfig, bearer_token_file: Option<PathBuf>) -> Result<Self, String> {
        let config = if tls.insecure_skip_verify {
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate))
            .with_no_client_auth()
        } else {
            let settings = ClientTls {
                ca_file: tls.ca_file.clone(),
                cert_file: tls.cert_file.clone(),
                key_file: tls.key_file.clone(),
            };
            match settings.client_config() {
                Ok(config) => config,
                // No system trust store (a distroless image) and no CA given: plain HTTP still
                // works; an HTTPS target fails its scrapes, saying why.
                Err(_) if settings.ca_file.is_none() && settings.cert_file.is_none() => {
                    rustls::ClientConfig::builder_with_provider(Arc::new(
                        rustls::crypto::aws_lc_rs::default_provider(),
                    ))
                    .with_safe_default_protocol_versions()
                    .map_err(|e| e.to_string())?
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth()
                }
                Err(e) => return Err(e),
            }
        };
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http();
        let builder = match &tls.server_name {
            Some(name) => {
                let name = name.clone();
                builder.with_server_name_resolver(move |_: &http::Uri| {
                    rustls::pki_types::ServerName::try_from(name.clone())
                        .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
                })
            }
            None => builder,
        };
        let connector = builder.enable_http1().wrap_connector(http);
        // One idle connection per target, closed after 90 s unused (the timer makes the timeout
        // real: without it idle connections of targets gone would stay). The read buffer is
        // capped at hyper's smallest (8 KiB): a connection is kept idle between scrapes, and
        // hyper's default (~400 KB, grown for large bodies and never shrunk) would be held by
        // each of them; bodies stream through it in chunks either way.
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .pool_max_idle_per_host(1)
            .http1_max_buf_size(8 * 1024)
            .build(connector);
        Ok(Self {
            client,
            bearer_token_file,
        })
    }

    /// GETs `url` within `timeout`, refusing a body over `limit` bytes.
    pub async fn fetch(
        &self,
        url: &str,
        timeout: Duration,
        limit: usize,
    ) -> Result<Fetched, FetchError> {
        match tokio::time::timeout(timeout, self.fetch_inner(url, timeout, limit)).await {
            Ok(r) => r,
            Err(_) => Err(FetchError::Timeout(timeout)),
        }
    }

    async fn fetch_inner(
        &self,
        url: &str,
        timeout: Duration,
        limit: usize,
    ) -> Result<Fetched, FetchError> {
        let mut request = http::Request::get(url)
            .header(http::header::ACCEPT, ACCEPT)
            .header(http::header::ACCEPT_ENCODING, "gzip")
            .header(
                http::header::USER_AGENT,
                concat!("sextant/", env!("CARGO_PKG_VERSION")),
            )
            .header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                format!("{}", timeout.as_secs_f64()),
            );
        if let Some(path) = &self.bearer_token_file {
            let token = tokio::fs::read_to_string(path)
                .await
                .map_err(|e| FetchError::Token(path.clone(), e.to_string()))?;
            request = request.header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", token.trim()),
            );
        }
        let request = request
            .body(Empty::new())
            .map_err(|e| FetchError::Connect(e.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| FetchError::Connect(error_chain(&e)))?;
        let status = response.status();
        if status != http::StatusCode::OK {
            return Err(FetchError::Status(status.as_u16()));
        }
        let headers = response.headers();
        let format = Format::from_content_type(
            headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
        );
        let gzip = headers
            .get(http::header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
        let declared = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(FetchError::TooLarge(limit));
        }
        let mut body = response.into_body();
        let mut out = BytesMut::with_capacity(declared.unwrap_or(64 * 1024).min(limit));
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| FetchError::Connect(error_chain(&e)))?;
            if let Ok(data) = frame.into_data() {
                if out.len() + data.len() > limit {
                    return Err(FetchError::TooLarge(limit));
                }
                out.extend_from_slice(&data);
            }
        }
        let body = if gzip {
            gunzip(&out, limit)?
        } else {
            out.freeze()
        };
        Ok(Fetched { body, format })
    }
}

/// Inflates a gzip body (several members allowed), at most `limit` bytes of it.
fn gunzip(compressed: &[u8], limit: usize) -> Result<Bytes, FetchError> {
    let mut out = Vec::with_capacity((compressed.len() * 4).min(limit));
    let mut decoder = flate2::read::MultiGzDecoder::new(compressed).take(limit as u64 + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| FetchError::Gzip(e.to_string()))?;
    if out.len() > limit {
        return Err(FetchError::TooLarge(limit));
    }
    Ok(Bytes::from(out))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// `insecure_skip_verify`: any certificate is accepted (signatures are still checked).
#[derive(Debug)]
struct AnyCertificate;

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::aws_lc_rs::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
