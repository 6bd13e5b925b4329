//! `sextant-pipeline`: everything the agent and the collector share.
//!
//! Data flows `source -> Fanout -> ByteQueue (per sink) -> Batcher -> sink`, in
//! [`flow::batch::Batch`]es of one signal that carry delivery acknowledgements ([`flow::ack`])
//! back to their source. This crate knows neither role nor the CLI: the roles list their
//! components in closed enums and hand them to [`runtime::topology::Graph`].
//!
//! The modules, each depending only on those above it:
//! - [`config`], [`telemetry`], [`shutdown`]: settings and their errors, self-metrics, stopping;
//! - [`memory`]: the process's memory estimate and limits;
//! - [`flow`]: events, batches, acknowledgements, queues, fan-out, batching;
//! - [`buffer`]: the crash-safe disk buffer between a sink's queue and the sink;
//! - [`component`]: what a source or sink is to the topology;
//! - [`net`] and [`sink`]: protocol plumbing, and how sinks send;
//! - [`sources`], [`sinks`]: the components every role has;
//! - [`runtime`]: the topology, supervision, the admin listener, logging.

#![forbid(unsafe_code)]

pub mod buffer;
pub mod component;
pub mod config;
pub mod flow;
pub mod gofmt;
pub mod memory;
pub mod net;
pub mod runtime;
pub mod shutdown;
pub mod sink;
pub mod sinks;
pub mod sources;
pub mod state_file;
pub mod telemetry;
