//! `sextant`: one binary for both roles. Parses the command line, loads the config, and hands
//! over to the libraries; nothing else lives here.

mod config;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::{Parser, Subcommand};

use sextant_agent::config::{AgentSink, AgentSource};
use sextant_agent::kubernetes::pods_by_ip::AgentPods;
use sextant_collector::config::{CollectorSink, CollectorSource};
use sextant_pipeline::runtime::admin;
use sextant_pipeline::runtime::logging::{self, LogFormat};
use sextant_pipeline::runtime::topology::{Graph, Health, Running};
use sextant_pipeline::shutdown::ShutdownTrigger;
use sextant_pipeline::sources::pod_association::PodResolver;

use config::{Config, DEFAULT_CONFIG};

/// mimalloc rather than glibc's malloc: events are built on the tailer's thread and freed on the
/// sinks' threads, the pattern where glibc's arenas contend and consolidate (it was the largest
/// cost in a profile of the agent path); mimalloc frees across threads without a lock.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Returns what the calling thread's mimalloc heap holds free to the OS. mimalloc keeps freed
/// pages per thread and purges them only when that thread allocates again, so a paused tailer
/// (whose events the sinks freed) would keep them resident; under memory pressure the pipeline
/// calls this from threads about to idle (see `sextant_pipeline::memory::give_back`).
/// The C allocator is trimmed too: the zstd decoder of compressed OTLP requests takes its
/// window (up to 8 MiB) from it, and glibc keeps freed blocks of that size in its arenas.
#[allow(unsafe_code)] // two FFI calls, no arguments or plain integers, no preconditions
fn give_back_freed_memory() {
    // SAFETY: `mi_collect` only walks the calling thread's own heap; any thread may call it
    // at any time (mimalloc's API guarantees it).
    unsafe { libmimalloc_sys::mi_collect(true) }
    // SAFETY: `malloc_trim` takes the arenas' locks itself and may be called from any thread.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// mimalloc's `mi_option_purge_delay` (its option enum's 16th entry in v2 and v3 alike).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Milliseconds mimalloc keeps freed pages committed before it returns them to the OS. v3 waits
/// a second; on the agent's path every log line is made on the tailer's thread and freed on
/// another at hundreds of thousands a second, so a second's worth of freed pages stayed
/// resident: `hop_e2e` zstd peaked at 49–56 MiB, and at 39–45 MiB with 25 ms, at the same
/// events per CPU-second (0 ms, purging at once, costs about 40% of the throughput).
const PURGE_DELAY_MS: std::ffi::c_long = 25;

/// Sets the purge delay, unless `MIMALLOC_PURGE_DELAY` is in the environment: that one wins.
#[allow(unsafe_code)] // one FFI call with plain integers
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: options may be set from any thread at any time; an unknown value is ignored.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) }
    }
}

