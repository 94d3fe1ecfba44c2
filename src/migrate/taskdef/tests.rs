//! Unit tests of the task definition converter: both directions on
//! hand-written definitions, each blocker, and every converted definition
//! checked with the rules `RegisterTaskDefinition` applies.

use serde_json::{json, Map, Value};

use super::to_ec2::rewrite_localhost;
use super::to_fargate::rewrite_hosts;
use super::*;
use crate::ecs::taskdef_rules::prepare;

fn td(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// Convert, assert it registers (as `RegisterTaskDefinition` would take it)
/// and declares the target's compatibility.
fn converts(input: &Map<String, Value>, to: Target, opts: &Options) -> Conversion {
    let c = match convert(input, to, opts) {
        Ok(c) => c,
        Err(ConvertError::Blocked(b)) => panic!("blocked: {b:#?}"),
        Err(e) => panic!("{e}"),
    };
    let mut request = c.task_definition.clone();
    request.remove("tags");
    let doc = prepare(&request).unwrap_or_else(|e| {
        panic!(
            "converted definition refused: {}\n{:#}",
            e.message,
            Value::Object(c.task_definition.clone())
        )
    });
    let lt = to.launch_type();
    assert_eq!(doc["requiresCompatibilities"], json!([lt]));
    assert!(
        doc["compatibilities"]
            .as_array()
            .unwrap()
            .contains(&json!(lt)),
        "{:?}",
        doc["compatibilities"]
    );
    c
}

fn blockers(input: &Map<String, Value>, to: Target, opts: &Options) -> Vec<Finding> {
    match convert(input, to, opts) {
        Err(ConvertError::Blocked(b)) => {
            assert!(b.iter().all(|f| f.kind == Kind::Blocker));
            b
        }
        Ok(c) => panic!(
            "not blocked: {:#}",
            Value::Object(c.task_definition.clone())
        ),
        Err(e) => panic!("{e}"),
    }
}

fn finding<'a>(fs: &'a [Finding], path: &str) -> &'a Finding {
    fs.iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("no finding at {path}: {fs:#?}"))
}

fn container<'a>(doc: &'a Map<String, Value>, name: &str) -> &'a Value {
    doc["containerDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
}

fn ec2(mode: Option<NetworkMode>, static_ports: bool) -> Options {
    Options {
        network_mode: mode,
        static_ports,
        ..Options::default()
    }
}

/// A FARGATE definition shaped like a real-time media bridge moving to EC2.
fn fargate_bridge() -> Map<String, Value> {
    td(json!({
        "family": "media-bridge",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "1024",
        "memory": "2048",
        "executionRoleArn": "arn:aws:iam::000000000000:role/exec",
        "ephemeralStorage": {"sizeInGiB": 30},
        "containerDefinitions": [{
            "name": "bridge",
            "image": "000000000000.dkr.ecr.us-east-1.amazonaws.com/bridge:1",
            "portMappings": [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}],
            "environment": [{"name": "PORT", "value": "8080"}],
            "healthCheck": {"command": ["CMD-SHELL", "curl -f http://localhost:8080/health"]},
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/bridge"}}
        }],
        "tags": [{"key": "team", "value": "voice"}]
    }))
}

/// An EC2 definition shaped like an API with a linked database.
fn ec2_api() -> Map<String, Value> {
    td(json!({
        "family": "api",
        "requiresCompatibilities": ["EC2"],
        "containerDefinitions": [
            {
                "name": "api", "image": "node:20-alpine", "cpu": 512, "memory": 1024,
                "links": ["db:database"],
                "portMappings": [{"containerPort": 3000, "hostPort": 80}],
                "environment": [
                    {"name": "NODE_ENV", "value": "production"},
                    {"name": "DATABASE_URL", "value": "postgres://app:pw@database:5432/app"},
                    {"name": "DB_HOST", "value": "database"},
                    {"name": "DB_NAME", "value": "database"},
                    {"name": "CACHE_URL", "value": "http://cache.internal:6379"}
                ]
            },
            {
                "name": "db", "image": "postgres:16", "cpu": 188, "memoryReservation": 476,
                "portMappings": [{"containerPort": 5432}],
                "hostname": "db"
            }
        ]
    }))
}

