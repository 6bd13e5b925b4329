//! A role's graph of components: sources fan out to the sinks that name them in `inputs`, each
//! sink through its own byte-bounded queue.
//!
//! `Graph::validate` checks the wiring (every input names a source, every sink has an input);
//! `Graph::start` builds and spawns everything; `Running::stop` shuts down in order: sources stop
//! taking input and wait for their acknowledgements, queues close, sinks drain and flush; past the
//! deadline, sinks are aborted and hand back what they hold as failed (sources then checkpoint
//! only what was delivered).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::task::JoinHandle;

use crate::batch::Batch;
use crate::component::{AsSink, AsSource, BuildError, SinkContext, SourceContext};
use crate::fanout::Fanout;
use crate::queue::ByteQueue;
use crate::shutdown::{Shutdown, ShutdownTrigger};
use crate::telemetry::{ComponentMetrics, QueueMetrics};

/// `sources:` and `sinks:` of a role.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Graph<S, K> {
    #[serde(default = "BTreeMap::new")]
    pub sources: BTreeMap<String, S>,
    #[serde(default = "BTreeMap::new")]
    pub sinks: BTreeMap<String, K>,
}

/// A component's health for `/readyz`.
#[derive(Clone)]
pub struct Health {
    pub components: Vec<ComponentMetrics>,
}

impl Health {
    pub fn ready(&self) -> bool {
        self.components.iter().all(ComponentMetrics::is_up)
    }

    pub fn not_ready(&self) -> Vec<String> {
        self.components
            .iter()
            .filter(|c| !c.is_up())
            .map(|c| format!("{} ({})", c.name, c.kind))
            .collect()
    }
}

impl<S: AsSource, K: AsSink> Graph<S, K> {
    /// Checks wiring and each component; pure.
    pub fn validate(&self, role: &str) -> Result<(), BuildError> {
        for (name, source) in &self.sources {
            source.source().validate(name)?;
        }
        for (name, sink) in &self.sinks {
            let sink = sink.sink();
            if sink.inputs().is_empty() {
                return Err(BuildError::invalid(
                    &format!("{role}.sinks.{name}"),
                    "inputs is empty: name at least one source",
                ));
            }
            for input in sink.inputs() {
                if !self.sources.contains_key(input) {
                    let known: Vec<_> = self.sources.keys().cloned().collect();
                    return Err(BuildError::invalid(
                        &format!("{role}.sinks.{name}"),
                        format!(
                            "input {input:?} is not a source of this role (sources: {known:?})"
                        ),
                    ));
                }
            }
            sink.validate(name)?;
        }
        Ok(())
    }

    /// Builds every component and spawns it. Sinks start first, so nothing a source emits waits
    /// on a component that does not exist yet.
    pub fn start(&self, role: &str, data_dir: &Path) -> Result<Running, BuildError> {
        self.validate(role)?;
        let (source_trigger, source_shutdown) = ShutdownTrigger::new();
        let (sink_trigger, sink_shutdown) = ShutdownTrigger::new();
        let mut queues: BTreeMap<&str, Arc<ByteQueue<Batch>>> = BTreeMap::new();
        let mut sink_tasks = Vec::new();
        let mut health = Vec::new();

        for (name, sink) in &self.sinks {
            let sink = sink.sink();
            let q = Arc::new(ByteQueue::new(
                sink.queue().max_bytes.as_usize(),
                sink.queue().when_full,
                QueueMetrics::new(name),
            ));
            queues.insert(name.as_str(), q.clone());
            let metrics = ComponentMetrics::new(name, sink.kind());
            health.push(metrics.clone());
            let cx = SinkContext {
                name: name.clone(),
                data_dir: component_dir(data_dir, role, name)?,
                input: q,
                shutdown: sink_shutdown.clone(),
                metrics,
            };
            let task = sink.build(cx)?;
            sink_tasks.push((name.clone(), tokio::spawn(task)));
        }

        let mut source_tasks = Vec::new();
        for (name, source) in &self.sources {
            let source = source.source();
            let outputs = self
                .sinks
                .iter()
                .filter(|(_, k)| k.sink().inputs().iter().any(|i| i == name))
                .filter_map(|(k, _)| queues.get(k.as_str()).cloned())
                .collect();
            let metrics = ComponentMetrics::new(name, source.kind());
            health.push(metrics.clone());
            let cx = SourceContext {
                name: name.clone(),
                data_dir: component_dir(data_dir, role, name)?,
                out: Fanout::new(outputs),
                shutdown: source_shutdown.clone(),
                metrics,
            };
            let task = source.build(cx)?;
            source_tasks.push((name.clone(), tokio::spawn(task)));
        }

        Ok(Running {
            role: role.to_owned(),
            source_trigger,
            sink_trigger,
            sink_shutdown,
            queues: queues.into_values().collect(),
            source_tasks,
            sink_tasks,
            health: Health { components: health },
        })
    }
}