#[derive(Parser)]
#[command(
    name = "sextant",
    version,
    about = "Observability agent and collector for EKS"
)]
struct Cli {
    /// Config file (YAML); without it, the embedded default (see `sextant default-config`).
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    /// Reload when the config file changes (as on SIGHUP).
    #[arg(long, global = true)]
    watch_config: bool,
    /// Log format of Sextant's own logs: text or json. Level: SEXTANT_LOG (default info).
    #[arg(long, global = true, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Clone, PartialEq, Eq)]
enum Command {
    /// Run the node agent (the `agent:` section).
    Agent,
    /// Run the collector (the `collector:` section).
    Collector,
    /// Run agent and collector in one process.
    Run,
    /// Check a config file without running it.
    Validate,
    /// Print the embedded default config.
    DefaultConfig,
    /// Run Prometheus rule unit tests (promtool's format); exits 1 when any fails.
    TestRules {
        /// Unit-test files, as `promtool test rules` takes them.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

impl Command {
    fn runs_agent(&self) -> bool {
        matches!(self, Command::Agent | Command::Run)
    }
    fn runs_collector(&self) -> bool {
        matches!(self, Command::Collector | Command::Run)
    }
}

fn load(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    Ok(match path {
        Some(p) => sextant_pipeline::config::load_file(p)?,
        None => sextant_pipeline::config::parse_str(DEFAULT_CONFIG, "(embedded default)")?,
    })
}

/// Loads and checks a config for `command`, without I/O beyond reading the file.
fn load_valid(path: Option<&PathBuf>, command: &Command) -> anyhow::Result<Config> {
    let config = load(path)?;
    if *command == Command::Agent && config.agent.is_none() {
        anyhow::bail!("the config has no `agent:` section");
    }
    if *command == Command::Collector && config.collector.is_none() {
        anyhow::bail!("the config has no `collector:` section");
    }
    if config.agent.is_none() && config.collector.is_none() {
        anyhow::bail!("the config has neither an `agent:` nor a `collector:` section");
    }
    config.memory.validate()?;
    if let Some(g) = &config.agent {
        g.validate("agent")?;
    }
    if let Some(g) = &config.collector {
        g.validate("collector")?;
    }
    Ok(config)
}

type AgentRun = Running<AgentSource, AgentSink>;
type CollectorRun = Running<CollectorSource, CollectorSink>;

/// The running process: its graphs and what it needs to reload them.
struct Process {
    command: Command,
    path: Option<PathBuf>,
    config: Config,
    agent: Option<AgentRun>,
    collector: Option<CollectorRun>,
}

impl Process {
    async fn start(
        command: Command,
        path: Option<PathBuf>,
        config: Config,
        health: &Health,
    ) -> anyhow::Result<Self> {
        // The collector starts first and stops last, so an agent in the same process always has
        // somewhere to deliver while it drains.
        let spill = config.memory.spill().cloned();
        let mut collector = None;
        if command.runs_collector() {
            if let Some(g) = &config.collector {
                let data_dir = &config.data_dir;
                let run = Running::start(g, "collector", data_dir, health.clone(), spill.clone());
                collector = Some(run.await?);
            }
        }
        let mut agent = None;
        if command.runs_agent() {
            if let Some(g) = &config.agent {
                // The agent's sources that receive from applications add the sender's pod.
                let pods: Arc<dyn PodResolver> = Arc::new(AgentPods);
                let run = Running::start_with_pods(
                    g,
                    "agent",
                    &config.data_dir,
                    health.clone(),
                    spill,
                    Some(pods),
                );
                agent = Some(run.await?);
            }
        }
        Ok(Self {
            command,
            path,
            config,
            agent,
            collector,
        })
    }

    /// Re-reads the config and applies what changed; a config that does not validate is refused
    /// and the running one stays.
    async fn reload(&mut self) {
        let new = match load_valid(self.path.as_ref(), &self.command) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "config reload refused; the running config stays");
                return;
            }
        };
        if new.data_dir != self.config.data_dir || new.admin != self.config.admin {
            tracing::warn!("data_dir and admin changes take effect at the next restart");
        }
        let deadline = new.drain_deadline.0;
        if let Some(run) = &mut self.collector {
            report(
                "collector",
                run.reload(
                    new.collector.as_ref().unwrap_or(&Graph::default()),
                    deadline,
                )
                .await,
            );
        }
        if let Some(run) = &mut self.agent {
            report(
                "agent",
                run.reload(new.agent.as_ref().unwrap_or(&Graph::default()), deadline)
                    .await,
            );
        }
        self.config.agent = new.agent;
        self.config.collector = new.collector;
        self.config.drain_deadline = new.drain_deadline;
    }

    async fn stop(self) {
        let deadline = self.config.drain_deadline.0;
        if let Some(a) = self.agent {
            a.stop(deadline).await;
        }
        if let Some(c) = self.collector {
            c.stop(deadline).await;
        }
    }
}

