//! A role's graph of components: sources fan out to the sinks that name them in `inputs`, each
//! sink through its own byte-bounded queue.
//!
//! - `Graph::validate` checks the wiring (every input names a source, every sink has an input
//!   that can produce a signal it sends, every source is read by a sink) and each component,
//!   without I/O.
//! - Signals are routed, not filtered: a source's fan-out hands each sink only the signals it
//!   declares, before its queue or disk buffer.
//! - `Running::start` builds and spawns everything (sinks first, so nothing a source emits waits
//!   on a component that does not exist yet).
//! - `Running::reload` applies a new graph: components whose config is unchanged keep running;
//!   changed and new sinks are built first and the sources' fan-outs switched to them, then old
//!   sinks drain their queues and stop; changed sources stop (waiting for what they have in
//!   flight and writing their checkpoints) and start again with the new config. A new graph that
//!   does not validate or build is refused and the old one keeps running.
//! - A sink without `queue.disk` in a process with a memory hard limit (`spill` of `start`) gets
//!   the disk buffer stage in [`crate::buffer::Mode::Spill`] in `<data_dir>/<role>/<sink>/spill`
//!   (also when that directory holds data from an earlier run, so that nothing spilled is left
//!   behind); its memory queue is split between the stage's input and the sink's own queue.
//! - `Running::stop` shuts down in order: sources stop taking input and wait for their
//!   acknowledgements, queues close, sinks drain and flush; past the deadline, sinks are aborted
//!   and hand back what they hold as failed (sources then checkpoint only what was delivered).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::buffer::{DiskBufferSettings, Mode};
use crate::component::{AsSink, AsSource, BuildError, PreparedSink, SinkContext, SourceContext};
use crate::flow::batch::Batch;
use crate::flow::event::Signals;
use crate::flow::fanout::{Fanout, Output, Tap};
use crate::flow::queue::{ByteQueue, WhenFull};
use crate::shutdown::ShutdownTrigger;
use crate::sources::pod_association::PodResolver;
use crate::telemetry::{ComponentMetrics, QueueMetrics};

/// `sources:` and `sinks:` of a role.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Graph<S, K> {
    #[serde(default = "BTreeMap::new")]
    pub sources: BTreeMap<String, S>,
    #[serde(default = "BTreeMap::new")]
    pub sinks: BTreeMap<String, K>,
}

impl<S, K> Default for Graph<S, K> {
    fn default() -> Self {
        Self {
            sources: BTreeMap::new(),
            sinks: BTreeMap::new(),
        }
    }
}

/// The components of the running graphs, for `/readyz`; shared, updated on reload.
#[derive(Clone, Default)]
pub struct Health {
    components: Arc<RwLock<BTreeMap<String, ComponentMetrics>>>,
}

impl Health {
    pub fn ready(&self) -> bool {
        !self.is_empty() && self.not_ready().is_empty()
    }

    /// No component registered yet (still starting).
    pub fn is_empty(&self) -> bool {
        self.components.read().map(|c| c.is_empty()).unwrap_or(true)
    }