#[test]
fn fargate_to_ec2_bridge_with_dynamic_ports() {
    let c = converts(&fargate_bridge(), Target::Ec2, &ec2(None, false));
    let doc = &c.task_definition;
    assert_eq!(doc["networkMode"], "bridge");
    assert_eq!(doc["requiresCompatibilities"], json!(["EC2"]));
    assert_eq!(
        container(doc, "bridge")["portMappings"][0]["hostPort"],
        json!(0)
    );
    assert!(!doc.contains_key("ephemeralStorage"));
    // The task size is kept: a valid hard limit on EC2 too.
    assert_eq!(
        (doc["cpu"].clone(), doc["memory"].clone()),
        (json!("1024"), json!("2048"))
    );
    assert_eq!(doc["tags"][0]["key"], "team");
    let f = finding(&c.changes, "networkMode");
    assert_eq!(f.what, "awsvpc → bridge");
    assert!(!f.why.is_empty());
    assert_eq!(
        finding(
            &c.changes,
            "containerDefinitions[bridge].portMappings[0].hostPort"
        )
        .what,
        "8080 → 0 (dynamic)"
    );
    assert_eq!(
        finding(&c.changes, "requiresCompatibilities").what,
        r#"["FARGATE"] → ["EC2"]"#
    );
    finding(&c.changes, "ephemeralStorage");
}

#[test]
fn fargate_to_ec2_static_host_and_awsvpc() {
    let c = converts(&fargate_bridge(), Target::Ec2, &ec2(None, true));
    assert_eq!(
        container(&c.task_definition, "bridge")["portMappings"][0]["hostPort"],
        json!(8080)
    );
    assert!(
        !c.changes.iter().any(|f| f.path.ends_with("hostPort")),
        "8080 stays 8080"
    );
    let c = converts(
        &fargate_bridge(),
        Target::Ec2,
        &ec2(Some(NetworkMode::Host), false),
    );
    assert_eq!(c.task_definition["networkMode"], "host");
    assert_eq!(
        container(&c.task_definition, "bridge")["portMappings"][0]["hostPort"],
        json!(8080)
    );
    let c = converts(
        &fargate_bridge(),
        Target::Ec2,
        &ec2(Some(NetworkMode::Awsvpc), false),
    );
    assert_eq!(c.task_definition["networkMode"], "awsvpc");
    assert_eq!(finding(&c.changes, "networkMode").kind, Kind::Note);
    // A mapping without hostPort gets one in bridge mode.
    let mut t = fargate_bridge();
    t["containerDefinitions"][0]["portMappings"] = json!([{"containerPort": 8080}]);
    let c = converts(&t, Target::Ec2, &ec2(None, false));
    assert_eq!(
        finding(
            &c.changes,
            "containerDefinitions[bridge].portMappings[0].hostPort"
        )
        .what,
        "absent → 0 (dynamic)"
    );
}

#[test]
fn fargate_to_ec2_memory_where_ec2_needs_it() {
    // No task memory (not valid on FARGATE, but seen in the wild): each
    // container without memory gets a reservation.
    let t = td(json!({"family": "f", "networkMode": "awsvpc",
        "containerDefinitions": [{"name": "a", "image": "x"}, {"name": "b", "image": "y", "memory": 256}]}));
    let c = converts(&t, Target::Ec2, &Options::default());
    assert_eq!(
        container(&c.task_definition, "a")["memoryReservation"],
        json!(128)
    );
    assert!(container(&c.task_definition, "b")
        .get("memoryReservation")
        .is_none());
    // --drop-task-size: the task memory is shared out.
    let mut t = fargate_bridge();
    t["containerDefinitions"].as_array_mut().unwrap().push(
        json!({"name": "sidecar", "image": "x", "memoryReservation": 48, "essential": false}),
    );
    let opts = Options {
        drop_task_size: true,
        ..Options::default()
    };
    let c = converts(&t, Target::Ec2, &opts);
    let doc = &c.task_definition;
    assert!(!doc.contains_key("cpu") && !doc.contains_key("memory"));
    assert_eq!(container(doc, "bridge")["memoryReservation"], json!(2000));
    assert_eq!(container(doc, "sidecar")["memoryReservation"], json!(48));
    assert_eq!(
        finding(&c.changes, "containerDefinitions[bridge].memoryReservation").what,
        "added 2000"
    );
}

