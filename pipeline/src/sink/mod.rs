//! How a sink sends: the batch loop ([`driver`], per-resource [`lanes`]), the one send path of
//! the network sinks ([`sender`]) with its retries and rate limit ([`request`]), adaptive
//! concurrency ([`adaptive`]), backend [`healthcheck`]s, and [`dead_letter`] files.
//!
//! Depends on: `flow`, `component`, `config`, `telemetry`, `shutdown`, `memory`.

pub mod adaptive;
pub mod dead_letter;
pub mod driver;
pub mod healthcheck;
pub mod lanes;
pub mod request;
pub mod sender;
