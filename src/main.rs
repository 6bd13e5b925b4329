//! `sextant`: one binary for both roles. Parses the command line, loads the config, and hands
//! over to the libraries; nothing else lives here.

mod config;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use sextant_pipeline::admin::{self, Readiness};
use sextant_pipeline::logging::{self, LogFormat};
use sextant_pipeline::shutdown::ShutdownTrigger;
use sextant_pipeline::topology::Running;

use config::{Config, DEFAULT_CONFIG};

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
    /// Log format of Sextant's own logs: text or json. Level: SEXTANT_LOG (default info).
    #[arg(long, global = true, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Clone, Copy, PartialEq, Eq)]
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
}

fn load(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    Ok(match path {
        Some(p) => sextant_pipeline::config::load_file(p)?,
        None => sextant_pipeline::config::parse_str(DEFAULT_CONFIG, "(embedded default)")?,
    })
}

fn validate(config: &Config, command: Command) -> anyhow::Result<()> {
    let want_agent = matches!(command, Command::Agent | Command::Run | Command::Validate);
    let want_collector = matches!(
        command,
        Command::Collector | Command::Run | Command::Validate
    );
    if command == Command::Agent && config.agent.is_none() {
        anyhow::bail!("the config has no `agent:` section");
    }
    if command == Command::Collector && config.collector.is_none() {
        anyhow::bail!("the config has no `collector:` section");
    }
    if config.agent.is_none() && config.collector.is_none() {
        anyhow::bail!("the config has neither an `agent:` nor a `collector:` section");
    }
    if want_agent {
        if let Some(g) = &config.agent {
            g.validate("agent")?;
        }
    }
    if want_collector {
        if let Some(g) = &config.collector {
            g.validate("collector")?;
        }
    }
    Ok(())
}

async fn run(config: Config, command: Command) -> anyhow::Result<()> {
    let readiness = Readiness::default();
    let (admin_trigger, admin_shutdown) = ShutdownTrigger::new();
    let admin_addr = admin::start(&config.admin, readiness.clone(), admin_shutdown)
        .await
        .with_context(|| format!("admin listener on {}", config.admin.address))?;
    // The collector starts first and stops last, so an agent in the same process always has
    // somewhere to deliver while it drains.
    let mut collector: Option<Running> = None;
    if matches!(command, Command::Collector | Command::Run) {
        if let Some(g) = &config.collector {
            let r = g.start("collector", &config.data_dir)?;
            readiness.add(r.health());
            collector = Some(r);
        }
    }
    let mut agent: Option<Running> = None;
    if matches!(command, Command::Agent | Command::Run) {
        if let Some(g) = &config.agent {
            let r = g.start("agent", &config.data_dir)?;
            readiness.add(r.health());
            agent = Some(r);
        }
    }
    tracing::info!(
        admin = %format!("http://{admin_addr}"),
        data_dir = %config.data_dir.display(),
        "sextant is running: /metrics, /healthz and /readyz on the admin address; Ctrl-C stops"
    );
    wait_for_signal().await;
    let deadline = config.drain_deadline.0;
    if let Some(a) = agent {
        a.stop(deadline).await;
    }
    if let Some(c) = collector {
        c.stop(deadline).await;
    }
    admin_trigger.stop();
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); return; }
            _ = int.recv() => { tracing::info!("interrupted: shutting down"); return; }
            _ = hup.recv() => tracing::warn!("SIGHUP: live reload is not implemented yet; restart to apply a new config"),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    if cli.command == Command::DefaultConfig {
        print!("{DEFAULT_CONFIG}");
        return ExitCode::SUCCESS;
    }
    let result = load(cli.config.as_ref()).and_then(|config| {
        validate(&config, cli.command)?;
        if cli.command == Command::Validate {
            println!("config is valid");
            return Ok(());
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("sextant")
            .build()
            .context("starting the async runtime")?;
        runtime.block_on(run(config, cli.command))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