#[test]
fn fargate_to_ec2_bridge_replaces_localhost_with_links() {
    let t = td(json!({
        "family": "pair", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
        "cpu": "512", "memory": "1024",
        "containerDefinitions": [
            {"name": "app", "image": "x", "portMappings": [{"containerPort": 8080}],
             "environment": [
                {"name": "API", "value": "http://localhost:9000/v1"},
                {"name": "SELF", "value": "http://localhost:8080/"},
                {"name": "OTHER", "value": "http://127.0.0.1:7777"}
             ]},
            {"name": "sidecar", "image": "y", "portMappings": [{"containerPort": 9000}]}
        ]
    }));
    let c = converts(&t, Target::Ec2, &Options::default());
    let app = container(&c.task_definition, "app");
    assert_eq!(app["environment"][0]["value"], "http://sidecar:9000/v1");
    assert_eq!(app["environment"][1]["value"], "http://localhost:8080/");
    assert_eq!(app["links"], json!(["sidecar"]));
    assert_eq!(
        finding(&c.changes, "containerDefinitions[app].links").what,
        "added sidecar"
    );
    assert_eq!(
        finding(&c.changes, "containerDefinitions[app].environment[OTHER]").kind,
        Kind::Note
    );
    // Host mode keeps localhost: the containers share the instance's network.
    let c = converts(&t, Target::Ec2, &ec2(Some(NetworkMode::Host), false));
    let app = container(&c.task_definition, "app");
    assert_eq!(app["environment"][0]["value"], "http://localhost:9000/v1");
    assert!(app.get("links").is_none());
}

#[test]
fn fargate_to_ec2_blockers() {
    let mut t = fargate_bridge();
    t.insert(
        "runtimePlatform".into(),
        json!({"operatingSystemFamily": "WINDOWS_SERVER_2022_CORE"}),
    );
    let b = blockers(&t, Target::Ec2, &Options::default());
    assert_eq!(b[0].path, "networkMode");
    converts(&t, Target::Ec2, &ec2(Some(NetworkMode::Awsvpc), false));
}

