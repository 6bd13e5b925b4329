//! The data path in memory: events ([`event`]) in batches ([`batch`]) that carry their
//! sources' acknowledgements ([`ack`]), handed by a source's [`fanout`] to each sink's bounded
//! [`queue`] and merged by the sink's [`batcher`].
//!
//! Depends on: `config`, `telemetry`, `memory`. Nothing here knows sinks, sources or the
//! network.

pub mod ack;
pub mod batch;
pub mod batcher;
pub mod event;
pub mod fanout;
pub mod queue;
