//! The only place the OTLP sink talks to the network: one POST per request, OTLP/HTTP or a
//! unary OTLP/gRPC call (HTTP/2 only; the outcome read from `grpc-status`).

use http_body_util::{BodyExt, Full};

use super::config::Protocol;
use super::request_builder::OtlpRequest;
use super::retry::OtlpError;
use crate::net::client::{self, HttpClient, Resolve};
use crate::net::grpc;

#[derive(Clone)]
pub struct OtlpService {
    client: HttpClient,
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
        // gRPC is HTTP/2 only: cleartext by prior knowledge.
        let grpc = protocol == Protocol::Grpc;
        Self {
            client: HttpClient::new(Resolve::Pinned(addr), tls, grpc),
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
            .map_err(OtlpError::Transport)?;
        let status = response.status().as_u16();
        if req.protocol == Protocol::Grpc && status == 200 {
            return grpc_outcome(response).await;
        }
        if (200..300).contains(&status) {
            client::drain(response).await;
            return Ok(());
        }
        let retry_after = client::retry_after(&response);
        let body = client::error_body(response).await;
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
