//! `type: otlp` sink settings.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::batcher::BatchSettings;
use crate::component::{BuildError, QueueSettings};
use crate::request::RequestSettings;

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

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OtlpSinkConfig {
    /// Sources this sink reads.
    pub inputs: Vec<String>,
    /// Base URL of an OTLP/HTTP receiver; `/v1/logs` etc. are appended.
    pub endpoint: String,
    #[serde(default)]
    pub compression: Compression,
    /// Extra request headers (for example `authorization: Bearer ${TOKEN}`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// TLS for `https://` endpoints: the CA to trust, and a client certificate for mutual TLS.
    #[serde(default)]
    pub tls: Option<crate::tls::ClientTls>,
    #[serde(default = "default_batch")]
    pub batch: BatchSettings,
    #[serde(default)]
    pub request: RequestSettings,
    #[serde(default)]
    pub queue: QueueSettings,
}

fn default_batch() -> BatchSettings {
    BatchSettings {
        max_events: 5_000,
        ..BatchSettings::default()
    }
}

impl OtlpSinkConfig {
    pub fn validate(&self, name: &str) -> Result<(), BuildError> {
        let uri: http::Uri = self.endpoint.parse().map_err(|e| {
            BuildError::invalid(
                name,
                format!("endpoint {:?} is not a URL: {e}", self.endpoint),
            )
        })?;
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if self.tls.is_none() => {}
            Some("http") => {
                return Err(BuildError::invalid(
                    name,
                    "tls is set but the endpoint is http://; use https://",
                ))
            }
            _ => {
                return Err(BuildError::invalid(
                    name,
                    format!("endpoint {:?} needs http:// or https://", self.endpoint),
                ))
            }
        }
        for (k, v) in &self.headers {
            http::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| BuildError::invalid(name, format!("bad header name {k:?}")))?;
            http::HeaderValue::from_str(v)
                .map_err(|_| BuildError::invalid(name, format!("bad value for header {k:?}")))?;
        }
        Ok(())
    }
}

crate::sink_config!(
    OtlpSinkConfig,
    "otlp",
    super::build,
    OtlpSinkConfig::validate
);
