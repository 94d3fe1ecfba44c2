//! How the server behaves where `berth server`'s flags say so: given to the
//! services and controllers when they are made, never read from globals.

/// The server's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// A remote agent not heard from for this long shows `agentConnected:
    /// false`.
    pub agent_timeout_ms: i64,
    /// The tasks of an instance whose agent stays disconnected this much
    /// longer are stopped.
    pub agent_grace_ms: i64,
    /// Whether each stopped task's usage is frozen (`--no-metering` turns
    /// it off, to compare task start and stop with and without it).
    pub metering: bool,
    /// Network sandboxes kept started ahead of their tasks.
    pub sandbox_pool: usize,
    pub fleet: FleetSettings,
    /// The URL the control plane answers at, as DiscoverPollEndpoint gives
    /// it to agents.
    pub endpoint: String,
    /// How often the registry enforces each repository's lifecycle policy
    /// (`--ecr-lifecycle-interval-seconds`; ECR: within a day).
    pub ecr_lifecycle_interval_ms: i64,
    /// The file of the master key that seals every KMS key
    /// (`--master-key-file`; by default `kms/master.key` in the data dir,
    /// made on first start).
    pub master_key_file: Option<std::path::PathBuf>,
    /// The keys configured at start: each its account's root.
    pub roots: crate::config::Credentials,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            agent_timeout_ms: 30_000,
            agent_grace_ms: 60_000,
            metering: true,
            sandbox_pool: 4,
            fleet: FleetSettings::default(),
            endpoint: "http://127.0.0.1:4566".into(),
            ecr_lifecycle_interval_ms: 3_600_000,
            master_key_file: None,
            roots: crate::config::Credentials::default(),
        }
    }
}

/// How the fleet's instances behave: boot time, spot notice, managed
/// scaling's scale-in delay, the rehearsal interruption rate.
#[derive(Debug, Clone, Copy)]
pub struct FleetSettings {
    /// From launch to the agent registering a cold instance.
    pub boot_ms: i64,
    /// From a spot interruption notice to termination.
    pub spot_notice_ms: i64,
    /// How long managed scaling's metric must stay below target before it
    /// scales in (ECS: 15 one-minute datapoints).
    pub scale_in_after_ms: i64,
    /// Random spot interruptions per spot instance-hour (0: none).
    pub interruption_rate_per_hour: f64,
}

impl Default for FleetSettings {
    fn default() -> Self {
        FleetSettings {
            boot_ms: 3_000,
            spot_notice_ms: 120_000,
            scale_in_after_ms: 900_000,
            interruption_rate_per_hour: 0.0,
        }
    }
}

impl FleetSettings {
    /// How long an instance leaving the warm pool takes to join: a stopped
    /// instance starts without its first-boot work (a quarter of a cold
    /// boot), a running one only has its agent register (a tenth).
    pub fn warm_join_ms(&self, from_running: bool) -> i64 {
        if from_running {
            self.boot_ms / 10
        } else {
            self.boot_ms / 4
        }
    }
}
