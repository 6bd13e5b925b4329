//! `type: otlp` sink settings.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::component::{BuildError, QueueSettings};
use crate::flow::batcher::BatchSettings;
use crate::sink::request::RequestSettings;

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    None,
    /// gzip level 1.
    #[default]
    Gzip,
    /// zstd level 1: faster than gzip at a better ratio on logs; a Sextant collector accepts it.
    Zstd,
}

/// What order records reach the receiver in.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Ordering {
    /// Each resource's records (a file's lines) in order, across failures and retries:
    /// `request.concurrency` lanes of one request each (see [`crate::sink::lanes`]). One busy file
    /// then has one request in flight, so its throughput is a batch per round trip.
    PerResource,
    /// Up to `request.concurrency` requests of any records at once, the most throughput for
    /// one busy file; retries after an outage may reorder a file's lines.
    #[default]
    None,
}

/// The wire protocol to the receiver.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// OTLP/HTTP protobuf (`/v1/logs` …), HTTP/1.1 or HTTP/2.
    #[default]
    Http,
    /// OTLP/gRPC over HTTP/2 (cleartext by prior knowledge for `http://`, ALPN `h2` for
    /// `https://`).
    Grpc,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OtlpSinkConfig {
    /// Sources this sink reads.
    pub inputs: Vec<String>,
    /// Base URL of an OTLP/HTTP receiver; `/v1/logs` etc. are appended. Its host may resolve to
    /// several collectors (a headless Service): requests are balanced across them.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Several base URLs instead of `endpoint`, balanced the same way.
    #[serde(default)]
    pub endpoints: Vec<String>,
    #[serde(default)]
    pub balance: BalanceSettings,
    #[serde(default)]
    pub protocol: Protocol,
    #[serde(default)]
    pub ordering: Ordering,
    #[serde(default)]
    pub compression: Compression,
    /// Extra request headers (for example `authorization: Bearer ${TOKEN}`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// TLS for `https://` endpoints: the CA to trust, and a client certificate for mutual TLS.
    #[serde(default)]
    pub tls: Option<crate::net::tls::ClientTls>,
    #[serde(default = "default_batch")]
    pub batch: BatchSettings,
    #[serde(default)]
    pub request: RequestSettings,
    #[serde(default)]
    pub queue: QueueSettings,
    /// Check the backend at start (see [`crate::sink::healthcheck`]); `false` skips it.
    #[serde(default = "crate::config::default_true")]
    pub healthcheck: bool,
}

/// `balance:` of the otlp sink.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BalanceSettings {
    /// How often endpoint names are resolved again (collectors come and go).
    pub resolve_interval: crate::config::units::DurationValue,
    /// Consecutive failed attempts that eject a collector for a while.
    pub eject_after: u32,
}

impl Default for BalanceSettings {
    fn default() -> Self {
        Self {
            resolve_interval: crate::config::units::DurationValue(std::time::Duration::from_secs(
                30,
            )),
            eject_after: 3,
        }
    }
}

fn default_batch() -> BatchSettings {
    BatchSettings {
        max_events: 5_000,
        ..BatchSettings::default()
    }
}

impl OtlpSinkConfig {
    /// The configured base URLs, whichever way they were given.
    pub fn urls(&self) -> Vec<String> {
        self.endpoint
            .iter()
            .chain(&self.endpoints)
            .map(|u| u.trim_end_matches('/').to_owned())
            .collect()
    }

    /// Checks the settings and parses the headers; see [`crate::component::SinkConfig::prepare`].
    pub fn prepare(&self, key: &str) -> Result<super::PreparedOtlp, BuildError> {
        if self.endpoint.is_some() != self.endpoints.is_empty() {
            return Err(BuildError::at(
                key,
                "endpoint",
                "give either endpoint or endpoints (a list), not both or neither",
            ));
        }
        let field = if self.endpoint.is_some() {
            "endpoint"
        } else {
            "endpoints"
        };
        for url in self.urls() {
            self.validate_url(key, field, &url)?;
        }
        if self.protocol == Protocol::Grpc && self.compression == Compression::Zstd {
            return Err(BuildError::at(
                key,
                "compression",
                "protocol: grpc supports compression gzip or none (zstd is not a standard grpc-encoding)",
            ));
        }
        if self.balance.eject_after == 0 {
            return Err(BuildError::at(
                key,
                "balance.eject_after",
                "must be at least 1",
            ));
        }
        let mut headers = Vec::with_capacity(self.headers.len());
        for (k, v) in &self.headers {
            let field = format!("headers.{k}");
            let name = http::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| BuildError::at(key, &field, "not a header name"))?;
            let value = http::HeaderValue::from_str(v)
                .map_err(|_| BuildError::at(key, &field, "not a header value"))?;
            headers.push((name, value));
        }
        Ok(super::PreparedOtlp {
            config: self.clone(),
            headers,
        })
    }

    fn validate_url(&self, key: &str, field: &str, url: &str) -> Result<(), BuildError> {
        let bad = |message: String| BuildError::at(key, field, message);
        let uri: http::Uri = url
            .parse()
            .map_err(|e| bad(format!("{url:?} is not a URL: {e}")))?;
        if uri.host().is_none() {
            return Err(bad(format!("{url:?} has no host")));
        }
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if self.tls.is_none() => {}
            Some("http") => {
                return Err(bad(format!(
                    "{url:?}: tls is set but the endpoint is http://; use https://"
                )))
            }
            _ => return Err(bad(format!("{url:?} needs http:// or https://"))),
        }
        Ok(())
    }
}

crate::sink_config!(
    OtlpSinkConfig,
    "otlp",
    crate::flow::event::Signals::ALL,
    prepare = OtlpSinkConfig::prepare,
    build = super::build
);
