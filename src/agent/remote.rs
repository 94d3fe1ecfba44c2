//! `berth agent`: the agent on another Docker host. It registers the host as
//! a container instance (RegisterContainerInstance, as ECS's agent does),
//! then runs the same reconcile loop as the server's own agent on the local
//! Docker Engine, for the tasks placed on its instance, through the server's
//! internal API ([`RemoteControlPlane`]). Each pass of the loop is also its
//! heartbeat.
//!
//! It keeps its container instance ARN, EC2 instance id and container owner
//! label in `<state dir>/agent.json`, so a restarted agent registers again as
//! the same instance and adopts its containers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::control::RemoteControlPlane;
use super::Agent;
use crate::client::{Client, ClientError};
use crate::ecs::instances::AGENT_VERSION;
use crate::runtime::Runtime;

/// What `berth agent` is told.
#[derive(Debug, Clone)]
pub struct Options {
    pub cluster: String,
    pub instance_type: String,
    pub cpu: Option<i64>,
    pub memory: Option<i64>,
    pub availability_zone: Option<String>,
    pub attributes: Vec<(String, Option<String>)>,
    pub address: Option<String>,
    pub state_dir: PathBuf,
    pub region: String,
    /// `ECS_IMAGE_PULL_BEHAVIOR` for images of the server's registry.
    pub pull_behavior: super::pull::PullBehavior,
}

/// What the agent remembers between runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub cluster: String,
    pub container_instance_arn: Option<String>,
    pub ec2_instance_id: String,
    /// The `berth.managed` label value of this agent's containers.
    pub owner: String,
}

fn hex(n: usize) -> String {
    let mut s = uuid::Uuid::new_v4().simple().to_string();
    s.push_str(&uuid::Uuid::new_v4().simple().to_string());
    s.truncate(n);
    s
}

fn state_path(dir: &Path) -> PathBuf {
    dir.join("agent.json")
}

/// The saved state, or a new one for `cluster`.
pub fn load_state(dir: &Path, cluster: &str) -> anyhow::Result<State> {
    let saved: Option<State> = std::fs::read(state_path(dir))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    Ok(match saved {
        Some(s) if s.cluster == cluster => s,
        // Another cluster: a new instance, the same owner.
        Some(s) => State {
            cluster: cluster.into(),
            container_instance_arn: None,
            ec2_instance_id: format!("i-{}", hex(17)),
            owner: s.owner,
        },
        None => State {
            cluster: cluster.into(),
            container_instance_arn: None,
            ec2_instance_id: format!("i-{}", hex(17)),
            owner: format!("agent-{}", hex(32)),
        },
    })
}

pub fn save_state(dir: &Path, state: &State) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join("agent.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(state)?)?;
    std::fs::rename(&tmp, state_path(dir))?;
    Ok(())
}

/// The address this machine reaches `endpoint` from: where its tasks'
/// ports are published unless `--address` says otherwise.
pub fn local_address_towards(endpoint: &str) -> Option<String> {
    let url = url::Url::parse(endpoint).ok()?;
    let host = url.host_str()?;
    let port = url.port_or_known_default().unwrap_or(80);
    let target = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .ok()?
        .find(|a| a.is_ipv4())?;
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect(target).ok()?;
    Some(socket.local_addr().ok()?.ip().to_string())
}

/// The RegisterContainerInstance request of this agent.
fn register_request(opts: &Options, state: &State, address: &str) -> Value {
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        a => a,
    };
    let doc = json!({
        "instanceId": state.ec2_instance_id,
        "instanceType": opts.instance_type,
        "availabilityZone": opts.availability_zone.clone()
            .unwrap_or_else(|| format!("{}a", opts.region)),
        "region": opts.region,
        "imageId": "ami-berth-agent",
        "architecture": arch,
        "privateIp": address,
    });
    let mut body = json!({
        "cluster": opts.cluster,
        "instanceIdentityDocument": doc.to_string(),
        "versionInfo": {"agentVersion": AGENT_VERSION, "agentHash": "berth", "dockerVersion": "DockerVersion: 20.10"},
        "attributes": opts.attributes.iter().map(|(k, v)| match v {
            Some(v) => json!({"name": k, "value": v}),
            None => json!({"name": k}),
        }).collect::<Vec<_>>(),
    });
    let mut total = Vec::new();
    if let Some(c) = opts.cpu {
        total.push(json!({"name": "CPU", "type": "INTEGER", "integerValue": c}));
    }
    if let Some(m) = opts.memory {
        total.push(json!({"name": "MEMORY", "type": "INTEGER", "integerValue": m}));
    }
    if !total.is_empty() {
        body["totalResources"] = json!(total);
    }
    if let Some(arn) = &state.container_instance_arn {
        body["containerInstanceArn"] = json!(arn);
    }
    body
}

const ECS_TARGET: &str = "AmazonEC2ContainerServiceV20141113";

