//! `sextant-pipeline`: everything the agent and the collector share.
//!
//! Data flows `source -> Fanout -> ByteQueue (per sink) -> Batcher -> sink`, in [`batch::Batch`]es
//! of one signal that carry delivery acknowledgements ([`ack`]) back to their source. This crate
//! knows neither role nor the CLI: the roles assemble its pieces (`topology`) with their own
//! components.

pub mod ack;
pub mod batch;
pub mod batcher;
pub mod config;
pub mod event;
pub mod fanout;
pub mod queue;
pub mod request;
pub mod shutdown;
pub mod telemetry;
