//! Protocol plumbing the receivers and senders share: the HTTP listener ([`http`]), the HTTP
//! client ([`client`]), gRPC
//! framing ([`grpc`]), TLS ([`tls`]), bounded request-body inflation ([`inflate`]) and the
//! Kubernetes API client ([`kube_api`]), and AWS settings and SigV4 ([`aws`]).
//!
//! Depends on: `flow` (events for gRPC), `shutdown`, `telemetry`, `memory`.

pub mod aws;
pub mod client;
pub mod grpc;
pub mod http;
pub mod inflate;
pub mod kube_api;
pub mod tls;
