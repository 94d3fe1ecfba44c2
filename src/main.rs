use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use berth::config::{default_data_dir, Credentials};
use berth::controllers::Runner;
use berth::events::Topic;
use berth::services::Services;
use berth::settings::Settings;
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

/// How a subcommand finds the server, as the aws CLI does.
#[derive(clap::Args)]
struct ClientArgs {
    /// The server (default: $AWS_ENDPOINT_URL, else http://127.0.0.1:4566).
    #[arg(long, global = true)]
    endpoint_url: Option<String>,
    /// Region (default: $AWS_REGION or $AWS_DEFAULT_REGION, else us-east-1).
    #[arg(long, global = true)]
    region: Option<String>,
    /// `table` for people, `json` for scripts.
    #[arg(long, value_enum, default_value = "table", global = true)]
    output: OutputArg,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputArg {
    Table,
    Json,
}

#[derive(Subcommand)]
enum InstancesAction {
    /// Create local instances and register them with a cluster.
    Add {
        #[arg(long)]
        cluster: String,
        /// An EC2 instance type from Berth's catalog (t3.medium, m7g.large, ...).
        #[arg(long)]
        instance_type: String,
        /// How many instances to add (default 1).
        #[arg(long, default_value_t = 1)]
        count: i64,
        /// Default: the cluster's availability zones in turn (<region>a, b, c).
        #[arg(long)]
        availability_zone: Option<String>,
    },
    /// The container instances of a cluster, or of every cluster.
    List {
        #[arg(long)]
        cluster: Option<String>,
    },
    /// Deregister local instances (their tasks are stopped) and free their addresses.
    Remove {
        #[arg(long)]
        cluster: String,
        /// Instance ids, ARNs or EC2 instance ids.
        #[arg(required = true)]
        instances: Vec<String>,
    },
    /// Give spot capacity its interruption notice: spot EC2 instances
    /// (`i-...`) are reclaimed after the notice, draining first when their
    /// user data enables spot draining; FARGATE_SPOT tasks (ARN or id, with
    /// --cluster) stop with stopCode SpotInterruption.
    Interrupt {
        #[arg(long)]
        cluster: Option<String>,
        #[arg(required = true)]
        targets: Vec<String>,
    },
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
        /// A remote agent not heard from for this long shows `agentConnected: false`.
        #[arg(long, default_value_t = 30)]
        agent_timeout_seconds: u64,
        /// The tasks of an instance whose agent stays disconnected this much
        /// longer are stopped ("Container instance agent disconnected").
        #[arg(long, default_value_t = 60)]
        agent_grace_seconds: u64,
        /// Do not freeze each task's usage when it stops (usage is then
        /// metered from the task's timestamps when asked); for comparing
        /// task start and stop with and without metering.
        #[arg(long)]
        no_metering: bool,
        /// How long an instance an Auto Scaling group launches takes to boot
        /// and register (EC2 takes 30-60 s; a warm-pool instance joins in a
        /// quarter of it when stopped, a tenth when running).
        #[arg(long, default_value_t = 3.0)]
        instance_boot_seconds: f64,
        /// The notice a spot instance gets before it is reclaimed.
        #[arg(long, default_value_t = 120.0)]
        spot_notice_seconds: f64,
        /// How long managed scaling's CapacityProviderReservation must stay
        /// below target before it scales in (ECS: 15 minutes).
        #[arg(long, default_value_t = 900.0)]
        managed_scale_in_seconds: f64,
        /// Random spot interruptions per spot instance-hour, for rehearsals
        /// (0: only `berth instances interrupt`).
        #[arg(long, default_value_t = 0.0)]
        spot_interruption_rate: f64,
        /// Network sandboxes kept started ahead of their tasks, so an
        /// `awsvpc` task (every FARGATE task) need not wait for its own
        /// (0: none).
        #[arg(long, default_value_t = 4)]
        sandbox_pool: usize,
        /// Where load balancers' DNS names are made to resolve to their
        /// addresses: a block of this hosts file kept by the server
        /// (`none`: nowhere).
        #[arg(long, default_value = "/etc/hosts")]
        hosts_file: String,
        /// How often the registry enforces each repository's lifecycle
        /// policy (ECR does it within a day).
        #[arg(long, default_value_t = 3600.0)]
        ecr_lifecycle_interval_seconds: f64,
        /// How images of Berth's registry are got before a task starts, as
        /// the ECS agent's ECS_IMAGE_PULL_BEHAVIOR: default (pull, else the
        /// cached copy), always, once, prefer-cached. Images of other
        /// registries are pulled only when not cached.
        #[arg(long, env = "ECS_IMAGE_PULL_BEHAVIOR", default_value = "default")]
        image_pull_behavior: berth::agent::pull::PullBehavior,
        /// The master key that seals every KMS key (and so every secret):
        /// a file of 32 bytes, made with mode 0600 if missing. Keep it
        /// apart from the data dir to make a copy of the data dir alone
        /// unreadable. Default: kms/master.key in the data dir.
        #[arg(long, env = "BERTH_MASTER_KEY_FILE")]
        master_key_file: Option<PathBuf>,
    },
    /// Run the agent of a container instance on this Docker host, for a
    /// cluster of a server elsewhere: register, heartbeat, run the tasks
    /// placed on the instance. Credentials and region as the aws CLI finds
    /// them ($AWS_ACCESS_KEY_ID, $AWS_SECRET_ACCESS_KEY, $AWS_REGION).
    Agent {
        /// The server, e.g. http://10.0.0.5:4566.
        #[arg(long)]
        server: String,
        #[arg(long)]
        cluster: String,
        /// Reported as `ecs.instance-type`; its catalog size is the default cpu and memory.
        #[arg(long, default_value = "t3.medium")]
        instance_type: String,
        /// CPU units to register (1024 per vCPU).
        #[arg(long)]
        cpu: Option<i64>,
        /// Memory to register, MiB.
        #[arg(long)]
        memory: Option<i64>,
        /// Default: <region>a.
        #[arg(long)]
        availability_zone: Option<String>,
        /// A custom attribute, `name=value` or `name`; repeatable.
        #[arg(long = "attribute")]
        attributes: Vec<String>,
        /// The instance's address, where task ports are published (default: the address this machine reaches the server from).
        #[arg(long)]
        address: Option<String>,
        /// Where the agent remembers its instance (default: <data dir>/agent).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        #[arg(long)]
        region: Option<String>,
        /// As `berth server`'s: ECS_IMAGE_PULL_BEHAVIOR for images of the
        /// server's registry.
        #[arg(long, env = "ECS_IMAGE_PULL_BEHAVIOR", default_value = "default")]
        image_pull_behavior: berth::agent::pull::PullBehavior,
    },
    /// Local container instances: Docker hosts of an EC2 instance type's
    /// size, registered with a cluster, for the EC2 launch type.
    Instances {
        #[command(flatten)]
        client: ClientArgs,
        #[command(subcommand)]
        action: InstancesAction,
    },
    /// ECS services: list them, and wait for deployments to converge.
    Services(berth::ecs::cli::ServicesCommand),
    /// Load balancers: the URL of each, and the health of its targets.
    Lb(berth::elb::cli::LbCommand),
    /// The image registry's repositories: their images and size, their
    /// URI to push to, and what their lifecycle policies expire next.
    Images(berth::ecr::cli::ImagesCommand),
    /// Convert workloads between launch types: task definitions between
    /// FARGATE and EC2, App Runner services and Docker Compose files.
    Migrate {
        #[command(subcommand)]
        action: berth::migrate::MigrateCommand,
    },
    /// What tasks cost: metered usage, reports and estimates, priced as
    /// FARGATE, FARGATE_SPOT, EC2 on-demand and EC2 spot.
    Cost {
        #[command(subcommand)]
        action: berth::cost::CostCommand,
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
            agent_timeout_seconds,
            agent_grace_seconds,
            no_metering,
            instance_boot_seconds,
            spot_notice_seconds,
            managed_scale_in_seconds,
            spot_interruption_rate,
            sandbox_pool,
            hosts_file,
            ecr_lifecycle_interval_seconds,
            image_pull_behavior,
            master_key_file,
        } => {
            let settings = Settings {
                agent_timeout_ms: agent_timeout_seconds as i64 * 1000,
                agent_grace_ms: agent_grace_seconds as i64 * 1000,
                metering: !no_metering,
                sandbox_pool,
                fleet: berth::settings::FleetSettings {
                    boot_ms: (instance_boot_seconds * 1000.0) as i64,
                    spot_notice_ms: (spot_notice_seconds * 1000.0) as i64,
                    scale_in_after_ms: (managed_scale_in_seconds * 1000.0) as i64,
                    interruption_rate_per_hour: spot_interruption_rate,
                },
                endpoint: format!("http://{}", listen.replace("0.0.0.0", "127.0.0.1")),
                ecr_lifecycle_interval_ms: (ecr_lifecycle_interval_seconds * 1000.0) as i64,
                master_key_file,
                roots: Credentials::load(credentials_file.as_deref())?,
            };
            let data_dir = data_dir.unwrap_or_else(default_data_dir);
            std::fs::create_dir_all(&data_dir)
                .with_context(|| format!("creating data dir {}", data_dir.display()))?;
            let durability = match durability {
                DurabilityArg::Full => Durability::Full,
                DurabilityArg::Normal => Durability::Normal,
            };
            let store = Arc::new(Store::open(&data_dir.join("berth.db"), durability)?);
            let clock: Arc<dyn berth::clock::Clock> = Arc::new(berth::clock::SystemClock);
            let services = Services::new(store.clone(), settings, clock.clone())
                .context("opening the registry's storage or the master key")?;
            let metrics = Arc::new(berth::metrics::Metrics::default());
            let app = Arc::new(App {
                metrics: metrics.clone(),
                registry: services.registry(),
                identities: services.identities(),
                authorizer: services.authorizer(),
                clock: clock.clone(),
                strict_output,
            });
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async move {
                let runner = Arc::new(Runner::new(metrics.clone()));
                let bus = &services.bus;
                runner.start(
                    Arc::new(berth::ecs::janitor::Janitor {
                        ecs: services.ecs.clone(),
                        clock: clock.clone(),
                    }),
                    bus.topic(Topic::Janitor),
                );
                runner.start(
                    Arc::new(berth::autoscaling::controller::FleetController::new(
                        services.autoscaling.clone(),
                        clock.clone(),
                        rand::random(),
                    )),
                    bus.topic(Topic::Fleet),
                );
                let plane = {
                    let clock = clock.clone();
                    berth::elb::proxy::DataPlane::new(Arc::new(move || clock.now_ms()))
                };
                runner.start(
                    Arc::new(
                        berth::elb::health::LoadBalancerController::new(
                            store.clone(),
                            bus.clone(),
                            services.elb.instances.clone(),
                            plane,
                            Arc::new(berth::elb::health::HostAddresses::default()),
                            clock.clone(),
                        )
                        .with_hosts_file(
                            (hosts_file != "none").then(|| std::path::PathBuf::from(&hosts_file)),
                        ),
                    ),
                    bus.topic(Topic::LoadBalancers),
                );
                runner.start(
                    Arc::new(berth::ecr::collector::Collector::new(
                        services.ecr.clone(),
                        services.settings.ecr_lifecycle_interval_ms,
                    )),
                    bus.topic(Topic::Registry),
                );
                runner.start(
                    Arc::new(berth::ecs::scheduler::ServiceScheduler {
                        ecs: services.ecs.clone(),
                        clock: clock.clone(),
                    }),
                    bus.topic(Topic::Services),
                );
                if services.settings.metering {
                    runner.start(
                        Arc::new(berth::cost::metering::Metering {
                            store: store.clone(),
                            clock: clock.clone(),
                        }),
                        bus.topic(Topic::Metering),
                    );
                }
                let pool = Arc::new(berth::agent::pool::SandboxPool::new(
                    services.settings.sandbox_pool,
                ));
                let agent = Arc::new(std::sync::OnceLock::new());
                tokio::spawn(run_agent(
                    store,
                    bus.topic(Topic::Tasks),
                    berth::agent::Setup {
                        metrics,
                        pool: pool.clone(),
                        clock: clock.clone(),
                        observed: Some(bus.topic(Topic::Services)),
                        registry: Some(services.ecr.clone()),
                        pull_behavior: image_pull_behavior,
                        secrets: Some(berth::agent::control::SecretStores {
                            ssm: services.ssm.clone(),
                            asm: services.secrets.clone(),
                        }),
                    },
                    agent.clone(),
                    runner.clone(),
                ));
                let listener = tokio::net::TcpListener::bind(&listen)
                    .await
                    .with_context(|| format!("cannot listen on {listen}"))?;
                tracing::info!(
                    address = %listener.local_addr()?,
                    data_dir = %data_dir.display(),
                    "berth is serving"
                );
                let registry = berth::ecr::registry::router(services.ecr.clone());
                berth::server::serve(listener, app, registry, shutdown_signal()).await?;
                // Controllers finish their passes; what the agent made ahead
                // goes; tasks keep running.
                pool.close();
                runner.shutdown().await;
                if let Some(agent) = agent.get() {
                    agent.shutdown().await;
                }
                tracing::info!("berth stopped");
                anyhow::Ok(())
            })
        }
        Command::Agent {
            server,
            cluster,
            instance_type,
            cpu,
            memory,
            availability_zone,
            attributes,
            address,
            state_dir,
            region,
            image_pull_behavior,
        } => {
            let client = berth::client::Client::from_env(Some(&server), region.as_deref())?;
            let region = region
                .or_else(|| std::env::var("AWS_REGION").ok())
                .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "us-east-1".into());
            let opts = berth::agent::remote::Options {
                cluster,
                instance_type,
                cpu,
                memory,
                availability_zone,
                attributes: attributes
                    .iter()
                    .map(|a| match a.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (a.clone(), None),
                    })
                    .collect(),
                address,
                state_dir: state_dir.unwrap_or_else(|| default_data_dir().join("agent")),
                region,
                pull_behavior: image_pull_behavior,
            };
            let rt = tokio::runtime::Runtime::new()?;
            let result = rt.block_on(async move {
                let runtime = connect_docker().await;
                tokio::select! {
                    r = berth::agent::remote::run(client, opts, Arc::new(runtime)) => r,
                    _ = shutdown_signal() => Ok(()),
                }
            });
            if let Err(e) = result {
                eprintln!("berth agent: {e:#}");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Instances { client, action } => {
            // A user error, said plainly: no backtrace.
            if let Err(e) = instances(client, action) {
                eprintln!("berth: {e:#}");
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Services(cmd) => exit_with(berth::ecs::cli::run(cmd)),
        Command::Lb(cmd) => exit_with(berth::elb::cli::run(cmd)),
        Command::Images(cmd) => exit_with(berth::ecr::cli::run(cmd)),
        Command::Migrate { action } => exit_with(berth::migrate::run(action)),
        Command::Cost { action } => exit_with(berth::cost::run(action)),
        Command::Doctor { listen, data_dir } => {
            let data_dir = data_dir.unwrap_or_else(default_data_dir);
            let checks = berth::doctor::run_checks(&data_dir, &listen);
            let mut failed = 0;
            for c in &checks {
                println!(
                    "{} {:<12} {}",
                    match (c.ok, c.warn) {
                        (false, _) => "FAIL",
                        (true, true) => "WARN",
                        (true, false) => "ok  ",
                    },
                    c.name,
                    c.detail
                );
                failed += usize::from(!c.ok);
            }
            if failed > 0 {
                // Said plainly: no backtrace.
                eprintln!("berth: {failed} check(s) failed");
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

/// End a CLI subcommand: its exit code, or its error said plainly (no
/// backtrace) with exit code 1.
fn exit_with(result: anyhow::Result<i32>) -> ! {
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("berth: {e:#}");
            std::process::exit(1);
        }
    }
}

/// `berth instances …`: one call to the server's platform API.
fn instances(args: ClientArgs, action: InstancesAction) -> anyhow::Result<()> {
    use serde_json::json;
    let client =
        berth::client::Client::from_env(args.endpoint_url.as_deref(), args.region.as_deref())?;
    let (op, body) = match &action {
        InstancesAction::Add {
            cluster,
            instance_type,
            count,
            availability_zone,
        } => {
            let mut b = json!({"cluster": cluster, "instanceType": instance_type, "count": count});
            if let Some(az) = availability_zone {
                b["availabilityZone"] = json!(az);
            }
            ("AddInstances", b)
        }
        InstancesAction::List { cluster } => (
            "ListInstances",
            match cluster {
                Some(c) => json!({"cluster": c}),
                None => json!({}),
            },
        ),
        InstancesAction::Remove { cluster, instances } => (
            "RemoveInstances",
            json!({"cluster": cluster, "instances": instances}),
        ),
        InstancesAction::Interrupt { cluster, targets } => {
            let (ids, tasks): (Vec<&String>, Vec<&String>) =
                targets.iter().partition(|t| t.starts_with("i-"));
            let mut b = json!({"instanceIds": ids, "tasks": tasks});
            if let Some(c) = cluster {
                b["cluster"] = json!(c);
            }
            ("InterruptSpot", b)
        }
    };
    let out = berth::client::block_on(client.call(&format!("Berth_20261123.{op}"), &body))??;
    if args.output == OutputArg::Json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if op == "InterruptSpot" {
        for i in out["interruptions"].as_array().into_iter().flatten() {
            let what = i["instanceId"]
                .as_str()
                .or(i["taskArn"].as_str())
                .unwrap_or("");
            let at = i["reclaimAt"].as_f64().unwrap_or(0.0);
            let at =
                chrono::DateTime::from_timestamp_millis((at * 1000.0) as i64).unwrap_or_default();
            println!(
                "{what}: interruption notice, reclaimed at {}",
                at.format("%H:%M:%S")
            );
        }
    } else {
        print_instances(&out);
    }
    for f in out["failures"].as_array().into_iter().flatten() {
        eprintln!(
            "failed: {} ({})",
            f["arn"].as_str().unwrap_or(""),
            f["reason"].as_str().unwrap_or("")
        );
    }
    let failures = out["failures"].as_array().map(Vec::len).unwrap_or(0);
    if failures > 0 {
        anyhow::bail!("{failures} of the named instance(s) or task(s) failed");
    }
    Ok(())
}

fn print_instances(out: &serde_json::Value) {
    let rows: Vec<[String; 8]> = out["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            let s = |k: &str| i[k].as_str().unwrap_or("-").to_string();
            let n = |k: &str| i[k].as_i64().unwrap_or(0);
            let cluster = s("clusterArn");
            [
                s("ec2InstanceId"),
                cluster.rsplit('/').next().unwrap_or("").to_string(),
                s("instanceType"),
                s("availabilityZone"),
                s("address"),
                format!(
                    "{}{}",
                    s("status"),
                    if i["agentConnected"] == true {
                        ""
                    } else {
                        " (agent disconnected)"
                    }
                ),
                format!(
                    "{}/{} cpu, {}/{} MiB free",
                    n("remainingCpu"),
                    n("registeredCpu"),
                    n("remainingMemory"),
                    n("registeredMemory")
                ),
                format!(
                    "{} running, {} pending",
                    n("runningTasksCount"),
                    n("pendingTasksCount")
                ),
            ]
        })
        .collect();
    let header = [
        "INSTANCE",
        "CLUSTER",
        "TYPE",
        "ZONE",
        "ADDRESS",
        "STATUS",
        "RESOURCES",
        "TASKS",
    ];
    let rows: Vec<Vec<String>> = rows.into_iter().map(Vec::from).collect();
    print!(
        "{}",
        berth::client::render_table(&header, &rows, header.len())
    );
}

/// Connect to Docker Engine and run the agent under the runner.
async fn run_agent(
    store: Arc<Store>,
    events: Arc<berth::events::Wake>,
    setup: berth::agent::Setup,
    slot: Arc<std::sync::OnceLock<Arc<berth::agent::Agent>>>,
    runner: Arc<Runner>,
) {
    let runtime = connect_docker().await;
    tracing::info!("agent connected to Docker Engine");
    let agent = berth::agent::Agent::new(store, Arc::new(runtime), events.clone(), setup);
    let _ = slot.set(agent.clone());
    runner.start(Arc::new(berth::agent::AgentLoop::new(agent)), events);
}

/// Docker Engine, retrying until it answers.
async fn connect_docker() -> berth::runtime::docker::DockerRuntime {
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
    runtime
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
