//! The task lifecycle and its recovery, in-process on the fake runtime.

use serde_json::json;

use crate::runtime::fake::Program;
use crate::testing::World;

const APP: &str = "app:1";
const INIT: &str = "init:1";

fn world() -> World {
    let w = World::new();
    w.fake.image(APP, Program::runs().writes(&["app up"]));
    w.fake.image(INIT, Program::exits(0).writes(&["init done"]));
    w
}

#[tokio::test(start_paused = true)]
async fn a_fargate_task_runs_and_stops_when_its_essential_container_exits() {
    let w = world();
    let td = w.fargate(json!([{"name": "main", "image": APP}]));
    let arn = w.run_fargate(&td);
    assert_eq!(w.task(&arn)["lastStatus"], "PROVISIONING");
    w.settle().await;
    let t = w.task(&arn);
    assert_eq!(t["lastStatus"], "RUNNING", "{t}");
    assert_eq!(t["connectivity"], "CONNECTED");
    let eni = &t["attachments"][0];
    assert_eq!(eni["status"], "ATTACHED");
    assert!(t["pullStartedAt"].as_f64() <= t["startedAt"].as_f64());
    let tid = arn.rsplit('/').next().unwrap();
    assert_eq!(
        w.fake.names(),
        [format!("berth-{tid}-main"), format!("berth-{tid}-pause")]
    );
    w.fake.exit(&w.container_id(&arn, "main"), 3);
    w.settle().await;
    let t = w.task(&arn);
    assert_eq!(t["lastStatus"], "STOPPED");
    assert_eq!(t["stopCode"], "EssentialContainerExited");
    assert_eq!(t["stoppedReason"], "Essential container in task exited");
    assert_eq!(w.container(&arn, "main")["exitCode"], 3);
    assert!(w.fake.names().is_empty(), "containers and sandbox removed");
}