#[test]
fn ec2_to_fargate_links_ports_and_size() {
    let c = converts(&ec2_api(), Target::Fargate, &Options::default());
    let doc = &c.task_definition;
    assert_eq!(doc["networkMode"], "awsvpc");
    assert_eq!(doc["requiresCompatibilities"], json!(["FARGATE"]));
    let api = container(doc, "api");
    assert!(api.get("links").is_none());
    let env: Vec<(&str, &str)> = api["environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["value"].as_str().unwrap()))
        .collect();
    assert_eq!(
        env,
        [
            ("NODE_ENV", "production"),
            ("DATABASE_URL", "postgres://app:pw@localhost:5432/app"),
            ("DB_HOST", "localhost"),
            ("DB_NAME", "database"),
            ("CACHE_URL", "http://cache.internal:6379"),
        ]
    );
    assert_eq!(
        finding(
            &c.changes,
            "containerDefinitions[api].environment[DATABASE_URL]"
        )
        .what,
        "postgres://app:pw@database:5432/app → postgres://app:pw@localhost:5432/app"
    );
    assert_eq!(
        finding(&c.changes, "containerDefinitions[api].links").what,
        "removed db:database"
    );
    assert_eq!(api["portMappings"][0]["hostPort"], json!(3000));
    assert_eq!(
        finding(
            &c.changes,
            "containerDefinitions[api].portMappings[0].hostPort"
        )
        .what,
        "80 → 3000"
    );
    assert!(container(doc, "db").get("hostname").is_none());
    // 512 + 188 cpu, 1024 + 476 MiB → the smallest Fargate size holding them.
    assert_eq!(
        (doc["cpu"].clone(), doc["memory"].clone()),
        (json!("1024"), json!("2048"))
    );
    let size = finding(&c.changes, "cpu, memory");
    assert!(
        size.what.starts_with(
            "cpu 700 (sum of containers) → 1024, memory 1500 (sum of containers) → 2048 MiB: $"
        ),
        "{}",
        size.what
    );
    let rates = crate::pricing::fargate("us-east-1").unwrap().x86_64;
    let new = rates.vcpu_hour + 2.0 * rates.gb_hour;
    let asked = 700.0 / 1024.0 * rates.vcpu_hour + 1500.0 / 1024.0 * rates.gb_hour;
    assert!(
        size.what.contains(&format!(
            "${new:.4}/h instead of ${asked:.4}/h for the size asked, in us-east-1"
        )),
        "{}",
        size.what
    );
}

#[test]
fn fargate_size_rounds_up_task_level_and_prices_by_region() {
    let mut t = ec2_api();
    t.insert("cpu".into(), json!("0.5 vCPU"));
    t.insert("memory".into(), json!("3000"));
    let c = converts(&t, Target::Fargate, &Options::default());
    assert_eq!(
        (
            c.task_definition["cpu"].clone(),
            c.task_definition["memory"].clone()
        ),
        (json!("1024"), json!("3072")),
        "the containers' 700 cpu units need more than the task's 512"
    );
    // A valid size is kept, and its price stated.
    let mut t = ec2_api();
    t.insert("cpu".into(), json!("1024"));
    t.insert("memory".into(), json!("2048"));
    let opts = Options {
        region: "eu-west-1".into(),
        ..Options::default()
    };
    let c = converts(&t, Target::Fargate, &opts);
    let f = finding(&c.changes, "cpu, memory");
    assert_eq!(f.kind, Kind::Note);
    assert!(f.what.contains("in eu-west-1"), "{}", f.what);
    // An unknown region still converts, without a price.
    let opts = Options {
        region: "xx-nowhere-1".into(),
        ..Options::default()
    };
    let c = converts(&ec2_api(), Target::Fargate, &opts);
    assert!(finding(&c.changes, "cpu, memory")
        .what
        .contains("no Fargate prices known"));
    // Nothing sized at all: the smallest Fargate task.
    let t = td(json!({"family": "tiny", "memory": "512",
        "containerDefinitions": [{"name": "a", "image": "x"}]}));
    let c = converts(&t, Target::Fargate, &Options::default());
    assert_eq!(
        (
            c.task_definition["cpu"].clone(),
            c.task_definition["memory"].clone()
        ),
        (json!("256"), json!("512"))
    );
}

#[test]
fn ec2_to_fargate_each_blocker() {
    let base = || {
        td(json!({"family": "b", "containerDefinitions": [
            {"name": "a", "image": "x", "memory": 256}]}))
    };
    type Edit = Box<dyn Fn(&mut Map<String, Value>)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "containerDefinitions[a].privileged",
            Box::new(|t| {
                t["containerDefinitions"][0]["privileged"] = json!(true);
            }),
        ),
        (
            "volumes[data].host.sourcePath",
            Box::new(|t| {
                t.insert(
                    "volumes".into(),
                    json!([{"name": "data", "host": {"sourcePath": "/srv/data"}}]),
                );
            }),
        ),
        (
            "volumes[dv].dockerVolumeConfiguration",
            Box::new(|t| {
                t.insert(
                    "volumes".into(),
                    json!([{"name": "dv", "dockerVolumeConfiguration": {"scope": "task"}}]),
                );
            }),
        ),
        (
            "pidMode",
            Box::new(|t| {
                t.insert("pidMode".into(), json!("host"));
            }),
        ),
        (
            "ipcMode",
            Box::new(|t| {
                t.insert("ipcMode".into(), json!("host"));
            }),
        ),
        (
            "containerDefinitions[a].resourceRequirements",
            Box::new(|t| {
                t["containerDefinitions"][0]["resourceRequirements"] =
                    json!([{"type": "GPU", "value": "1"}]);
            }),
        ),
        (
            "containerDefinitions[a].linuxParameters.devices",
            Box::new(|t| {
                t["containerDefinitions"][0]["linuxParameters"] =
                    json!({"devices": [{"hostPath": "/dev/fuse"}]});
            }),
        ),
        (
            "containerDefinitions[a].linuxParameters.capabilities.add",
            Box::new(|t| {
                t["containerDefinitions"][0]["linuxParameters"] =
                    json!({"capabilities": {"add": ["SYS_PTRACE", "NET_ADMIN"]}});
            }),
        ),
        (
            "containerDefinitions[a].linuxParameters.sharedMemorySize",
            Box::new(|t| {
                t["containerDefinitions"][0]["linuxParameters"] = json!({"sharedMemorySize": 64});
            }),
        ),
        (
            "containerDefinitions[a].logConfiguration.logDriver",
            Box::new(|t| {
                t["containerDefinitions"][0]["logConfiguration"] =
                    json!({"logDriver": "json-file"});
            }),
        ),
        (
            "placementConstraints",
            Box::new(|t| {
                t.insert("placementConstraints".into(), json!([{"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t3.*"}]));
            }),
        ),
        (
            "containerDefinitions[a].dnsServers",
            Box::new(|t| {
                t["containerDefinitions"][0]["dnsServers"] = json!(["10.0.0.2"]);
            }),
        ),
        (
            "containerDefinitions[a].extraHosts",
            Box::new(|t| {
                t["containerDefinitions"][0]["extraHosts"] =
                    json!([{"hostname": "h", "ipAddress": "10.0.0.9"}]);
            }),
        ),
        (
            "containerDefinitions[b].portMappings[0].containerPort",
            Box::new(|t| {
                t["containerDefinitions"][0]["portMappings"] =
                    json!([{"containerPort": 80, "hostPort": 8080}]);
                t["containerDefinitions"].as_array_mut().unwrap().push(json!(
                {"name": "b", "image": "y", "memory": 64, "portMappings": [{"containerPort": 80, "hostPort": 8081}]}));
            }),
        ),
        (
            "cpu, memory",
            Box::new(|t| {
                t["containerDefinitions"][0]["cpu"] = json!(20000);
            }),
        ),
        (
            "executionRoleArn",
            Box::new(|t| {
                t["containerDefinitions"][0]["logConfiguration"] =
                    json!({"logDriver": "awslogs", "options": {}});
            }),
        ),
    ];
    assert!(convert(&base(), Target::Fargate, &Options::default()).is_ok());
    for (path, make) in cases {
        let mut t = base();
        make(&mut t);
        let b = blockers(&t, Target::Fargate, &Options::default());
        assert_eq!(b.len(), 1, "{path}: {b:#?}");
        assert_eq!(b[0].path, path);
        assert!(!b[0].why.is_empty() && !b[0].what.is_empty());
        // Lint sees the same, beside what would change.
        let a = analyze(&t, Target::Fargate, &Options::default()).unwrap();
        assert_eq!(a.blockers().len(), 1);
        assert!(a.findings.iter().any(|f| f.kind == Kind::Change));
    }
}

