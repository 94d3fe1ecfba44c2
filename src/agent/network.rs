//! A task's network mode, and what it means on the runtime (pure).
//!
//! - `awsvpc` (every FARGATE task, and EC2 tasks that ask for it): a sandbox
//!   on `TASK_NETWORK` holds the task's namespace; its address is the task's
//!   ENI.
//! - `bridge` (EC2's default): no sandbox; each container has a namespace of
//!   its own on `TASK_NETWORK`, its `portMappings` published on the container
//!   instance's address (a `hostPort` of 0 or none: a port Docker chooses),
//!   and `links` as aliases between the task's containers.
//! - `host`: a sandbox, as for `awsvpc`, with every container's
//!   `portMappings` published on the instance's address at the same port;
//!   the containers share its namespace, so the ports land on them.
//! - `none`: each container alone in a namespace without a network.

use crate::ecs::shapes::{
    self, ContainerDefinition, LaunchType, NetworkBinding, Task, TaskDefinition,
};
use crate::runtime::{Link, PortBinding, Protocol, PublishedPort};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    Awsvpc,
    Bridge,
    Host,
    None,
}

impl NetworkMode {
    /// A task's mode: `awsvpc` for FARGATE, else its task definition's
    /// `networkMode` (`bridge` when absent).
    pub fn of(task: &Task, taskdef: &TaskDefinition) -> Self {
        if task.launch_type == Some(LaunchType::Fargate) {
            return NetworkMode::Awsvpc;
        }
        match taskdef.network_mode.unwrap_or_default() {
            shapes::NetworkMode::Bridge => NetworkMode::Bridge,
            shapes::NetworkMode::Awsvpc => NetworkMode::Awsvpc,
            shapes::NetworkMode::Host => NetworkMode::Host,
            shapes::NetworkMode::None => NetworkMode::None,
        }
    }

    /// Whether the task's containers share one sandbox's namespace.
    pub fn has_sandbox(self) -> bool {
        matches!(self, NetworkMode::Awsvpc | NetworkMode::Host)
    }

    /// Whether ports are published on the container instance's address.
    pub fn publishes(self) -> bool {
        matches!(self, NetworkMode::Bridge | NetworkMode::Host)
    }
}

/// One port of a container's `portMappings` (a `containerPortRange` gives
/// one per port, each with a dynamic host port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMapping {
    pub container_port: u16,
    /// `None` for 0 or absent: dynamic.
    pub host_port: Option<u16>,
    pub protocol: Protocol,
}

fn port(v: Option<i64>) -> Option<u16> {
    v.and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0)
}

/// `"8000-8010"` → 8000..=8010.
fn port_range(s: &str) -> Option<std::ops::RangeInclusive<u16>> {
    let (a, b) = s.split_once('-')?;
    let (a, b) = (a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?);
    (a > 0 && a <= b).then_some(a..=b)
}

/// A container definition's `portMappings`, in order.
pub fn port_mappings(def: &ContainerDefinition) -> Vec<PortMapping> {
    let mut out = Vec::new();
    for p in def.port_mappings.iter().flatten() {
        let protocol = match p.protocol.unwrap_or_default() {
            shapes::TransportProtocol::Tcp => Protocol::Tcp,
            shapes::TransportProtocol::Udp => Protocol::Udp,
        };
        if let Some(container_port) = port(p.container_port) {
            out.push(PortMapping {
                container_port,
                host_port: port(p.host_port),
                protocol,
            });
        } else if let Some(range) = p.container_port_range.as_deref().and_then(port_range) {
            out.extend(range.map(|container_port| PortMapping {
                container_port,
                host_port: None,
                protocol,
            }));
        }
    }
    out
}

/// What one container of a `bridge` task publishes on `host_ip`.
pub fn container_ports(
    mode: NetworkMode,
    def: &ContainerDefinition,
    host_ip: &str,
) -> Vec<PublishedPort> {
    if mode != NetworkMode::Bridge {
        return Vec::new();
    }
    port_mappings(def)
        .into_iter()
        .map(|m| PublishedPort {
            container_port: m.container_port,
            protocol: m.protocol,
            host_ip: host_ip.to_string(),
            host_port: m.host_port,
        })
        .collect()
}

