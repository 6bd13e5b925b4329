//! What a component is to the topology: a config that can be validated, then built into a task.
//!
//! Roles register their components in closed enums (`#[serde(tag = "type")]`) that implement
//! these traits with one exhaustive `match`; the compiler, not a registry, knows every component.
//! `build` does the I/O that must succeed at start-up (binding ports, opening files) and returns
//! the task; anything that may fail later (a backend that is down) is the task's to retry.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use serde::Deserialize;

pub use crate::config::error::BuildError;
use crate::config::units::ByteSizeValue;
use crate::flow::batch::Batch;
use crate::flow::event::Signals;
use crate::flow::fanout::Fanout;
use crate::flow::queue::{ByteQueue, WhenFull};
use crate::shutdown::Shutdown;
use crate::telemetry::ComponentMetrics;

/// A running component.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a source gets to run with.
pub struct SourceContext {
    pub name: String,
    /// This component's own directory for state (checkpoints), created before `build`.
    pub data_dir: PathBuf,
    pub out: Fanout,
    /// Copies of what the sources it taps send (see [`SourceConfig::taps`]), if it taps any.
    pub taps: Option<Arc<ByteQueue<Batch>>>,
    pub shutdown: Shutdown,
    pub metrics: ComponentMetrics,
    /// The role's pods, for sources that associate senders with them (the agent's; `None`
    /// elsewhere), see [`crate::sources::pod_association`].
    pub pods: Option<Arc<dyn crate::sources::pod_association::PodResolver>>,
}

/// What a sink gets to run with.
pub struct SinkContext {
    pub name: String,
    pub data_dir: PathBuf,
    pub input: Arc<ByteQueue<Batch>>,
    pub shutdown: Shutdown,
    pub metrics: ComponentMetrics,
}

pub trait SourceConfig {
    /// The `type:` of the component, for metrics and logs.
    fn kind(&self) -> &'static str;
    /// The signals it can produce.
    fn signals(&self) -> Signals;
    /// Pure checks; no I/O.
    fn validate(&self, name: &str) -> Result<(), BuildError> {
        let _ = name;
        Ok(())
    }
    /// The sources whose batches this one also receives, outside their delivery (see
    /// [`crate::flow::fanout`]): a source that evaluates what passes, such as the collector's
    /// rules. `None` for ordinary sources.
    fn taps(&self) -> Option<Taps<'_>> {
        None
    }
    fn build(&self, cx: SourceContext) -> Result<Task, BuildError>;
}

/// What a tapping source takes in: from which sources, which signals, into how big a queue.
pub struct Taps<'a> {
    pub sources: &'a [String],
    pub signals: Signals,
    pub max_bytes: usize,
}

pub trait SinkConfig {
    fn kind(&self) -> &'static str;
    /// The signals it sends: the fan-out hands it only these (see [`crate::flow::fanout`]).
    fn signals(&self) -> Signals;
    /// The sources this sink reads.
    fn inputs(&self) -> &[String];
    /// Its input queue's settings.
    fn queue(&self) -> &QueueSettings;
    /// Checks the settings (pure: no I/O) and compiles what the sink runs with (templates,
    /// header values, dimension plans), once: the topology builds the sink, and builds it again
    /// after a panic, from what this returns. `key` is the sink's place in the config
    /// (`collector.sinks.<name>`); an error names the setting under it.
    fn prepare(&self, key: &str) -> Result<Arc<dyn PreparedSink>, BuildError>;
}

/// A sink's checked settings, ready to build.
pub trait PreparedSink: Send + Sync {
    fn build(&self, cx: SinkContext) -> Result<Task, BuildError>;
}

/// A sink's prepared value and the function that builds the sink from it (for a sink with
/// nothing to compile, its config).
pub struct Ready<P> {
    pub prepared: P,
    pub build: fn(&P, SinkContext) -> Result<Task, BuildError>,
}

impl<P: Send + Sync> PreparedSink for Ready<P> {
    fn build(&self, cx: SinkContext) -> Result<Task, BuildError> {
        (self.build)(&self.prepared, cx)
    }
}

/// A role's closed enum of sources: one exhaustive `match` naming the variant's config.
pub trait AsSource {
    fn source(&self) -> &dyn SourceConfig;
}

/// A role's closed enum of sinks.
pub trait AsSink {
    fn sink(&self) -> &dyn SinkConfig;
}

/// `queue:` settings of a sink's input.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QueueSettings {
    /// Bytes the queue may hold before `when_full` applies.
    pub max_bytes: ByteSizeValue,
    pub when_full: WhenFull,
    /// A crash-safe disk buffer behind the queue (see [`crate::buffer`]).
    pub disk: Option<crate::config::disk_buffer::DiskBufferSettings>,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            max_bytes: ByteSizeValue(8 * 1024 * 1024),
            when_full: WhenFull::Block,
            disk: None,
        }
    }
}

/// Implements [`SinkConfig`] for a sink's config struct, which has `inputs` and `queue` fields:
/// `sink_config!(Type, "kind", Signals::LOGS, build = build_fn)` for a sink built from its config
/// as it is, or `prepare = prepare_fn, build = build_fn` (`prepare_fn(&Type, key) -> Result<P, _>`,
/// `build_fn(&P, SinkContext)`).
#[macro_export]
macro_rules! sink_config {
    (@common $kind:literal, $signals:expr) => {
        fn kind(&self) -> &'static str {
            $kind
        }
        fn signals(&self) -> $crate::flow::event::Signals {
            $signals
        }
        fn inputs(&self) -> &[String] {
            &self.inputs
        }
        fn queue(&self) -> &$crate::component::QueueSettings {
            &self.queue
        }
    };
    ($ty:ty, $kind:literal, $signals:expr, build = $build:path) => {
        impl $crate::component::SinkConfig for $ty {
            $crate::sink_config!(@common $kind, $signals);
            fn prepare(&self, _key: &str) -> Result<std::sync::Arc<dyn $crate::component::PreparedSink>, $crate::component::BuildError> {
                Ok(std::sync::Arc::new($crate::component::Ready {
                    prepared: self.clone(),
                    build: $build,
                }))
            }
        }
    };
    ($ty:ty, $kind:literal, $signals:expr, prepare = $prepare:path, build = $build:path) => {
        impl $crate::component::SinkConfig for $ty {
            $crate::sink_config!(@common $kind, $signals);
            fn prepare(&self, key: &str) -> Result<std::sync::Arc<dyn $crate::component::PreparedSink>, $crate::component::BuildError> {
                Ok(std::sync::Arc::new($crate::component::Ready {
                    prepared: $prepare(self, key)?,
                    build: $build,
                }))
            }
        }
    };
}

/// Implements [`SourceConfig`]: `source_config!(Type, "kind", Signals::LOGS, build_fn,
/// validate_fn)`.
#[macro_export]
macro_rules! source_config {
    ($ty:ty, $kind:literal, $signals:expr, $build:path, $validate:path) => {
        impl $crate::component::SourceConfig for $ty {
            fn kind(&self) -> &'static str {
                $kind
            }
            fn signals(&self) -> $crate::flow::event::Signals {
                $signals
            }
            fn validate(&self, name: &str) -> Result<(), $crate::component::BuildError> {
                $validate(self, name)
            }
            fn build(
                &self,
                cx: $crate::component::SourceContext,
            ) -> Result<$crate::component::Task, $crate::component::BuildError> {
                $build(self, cx)
            }
        }
    };
}
