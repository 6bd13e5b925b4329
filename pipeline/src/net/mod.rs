//! Protocol plumbing the receivers and senders share: the HTTP listener ([`http`]), the HTTP
//! client ([`client`]), gRPC
//! framing ([`grpc`]), TLS ([`tls`]) and bounded request-body inflation ([`inflate`]).
//!
//! Depends on: `flow` (events for gRPC), `shutdown`, `telemetry`, `memory`.

pub mod client;
pub mod grpc;
pub mod http;
pub mod inflate;
pub mod tls;