fn component_dir(
    data_dir: &Path,
    role: &str,
    name: &str,
) -> Result<std::path::PathBuf, BuildError> {
    let dir = data_dir.join(role).join(name);
    std::fs::create_dir_all(&dir).map_err(|e| BuildError::io(name, e))?;
    Ok(dir)
}

/// A started graph.
pub struct Running {
    role: String,
    source_trigger: ShutdownTrigger,
    sink_trigger: ShutdownTrigger,
    sink_shutdown: Shutdown,
    queues: Vec<Arc<ByteQueue<Batch>>>,
    source_tasks: Vec<(String, JoinHandle<()>)>,
    sink_tasks: Vec<(String, JoinHandle<()>)>,
    health: Health,
}

impl Running {
    pub fn health(&self) -> Health {
        self.health.clone()
    }

    /// Resolves if any component's task ends on its own (which only happens on a bug: components
    /// never exit on errors), so the process can log it.
    pub fn is_aborted(&self) -> bool {
        self.sink_shutdown.is_aborted()
    }

    /// Orderly shutdown within `deadline`; see the module doc.
    pub async fn stop(self, deadline: Duration) {
        let started = tokio::time::Instant::now();
        let until = started + deadline;
        tracing::info!(role = %self.role, ?deadline, "stopping: sources first, then draining sinks");
        self.source_trigger.stop();
        let mut late_sources = Vec::new();
        for (name, mut task) in self.source_tasks {
            if tokio::time::timeout_at(until, &mut task).await.is_err() {
                tracing::warn!(role = %self.role, source = %name, "source did not finish before the drain deadline");
                late_sources.push((name, task));
            }
        }
        for q in &self.queues {
            q.close();
        }
        self.sink_trigger.stop();
        let mut pending = Vec::new();
        for (name, mut task) in self.sink_tasks {
            match tokio::time::timeout_at(until, &mut task).await {
                Ok(_) => {}
                Err(_) => pending.push((name, task)),
            }
        }
        if !pending.is_empty() || !late_sources.is_empty() {
            tracing::warn!(role = %self.role, "drain deadline passed: aborting; undelivered batches will be resent after restart");
            self.sink_trigger.abort();
            // Sources finish once their in-flight batches resolve (as failed), writing their
            // checkpoints last.
            for (name, task) in pending.into_iter().chain(late_sources) {
                if tokio::time::timeout(Duration::from_secs(5), wait(&name, task))
                    .await
                    .is_err()
                {
                    tracing::error!(role = %self.role, sink = %name, "sink did not stop after abort");
                }
            }
        }
        tracing::info!(role = %self.role, elapsed = ?started.elapsed(), "stopped");
    }
}

async fn wait(name: &str, task: JoinHandle<()>) {
    if let Err(e) = task.await {
        tracing::error!(component = %name, error = %e, "component task failed");
    }
}
