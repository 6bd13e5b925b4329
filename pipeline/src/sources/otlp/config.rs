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
    /// Most request bytes (decompressed) being read and decoded at once, over all connections;
    /// a request that does not fit is answered retry-later, so a flood cannot outrun the
    /// memory budget between two samples.
    pub max_in_flight_bytes: ByteSizeValue,
    /// How long a request waits for its batch's delivery before the sender is told to retry.
    pub ack_timeout: DurationValue,
    /// Serve HTTPS (and require client certificates with `client_ca_file`).
    pub tls: Option<crate::net::tls::ServerTls>,
    /// On the agent: add the `k8s.*` attributes of the sender's pod (by its source IP) to the
    /// resources it sends, see [`crate::sources::pod_association`].
    pub pod_association: crate::sources::pod_association::PodAssociationConfig,
}

impl Default for OtlpSourceConfig {
    fn default() -> Self {
        Self {
            address: SocketAddr::from(([127, 0, 0, 1], 4318)),
            grpc_address: None,
            max_request_bytes: ByteSizeValue(16 * 1024 * 1024),
            max_decompressed_bytes: ByteSizeValue(64 * 1024 * 1024),
            max_in_flight_bytes: ByteSizeValue(64 * 1024 * 1024),
            ack_timeout: DurationValue(Duration::from_secs(30)),
            tls: None,
            pod_association: Default::default(),
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
        if self.max_in_flight_bytes.0 < self.max_decompressed_bytes.0 {
            return Err(BuildError::invalid(
                name,
                "max_in_flight_bytes must be at least max_decompressed_bytes (or the largest request could never be taken)",
            ));
        }
        if self.max_in_flight_bytes.0 > u64::from(u32::MAX) {
            return Err(BuildError::invalid(
                name,
                "max_in_flight_bytes must be below 4GiB",
            ));
        }
        Ok(())
    }
}

crate::source_config!(
    OtlpSourceConfig,
    "otlp",
    crate::flow::event::Signals::ALL,
    super::build,
    OtlpSourceConfig::validate
);
