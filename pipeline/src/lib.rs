//! `sextant-pipeline`: everything the agent and the collector share.
//!
//! Data flows `source -> Fanout -> ByteQueue (per sink) -> Batcher -> sink`, in [`batch::Batch`]es
//! of one signal that carry delivery acknowledgements ([`ack`]) back to their source. This crate
//! knows neither role nor the CLI: the roles list their components in closed enums and hand them
//! to [`topology::Graph`].

#![forbid(unsafe_code)]

pub mod ack;
pub mod adaptive;
pub mod admin;
pub mod batch;
pub mod batcher;
pub mod buffer;
pub mod component;
pub mod config;
pub mod dead_letter;
pub mod driver;
pub mod event;
pub mod fanout;
pub mod grpc;
pub mod healthcheck;
pub mod http;
pub mod inflate;
pub mod lanes;
pub mod logging;
pub mod memory;
pub mod queue;
pub mod request;
pub mod sender;
pub mod shutdown;
pub mod sinks;
pub mod sources;
pub mod supervise;
pub mod telemetry;
pub mod tls;
pub mod topology;
