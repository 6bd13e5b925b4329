//! The only place the OpenSearch sink talks to the network: PUTs of the index template and ISM
//! policy (once, before the first write), and POSTs to `_bulk` with each item's answer read.

use std::io::Write as _;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::Deserialize;
use tokio::sync::OnceCell;

use sextant_pipeline::net::client::{self, HttpClient, Resolve};

use super::config::PreparedOpenSearch;
use super::retry::OpenSearchError;
use crate::sinks::http_auth::Authorizer;

pub struct OpenSearchService {
    client: HttpClient,
    endpoint: String,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
    auth: Authorizer,
    gzip: bool,
    installs: Vec<(String, Bytes)>,
    installed: OnceCell<()>,
}

/// One item of a bulk answer.
#[derive(Debug, Clone)]
pub struct ItemAnswer {
    pub status: u16,
    pub error_type: String,
    pub reason: String,
}

#[derive(Deserialize)]
struct BulkAnswer {
    items: Vec<std::collections::HashMap<String, Item>>,
}

#[derive(Deserialize)]
struct Item {
    status: u16,
    #[serde(default)]
    error: Option<ItemError>,
}

#[derive(Deserialize)]
struct ItemError {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    reason: String,
}

/// The items of a bulk answer, in order.
pub fn parse_answer(body: &[u8], expected: usize) -> Result<Vec<ItemAnswer>, OpenSearchError> {
    let answer: BulkAnswer =
        serde_json::from_slice(body).map_err(|e| OpenSearchError::Answer(format!("{e}")))?;
    if answer.items.len() != expected {
        return Err(OpenSearchError::Answer(format!(
            "{} items answered for {expected} sent",
            answer.items.len()
        )));
    }
    Ok(answer
        .items
        .into_iter()
        .map(|mut by_action| {
            let item = by_action.drain().next().map(|(_, item)| item);
            match item {
                Some(item) => {
                    let (error_type, reason) =
                        item.error.map(|e| (e.kind, e.reason)).unwrap_or_default();
                    ItemAnswer {
                        status: item.status,
                        error_type,
                        reason,
                    }
                }
                None => ItemAnswer {
                    status: 500,
                    error_type: "empty_item".into(),
                    reason: "the answer's item names no action".into(),
                },
            }
        })
        .collect())
}

impl OpenSearchService {
    pub fn new(prepared: &PreparedOpenSearch) -> Self {
        Self {
            client: HttpClient::new(Resolve::dns(), prepared.tls.clone(), false),
            endpoint: prepared.endpoint.clone(),
            headers: prepared.headers.clone(),
            auth: prepared.auth.clone(),
            gzip: prepared.config.gzip,
            installs: prepared.installs.clone(),
            installed: OnceCell::new(),
        }
    }

    async fn call(
        &self,
        method: http::Method,
        path: &str,
        content_type: &str,
        body: Bytes,
        gzip: bool,
    ) -> Result<Bytes, OpenSearchError> {
        let body = if gzip {
            let mut encoder = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4),
                flate2::Compression::fast(),
            );
            encoder
                .write_all(&body)
                .and_then(|()| encoder.finish())
                .map(Bytes::from)
                .map_err(|e| OpenSearchError::Transport(e.to_string()))?
        } else {
            body
        };
        let mut builder = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.endpoint))
            .header(http::header::CONTENT_TYPE, content_type);
        if gzip {
            builder = builder.header(http::header::CONTENT_ENCODING, "gzip");
        }
        for (k, v) in &self.headers {
            builder = builder.header(k, v);
        }
        let mut request = builder
            .body(Full::new(body.clone()))
            .map_err(|e| OpenSearchError::Transport(e.to_string()))?;
        self.auth
            .apply(&mut request, &body)
            .await
            .map_err(OpenSearchError::Auth)?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(OpenSearchError::Transport)?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return response
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .map_err(|e| OpenSearchError::Transport(e.to_string()));
        }
        let retry_after = client::retry_after(&response);
        Err(OpenSearchError::Status {
            status,
            retry_after,
            body: client::error_body(response).await,
        })
    }

    /// Installs the index template and ISM policy, once.
    async fn install(&self) -> Result<(), OpenSearchError> {
        self.installed
            .get_or_try_init(|| async {
                for (path, body) in &self.installs {
                    self.call(
                        http::Method::PUT,
                        path,
                        "application/json",
                        body.clone(),
                        false,
                    )
                    .await
                    .map_err(|e| OpenSearchError::Install {
                        what: path.clone(),
                        error: Box::new(e),
                    })?;
                }
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// Posts `ndjson` (`items` actions) to `_bulk`; each item's answer.
    pub async fn bulk(
        &self,
        ndjson: Bytes,
        items: usize,
    ) -> Result<Vec<ItemAnswer>, OpenSearchError> {
        self.install().await?;
        let answer = self
            .call(
                http::Method::POST,
                "/_bulk",
                "application/x-ndjson",
                ndjson,
                self.gzip,
            )
            .await?;
        parse_answer(&answer, items)
    }

    /// `GET /_cluster/health`: the cluster answers and the credentials work.
    pub async fn health(&self) -> Result<(), OpenSearchError> {
        let mut request = http::Request::get(format!("{}/_cluster/health", self.endpoint))
            .body(Full::new(Bytes::new()))
            .map_err(|e| OpenSearchError::Transport(e.to_string()))?;
        self.auth
            .apply(&mut request, b"")
            .await
            .map_err(OpenSearchError::Auth)?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(OpenSearchError::Transport)?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            client::drain(response).await;
            return Ok(());
        }
        Err(OpenSearchError::Status {
            status,
            retry_after: None,
            body: client::error_body(response).await,
        })
    }
}