#[test]
fn harmless_empty_fields_are_dropped_not_blocked() {
    let t = td(
        json!({"family": "e", "containerDefinitions": [{"name": "a", "image": "x", "memory": 128,
        "privileged": false, "dnsServers": [], "extraHosts": [], "disableNetworking": false}],
        "placementConstraints": []}),
    );
    let c = converts(&t, Target::Fargate, &Options::default());
    let a = container(&c.task_definition, "a");
    for k in [
        "privileged",
        "dnsServers",
        "extraHosts",
        "disableNetworking",
    ] {
        assert!(a.get(k).is_none(), "{k} kept");
    }
}

#[test]
fn execution_role_given_on_the_command_line() {
    let mut t = ec2_api();
    t["containerDefinitions"][0]["logConfiguration"] =
        json!({"logDriver": "awslogs", "options": {}});
    let opts = Options {
        execution_role_arn: Some("arn:aws:iam::000000000000:role/exec".into()),
        ..Options::default()
    };
    let c = converts(&t, Target::Fargate, &opts);
    assert_eq!(
        c.task_definition["executionRoleArn"],
        "arn:aws:iam::000000000000:role/exec"
    );
    assert!(finding(&c.changes, "executionRoleArn")
        .why
        .contains("api logs with awslogs"));
}

#[test]
fn round_trips_register_both_ways() {
    let c = converts(&ec2_api(), Target::Fargate, &Options::default());
    let back = converts(&c.task_definition, Target::Ec2, &Options::default());
    let api = container(&back.task_definition, "api");
    assert_eq!(api["portMappings"][0]["hostPort"], json!(0));
    let c = converts(&fargate_bridge(), Target::Ec2, &ec2(None, true));
    let back = converts(&c.task_definition, Target::Fargate, &Options::default());
    assert_eq!(back.task_definition["cpu"], "1024");
    // Already on the target: nothing to change but the price note.
    let again = converts(&back.task_definition, Target::Fargate, &Options::default());
    assert!(
        again.changes.iter().all(|f| f.kind == Kind::Note),
        "{:#?}",
        again.changes
    );
}

