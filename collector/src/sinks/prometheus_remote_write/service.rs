//! The only place the remote-write sink talks to the network: one POST of a snappy protobuf
//! body, with remote write 1.0's headers, this sink's headers and its authorization.

use bytes::Bytes;
use http_body_util::Full;

use sextant_pipeline::net::client::{self, HttpClient, Resolve};

use super::config::PreparedRemoteWrite;
use super::retry::RemoteWriteError;
use crate::sinks::http_auth::Authorizer;

pub struct RemoteWriteService {
    client: HttpClient,
    uri: http::Uri,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
    auth: Authorizer,
}

impl RemoteWriteService {
    pub fn new(prepared: &PreparedRemoteWrite) -> Self {
        Self {
            client: HttpClient::new(Resolve::dns(), prepared.tls.clone(), false),
            uri: prepared.uri.clone(),
            headers: prepared.headers.clone(),
            auth: prepared.auth.clone(),
        }
    }

    /// Posts one snappy-compressed `WriteRequest`.
    pub async fn post(&self, body: Bytes) -> Result<(), RemoteWriteError> {
        let mut builder = http::Request::post(self.uri.clone())
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .header(http::header::CONTENT_ENCODING, "snappy")
            .header(
                http::header::USER_AGENT,
                concat!("sextant/", env!("CARGO_PKG_VERSION")),
            )
            .header("X-Prometheus-Remote-Write-Version", "0.1.0");
        for (k, v) in &self.headers {
            builder = builder.header(k, v);
        }
        let mut request = builder
            .body(Full::new(body.clone()))
            .map_err(|e| RemoteWriteError::Transport(e.to_string()))?;
        self.auth
            .apply(&mut request, &body)
            .await
            .map_err(RemoteWriteError::Auth)?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(RemoteWriteError::Transport)?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            client::drain(response).await;
            return Ok(());
        }
        let retry_after = client::retry_after(&response);
        Err(RemoteWriteError::Status {
            status,
            retry_after,
            body: client::error_body(response).await,
        })
    }
}
