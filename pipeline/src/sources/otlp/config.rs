//! `type: otlp` source settings.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::component::BuildError;
use crate::config::units::{ByteSizeValue, DurationValue};

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpSourceConfig {
    /// Listen address for OTLP/HTTP and OTLP/gRPC alike (OTLP/HTTP's port is 4318).
    pub address: SocketAddr,
    /// A second listener, conventionally OTLP/gRPC's port 4317 (it serves both protocols too).
    pub grpc_address: Option<SocketAddr>,
    /// Largest request body accepted on the wire.
    pub max_request_bytes: ByteSizeValue,
    /// Largest body after decompression.
    pub max_decompressed_bytes: ByteSizeValue,
    /// How long a request waits for its batch's delivery before the sender is told to retry.
    pub ack_timeout: DurationValue,
    /// Serve HTTPS (and require client certificates with `client_ca_file`).
    pub tls: Option<crate::tls::ServerTls>,
}

impl Default for OtlpSourceConfig {
    fn default() -> Self {
        Self {
            address: SocketAddr::from(([127, 0, 0, 1], 4318)),
            grpc_address: None,
            max_request_bytes: ByteSizeValue(16 * 1024 * 1024),
            max_decompressed_bytes: ByteSizeValue(64 * 1024 * 1024),
            ack_timeout: DurationValue(Duration::from_secs(30)),
            tls: None,
        }
    }
}

impl OtlpSourceConfig {
    pub fn validate(&self, name: &str) -> Result<(), BuildError> {
        if self.max_decompressed_bytes.0 < self.max_request_bytes.0 {
            return Err(BuildError::invalid(
                name,
                "max_decompressed_bytes must be at least max_request_bytes",
            ));
        }
        Ok(())
    }
}

crate::source_config!(
    OtlpSourceConfig,
    "otlp",
    super::build,
    OtlpSourceConfig::validate
);