#[test]
fn described_definitions_convert() {
    // What DescribeTaskDefinition gives (with the describe-only fields
    // already stripped): defaults filled in, empty lists.
    let t = td(json!({
        "family": "d", "networkMode": "bridge", "volumes": [], "placementConstraints": [],
        "requiresCompatibilities": ["EC2"],
        "containerDefinitions": [{"name": "web", "image": "x", "cpu": 0, "memory": 64,
            "portMappings": [{"containerPort": 8080, "hostPort": 0, "protocol": "tcp"}],
            "essential": true, "environment": [], "mountPoints": [], "volumesFrom": []}]
    }));
    let c = converts(&t, Target::Fargate, &Options::default());
    assert_eq!(
        container(&c.task_definition, "web")["portMappings"][0]["hostPort"],
        json!(8080)
    );
}

#[test]
fn bad_input_names_the_field() {
    for (t, want) in [
        (
            json!({"family": "x", "containerDefinitions": [1]}),
            "containerDefinitions[0] must be an object",
        ),
        (
            json!({"family": "x", "containerDefinitions": [{"image": "x"}]}),
            "containerDefinitions[0].name",
        ),
        (
            json!({"family": "x", "cpu": "lots", "containerDefinitions": [{"name": "a", "image": "x"}]}),
            "cpu: \"lots\"",
        ),
        (
            json!({"family": "x", "memory": true, "containerDefinitions": [{"name": "a", "image": "x"}]}),
            "memory must be a string",
        ),
        (
            json!({"family": "x", "containerDefinitions": [{"name": "a", "image": "x", "memory": "big"}]}),
            "containerDefinitions[0].memory must be an integer",
        ),
        (
            json!({"family": "x", "containerDefinitions": [{"name": "a", "image": "x", "portMappings": [{"containerPort": "80"}]}]}),
            "portMappings[0].containerPort",
        ),
        (
            json!({"family": "x", "containerDefinitions": {}}),
            "containerDefinitions must be a list",
        ),
    ] {
        match analyze(&td(t), Target::Fargate, &Options::default()) {
            Err(ConvertError::Invalid(m)) => assert!(m.contains(want), "{m} lacks {want}"),
            other => panic!("{want}: {:?}", other.map(|a| a.findings)),
        }
    }
    // Numbers for the task size are taken, as the strings ECS wants.
    let t = td(
        json!({"family": "x", "cpu": 256, "memory": 512, "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"], "containerDefinitions": [{"name": "a", "image": "x"}]}),
    );
    let c = converts(&t, Target::Fargate, &Options::default());
    assert_eq!(c.task_definition["cpu"], "256");
    assert_eq!(finding(&c.changes, "memory").what, "512 → \"512\"");
}

#[test]
fn host_rewrites_only_hosts() {
    let h = |v: &str, var: &str| rewrite_hosts(v, &["database".into(), "db".into()], var);
    assert_eq!(
        h("http://database:5432", "X").as_deref(),
        Some("http://localhost:5432")
    );
    assert_eq!(
        h("postgres://u:p@db/app", "X").as_deref(),
        Some("postgres://u:p@localhost/app")
    );
    assert_eq!(
        h("db:5432,database:5433", "X").as_deref(),
        Some("localhost:5432,localhost:5433")
    );
    assert_eq!(h("database", "DB_HOST").as_deref(), Some("localhost"));
    assert_eq!(h("database", "DB_NAME"), None);
    assert_eq!(h("mydatabase:5432", "X"), None);
    assert_eq!(h("http://database.example.com/", "URL"), None);
    assert_eq!(h("http://db-replica:5432", "URL"), None);
    assert_eq!(h("use db later", "X"), None);
}

#[test]
fn localhost_rewrites_only_known_ports() {
    let owner = |p: u16| (p == 9000).then(|| "api".to_string());
    assert_eq!(
        rewrite_localhost("http://localhost:9000/x", owner).0,
        Some(("http://api:9000/x".into(), vec!["api".into()]))
    );
    assert_eq!(rewrite_localhost("localhost:8000", owner), (None, true));
    assert_eq!(rewrite_localhost("notlocalhost:9000", owner), (None, false));
}