#[tokio::test(start_paused = true)]
async fn containers_start_in_depends_on_order() {
    let w = world();
    let td = w.fargate(json!([
        {"name": "init", "image": INIT, "essential": false},
        {"name": "main", "image": APP,
         "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}]},
        {"name": "side", "image": APP, "essential": false,
         "dependsOn": [{"containerName": "main", "condition": "START"}]},
    ]));
    let arn = w.run_fargate(&td);
    w.settle().await;
    assert_eq!(w.task(&arn)["lastStatus"], "RUNNING");
    assert_eq!(w.container(&arn, "init")["exitCode"], 0);
    assert_eq!(w.container(&arn, "init")["lastStatus"], "STOPPED");
    assert_eq!(w.container(&arn, "main")["lastStatus"], "RUNNING");
    assert_eq!(w.container(&arn, "side")["lastStatus"], "RUNNING");
    // A dependency that fails its condition stops the task.
    w.fake.image(INIT, Program::exits(1));
    let arn = w.run_fargate(&td);
    w.settle().await;
    let t = w.task(&arn);
    assert_eq!(t["lastStatus"], "STOPPED");
    assert_eq!(t["stopCode"], "TaskFailedToStart");
    assert!(
        t["stoppedReason"].as_str().unwrap().starts_with(
            "DependencyConditionUnsatisfied: dependency container init exited with code 1"
        ),
        "{t}"
    );
}

#[tokio::test(start_paused = true)]
async fn health_checks_make_the_task_healthy_or_not() {
    let w = world();
    w.fake.image("web:1", Program::runs().healthy());
    let td = w.fargate(json!([{"name": "main", "image": "web:1",
        "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 5, "retries": 2}}]));
    let arn = w.run_fargate(&td);
    w.settle().await;
    assert_eq!(w.task(&arn)["healthStatus"], "HEALTHY");
    assert_eq!(w.container(&arn, "main")["healthStatus"], "HEALTHY");
    w.fake
        .set_health(&w.container_id(&arn, "main"), "unhealthy");
    w.settle().await;
    assert_eq!(w.task(&arn)["healthStatus"], "UNHEALTHY");
}

#[tokio::test(start_paused = true)]
async fn out_of_memory_and_vanished_containers_stop_their_task_with_the_reason() {
    let w = world();
    let td = w.fargate(json!([{"name": "main", "image": APP}]));
    let oom = w.run_fargate(&td);
    let gone = w.run_fargate(&td);
    w.settle().await;
    w.fake.oom(&w.container_id(&oom, "main"));
    w.fake.vanish(&w.container_id(&gone, "main"));
    w.settle().await;
    assert_eq!(w.task(&oom)["lastStatus"], "STOPPED");
    assert_eq!(
        w.container(&oom, "main")["reason"],
        "OutOfMemoryError: Container killed due to memory usage"
    );
    let t = w.task(&gone);
    assert_eq!(t["lastStatus"], "STOPPED");
    assert!(
        t["stoppedReason"]
            .as_str()
            .unwrap()
            .contains("container main is gone from the Docker host"),
        "{t}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_image_that_cannot_be_pulled_fails_the_task() {
    let w = world();
    let td = w.fargate(json!([{"name": "main", "image": "nowhere/none:1"}]));
    let arn = w.run_fargate(&td);
    w.settle().await;
    let t = w.task(&arn);
    assert_eq!(t["lastStatus"], "STOPPED");
    assert_eq!(t["stopCode"], "TaskFailedToStart");
    assert!(t["stoppedReason"]
        .as_str()
        .unwrap()
        .starts_with("CannotPullContainerError:"));
    assert!(w.fake.names().is_empty());
}

#[tokio::test(start_paused = true)]
async fn after_a_restart_running_containers_are_adopted_and_stops_resume() {
    let mut w = world();
    let td = w.fargate(json!([{"name": "main", "image": APP}]));
    let running = w.run_fargate(&td);
    let stopping = w.run_fargate(&td);
    w.settle().await;
    let created = w.fake.calls("create");
    // StopTask while the server is down: the API records it; nothing ran it.
    w.ecs("StopTask", json!({"task": stopping}));
    w.restart_agent();
    w.settle().await;
    assert_eq!(w.task(&running)["lastStatus"], "RUNNING");
    assert_eq!(
        w.fake.calls("create"),
        created,
        "adopted, not created again"
    );
    let t = w.task(&stopping);
    assert_eq!(
        (t["lastStatus"].as_str(), t["stopCode"].as_str()),
        (Some("STOPPED"), Some("UserInitiated"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_task_takes_a_sandbox_made_ahead() {
    let w = World::with_pool(2);
    w.fake.image(APP, Program::runs());
    w.agent.pool.fill(&*w.fake, &w.agent.owner).await.unwrap();
    let made = w.fake.calls("create");
    assert_eq!(made, 2);
    let td = w.fargate(json!([{"name": "main", "image": APP}]));
    let arn = w.run_fargate(&td);
    w.settle().await;
    assert_eq!(w.task(&arn)["lastStatus"], "RUNNING");
    let tid = arn.rsplit('/').next().unwrap();
    let names = w.fake.names();
    assert!(
        names.contains(&format!("berth-{tid}-pause")),
        "renamed for its task: {names:?}"
    );
    // One create for the task's container; the sandbox came from the pool
    // (which refills in the background).
    assert!(
        names
            .iter()
            .filter(|n| n.starts_with("berth-pool-"))
            .count()
            <= 2
    );
    w.agent.shutdown().await;
    assert!(
        !w.fake.names().iter().any(|n| n.starts_with("berth-pool-")),
        "no pooled sandbox outlives the agent"
    );
    assert!(w.fake.names().contains(&format!("berth-{tid}-main")));
}

#[tokio::test(start_paused = true)]
async fn the_output_of_containers_started_after_their_dependencies_is_stored() {
    let w = world();
    let logs = json!({"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/t",
        "awslogs-region": "us-east-1", "awslogs-stream-prefix": "ecs",
        "awslogs-create-group": "true"}});
    let td = w.fargate(json!([
        {"name": "init", "image": INIT, "essential": false, "logConfiguration": logs},
        {"name": "main", "image": APP, "logConfiguration": logs,
         "dependsOn": [{"containerName": "init", "condition": "COMPLETE"}]},
    ]));
    let arn = w.run_fargate(&td);
    w.settle().await;
    assert_eq!(w.task(&arn)["lastStatus"], "RUNNING");
    let tid = arn.rsplit('/').next().unwrap();
    let events = |container: &str| -> Vec<String> {
        let out = w
            .call(
                "CloudWatch Logs",
                "GetLogEvents",
                json!({"logGroupName": "/ecs/t", "logStreamName": format!("ecs/{container}/{tid}"),
                       "startFromHead": true}),
            )
            .unwrap();
        out["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(events("init"), ["init done"]);
    assert_eq!(events("main"), ["app up"]);
}

#[tokio::test(start_paused = true)]
async fn secrets_become_environment_variables_and_a_missing_one_fails_the_task() {
    let w = world();
    w.call(
        "SSM",
        "PutParameter",
        json!({"Name": "/app/db-url", "Value": "postgres://u:pw@db/app", "Type": "SecureString"}),
    )
    .unwrap();
    let secret = w
        .call(
            "SecretsManager",
            "CreateSecret",
            json!({"Name": "openai", "SecretString": "{\"key\": \"sk-123\", \"org\": \"o\"}"}),
        )
        .unwrap()["ARN"]
        .as_str()
        .unwrap()
        .to_string();
    let td = w.fargate(json!([{"name": "main", "image": APP, "secrets": [
        {"name": "DATABASE_URL", "valueFrom": "/app/db-url"},
        {"name": "OPENAI_API_KEY", "valueFrom": format!("{secret}:key::")},
        {"name": "WHOLE", "valueFrom": secret},
    ]}]));
    let arn = w.run_fargate(&td);
    w.settle().await;
    let t = w.task(&arn);
    assert_eq!(t["lastStatus"], "RUNNING", "{t}");
    let spec = w.fake.spec(&w.container_id(&arn, "main")).unwrap();
    assert!(
        spec.env
            .contains(&"DATABASE_URL=postgres://u:pw@db/app".to_string()),
        "{:?}",
        spec.env
    );
    assert!(
        spec.env.contains(&"OPENAI_API_KEY=sk-123".to_string()),
        "{:?}",
        spec.env
    );
    assert!(
        spec.env.iter().any(|e| e.starts_with("WHOLE={")),
        "{:?}",
        spec.env
    );
    // The values appear nowhere ECS shows.
    let shown = format!(
        "{t}{}",
        w.ecs("DescribeTaskDefinition", json!({"taskDefinition": td}))
    );
    assert!(
        !shown.contains("pw@db") && !shown.contains("sk-123"),
        "{shown}"
    );

    let td = w.fargate(json!([{"name": "main", "image": APP, "secrets": [
        {"name": "A", "valueFrom": "/app/missing"},
        {"name": "B", "valueFrom": "/app/db-url"},
    ]}]));
    let arn = w.run_fargate(&td);
    w.settle().await;
    let t = w.task(&arn);
    assert_eq!(t["lastStatus"], "STOPPED", "{t}");
    assert_eq!(t["stopCode"], "TaskFailedToStart");
    let reason = t["stoppedReason"].as_str().unwrap();
    assert!(reason.starts_with("ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secrets from ssm"), "{reason}");
    assert!(
        reason.ends_with("invalid ssm parameters: /app/missing"),
        "{reason}"
    );
    assert!(!reason.contains("pw@db"));
}