/// The ports of a `host` task's containers, each once, at its own number.
fn host_mode_ports(defs: &[ContainerDefinition]) -> Vec<(u16, Protocol)> {
    let mut out: Vec<(u16, Protocol)> = Vec::new();
    for m in defs.iter().flat_map(port_mappings) {
        if !out.contains(&(m.container_port, m.protocol)) {
            out.push((m.container_port, m.protocol));
        }
    }
    out
}

/// What the sandbox of a `host` task publishes on `host_ip`: every
/// container's ports, host port = container port.
pub fn sandbox_ports(
    mode: NetworkMode,
    defs: &[ContainerDefinition],
    host_ip: &str,
) -> Vec<PublishedPort> {
    if mode != NetworkMode::Host {
        return Vec::new();
    }
    host_mode_ports(defs)
        .into_iter()
        .map(|(p, protocol)| PublishedPort {
            container_port: p,
            protocol,
            host_ip: host_ip.to_string(),
            host_port: Some(p),
        })
        .collect()
}

/// One entry of a container's `networkBindings`.
fn binding(ip: &str, container: u16, host: u16, protocol: Protocol) -> NetworkBinding {
    NetworkBinding {
        bind_ip: Some(ip.to_string()),
        container_port: Some(container.into()),
        host_port: Some(host.into()),
        protocol: Some(match protocol {
            Protocol::Tcp => shapes::TransportProtocol::Tcp,
            Protocol::Udp => shapes::TransportProtocol::Udp,
        }),
        ..Default::default()
    }
}

/// A container's `networkBindings` as ECS reports them: for `host`, its
/// `portMappings` at the same port; for `bridge`, what the runtime bound
/// (dynamic ports resolved), in `portMappings` order. `None` in the modes
/// that publish nothing.
pub fn network_bindings(
    mode: NetworkMode,
    def: &ContainerDefinition,
    host_ip: &str,
    bound: &[PortBinding],
) -> Option<Vec<NetworkBinding>> {
    let mut keys: Vec<(u16, Protocol)> = Vec::new();
    for m in port_mappings(def) {
        if !keys.contains(&(m.container_port, m.protocol)) {
            keys.push((m.container_port, m.protocol));
        }
    }
    let list: Vec<NetworkBinding> = match mode {
        NetworkMode::Awsvpc | NetworkMode::None => return None,
        NetworkMode::Host => keys
            .iter()
            .map(|&(p, protocol)| binding(host_ip, p, p, protocol))
            .collect(),
        NetworkMode::Bridge => keys
            .iter()
            .flat_map(|&(p, protocol)| {
                bound
                    .iter()
                    .filter(move |b| b.container_port == p && b.protocol == protocol)
                    .map(|b| binding(&b.host_ip, b.container_port, b.host_port, b.protocol))
            })
            .collect(),
    };
    Some(list)
}

/// The runtime name of a task's container.
pub fn runtime_name(task_id: &str, container: &str) -> String {
    format!("berth-{task_id}-{container}")
}

/// A container's `links` as (container name, alias): `"name:alias"`, or
/// `"name"` for the alias `name`.
fn parsed_links(def: &ContainerDefinition) -> Vec<(&str, &str)> {
    def.links
        .iter()
        .flatten()
        .map(|l| l.split_once(':').unwrap_or((l.as_str(), l.as_str())))
        .filter(|(name, alias)| !name.is_empty() && !alias.is_empty())
        .collect()
}

/// The containers a container links to, by ECS name: ECS starts them first
/// (as `dependsOn` with `START`).
pub fn link_targets(def: &ContainerDefinition) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (name, _) in parsed_links(def) {
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    out
}

