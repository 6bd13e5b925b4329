//! The X-Ray daemon's sampling proxy: on TCP at the `xray_udp` source's address (port 2000),
//! the X-Ray SDKs' centralised sampling calls — `POST /GetSamplingRules` and
//! `POST /SamplingTargets` — are forwarded to X-Ray signed with SigV4 (service `xray`, the
//! default credential chain: on EKS the agent's IRSA role or Pod Identity, else the node's
//! instance role), and X-Ray's answer is given back as it came (status, body, content type).
//! Applications keep `AWS_XRAY_DAEMON_ADDRESS` and change nothing.
//!
//! Contract:
//! - Only those two calls are forwarded (`404` otherwise): the agent's credentials must not
//!   become any pod's way to call X-Ray's other APIs. Non-`POST` is `405`; a body over 64 KiB
//!   is `413` (an SDK's request is a few hundred bytes).
//! - The upstream is `https://xray.<region>.amazonaws.com` (`aws.region`, else the
//!   environment's), or `aws.endpoint`. Credentials and the client are made on the first call,
//!   so start-up never waits for the network.
//! - No region, no credentials, a transport failure or no answer within 10 s: `502` with the
//!   reason, counted (`sextant_component_errors_total{error_type="xray_sampling"}`) and logged
//!   at a rate limit; the SDKs then keep their local rules, as with the daemon. X-Ray's own
//!   refusals (throttling, access denied) are passed on unchanged and counted the same way.

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::net::aws::sigv4::SigV4;
use crate::net::aws::AwsSettings;
use crate::net::client::{HttpClient, Resolve};
use crate::net::http::{self, Body};
use crate::telemetry::{ComponentMetrics, LogLimiter};

/// The calls forwarded: X-Ray's `GetSamplingRules` and `GetSamplingTargets`.
pub const FORWARDED_PATHS: [&str; 2] = ["/GetSamplingRules", "/SamplingTargets"];
/// The largest request body taken from an SDK.
const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// The largest answer taken from X-Ray (a rules page is a few KiB).
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;
/// How long X-Ray has to answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// `sampling_proxy:` of `xray_udp`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SamplingProxyConfig {
    /// Serve the proxy on TCP at the source's address, as the X-Ray daemon does.
    pub enabled: bool,
    /// Region and endpoint of X-Ray.
    pub aws: AwsSettings,
}

impl Default for SamplingProxyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            aws: AwsSettings::default(),
        }
    }
}

/// Where the calls go, made on the first call.
struct Upstream {
    client: HttpClient,
    signer: SigV4,
    base: String,
}

impl Upstream {
    async fn connect(aws: &AwsSettings) -> Result<Self, String> {
        let signer = SigV4::new(aws, "xray").await?;
        let base = match &aws.endpoint {
            Some(endpoint) => endpoint.trim_end_matches('/').to_owned(),
            None => format!("https://xray.{}.amazonaws.com", signer.region()),
        };
        let tls = if base.starts_with("https://") {
            Some(crate::net::tls::ClientTls::default().client_config()?)
        } else {
            None
        };
        Ok(Self {
            client: HttpClient::new(Resolve::dns(), tls, false),
            signer,
            base,
        })
    }
}

/// The proxy of one `xray_udp` source.
pub struct SamplingProxy {
    aws: AwsSettings,
    upstream: OnceCell<Upstream>,
    metrics: ComponentMetrics,
    failures: LogLimiter,
}

/// Why a call was not answered by X-Ray.
struct Failure {
    status: u16,
    message: String,
}

fn failure(status: u16, message: impl Into<String>) -> Failure {
    Failure {
        status,
        message: message.into(),
    }
}

impl SamplingProxy {
    pub fn new(config: &SamplingProxyConfig, metrics: ComponentMetrics) -> Self {
        Self {
            aws: config.aws.clone(),
            upstream: OnceCell::new(),
            metrics,
            failures: LogLimiter::default(),
        }
    }

    /// Answers one SDK request (see the module doc).
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        match self.forward(req).await {
            Ok(answer) => answer,
            Err(f) => {
                if f.status >= 500 {
                    self.metrics.error("xray_sampling");
                    if let Some(suppressed) = self.failures.allow() {
                        tracing::warn!(component = %self.metrics.name, error = %f.message, suppressed, "X-Ray sampling call not forwarded");
                    }
                }
                http::response(f.status, "text/plain", f.message)
            }
        }
    }

    async fn forward(&self, req: Request<Incoming>) -> Result<Response<Body>, Failure> {
        if req.method() != Method::POST {
            return Err(failure(405, "use POST"));
        }
        let path = req.uri().path().to_owned();
        if !FORWARDED_PATHS.contains(&path.as_str()) {
            return Err(failure(
                404,
                format!("only {} are forwarded", FORWARDED_PATHS.join(" and ")),
            ));
        }
        let content_type = req
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .cloned()
            .unwrap_or(hyper::header::HeaderValue::from_static("application/json"));
        let body = Limited::new(req.into_body(), MAX_REQUEST_BYTES)
            .collect()
            .await
            .map_err(|e| failure(413, format!("request body: {e}")))?
            .to_bytes();
        let upstream = self
            .upstream
            .get_or_try_init(|| Upstream::connect(&self.aws))
            .await
            .map_err(|e| failure(502, e))?;
        let mut request = ::http::Request::post(format!("{}{path}", upstream.base))
            .header(hyper::header::CONTENT_TYPE, content_type)
            .body(Full::new(body.clone()))
            .map_err(|e| failure(502, e.to_string()))?;
        upstream
            .signer
            .sign(&mut request, &body)
            .await
            .map_err(|e| failure(502, e))?;
        let answer = tokio::time::timeout(UPSTREAM_TIMEOUT, async {
            let response = upstream.client.request(request).await?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| format!("X-Ray's answer: {e}"))?
                .to_bytes();
            Ok::<_, String>((parts, body))
        })
        .await
        .map_err(|_| failure(502, "X-Ray did not answer within 10 s"))?
        .map_err(|e| failure(502, e))?;
        let (parts, body) = answer;
        if !parts.status.is_success() {
            self.metrics.error("xray_sampling");
            if let Some(suppressed) = self.failures.allow() {
                tracing::warn!(component = %self.metrics.name, status = %parts.status, body = %String::from_utf8_lossy(&body), suppressed, "X-Ray refused a sampling call");
            }
        }
        let content_type = parts
            .headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json");
        Ok(http::response(parts.status.as_u16(), content_type, body))
    }
}
