use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use berth::config::{default_data_dir, Credentials};
use berth::ecs::Ecs;
use berth::store::{Durability, Store};
use berth::wire::App;

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "A self-hosted container platform that speaks the Amazon ECS API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum DurabilityArg {
    /// Commits wait for the disk: acknowledged writes survive a power cut.
    Full,
    /// Commits wait for the OS: acknowledged writes survive a crash of Berth.
    Normal,
}

#[derive(Subcommand)]
enum Command {
    /// Serve every API on one port.
    Server {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:4566")]
        listen: String,
        /// Where Berth keeps its state (default: $BERTH_DATA_DIR, else $XDG_DATA_HOME/berth, else ~/.local/share/berth).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// File of extra access keys: one `ACCESS_KEY SECRET ACCOUNT_ID` per line.
        #[arg(long, env = "BERTH_CREDENTIALS_FILE")]
        credentials_file: Option<PathBuf>,
        /// How long a commit waits before the API answers.
        #[arg(long, value_enum, default_value = "full")]
        durability: DurabilityArg,
        /// Fail any response that emits a field the service model does not declare (for tests).
        #[arg(long, env = "BERTH_STRICT_OUTPUT")]
        strict_output: bool,
    },
    /// Check the prerequisites and say what to fix.
    Doctor {
        #[arg(long, default_value = "127.0.0.1:4566")]
        listen: String,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Server {
            listen,
            data_dir,
            credentials_file,
            durability,
            strict_output,
        } => {
            let data_dir = data_dir.unwrap_or_else(default_data_dir);
            std::fs::create_dir_all(&data_dir)
                .with_context(|| format!("creating data dir {}", data_dir.display()))?;
            let credentials = Credentials::load(credentials_file.as_deref())?;
            let durability = match durability {
                DurabilityArg::Full => Durability::Full,
                DurabilityArg::Normal => Durability::Normal,
            };
            let store = Arc::new(Store::open(&data_dir.join("berth.db"), durability)?);
            let ecs = Ecs::new(store.clone());
            let events = ecs.task_events.clone();
            let app = Arc::new(App {
                ecs,
                logs: berth::logs::Logs::new(store.clone()),
                credentials,
                strict_output,
            });
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async move {
                tokio::spawn(run_agent(store, events));
                let listener = tokio::net::TcpListener::bind(&listen)
                    .await
                    .with_context(|| format!("cannot listen on {listen}"))?;
                tracing::info!(
                    address = %listener.local_addr()?,
                    data_dir = %data_dir.display(),
                    "berth is serving"
                );
                berth::server::serve(listener, app, shutdown_signal()).await?;
                tracing::info!("berth stopped");
                anyhow::Ok(())
            })
        }
        Command::Doctor { listen, data_dir } => {
            let data_dir = data_dir.unwrap_or_else(default_data_dir);
            let checks = berth::doctor::run_checks(&data_dir, &listen);
            let mut failed = 0;
            for c in &checks {
                println!(
                    "{} {:<11} {}",
                    if c.ok { "ok  " } else { "FAIL" },
                    c.name,
                    c.detail
                );
                failed += usize::from(!c.ok);
            }
            if failed > 0 {
                anyhow::bail!("{failed} check(s) failed");
            }
            Ok(())
        }
    }
}

/// Connect to Docker Engine (retrying until it answers) and run the agent.
async fn run_agent(store: Arc<Store>, events: Arc<tokio::sync::Notify>) {
    let mut warned = false;
    let runtime = loop {
        match berth::runtime::docker::DockerRuntime::connect().await {
            Ok(r) => break r,
            Err(e) => {
                if !warned {
                    tracing::warn!(error = %e, "tasks wait until Docker Engine answers");
                    warned = true;
                }
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        }
    };
    tracing::info!("agent connected to Docker Engine");
    berth::agent::Agent::new(store, Arc::new(runtime), events)
        .run()
        .await;
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