/// A `bridge` container's links, to its task's containers by their
/// runtime names.
pub fn links(mode: NetworkMode, task_id: &str, def: &ContainerDefinition) -> Vec<Link> {
    if mode != NetworkMode::Bridge {
        return Vec::new();
    }
    parsed_links(def)
        .into_iter()
        .map(|(name, alias)| Link {
            container: runtime_name(task_id, name),
            alias: alias.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn obj<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    /// Bindings as the wire writes them.
    fn wire(b: Option<Vec<NetworkBinding>>) -> Option<Value> {
        b.map(|b| serde_json::to_value(b).unwrap())
    }

    fn brief(ports: &[PublishedPort]) -> Vec<(u16, &str, &str, Option<u16>)> {
        ports
            .iter()
            .map(|p| {
                (
                    p.container_port,
                    p.protocol.as_str(),
                    p.host_ip.as_str(),
                    p.host_port,
                )
            })
            .collect()
    }

    #[test]
    fn mode_from_launch_type_and_taskdef() {
        let ec2 = obj(json!({"launchType": "EC2"}));
        let fargate = obj(json!({"launchType": "FARGATE"}));
        let ec2: Task = ec2;
        let fargate: Task = fargate;
        let mode = |t: &Task, td: Value| Ok::<_, ()>(NetworkMode::of(t, &obj(td)));
        assert_eq!(mode(&ec2, json!({})), Ok(NetworkMode::Bridge));
        assert_eq!(
            mode(&ec2, json!({"networkMode": "bridge"})),
            Ok(NetworkMode::Bridge)
        );
        assert_eq!(
            mode(&ec2, json!({"networkMode": "host"})),
            Ok(NetworkMode::Host)
        );
        assert_eq!(
            mode(&ec2, json!({"networkMode": "awsvpc"})),
            Ok(NetworkMode::Awsvpc)
        );
        assert_eq!(
            mode(&ec2, json!({"networkMode": "none"})),
            Ok(NetworkMode::None)
        );
        assert_eq!(
            mode(&fargate, json!({"networkMode": "awsvpc"})),
            Ok(NetworkMode::Awsvpc)
        );
        assert_eq!(mode(&fargate, json!({})), Ok(NetworkMode::Awsvpc));
        assert!(NetworkMode::Awsvpc.has_sandbox() && NetworkMode::Host.has_sandbox());
        assert!(!NetworkMode::Bridge.has_sandbox() && !NetworkMode::None.has_sandbox());
    }

    #[test]
    fn port_mappings_in_order_with_ranges() {
        let def = obj(json!({"portMappings": [
            {"containerPort": 80, "hostPort": 8080, "protocol": "tcp"},
            {"containerPort": 81, "hostPort": 0},
            {"containerPort": 53, "protocol": "udp"},
            {"containerPortRange": "9000-9002", "protocol": "tcp"},
            {"containerPortRange": "9-3"},
            {"containerPort": 70000},
        ]}));
        let got: Vec<_> = port_mappings(&def)
            .iter()
            .map(|m| (m.container_port, m.host_port, m.protocol))
            .collect();
        assert_eq!(
            got,
            vec![
                (80, Some(8080), Protocol::Tcp),
                (81, None, Protocol::Tcp),
                (53, None, Protocol::Udp),
                (9000, None, Protocol::Tcp),
                (9001, None, Protocol::Tcp),
                (9002, None, Protocol::Tcp),
            ]
        );
        assert!(port_mappings(&obj(json!({"name": "x"}))).is_empty());
    }

    #[test]
    fn bridge_publishes_each_container_with_dynamic_ports() {
        let def = obj(json!({"portMappings": [
            {"containerPort": 80, "hostPort": 8080, "protocol": "tcp"},
            {"containerPort": 8081, "hostPort": 0, "protocol": "tcp"},
            {"containerPort": 53, "protocol": "udp"},
        ]}));
        assert_eq!(
            brief(&container_ports(NetworkMode::Bridge, &def, "10.99.0.1")),
            vec![
                (80, "tcp", "10.99.0.1", Some(8080)),
                (8081, "tcp", "10.99.0.1", None),
                (53, "udp", "10.99.0.1", None),
            ]
        );
        for mode in [NetworkMode::Host, NetworkMode::Awsvpc, NetworkMode::None] {
            assert!(container_ports(mode, &def, "10.99.0.1").is_empty());
            assert!(links(mode, "t", &obj(json!({"links": ["a"]}))).is_empty());
        }
        assert!(sandbox_ports(NetworkMode::Bridge, &[def], "10.99.0.1").is_empty());
    }

    #[test]
    fn host_mode_sandbox_publishes_every_containers_ports_once() {
        let defs = [
            obj(json!({"portMappings": [
                {"containerPort": 80, "hostPort": 80, "protocol": "tcp"},
                {"containerPort": 53, "hostPort": 53, "protocol": "udp"},
            ]})),
            obj(json!({"portMappings": [
                {"containerPort": 9090, "protocol": "tcp"},
                {"containerPort": 80, "hostPort": 80, "protocol": "tcp"},
            ]})),
            obj(json!({})),
        ];
        assert_eq!(
            brief(&sandbox_ports(NetworkMode::Host, &defs, "10.99.0.2")),
            vec![
                (80, "tcp", "10.99.0.2", Some(80)),
                (53, "udp", "10.99.0.2", Some(53)),
                (9090, "tcp", "10.99.0.2", Some(9090)),
            ]
        );
        assert!(sandbox_ports(NetworkMode::Awsvpc, &defs, "10.99.0.2").is_empty());
    }

    #[test]
    fn network_bindings_by_mode() {
        let def = obj(json!({"portMappings": [
            {"containerPort": 8080, "hostPort": 0, "protocol": "tcp"},
            {"containerPort": 53, "protocol": "udp"},
            {"containerPort": 80, "hostPort": 8000, "protocol": "tcp"},
        ]}));
        let bound = |p: u16, protocol: Protocol, h: u16| PortBinding {
            container_port: p,
            protocol,
            host_ip: "10.99.0.1".into(),
            host_port: h,
        };
        // Docker reports them ordered by key; ECS lists portMappings order.
        let actual = [
            bound(53, Protocol::Udp, 32768),
            bound(80, Protocol::Tcp, 8000),
            bound(8080, Protocol::Tcp, 32769),
        ];
        assert_eq!(
            wire(network_bindings(
                NetworkMode::Bridge,
                &def,
                "10.99.0.1",
                &actual
            )),
            Some(json!([
                {"bindIP": "10.99.0.1", "containerPort": 8080, "hostPort": 32769, "protocol": "tcp"},
                {"bindIP": "10.99.0.1", "containerPort": 53, "hostPort": 32768, "protocol": "udp"},
                {"bindIP": "10.99.0.1", "containerPort": 80, "hostPort": 8000, "protocol": "tcp"},
            ]))
        );
        // Not running (nothing bound): none.
        assert_eq!(
            wire(network_bindings(
                NetworkMode::Bridge,
                &def,
                "10.99.0.1",
                &[]
            )),
            Some(json!([]))
        );
        assert_eq!(
            wire(network_bindings(NetworkMode::Host, &def, "10.99.0.1", &[])),
            Some(json!([
                {"bindIP": "10.99.0.1", "containerPort": 8080, "hostPort": 8080, "protocol": "tcp"},
                {"bindIP": "10.99.0.1", "containerPort": 53, "hostPort": 53, "protocol": "udp"},
                {"bindIP": "10.99.0.1", "containerPort": 80, "hostPort": 80, "protocol": "tcp"},
            ]))
        );
        assert_eq!(
            wire(network_bindings(NetworkMode::Awsvpc, &def, "", &actual)),
            None
        );
        assert_eq!(
            wire(network_bindings(
                NetworkMode::Host,
                &obj(json!({})),
                "10.99.0.1",
                &[]
            )),
            Some(json!([]))
        );
    }

    #[test]
    fn links_map_to_runtime_names() {
        let def = obj(json!({"links": ["db:database", "cache", "db:db2"]}));
        let got: Vec<_> = links(NetworkMode::Bridge, "abc", &def)
            .into_iter()
            .map(|l| (l.container, l.alias))
            .collect();
        assert_eq!(
            got,
            vec![
                ("berth-abc-db".to_string(), "database".to_string()),
                ("berth-abc-cache".to_string(), "cache".to_string()),
                ("berth-abc-db".to_string(), "db2".to_string()),
            ]
        );
        assert_eq!(link_targets(&def), vec!["db", "cache"]);
        assert!(link_targets(&obj(json!({}))).is_empty());
        assert_eq!(runtime_name("abc", "web"), "berth-abc-web");
    }
}
