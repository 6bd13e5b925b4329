//! `type: opensearch` settings.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use sextant_pipeline::component::{BuildError, QueueSettings};
use sextant_pipeline::config::units::{ByteSizeValue, DurationValue};
use sextant_pipeline::flow::batcher::BatchSettings;
use sextant_pipeline::net::tls::ClientTls;
use sextant_pipeline::sink::request::RequestSettings;

use super::document::Layout;
use super::request_builder::IndexName;
use crate::sinks::http_auth::{prepare_target, Authorizer, HttpAuthConfig};

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OpenSearchConfig {
    pub inputs: Vec<String>,
    /// The cluster's URL (`https://search-logs-xyz.eu-west-1.es.amazonaws.com`).
    pub endpoint: String,
    /// The index (or data stream) each record goes to: `{attribute}` placeholders (the
    /// record's, else its resource's) and `%Y`, `%m`, `%d`, `%H` of its time (UTC), for
    /// example `logs-{k8s.namespace.name}-%Y.%m.%d`; made lowercase and valid.
    pub index: String,
    /// What a placeholder becomes when the record lacks the attribute.
    #[serde(default = "default_missing")]
    pub missing_value: String,
    /// Document layout of logs: `otel` (Simple Schema for Observability) or `ecs`.
    #[serde(default)]
    pub layout: Layout,
    /// An index template installed (PUT `_index_template/<name>`) before the first write.
    #[serde(default)]
    pub index_template: Option<Installed>,
    /// An ISM policy installed (PUT `_plugins/_ism/policies/<name>`) before the first write.
    #[serde(default)]
    pub ism_policy: Option<Installed>,
    /// `basic`, `bearer` or `sigv4` (signing name `es`; `aoss` for OpenSearch Serverless).
    #[serde(default)]
    pub auth: Option<HttpAuthConfig>,
    #[serde(default)]
    pub tls: ClientTls,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Gzip request bodies.
    #[serde(default = "sextant_pipeline::config::default_true")]
    pub gzip: bool,
    /// Largest bulk body (before gzip); a larger document is dropped and counted.
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: ByteSizeValue,
    /// Where documents OpenSearch refused (mapping and parse errors) are kept, with the reason.
    #[serde(default)]
    pub dead_letter: Option<sextant_pipeline::sink::dead_letter::DeadLetterConfig>,
    #[serde(default = "default_batch")]
    pub batch: BatchSettings,
    #[serde(default)]
    pub request: RequestSettings,
    #[serde(default)]
    pub queue: QueueSettings,
    /// Check the cluster at start (`GET /_cluster/health`); `false` skips it.
    #[serde(default = "sextant_pipeline::config::default_true")]
    pub healthcheck: bool,
}

/// A named JSON body read from a file at start-up.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Installed {
    pub name: String,
    pub file: PathBuf,
}

fn default_missing() -> String {
    "unknown".into()
}

fn default_max_request_bytes() -> ByteSizeValue {
    ByteSizeValue(5 * 1024 * 1024)
}

fn default_batch() -> BatchSettings {
    BatchSettings {
        max_events: 10_000,
        max_bytes: ByteSizeValue(5 * 1024 * 1024),
        timeout: DurationValue(Duration::from_secs(1)),
    }
}

/// Checked settings, ready to build with.
pub struct PreparedOpenSearch {
    pub config: OpenSearchConfig,
    pub endpoint: String,
    pub index: IndexName,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub auth: Authorizer,
    pub tls: Option<rustls::ClientConfig>,
    /// (path, JSON body) to PUT before the first write.
    pub installs: Vec<(String, bytes::Bytes)>,
}

fn read_json(key: &str, field: &str, install: &Installed) -> Result<bytes::Bytes, BuildError> {
    let text = std::fs::read(&install.file)
        .map_err(|e| BuildError::at(key, field, format!("{}: {e}", install.file.display())))?;
    serde_json::from_slice::<serde_json::Value>(&text).map_err(|e| {
        BuildError::at(
            key,
            field,
            format!("{}: not JSON: {e}", install.file.display()),
        )
    })?;
    Ok(text.into())
}

impl OpenSearchConfig {
    pub fn prepare(&self, key: &str) -> Result<PreparedOpenSearch, BuildError> {
        let index = IndexName::parse(&self.index).map_err(|e| BuildError::at(key, "index", e))?;
        let target = prepare_target(
            key,
            &self.endpoint,
            &self.tls,
            &self.headers,
            self.auth.as_ref(),
            "es",
        )?;
        let mut installs = Vec::new();
        if let Some(t) = &self.index_template {
            installs.push((
                format!("/_index_template/{}", t.name),
                read_json(key, "index_template", t)?,
            ));
        }
        if let Some(p) = &self.ism_policy {
            installs.push((
                format!("/_plugins/_ism/policies/{}", p.name),
                read_json(key, "ism_policy", p)?,
            ));
        }
        Ok(PreparedOpenSearch {
            config: self.clone(),
            endpoint: self.endpoint.trim_end_matches('/').to_owned(),
            index,
            headers: target.headers,
            auth: target.auth,
            tls: target.tls,
            installs,
        })
    }
}

sextant_pipeline::sink_config!(
    OpenSearchConfig,
    "opensearch",
    sextant_pipeline::flow::event::Signals::LOGS
        .union(sextant_pipeline::flow::event::Signals::TRACES),
    prepare = OpenSearchConfig::prepare,
    build = super::build
);