    pub fn not_ready(&self) -> Vec<String> {
        self.components
            .read()
            .map(|c| {
                c.values()
                    .filter(|m| !m.is_up() || m.is_unhealthy())
                    .map(|m| {
                        if m.is_unhealthy() {
                            format!("{} ({}: health check failing)", m.name, m.kind)
                        } else {
                            format!("{} ({})", m.name, m.kind)
                        }
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn set(&self, key: String, m: Option<ComponentMetrics>) {
        if let Ok(mut c) = self.components.write() {
            match m {
                Some(m) => c.insert(key, m),
                None => c.remove(&key),
            };
        }
    }
}

impl<S: AsSource, K: AsSink> Graph<S, K> {
    /// Checks wiring and each component, and prepares each sink; pure. Errors name the key
    /// (`collector.sinks.<name>.<setting>`).
    pub fn validate(&self, role: &str) -> Result<Prepared, BuildError> {
        for (name, source) in &self.sources {
            source
                .source()
                .validate(&format!("{role}.sources.{name}"))?;
            for tapped in source.source().taps().map_or(&[][..], |t| t.sources) {
                if tapped == name || !self.sources.contains_key(tapped) {
                    let known: Vec<_> = self
                        .sources
                        .keys()
                        .filter(|k| *k != name)
                        .cloned()
                        .collect();
                    return Err(BuildError::invalid(
                        &format!("{role}.sources.{name}"),
                        format!("input {tapped:?} is not another source of this role (sources: {known:?})"),
                    ));
                }
            }
        }
        let mut prepared = Prepared::default();
        for (name, sink) in &self.sinks {
            let sink = sink.sink();
            if sink.inputs().is_empty() {
                return Err(BuildError::invalid(
                    &format!("{role}.sinks.{name}"),
                    "inputs is empty: name at least one source",
                ));
            }
            let mut produced = Signals::NONE;
            for input in sink.inputs() {
                let Some(source) = self.sources.get(input) else {
                    let known: Vec<_> = self.sources.keys().cloned().collect();
                    return Err(BuildError::invalid(
                        &format!("{role}.sinks.{name}"),
                        format!(
                            "input {input:?} is not a source of this role (sources: {known:?})"
                        ),
                    ));
                };
                produced = produced.union(source.source().signals());
            }
            if !produced.intersects(sink.signals()) {
                return Err(BuildError::invalid(
                    &format!("{role}.sinks.{name}"),
                    format!(
                        "sink of type {} sends {}, and its inputs {:?} produce only {produced}",
                        sink.kind(),
                        sink.signals(),
                        sink.inputs()
                    ),
                ));
            }
            if let Some(disk) = &sink.queue().disk {
                disk.validate(&format!("{role}.sinks.{name}.queue.disk"))?;
            }
            let ready = sink.prepare(&format!("{role}.sinks.{name}"))?;
            prepared.sinks.insert(name.clone(), ready);
        }
        // A source nobody reads would take input (and checkpoint it) for nowhere. A tap reads
        // too, but only the sinks deliver: a source only tapped still needs a sink.
        for name in self.sources.keys() {
            let read = self
                .sinks
                .values()
                .any(|k| k.sink().inputs().iter().any(|i| i == name));
            if !read {
                return Err(BuildError::invalid(
                    &format!("{role}.sources.{name}"),
                    "no sink reads this source: name it in a sink's inputs, or remove it",
                ));
            }
        }
        Ok(prepared)
    }
}

/// What [`Graph::validate`] made of each sink's settings: built from, never checked again.
#[derive(Default)]
pub struct Prepared {
    sinks: BTreeMap<String, Arc<dyn PreparedSink>>,
}

struct SourceRun<S> {
    config: S,
    trigger: ShutdownTrigger,
    task: JoinHandle<()>,
    out: Fanout,
    /// Its input from the sources it taps, if it taps any.
    tap: Option<Tap>,
}

struct SinkRun<K> {
    config: K,
    queue: Arc<ByteQueue<Batch>>,
    trigger: ShutdownTrigger,
    task: JoinHandle<()>,
}

/// What a reload changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadSummary {
    pub added: Vec<String>,
    pub rebuilt: Vec<String>,
    pub removed: Vec<String>,
    pub unchanged: usize,
    /// Components whose new config failed to build, with why; they run on their old config
    /// where there was one.
    pub failed: Vec<String>,
}

/// A started graph.
pub struct Running<S, K> {
    role: String,
    data_dir: PathBuf,
    sources: BTreeMap<String, SourceRun<S>>,
    sinks: BTreeMap<String, SinkRun<K>>,
    health: Health,
    /// Settings of the spill buffers of sinks without `queue.disk` (with a memory hard limit).
    spill: Option<DiskBufferSettings>,
    /// The first wait before a panicked component is restarted (`None`: the supervisor's own).
    restart_delay: Option<Duration>,
    /// The role's pods for the sources (the agent's), see [`SourceContext::pods`].
    pods: Option<Arc<dyn PodResolver>>,
}

/// What the queue in front of a disk stage admits while the process spills: a few batches, so
/// that the stage stays busy while sources wait for the disk.
const SPILL_WINDOW_BYTES: usize = 4 << 20;

/// Whether `dir` holds a non-empty segment file (a spill buffer left by an earlier run).
fn holds_records(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.path().extension().is_some_and(|x| x == "seg")
                && e.metadata().is_ok_and(|m| m.len() > 0)
        })
    })
}