/// Register (or register again) with the cluster; returns the container
/// instance ARN. Retries while the server cannot be reached; an error the
/// server answers with (bad credentials, no such cluster) ends it.
pub async fn register(
    client: &Client,
    opts: &Options,
    state: &mut State,
    address: &str,
) -> anyhow::Result<String> {
    loop {
        let body = register_request(opts, state, address);
        match client
            .call(&format!("{ECS_TARGET}.RegisterContainerInstance"), &body)
            .await
        {
            Ok(out) => {
                let arn = out["containerInstance"]["containerInstanceArn"]
                    .as_str()
                    .ok_or_else(|| anyhow::anyhow!("RegisterContainerInstance answered no ARN"))?
                    .to_string();
                state.container_instance_arn = Some(arn.clone());
                save_state(&opts.state_dir, state)?;
                return Ok(arn);
            }
            Err(ClientError::Api { code, message })
                if state.container_instance_arn.is_some()
                    && code == "InvalidParameterException" =>
            {
                // The instance it was is gone (deregistered): a new one.
                tracing::warn!(%message, "the saved container instance is not registered; registering a new one");
                state.container_instance_arn = None;
                state.ec2_instance_id = format!("i-{}", hex(17));
            }
            Err(e @ ClientError::Api { .. }) => {
                return Err(anyhow::anyhow!("cannot register with the cluster: {e}"))
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach the server; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

/// Register, then drive the instance's tasks on `runtime` until the process
/// ends.
pub async fn run(client: Client, opts: Options, runtime: Arc<dyn Runtime>) -> anyhow::Result<()> {
    let mut state = load_state(&opts.state_dir, &opts.cluster)?;
    let address = match &opts.address {
        Some(a) => a.clone(),
        None => local_address_towards(client.endpoint()).unwrap_or_else(|| "127.0.0.1".into()),
    };
    let arn = register(&client, &opts, &mut state, &address).await?;
    tracing::info!(container_instance = %arn, %address, owner = %state.owner, "registered with the cluster");
    let control = Arc::new(RemoteControlPlane {
        client,
        container_instance_arn: arn,
    });
    let events = Arc::new(crate::events::Wake::default());
    let agent = Agent::with_control_plane(
        control,
        runtime,
        events.clone(),
        state.owner,
        // An agent on another host makes its sandboxes when needed.
        super::Setup {
            pull_behavior: opts.pull_behavior,
            ..super::Setup::default()
        },
    );
    let runner = crate::controllers::Runner::new(Arc::default());
    runner.start(Arc::new(super::AgentLoop::new(agent)), events);
    std::future::pending::<()>().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(dir: &Path) -> Options {
        Options {
            cluster: "c".into(),
            instance_type: "t3.small".into(),
            cpu: Some(1024),
            memory: None,
            availability_zone: None,
            attributes: vec![("role".into(), Some("edge".into())), ("gpu".into(), None)],
            address: None,
            state_dir: dir.to_path_buf(),
            region: "eu-west-1".into(),
            pull_behavior: Default::default(),
        }
    }

    #[test]
    fn state_is_kept_per_cluster() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = load_state(dir.path(), "c").unwrap();
        assert!(s.container_instance_arn.is_none() && s.owner.starts_with("agent-"));
        s.container_instance_arn = Some("arn1".into());
        save_state(dir.path(), &s).unwrap();
        let again = load_state(dir.path(), "c").unwrap();
        assert_eq!(again.container_instance_arn.as_deref(), Some("arn1"));
        assert_eq!(
            (again.ec2_instance_id, again.owner.clone()),
            (s.ec2_instance_id.clone(), s.owner.clone())
        );
        let other = load_state(dir.path(), "d").unwrap();
        assert!(other.container_instance_arn.is_none());
        assert_eq!(other.owner, s.owner, "one host, one owner label");
        assert_ne!(other.ec2_instance_id, s.ec2_instance_id);
    }

    #[test]
    fn registration_says_what_was_asked() {
        let dir = tempfile::tempdir().unwrap();
        let o = opts(dir.path());
        let mut s = load_state(dir.path(), "c").unwrap();
        let body = register_request(&o, &s, "10.1.2.3");
        let doc: Value =
            serde_json::from_str(body["instanceIdentityDocument"].as_str().unwrap()).unwrap();
        assert_eq!(doc["privateIp"], "10.1.2.3");
        assert_eq!(doc["availabilityZone"], "eu-west-1a");
        assert_eq!(doc["instanceType"], "t3.small");
        assert_eq!(
            body["totalResources"],
            json!([{"name": "CPU", "type": "INTEGER", "integerValue": 1024}])
        );
        assert_eq!(
            body["attributes"],
            json!([{"name": "role", "value": "edge"}, {"name": "gpu"}])
        );
        assert!(body.get("containerInstanceArn").is_none());
        s.container_instance_arn = Some("arn1".into());
        assert_eq!(
            register_request(&o, &s, "x")["containerInstanceArn"],
            "arn1"
        );
    }

    #[test]
    fn local_address_towards_a_loopback_server() {
        assert_eq!(
            local_address_towards("http://127.0.0.1:4566").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(local_address_towards("not a url"), None);
    }
}