fn report(
    role: &str,
    r: Result<
        sextant_pipeline::runtime::topology::ReloadSummary,
        sextant_pipeline::component::BuildError,
    >,
) {
    match r {
        Ok(s) if s.failed.is_empty() => {
            tracing::info!(role, added = ?s.added, rebuilt = ?s.rebuilt, removed = ?s.removed, unchanged = s.unchanged, "config reloaded")
        }
        Ok(s) => {
            tracing::error!(role, failed = ?s.failed, added = ?s.added, rebuilt = ?s.rebuilt, "config reloaded in part; failed components keep their previous config")
        }
        Err(e) => {
            tracing::error!(role, error = %e, "config reload refused; the running config stays")
        }
    }
}

fn modified(path: Option<&Path>) -> Option<SystemTime> {
    std::fs::metadata(path?).and_then(|m| m.modified()).ok()
}

enum Wake {
    Stop,
    Reload,
}

async fn next_signal(watch: Option<&Path>, last_mtime: &mut Option<SystemTime>) -> Wake {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return Wake::Stop;
    };
    let mut poll = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); return Wake::Stop; }
            _ = int.recv() => { tracing::info!("interrupted: shutting down"); return Wake::Stop; }
            _ = hup.recv() => { tracing::info!("SIGHUP: reloading the config"); return Wake::Reload; }
            _ = poll.tick(), if watch.is_some() => {
                let now = modified(watch);
                if now != *last_mtime {
                    *last_mtime = now;
                    tracing::info!("config file changed: reloading");
                    return Wake::Reload;
                }
            }
        }
    }
}

async fn run(cli: &Cli, config: Config) -> anyhow::Result<()> {
    let health = Health::default();
    let (admin_trigger, admin_shutdown) = ShutdownTrigger::new();
    let memory_shutdown = admin_shutdown.clone();
    let admin_addr = admin::start(&config.admin, health.clone(), admin_shutdown)
        .await
        .with_context(|| format!("admin listener on {}", config.admin.address))?;
    let data_dir = config.data_dir.clone();
    // Stops with the admin listener, after everything else.
    tokio::spawn(sextant_pipeline::memory::watch(
        config.memory.clone(),
        memory_shutdown,
    ));
    let mut process =
        Process::start(cli.command.clone(), cli.config.clone(), config, &health).await?;
    tracing::info!(
        admin = %format!("http://{admin_addr}"),
        data_dir = %data_dir.display(),
        "sextant is running: /metrics, /healthz and /readyz on the admin address; Ctrl-C stops, SIGHUP reloads"
    );
    let watch = if cli.watch_config {
        cli.config.as_deref()
    } else {
        None
    };
    let mut mtime = modified(watch);
    while let Wake::Reload = next_signal(watch, &mut mtime).await {
        process.reload().await;
    }
    process.stop().await;
    admin_trigger.stop();
    Ok(())
}

/// `sextant test-rules`: promtool's output and exit status.
fn test_rules(files: &[PathBuf]) -> ExitCode {
    let mut all_passed = true;
    for file in files {
        let (report, passed) = sextant_rules::unit_test::report(file);
        print!("{report}");
        all_passed &= passed;
    }
    if all_passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    logging::init(cli.log_format);
    if cli.command == Command::DefaultConfig {
        print!("{DEFAULT_CONFIG}");
        return ExitCode::SUCCESS;
    }
    if let Command::TestRules { files } = &cli.command {
        return test_rules(files);
    }
    let result = load_valid(cli.config.as_ref(), &cli.command).and_then(|config| {
        if cli.command == Command::Validate {
            println!("config is valid");
            return Ok(());
        }
        sextant_pipeline::memory::set_give_back(give_back_freed_memory);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("sextant")
            .on_thread_park(sextant_pipeline::memory::give_back_while_pressed)
            .build()
            .context("starting the async runtime")?;
        runtime.block_on(run(&cli, config))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
