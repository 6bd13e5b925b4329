//! `type: prometheus_remote_write` settings.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use sextant_pipeline::component::{BuildError, QueueSettings};
use sextant_pipeline::config::units::{ByteSizeValue, DurationValue};
use sextant_pipeline::flow::batcher::BatchSettings;
use sextant_pipeline::net::tls::ClientTls;
use sextant_pipeline::sink::request::RequestSettings;

use crate::sinks::http_auth::{prepare_target, Authorizer, HttpAuthConfig};

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteConfig {
    pub inputs: Vec<String>,
    /// The receiver's URL (`http://prometheus:9090/api/v1/write`; Amazon Managed Prometheus:
    /// `https://aps-workspaces.<region>.amazonaws.com/workspaces/<id>/api/v1/remote_write`).
    pub endpoint: String,
    /// `basic`, `bearer` or `sigv4` (signing name `aps` unless given).
    #[serde(default)]
    pub auth: Option<HttpAuthConfig>,
    /// For `https://` endpoints: a CA to trust instead of the system's, a client certificate.
    #[serde(default)]
    pub tls: ClientTls,
    /// Extra headers on every request (`X-Scope-OrgID` for Mimir, Cortex, Thanos).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Most samples in one request (Prometheus's `max_samples_per_send`).
    #[serde(default = "default_max_samples")]
    pub max_samples_per_send: usize,
    /// Where samples the receiver refused for good are kept (else they are only counted).
    #[serde(default)]
    pub dead_letter: Option<sextant_pipeline::sink::dead_letter::DeadLetterConfig>,
    #[serde(default = "default_batch")]
    pub batch: BatchSettings,
    /// `concurrency` is the most shards sending at once (with `adaptive_concurrency`, the
    /// ceiling the backlog and the receiver's latency move between).
    #[serde(default = "default_request")]
    pub request: RequestSettings,
    #[serde(default)]
    pub queue: QueueSettings,
}

fn default_max_samples() -> usize {
    2_000
}

fn default_batch() -> BatchSettings {
    BatchSettings {
        max_events: 20_000,
        max_bytes: ByteSizeValue(8 * 1024 * 1024),
        timeout: DurationValue(Duration::from_secs(1)),
    }
}

fn default_request() -> RequestSettings {
    RequestSettings {
        concurrency: 8,
        adaptive_concurrency: true,
        ..RequestSettings::default()
    }
}

/// Checked settings, ready to build with.
pub struct PreparedRemoteWrite {
    pub config: RemoteWriteConfig,
    pub uri: http::Uri,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub auth: Authorizer,
    pub tls: Option<rustls::ClientConfig>,
}

impl RemoteWriteConfig {
    pub fn prepare(&self, key: &str) -> Result<PreparedRemoteWrite, BuildError> {
        if self.max_samples_per_send == 0 {
            return Err(BuildError::at(
                key,
                "max_samples_per_send",
                "must be at least 1",
            ));
        }
        let target = prepare_target(
            key,
            &self.endpoint,
            &self.tls,
            &self.headers,
            self.auth.as_ref(),
            "aps",
        )?;
        Ok(PreparedRemoteWrite {
            config: self.clone(),
            uri: target.uri,
            headers: target.headers,
            auth: target.auth,
            tls: target.tls,
        })
    }
}

sextant_pipeline::sink_config!(
    RemoteWriteConfig,
    "prometheus_remote_write",
    sextant_pipeline::flow::event::Signals::METRICS,
    prepare = RemoteWriteConfig::prepare,
    build = super::build
);
