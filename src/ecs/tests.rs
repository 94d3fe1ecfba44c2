//! ECS's typed shapes hold every answer Berth gives, exactly.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::shapes::{CapacityProvider, Cluster, ContainerInstance, Task, TaskDefinition};
use crate::runtime::fake::Program;
use crate::testing::World;

/// `v` read as `T` and written back is `v`, field for field.
fn round_trips<T: DeserializeOwned + Serialize>(what: &str, v: &Value) {
    let typed: T = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{what}: {e}\n{v}"));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(&back, v, "{what} does not round-trip");
}

#[tokio::test(start_paused = true)]
async fn every_resource_berth_answers_with_fits_its_shape() {
    let w = World::new();
    w.fake.image("app:1", Program::runs().healthy());
    w.ecs(
        "CreateCluster",
        json!({"clusterName": "c", "tags": [{"key": "k", "value": "v"}],
        "settings": [{"name": "containerInsights", "value": "enabled"}]}),
    );
    let td = w.ecs(
        "RegisterTaskDefinition",
        json!({
        "family": "web", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
        "cpu": "256", "memory": "512",
        "executionRoleArn": "arn:aws:iam::000000000000:role/x",
        "containerDefinitions": [{
            "name": "main", "image": "app:1", "essential": true,
            "portMappings": [{"containerPort": 80, "protocol": "tcp"}],
            "environment": [{"name": "A", "value": "1"}],
            "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 5},
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/g",
                "awslogs-region": "us-east-1", "awslogs-stream-prefix": "p",
                "awslogs-create-group": "true"}},
            "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 2048}],
            "linuxParameters": {"initProcessEnabled": true}
        }]}),
    )["taskDefinition"]
        .clone();
    round_trips::<TaskDefinition>("task definition", &td);
    let arn = w.ecs(
        "RunTask",
        json!({"cluster": "c", "taskDefinition": "web", "launchType": "FARGATE",
        "networkConfiguration": crate::testing::net(), "tags": [{"key": "t", "value": "1"}]}),
    )["tasks"][0]["taskArn"]
        .as_str()
        .unwrap()
        .to_string();
    round_trips::<Task>(
        "a task just run",
        &w.ecs(
            "DescribeTasks",
            json!({"cluster": "c", "tasks": [arn], "include": ["TAGS"]}),
        )["tasks"][0],
    );
    w.settle().await;
    let running =
        w.ecs("DescribeTasks", json!({"cluster": "c", "tasks": [arn]}))["tasks"][0].clone();
    assert_eq!(running["lastStatus"], "RUNNING");
    round_trips::<Task>("a running task", &running);
    w.ecs("StopTask", json!({"cluster": "c", "task": arn}));
    w.settle().await;
    round_trips::<Task>(
        "a stopped task",
        &w.ecs("DescribeTasks", json!({"cluster": "c", "tasks": [arn]}))["tasks"][0],
    );
    let clusters = w.ecs(
        "DescribeClusters",
        json!({"clusters": ["c"],
        "include": ["TAGS", "SETTINGS", "STATISTICS", "ATTACHMENTS", "CONFIGURATIONS"]}),
    );
    round_trips::<Cluster>("a cluster", &clusters["clusters"][0]);
    let doc = json!({"instanceId": "i-0123456789abcdef0", "instanceType": "m5.large",
        "availabilityZone": "us-east-1b", "region": "us-east-1"});
    let ci = w.ecs(
        "RegisterContainerInstance",
        json!({"cluster": "c",
        "instanceIdentityDocument": doc.to_string(),
        "attributes": [{"name": "role", "value": "web"}]}),
    )["containerInstance"]
        .clone();
    round_trips::<ContainerInstance>("a container instance", &ci);
    let described = w.ecs(
        "DescribeContainerInstances",
        json!({"cluster": "c",
        "containerInstances": [ci["containerInstanceArn"]], "include": ["TAGS"]}),
    );
    round_trips::<ContainerInstance>("a described instance", &described["containerInstances"][0]);
    let cps = w.ecs("DescribeCapacityProviders", json!({}));
    for cp in cps["capacityProviders"].as_array().unwrap() {
        round_trips::<CapacityProvider>("a capacity provider", cp);
    }
}

#[tokio::test(start_paused = true)]
async fn a_report_through_the_ecs_agent_api_is_word_from_the_agent() {
    let w = World::new();
    w.ecs("CreateCluster", json!({}));
    let doc = json!({"instanceId": "i-0123456789abcdef1", "instanceType": "m5.large",
        "availabilityZone": "us-east-1a", "region": "us-east-1"});
    let ci = w.ecs(
        "RegisterContainerInstance",
        json!({"instanceIdentityDocument": doc.to_string()}),
    )["containerInstance"]["containerInstanceArn"]
        .clone();
    let td = w.ecs(
        "RegisterTaskDefinition",
        json!({"family": "job", "requiresCompatibilities": ["EC2"],
               "containerDefinitions": [{"name": "main", "image": "app:1", "memory": 64}]}),
    )["taskDefinition"]["taskDefinitionArn"]
        .clone();
    let task = w.ecs(
        "RunTask",
        json!({"taskDefinition": td, "launchType": "EC2"}),
    )["tasks"][0]["taskArn"]
        .clone();
    let connected = |w: &World| {
        w.ecs(
            "DescribeContainerInstances",
            json!({"containerInstances": [ci]}),
        )["containerInstances"][0]["agentConnected"]
            .clone()
    };
    w.clock.advance_ms(31_000);
    assert_eq!(connected(&w), json!(false), "silent past the timeout");
    w.ecs(
        "SubmitTaskStateChange",
        json!({"task": task, "status": "RUNNING"}),
    );
    assert_eq!(connected(&w), json!(true), "the report was word from it");
    assert_eq!(w.task(task.as_str().unwrap())["lastStatus"], "RUNNING");
}