fn component_dir(data_dir: &Path, role: &str, name: &str) -> Result<PathBuf, BuildError> {
    let dir = data_dir.join(role).join(name);
    std::fs::create_dir_all(&dir).map_err(|e| BuildError::io(name, e))?;
    Ok(dir)
}

impl<
        S: AsSource + Clone + PartialEq + Send + Sync + 'static,
        K: AsSink + Clone + PartialEq + Send + Sync + 'static,
    > Running<S, K>
{
    /// Builds and spawns `graph`; `spill` are the spill buffers' settings when the process has
    /// a memory hard limit.
    pub async fn start(
        graph: &Graph<S, K>,
        role: &str,
        data_dir: &Path,
        health: Health,
        spill: Option<DiskBufferSettings>,
    ) -> Result<Self, BuildError> {
        Self::start_with_pods(graph, role, data_dir, health, spill, None).await
    }

    /// [`Running::start`], with `pods` for the sources that associate senders with pods.
    pub async fn start_with_pods(
        graph: &Graph<S, K>,
        role: &str,
        data_dir: &Path,
        health: Health,
        spill: Option<DiskBufferSettings>,
        pods: Option<Arc<dyn PodResolver>>,
    ) -> Result<Self, BuildError> {
        let mut running = Running {
            role: role.to_owned(),
            data_dir: data_dir.to_owned(),
            sources: BTreeMap::new(),
            sinks: BTreeMap::new(),
            health,
            spill,
            restart_delay: None,
            pods,
        };
        let summary = running.reload(graph, Duration::from_secs(30)).await?;
        if !summary.failed.is_empty() {
            return Err(BuildError::invalid(role, summary.failed.join("; ")));
        }
        Ok(running)
    }

    fn health_key(&self, kind: &str, name: &str) -> String {
        format!("{}.{kind}.{name}", self.role)
    }

    fn build_sink(
        &self,
        name: &str,
        config: &K,
        prepared: Arc<dyn PreparedSink>,
    ) -> Result<SinkRun<K>, BuildError> {
        let sink = config.sink();
        let metrics = ComponentMetrics::new(&self.role, name, sink.kind());
        let (trigger, shutdown) = ShutdownTrigger::new();
        let data_dir = component_dir(&self.data_dir, &self.role, name)?;
        let max_bytes = sink.queue().max_bytes.as_usize();
        // With a disk buffer (or a spill buffer), the sink reads what the stage hands it,
        // through a second queue; without, straight from its input queue.
        let stage = match &sink.queue().disk {
            Some(disk) => Some((disk.clone(), data_dir.join("buffer"), Mode::Always)),
            None => {
                let dir = data_dir.join("spill");
                let settings = self
                    .spill
                    .clone()
                    .or_else(|| holds_records(&dir).then(DiskBufferSettings::default));
                settings.map(|settings| (settings, dir, Mode::Spill))
            }
        };
        // Spilling splits the memory bound: a little for the sink's own queue (enough to keep
        // it busy), the rest in front of the stage, where it drains to disk when spilling.
        let (input_bytes, to_sink_bytes) = match stage {
            Some((_, _, Mode::Spill)) => {
                let to_sink = (max_bytes / 4).min(4 << 20);
                (max_bytes - to_sink, to_sink)
            }
            _ => (max_bytes, max_bytes),
        };
        let mut queue = ByteQueue::new(
            input_bytes,
            sink.queue().when_full,
            QueueMetrics::new(&self.role, name),
        );
        if stage.is_some() {
            queue = queue.with_spill_window(SPILL_WINDOW_BYTES);
        }
        let queue = Arc::new(queue);
        let to_sink = stage.as_ref().map(|_| {
            Arc::new(ByteQueue::new(
                to_sink_bytes,
                WhenFull::Block,
                QueueMetrics::detached(),
            ))
        });
        let sink_input = to_sink.clone().unwrap_or_else(|| queue.clone());
        let context = {
            let (name, data_dir, shutdown, metrics) = (
                name.to_owned(),
                data_dir.clone(),
                shutdown.clone(),
                metrics.clone(),
            );
            move || SinkContext {
                name: name.clone(),
                data_dir: data_dir.clone(),
                input: sink_input.clone(),
                shutdown: shutdown.clone(),
                metrics: metrics.clone(),
            }
        };
        let first = prepared.build(context())?;
        let sink_task = {
            crate::runtime::supervise::supervise(
                first,
                move || prepared.build(context()),
                metrics.clone(),
                shutdown.clone(),
                self.restart_delay,
            )
        };
        let buffer = match (stage, to_sink) {
            (Some((settings, dir, mode)), Some(to_sink)) => Some(crate::buffer::spawn(
                &settings,
                &dir,
                queue.clone(),
                to_sink,
                metrics.clone(),
                shutdown,
                mode,
            )?),
            _ => None,
        };
        let task = tokio::spawn(async move {
            let sink = tokio::spawn(sink_task);
            if let Some(stage) = buffer {
                let _ = stage.await;
            }
            let _ = sink.await;
        });
        self.health
            .set(self.health_key("sinks", name), Some(metrics));
        Ok(SinkRun {
            config: config.clone(),
            queue,
            trigger,
            task,
        })
    }

    fn build_source(&self, name: &str, config: &S) -> Result<SourceRun<S>, BuildError> {
        let source = config.source();
        let metrics = ComponentMetrics::new(&self.role, name, source.kind());
        let (trigger, shutdown) = ShutdownTrigger::new();
        let out = Fanout::routed(self.outputs_of(name));
        out.set_taps(self.taps_of(name));
        let tap = source.taps().map(|taps| Tap {
            signals: taps.signals,
            queue: Arc::new(ByteQueue::new(
                taps.max_bytes,
                WhenFull::DropNewest,
                QueueMetrics::new(&self.role, name),
            )),
            metrics: metrics.clone(),
        });
        let context = {
            let (name, data_dir, out, metrics) = (
                name.to_owned(),
                component_dir(&self.data_dir, &self.role, name)?,
                out.clone(),
                metrics.clone(),
            );
            let shutdown = shutdown.clone();
            let tap_queue = tap.as_ref().map(|t| t.queue.clone());
            let pods = self.pods.clone();
            move || SourceContext {
                name: name.clone(),
                data_dir: data_dir.clone(),
                out: out.clone(),
                taps: tap_queue.clone(),
                shutdown: shutdown.clone(),
                metrics: metrics.clone(),
                pods: pods.clone(),
            }
        };
        let first = source.build(context())?;
        let rebuild = {
            let config = config.clone();
            move || config.source().build(context())
        };
        let task = tokio::spawn(crate::runtime::supervise::supervise(
            first,
            rebuild,
            metrics.clone(),
            shutdown,
            self.restart_delay,
        ));
        self.health
            .set(self.health_key("sources", name), Some(metrics));
        Ok(SourceRun {
            config: config.clone(),
            trigger,
            task,
            out,
            tap,
        })
    }

    /// The inputs of the running sources that tap `source`.
    fn taps_of(&self, source: &str) -> Vec<Tap> {
        self.sources
            .values()
            .filter(|run| {
                run.config
                    .source()
                    .taps()
                    .is_some_and(|t| t.sources.iter().any(|s| s == source))
            })
            .filter_map(|run| run.tap.clone())
            .collect()
    }

    /// The queues of the running sinks that read `source`, with the signals each takes.
    fn outputs_of(&self, source: &str) -> Vec<Output> {
        self.sinks
            .values()
            .filter(|k| k.config.sink().inputs().iter().any(|i| i == source))
            .map(|k| Output {
                signals: k.config.sink().signals(),
                queue: k.queue.clone(),
            })
            .collect()
    }

    /// Points every running source's fan-out at the queues of the sinks that read it.
    fn rewire(&self) {
        for (name, source) in &self.sources {
            source.out.set_outputs(self.outputs_of(name));
            source.out.set_taps(self.taps_of(name));
        }
    }

    /// Applies `graph`; see the module doc. On error the previous graph keeps running.
    pub async fn reload(
        &mut self,
        graph: &Graph<S, K>,
        deadline: Duration,
    ) -> Result<ReloadSummary, BuildError> {
        let prepared = graph.validate(&self.role)?;
        let mut summary = ReloadSummary::default();

        // 1. New and changed sinks, built beside the old ones.
        let mut fresh_sinks: BTreeMap<String, SinkRun<K>> = BTreeMap::new();
        for (name, config) in &graph.sinks {
            if self
                .sinks
                .get(name)
                .is_some_and(|old| old.config == *config)
            {
                continue;
            }
            let Some(ready) = prepared.sinks.get(name) else {
                continue;
            };
            match self.build_sink(name, config, ready.clone()) {
                Ok(run) => {
                    fresh_sinks.insert(name.clone(), run);
                }
                Err(e) => {
                    for (_, run) in fresh_sinks {
                        run.queue.close();
                        run.trigger.abort();
                    }
                    return Err(e);
                }
            }
        }

        // 2. Sources that changed or went away stop first (a listener frees its port; a file
        //    source waits for its in-flight batches and writes its checkpoints).
        let until = Instant::now() + deadline;
        let stale: Vec<String> = self
            .sources
            .iter()
            .filter(|(name, run)| graph.sources.get(*name) != Some(&run.config))
            .map(|(name, _)| name.clone())
            .collect();
        let mut previous: BTreeMap<String, S> = BTreeMap::new();
        for name in &stale {
            if let Some(run) = self.sources.remove(name) {
                previous.insert(name.clone(), run.config.clone());
                if let Some(tap) = &run.tap {
                    tap.queue.close();
                }
                run.trigger.stop();
                if tokio::time::timeout_at(until, run.task).await.is_err() {
                    tracing::warn!(role = %self.role, source = %name, "source did not stop before the deadline");
                }
                self.health.set(self.health_key("sources", name), None);
                if graph.sources.contains_key(name) {
                    summary.rebuilt.push(name.clone());
                } else {
                    summary.removed.push(name.clone());
                }
            }
        }

        // 3. The new set of sinks replaces the old; running sources switch to it.
        let mut retired = Vec::new();
        let fresh_count = fresh_sinks.len();
        for (name, run) in fresh_sinks {
            if let Some(old) = self.sinks.insert(name.clone(), run) {
                retired.push((name.clone(), old));
                summary.rebuilt.push(name);
            } else {
                summary.added.push(name);
            }
        }
        let gone: Vec<String> = self
            .sinks
            .keys()
            .filter(|n| !graph.sinks.contains_key(*n))
            .cloned()
            .collect();
        for name in gone {
            if let Some(old) = self.sinks.remove(&name) {
                self.health.set(self.health_key("sinks", &name), None);
                retired.push((name.clone(), old));
                summary.removed.push(name);
            }
        }
        summary.unchanged += graph.sinks.len() - fresh_count;
        self.rewire();

        // 4. New and changed sources, spawned already wired to their sinks (a source that
        //    emitted before it was wired would find nobody to deliver to).
        for (name, config) in &graph.sources {
            if self.sources.contains_key(name) {
                summary.unchanged += 1;
                continue;
            }
            let run = match self.build_source(name, config) {
                Ok(run) => run,
                Err(e) => {
                    summary.failed.push(e.to_string());
                    // Put the old one back rather than leave a hole.
                    match previous.get(name).map(|old| self.build_source(name, old)) {
                        Some(Ok(run)) => run,
                        Some(Err(e)) => {
                            summary
                                .failed
                                .push(format!("restoring the previous config: {e}"));
                            continue;
                        }
                        None => continue,
                    }
                }
            };
            if !summary.rebuilt.contains(name) {
                summary.added.push(name.clone());
            }
            self.sources.insert(name.clone(), run);
        }

        // New tapping sources' inputs reach the sources they tap.
        self.rewire();

        // 5. Retire the old sinks: they drain what their queues hold and stop.
        for (_name, old) in retired {
            old.queue.close();
            old.trigger.stop();
            let mut task = old.task;
            if tokio::time::timeout_at(until, &mut task).await.is_err() {
                old.trigger.abort();
                let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
            }
        }
        Ok(summary)
    }

    /// Orderly shutdown within `deadline`; see the module doc.
    pub async fn stop(self, deadline: Duration) {
        let started = Instant::now();
        let until = started + deadline;
        tracing::info!(role = %self.role, ?deadline, "stopping: sources first, then draining sinks");
        for run in self.sources.values() {
            run.trigger.stop();
        }
        let mut late_sources = Vec::new();
        for (name, mut run) in self.sources {
            if tokio::time::timeout_at(until, &mut run.task).await.is_err() {
                tracing::warn!(role = %self.role, source = %name, "source did not finish before the drain deadline");
                late_sources.push((name, run.task));
            }
        }
        for run in self.sinks.values() {
            run.queue.close();
            run.trigger.stop();
        }
        let mut triggers = Vec::new();
        let mut pending = Vec::new();
        for (name, mut run) in self.sinks {
            if tokio::time::timeout_at(until, &mut run.task).await.is_err() {
                pending.push((name, run.task));
            }
            triggers.push(run.trigger);
        }
        if !pending.is_empty() || !late_sources.is_empty() {
            tracing::warn!(role = %self.role, "drain deadline passed: aborting; undelivered batches will be resent after restart");
            for t in &triggers {
                t.abort();
            }
            // Sources finish once their in-flight batches resolve (as failed), writing their
            // checkpoints last.
            for (name, task) in pending.into_iter().chain(late_sources) {
                if tokio::time::timeout(Duration::from_secs(5), task)
                    .await
                    .is_err()
                {
                    tracing::error!(role = %self.role, component = %name, "component did not stop after abort");
                }
            }
        }
        tracing::info!(role = %self.role, elapsed = ?started.elapsed(), "stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::{SinkConfig, SourceConfig, Task};
    use crate::flow::ack::{Ack, AckStatus, Acks};
    use crate::flow::event::LogEvent;
    use crate::sinks::blackhole::BlackholeSinkConfig;
    use std::sync::Mutex;

    /// A source that emits its batches the moment it is spawned, and records their acks.
    #[derive(Clone, Debug)]
    struct Burst {
        batches: usize,
        seen: Arc<Mutex<Vec<AckStatus>>>,
    }

    impl Burst {
        fn new(batches: usize) -> Self {
            Self {
                batches,
                seen: Arc::default(),
            }
        }
    }

    /// Two bursts are the same config only if they are the same instance.
    impl PartialEq for Burst {
        fn eq(&self, other: &Self) -> bool {
            Arc::ptr_eq(&self.seen, &other.seen)
        }
    }

    impl SourceConfig for Burst {
        fn kind(&self) -> &'static str {
            "burst"
        }
        fn signals(&self) -> crate::flow::event::Signals {
            crate::flow::event::Signals::LOGS
        }
        fn build(&self, cx: SourceContext) -> Result<Task, BuildError> {
            let (n, seen) = (self.batches, self.seen.clone());
            Ok(Box::pin(async move {
                for _ in 0..n {
                    let seen = seen.clone();
                    let share = Ack::new(move |s| seen.lock().unwrap().push(s));
                    cx.out
                        .send(crate::flow::batch::Batch::logs(
                            vec![LogEvent::default()],
                            Acks::one(share),
                        ))
                        .await;
                }
                cx.shutdown.stopped().await;
            }))
        }
    }

    impl AsSource for Burst {
        fn source(&self) -> &dyn SourceConfig {
            self
        }
    }

    impl AsSink for BlackholeSinkConfig {
        fn sink(&self) -> &dyn SinkConfig {
            self
        }
    }

    fn graph(burst: &Burst, sink: &str) -> Graph<Burst, BlackholeSinkConfig> {
        let mut g = Graph::default();
        g.sources.insert("burst".into(), burst.clone());
        g.sinks.insert(
            sink.into(),
            BlackholeSinkConfig {
                inputs: vec!["burst".into()],
                batch: Default::default(),
                queue: Default::default(),
            },
        );
        g
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn what_a_source_emits_the_moment_it_starts_is_delivered() {
        delivers_a_burst("topology_test_sink", None).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_a_hard_limit_a_sink_gets_a_spill_stage_that_delivers_from_memory() {
        let dir =
            delivers_a_burst("topology_test_spill", Some(DiskBufferSettings::default())).await;
        let spill = dir.path().join("agent/topology_test_spill/spill");
        assert!(spill.is_dir(), "the spill buffer's directory");
        assert!(!holds_records(&spill), "nothing spilled under the limit");
    }

    /// Runs a graph of a 50-event burst into sink `name`; asserts every event delivered once.
    async fn delivers_a_burst(name: &str, spill: Option<DiskBufferSettings>) -> tempfile::TempDir {
        let burst = Burst::new(50);
        let dir = tempfile::tempdir().unwrap();
        let running = Running::start(
            &graph(&burst, name),
            "agent",
            dir.path(),
            Health::default(),
            spill,
        )
        .await
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while burst.seen.lock().unwrap().len() < 50 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            *burst.seen.lock().unwrap(),
            vec![AckStatus::Delivered; 50],
            "delivered to the sink, not to nobody"
        );
        let metrics = ComponentMetrics::new("agent", name, "blackhole");
        assert_eq!(metrics.sent_events.get(), 50);
        assert_eq!(metrics.spilled_events.get(), 0);
        running.stop(Duration::from_secs(5)).await;
        dir
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rebuilt_source_is_wired_before_it_emits() {
        let dir = tempfile::tempdir().unwrap();
        let first = Burst::new(0);
        let mut running = Running::start(
            &graph(&first, "topology_test_reload"),
            "agent",
            dir.path(),
            Health::default(),
            None,
        )
        .await
        .unwrap();
        let second = Burst::new(30);
        let summary = running
            .reload(
                &graph(&second, "topology_test_reload"),
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        assert_eq!(summary.rebuilt, vec!["burst".to_string()]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while second.seen.lock().unwrap().len() < 30 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(*second.seen.lock().unwrap(), vec![AckStatus::Delivered; 30]);
        running.stop(Duration::from_secs(5)).await;
    }

    /// A source that sends batches `0..n` (one event each, its index as the body) one at a time
    /// and sends a batch again until it is delivered, as a file source re-reads.
    #[derive(Clone)]
    struct Resender {
        n: usize,
    }

    impl PartialEq for Resender {
        fn eq(&self, other: &Self) -> bool {
            self.n == other.n
        }
    }

    impl SourceConfig for Resender {
        fn kind(&self) -> &'static str {
            "resender"
        }
        fn signals(&self) -> crate::flow::event::Signals {
            crate::flow::event::Signals::LOGS
        }
        fn build(&self, cx: SourceContext) -> Result<Task, BuildError> {
            let n = self.n;
            Ok(Box::pin(async move {
                cx.metrics.set_up(true);
                for i in 0..n {
                    loop {
                        let (share, rx) = Ack::channel();
                        let event = LogEvent {
                            body: i.to_string().into(),
                            ..Default::default()
                        };
                        cx.out
                            .send(crate::flow::batch::Batch::logs(
                                vec![event],
                                Acks::one(share),
                            ))
                            .await;
                        if rx.await == Ok(AckStatus::Delivered) {
                            break;
                        }
                    }
                }
                cx.shutdown.stopped().await;
            }))
        }
    }

    impl AsSource for Resender {
        fn source(&self) -> &dyn SourceConfig {
            self
        }
    }

    /// A sink that records what it delivers and panics (once) on the batch holding `panic_at`.
    #[derive(Clone)]
    struct Panicky {
        inputs: Vec<String>,
        queue: crate::component::QueueSettings,
        panic_at: String,
        panicked: Arc<std::sync::atomic::AtomicBool>,
        delivered: Arc<Mutex<Vec<String>>>,
    }

    impl PartialEq for Panicky {
        fn eq(&self, other: &Self) -> bool {
            Arc::ptr_eq(&self.delivered, &other.delivered)
        }
    }

    impl SinkConfig for Panicky {
        fn kind(&self) -> &'static str {
            "panicky"
        }
        fn signals(&self) -> crate::flow::event::Signals {
            crate::flow::event::Signals::LOGS
        }
        fn inputs(&self) -> &[String] {
            &self.inputs
        }
        fn queue(&self) -> &crate::component::QueueSettings {
            &self.queue
        }
        fn prepare(&self, _key: &str) -> Result<Arc<dyn PreparedSink>, BuildError> {
            Ok(Arc::new(self.clone()))
        }
    }

    impl PreparedSink for Panicky {
        #[allow(clippy::panic)] // the failure under test
        fn build(&self, cx: SinkContext) -> Result<Task, BuildError> {
            let this = self.clone();
            Ok(Box::pin(async move {
                cx.metrics.set_up(true);
                while let Some(b) = cx.input.pop().await {
                    let crate::flow::event::Events::Logs(logs) = &b.events else {
                        continue;
                    };
                    let bodies: Vec<String> =
                        logs.iter().map(|e| e.body.to_text().into_owned()).collect();
                    if bodies.contains(&this.panic_at)
                        && !this
                            .panicked
                            .swap(true, std::sync::atomic::Ordering::SeqCst)
                    {
                        panic!("the chosen batch");
                    }
                    this.delivered.lock().unwrap().extend(bodies);
                    b.acks.deliver();
                }
            }))
        }
    }

    impl AsSink for Panicky {
        fn sink(&self) -> &dyn SinkConfig {
            self
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sink_that_panics_is_restarted_and_nothing_it_held_is_lost() {
        let sink = Panicky {
            inputs: vec!["resender".into()],
            queue: Default::default(),
            panic_at: "7".into(),
            panicked: Arc::default(),
            delivered: Arc::default(),
        };
        let mut g: Graph<Resender, Panicky> = Graph::default();
        g.sources.insert("resender".into(), Resender { n: 20 });
        g.sinks.insert("topology_test_panicky".into(), sink.clone());
        let dir = tempfile::tempdir().unwrap();
        let health = Health::default();
        let running = Running::start(&g, "agent", dir.path(), health.clone(), None)
            .await
            .unwrap();
        // While it waits to restart, /readyz fails and names it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sink.panicked.load(std::sync::atomic::Ordering::SeqCst) && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The supervisor sees the panic once it has unwound (a backtrace may take a while on a
        // loaded machine); the restart waits a second after that.
        while health.ready() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(!health.ready());
        assert_eq!(
            health.not_ready(),
            vec!["topology_test_panicky (panicky)".to_owned()]
        );
        while sink.delivered.lock().unwrap().len() < 20 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut delivered = sink.delivered.lock().unwrap().clone();
        delivered.sort_by_key(|b| b.parse::<usize>().unwrap_or(0));
        let want: Vec<String> = (0..20).map(|i| i.to_string()).collect();
        assert_eq!(
            delivered, want,
            "every batch, the one it panicked on included, once"
        );
        assert!(health.ready(), "up again after the restart");
        let text = crate::telemetry::render();
        assert!(
            text.contains(r#"sextant_component_restarts_total{component="topology_test_panicky",kind="panicky",role="agent"} 1"#),
            "{text}"
        );
        running.stop(Duration::from_secs(5)).await;
    }
}
