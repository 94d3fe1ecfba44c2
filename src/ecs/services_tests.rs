//! Services in-process, on the fake runtime and the manual clock: the
//! scheduler keeps the desired count, replaces what dies, rolls a
//! deployment within its bounds, trips the circuit breaker and rolls back,
//! and picks up where it was after a restart.

use serde_json::{json, Value};

use crate::clock::Clock;
use crate::runtime::fake::Program;
use crate::testing::{net, World};

const GOOD: &str = "app:1";
const BAD: &str = "crash:1";

fn world() -> World {
    let w = World::new();
    w.fake.image(GOOD, Program::runs());
    w.fake.image("app:2", Program::runs());
    w.fake.image("app:3", Program::runs());
    // A revision whose image cannot be pulled: no task of it ever runs.
    w.fake.image("exits:1", Program::exits(1));
    w.fake.image("checked:1", Program::runs().healthy());
    w
}

fn td(w: &World, image: &str) -> String {
    w.fargate(json!([{"name": "main", "image": image}]))
}

fn create(w: &World, name: &str, td: &str, desired: i64, extra: Value) -> Value {
    let mut req = json!({"serviceName": name, "taskDefinition": td, "desiredCount": desired,
                         "launchType": "FARGATE", "networkConfiguration": net()});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        req[k] = v;
    }
    w.ecs("CreateService", req)["service"].clone()
}

fn describe(w: &World, name: &str) -> Value {
    w.ecs("DescribeServices", json!({"services": [name]}))["services"][0].clone()
}

fn running(w: &World, name: &str) -> Vec<Value> {
    let arns = w.ecs("ListTasks", json!({"serviceName": name}))["taskArns"].clone();
    if arns.as_array().is_none_or(|a| a.is_empty()) {
        return vec![];
    }
    w.ecs("DescribeTasks", json!({"tasks": arns}))["tasks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn events(s: &Value) -> Vec<String> {
    s["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_service_reaches_its_desired_count_and_replaces_what_dies() {
    let w = world();
    let td = td(&w, GOOD);
    let s = create(&w, "web", &td, 3, json!({}));
    assert_eq!(s["deployments"][0]["rolloutState"], "IN_PROGRESS");
    w.converge().await;
    let s = describe(&w, "web");
    assert_eq!(s["runningCount"], 3, "{s}");
    assert_eq!(s["deployments"][0]["rolloutState"], "COMPLETED");
    assert!(events(&s).contains(&"(service web) has reached a steady state.".to_string()));
    let c = w.ecs(
        "DescribeClusters",
        json!({"clusters": ["default"], "include": ["STATISTICS"]}),
    );
    let stat = |n: &str| {
        c["clusters"][0]["statistics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|kv| kv["name"] == n)
            .map(|kv| kv["value"].clone())
    };
    assert_eq!(stat("activeFargateServiceCount"), Some(json!("1")), "{c}");
    assert_eq!(stat("activeEC2ServiceCount"), Some(json!("0")));
    let tasks = running(&w, "web");
    assert_eq!(tasks.len(), 3);
    let victim = tasks[0]["taskArn"].as_str().unwrap().to_string();
    w.fake.exit(&w.container_id(&victim, "main"), 137);
    w.converge().await;
    let after = running(&w, "web");
    assert_eq!(after.len(), 3);
    assert!(after.iter().all(|t| t["taskArn"] != victim.as_str()));
    assert_eq!(w.task(&victim)["stopCode"], "EssentialContainerExited");
    // Scale in: the surplus stops as the scheduler's.
    w.ecs(
        "UpdateService",
        json!({"service": "web", "desiredCount": 1}),
    );
    w.converge().await;
    assert_eq!(running(&w, "web").len(), 1);
    assert_eq!(describe(&w, "web")["runningCount"], 1);
}

#[tokio::test(start_paused = true)]
async fn a_rolling_deployment_keeps_the_minimum_and_retires_the_old() {
    let w = world();
    let td1 = td(&w, GOOD);
    create(
        &w,
        "web",
        &td1,
        4,
        json!({"deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 100}}),
    );
    w.converge().await;
    let old: Vec<String> = running(&w, "web")
        .iter()
        .map(|t| t["taskArn"].as_str().unwrap().to_string())
        .collect();
    let td2 = w.fargate(json!([{"name": "main", "image": "app:2"}]));
    w.ecs(
        "UpdateService",
        json!({"service": "web", "taskDefinition": td2}),
    );
    // Step by step: never fewer than 2 running, never more than 4 live.
    for _ in 0..20 {
        w.schedule();
        w.settle().await;
        let s = describe(&w, "web");
        let live = s["runningCount"].as_i64().unwrap() + s["pendingCount"].as_i64().unwrap();
        assert!(s["runningCount"].as_i64().unwrap() >= 2, "{s}");
        assert!(live <= 4, "{s}");
    }
    w.converge().await;
    let s = describe(&w, "web");
    assert_eq!(s["deployments"].as_array().unwrap().len(), 1, "{s}");
    assert_eq!(s["deployments"][0]["taskDefinition"], td2.as_str());
    assert_eq!(s["deployments"][0]["rolloutState"], "COMPLETED");
    let primary = s["deployments"][0]["id"].as_str().unwrap().to_string();
    for arn in &old {
        let t = w.task(arn);
        assert_eq!(t["lastStatus"], "STOPPED");
        assert_eq!(t["stopCode"], "ServiceSchedulerInitiated");
        assert_eq!(
            t["stoppedReason"],
            format!("Scaling activity initiated by (deployment {primary})")
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_circuit_breaker_fails_a_crashing_deployment_and_rolls_back() {
    let w = world();
    let good = td(&w, GOOD);
    create(
        &w,
        "web",
        &good,
        2,
        json!({"deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true}}}),
    );
    w.converge().await;
    let first = describe(&w, "web")["deployments"][0]["id"].clone();
    let bad = td(&w, BAD);
    let failed = w.ecs(
        "UpdateService",
        json!({"service": "web", "taskDefinition": bad}),
    )["service"]["deployments"][0]["id"]
        .clone();
    // While the rollback is under way, its deployment says why.
    let mut seen = false;
    for _ in 0..20 {
        w.schedule();
        w.settle().await;
        let reason = describe(&w, "web")["deployments"][0]["rolloutStateReason"].clone();
        if reason
            == format!(
                "ECS deployment circuit breaker: rolling back to deploymentId {}.",
                first.as_str().unwrap()
            )
            .as_str()
        {
            seen = true;
            break;
        }
    }
    assert!(seen, "no rollback under way");
    w.converge().await;
    let s = describe(&w, "web");
    assert_eq!(s["deployments"].as_array().unwrap().len(), 1, "{s}");
    let p = &s["deployments"][0];
    assert_eq!(p["taskDefinition"], good.as_str());
    assert_eq!(p["rolloutState"], "COMPLETED");
    assert_ne!(p["id"], failed);
    let ev = events(&s);
    assert!(ev.contains(&format!(
        "(service web) (deployment {}) deployment failed: tasks failed to start.",
        failed.as_str().unwrap()
    )));
    assert!(ev.contains(&format!(
        "(service web) rolling back to deployment {}.",
        first.as_str().unwrap()
    )));
    // The threshold (3) of failed tasks, in twos (the maximum allows 2
    // new beside the 2 old), then no more launches of the bad revision;
    // the first deployment's tasks are replaced by the rollback's.
    let stopped = w.ecs(
        "ListTasks",
        json!({"serviceName": "web", "desiredStatus": "STOPPED"}),
    )["taskArns"]
        .clone();
    let stopped = w.ecs("DescribeTasks", json!({ "tasks": stopped }))["tasks"].clone();
    let of = |td: &str| {
        stopped
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["taskDefinitionArn"] == td)
            .count()
    };
    assert_eq!(of(&bad), 4, "{stopped}");
    assert_eq!(of(&good), 2, "{stopped}");
    let listed = w.ecs("ListServiceDeployments", json!({"service": "web"}));
    let statuses: Vec<&str> = listed["serviceDeployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["SUCCESSFUL", "ROLLBACK_SUCCESSFUL", "SUCCESSFUL"]
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_breaker_a_crash_loop_is_throttled() {
    let w = world();
    let bad = td(&w, BAD);
    create(&w, "loop", &bad, 1, json!({}));
    w.converge().await;
    let s = describe(&w, "loop");
    assert!(events(&s).iter().any(
        |e| e.starts_with("(service loop) is unable to consistently start tasks successfully.")
    ));
    let failed = s["deployments"][0]["failedTasks"].as_i64().unwrap();
    assert_eq!(failed, 3, "launches stop until the back-off passes: {s}");
    w.clock.advance_ms(5_000);
    w.converge().await;
    let failed = describe(&w, "loop")["deployments"][0]["failedTasks"]
        .as_i64()
        .unwrap();
    assert_eq!(failed, 4, "one more try after 5 s");
}

#[tokio::test(start_paused = true)]
async fn an_unhealthy_task_is_replaced() {
    let w = world();
    let td = w.fargate(json!([{"name": "main", "image": "checked:1",
        "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 5, "retries": 2}}]));
    create(&w, "web", &td, 1, json!({}));
    w.converge().await;
    let [t] = running(&w, "web").try_into().expect("one task");
    assert_eq!(t["healthStatus"], "HEALTHY");
    let arn = t["taskArn"].as_str().unwrap().to_string();
    w.fake
        .set_health(&w.container_id(&arn, "main"), "unhealthy");
    w.converge().await;
    let stopped = w.task(&arn);
    assert_eq!(stopped["stopCode"], "ServiceSchedulerInitiated");
    assert_eq!(
        stopped["stoppedReason"],
        "Task failed container health checks"
    );
    let now = running(&w, "web");
    assert_eq!(now.len(), 1);
    assert_ne!(now[0]["taskArn"], arn.as_str());
}

#[tokio::test(start_paused = true)]
async fn a_deleted_service_drains_to_inactive() {
    let w = world();
    let td = td(&w, GOOD);
    create(&w, "web", &td, 2, json!({}));
    w.converge().await;
    let e = w
        .call("ECS", "DeleteService", json!({"service": "web"}))
        .unwrap_err();
    assert_eq!(e.code, "InvalidParameterException");
    let s = w.ecs("DeleteService", json!({"service": "web", "force": true}))["service"].clone();
    assert_eq!(s["status"], "DRAINING");
    w.converge().await;
    let s = describe(&w, "web");
    assert_eq!(s["status"], "INACTIVE");
    assert_eq!(s["runningCount"], 0);
    assert!(w.fake.names().is_empty(), "{:?}", w.fake.names());
    let listed = w.ecs("ListServices", json!({}));
    assert_eq!(listed["serviceArns"], json!([]));
}

#[tokio::test(start_paused = true)]
async fn after_a_restart_the_count_is_exact() {
    let mut w = world();
    let td1 = td(&w, GOOD);
    create(&w, "web", &td1, 3, json!({}));
    w.converge().await;
    let td2 = w.fargate(json!([{"name": "main", "image": "app:2"}]));
    w.ecs(
        "UpdateService",
        json!({"service": "web", "taskDefinition": td2}),
    );
    // Half-way: one pass decided and launched, nothing run yet.
    w.schedule();
    w.restart_agent();
    w.schedule();
    w.converge().await;
    let tasks = running(&w, "web");
    assert_eq!(tasks.len(), 3);
    assert!(tasks.iter().all(|t| t["taskDefinitionArn"] == td2.as_str()));
    let stopped = w.ecs(
        "ListTasks",
        json!({"serviceName": "web", "desiredStatus": "STOPPED"}),
    )["taskArns"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(stopped, 3, "no slot was filled twice");
    assert_eq!(
        w.fake.names().len(),
        3 * 2,
        "3 tasks, each a container and a sandbox"
    );
}

#[tokio::test(start_paused = true)]
async fn a_daemon_runs_one_task_on_each_instance_as_they_come_and_go() {
    let w = world();
    w.ecs("CreateCluster", json!({"clusterName": "default"}));
    let add = || {
        w.call(
            "Berth's own API",
            "AddInstances",
            json!({"cluster": "default", "instanceType": "t3.medium", "count": 1}),
        )
        .expect("an instance")["instances"][0]["containerInstanceArn"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (a, _b) = (add(), add());
    let td = w.ecs(
        "RegisterTaskDefinition",
        json!({"family": "agent", "requiresCompatibilities": ["EC2"],
               "containerDefinitions": [{"name": "main", "image": GOOD, "memory": 64}]}),
    )["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_string();
    let e = w
        .call(
            "ECS",
            "CreateService",
            json!({"serviceName": "agent", "taskDefinition": td, "schedulingStrategy": "DAEMON",
                   "desiredCount": 2}),
        )
        .unwrap_err();
    assert_eq!(e.code, "InvalidParameterException");
    let s = w.ecs(
        "CreateService",
        json!({"serviceName": "agent", "taskDefinition": td, "schedulingStrategy": "DAEMON"}),
    )["service"]
        .clone();
    assert_eq!(s["deploymentConfiguration"]["maximumPercent"], 100);
    assert_eq!(s["deploymentConfiguration"]["minimumHealthyPercent"], 0);
    w.converge().await;
    let on = |w: &World| -> Vec<String> {
        let mut v: Vec<String> = running(w, "agent")
            .iter()
            .map(|t| t["containerInstanceArn"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(on(&w).len(), 2);
    assert_eq!(describe(&w, "agent")["desiredCount"], 2);
    let c = add();
    w.converge().await;
    assert_eq!(on(&w).len(), 3);
    assert!(on(&w).contains(&c), "the instance that joined has its task");
    w.ecs(
        "UpdateContainerInstancesState",
        json!({"containerInstances": [a], "status": "DRAINING"}),
    );
    w.converge().await;
    assert_eq!(on(&w).len(), 2);
    assert!(!on(&w).contains(&a), "the drained instance's task stopped");
    let s = describe(&w, "agent");
    assert_eq!(s["desiredCount"], 2);
    assert_eq!(s["runningCount"], 2);
    // A new revision replaces each instance's task in place.
    let td2 = w.ecs(
        "RegisterTaskDefinition",
        json!({"family": "agent", "requiresCompatibilities": ["EC2"],
               "containerDefinitions": [{"name": "main", "image": "app:2", "memory": 64}]}),
    )["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap()
        .to_string();
    w.ecs(
        "UpdateService",
        json!({"service": "agent", "taskDefinition": td2}),
    );
    w.converge().await;
    let tasks = running(&w, "agent");
    assert_eq!(tasks.len(), 2);
    assert!(tasks.iter().all(|t| t["taskDefinitionArn"] == td2.as_str()));
    assert_eq!(
        describe(&w, "agent")["deployments"][0]["rolloutState"],
        "COMPLETED"
    );
}

#[tokio::test(start_paused = true)]
async fn a_new_task_without_a_health_check_counts_only_once_it_has_settled() {
    let w = world();
    let td1 = td(&w, GOOD);
    create(&w, "web", &td1, 1, json!({}));
    w.converge().await;
    let [old] = running(&w, "web").try_into().expect("one task");
    let old = old["taskArn"].as_str().unwrap().to_string();
    let td2 = w.fargate(json!([{"name": "main", "image": "app:2"}]));
    w.ecs(
        "UpdateService",
        json!({"service": "web", "taskDefinition": td2}),
    );
    w.schedule();
    w.settle().await;
    let fresh: Vec<Value> = running(&w, "web")
        .into_iter()
        .filter(|t| t["taskDefinitionArn"] == td2.as_str())
        .collect();
    let [fresh] = fresh.try_into().expect("one new task");
    assert_eq!(fresh["lastStatus"], "RUNNING");
    // The new task has just started: the old one must not be stopped for
    // it, nor the deployment called complete, before it has settled.
    w.schedule();
    w.settle().await;
    assert_eq!(w.task(&old)["lastStatus"], "RUNNING");
    let s = describe(&w, "web");
    assert_eq!(s["deployments"][0]["rolloutState"], "IN_PROGRESS", "{s}");
    // It dies at once: the old task is still serving, and the deployment
    // carries on with a replacement.
    let fresh = fresh["taskArn"].as_str().unwrap().to_string();
    w.fake.exit(&w.container_id(&fresh, "main"), 1);
    w.settle().await;
    assert_eq!(w.task(&old)["lastStatus"], "RUNNING");
    w.converge().await;
    let s = describe(&w, "web");
    assert_eq!(s["deployments"][0]["rolloutState"], "COMPLETED", "{s}");
    assert_eq!(
        s["deployments"][0]["failedTasks"], 0,
        "it reached RUNNING: stage 2 counts only failed health checks: {s}"
    );
    assert_eq!(w.task(&old)["stopCode"], "ServiceSchedulerInitiated");
}

#[tokio::test(start_paused = true)]
async fn protected_tasks_outlast_scale_in_and_hold_a_deployment_until_released() {
    let w = world();
    let td1 = td(&w, GOOD);
    create(&w, "web", &td1, 2, json!({}));
    w.converge().await;
    let tasks = running(&w, "web");
    let keep = tasks[1]["taskArn"].as_str().unwrap().to_string();
    let p = w.ecs(
        "UpdateTaskProtection",
        json!({"cluster": "default", "tasks": [keep, "nope"], "protectionEnabled": true,
               "expiresInMinutes": 60}),
    );
    assert_eq!(p["protectedTasks"][0]["protectionEnabled"], true, "{p}");
    let expiry = p["protectedTasks"][0]["expirationDate"].as_f64().unwrap();
    assert_eq!(
        (expiry * 1000.0) as i64,
        w.clock.now_ms() + 3_600_000,
        "one hour from now"
    );
    assert_eq!(p["failures"][0]["reason"], "MISSING");
    // Scale in to one: the unprotected task goes, though it is the older.
    w.ecs(
        "UpdateService",
        json!({"service": "web", "desiredCount": 1}),
    );
    w.converge().await;
    let left = running(&w, "web");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["taskArn"], keep.as_str());
    // A deployment starts its new task but cannot stop the protected one.
    let td2 = w.fargate(json!([{"name": "main", "image": "app:2"}]));
    w.ecs(
        "UpdateService",
        json!({"service": "web", "taskDefinition": td2}),
    );
    w.converge().await;
    assert_eq!(w.task(&keep)["lastStatus"], "RUNNING");
    let s = describe(&w, "web");
    assert_eq!(s["deployments"][0]["rolloutState"], "IN_PROGRESS", "{s}");
    assert_eq!(s["runningCount"], 2);
    let got = w.ecs(
        "GetTaskProtection",
        json!({"cluster": "default", "tasks": [keep]}),
    );
    assert_eq!(got["protectedTasks"][0]["protectionEnabled"], true);
    // Released, it goes and the deployment completes.
    w.ecs(
        "UpdateTaskProtection",
        json!({"cluster": "default", "tasks": [keep], "protectionEnabled": false}),
    );
    w.converge().await;
    assert_eq!(w.task(&keep)["stopCode"], "ServiceSchedulerInitiated");
    let s = describe(&w, "web");
    assert_eq!(s["deployments"][0]["rolloutState"], "COMPLETED", "{s}");
    let got = w.ecs(
        "GetTaskProtection",
        json!({"cluster": "default", "tasks": [keep]}),
    );
    assert_eq!(got["failures"][0]["reason"], "TASK_NOT_VALID", "{got}");
}

#[tokio::test(start_paused = true)]
async fn protection_lapses_at_its_expiry_and_standalone_tasks_cannot_have_it() {
    let w = world();
    let td1 = td(&w, GOOD);
    create(&w, "web", &td1, 1, json!({}));
    w.converge().await;
    let [t] = running(&w, "web").try_into().expect("one task");
    let arn = t["taskArn"].as_str().unwrap().to_string();
    w.ecs(
        "UpdateTaskProtection",
        json!({"cluster": "default", "tasks": [arn], "protectionEnabled": true,
               "expiresInMinutes": 1}),
    );
    w.ecs(
        "UpdateService",
        json!({"service": "web", "desiredCount": 0}),
    );
    w.converge().await;
    assert_eq!(
        w.task(&arn)["lastStatus"],
        "RUNNING",
        "protected for a minute"
    );
    w.clock.advance_ms(60_000);
    let got = w.ecs("GetTaskProtection", json!({"cluster": "default"}));
    assert_eq!(got["protectedTasks"], json!([]), "{got}");
    w.converge().await;
    assert_eq!(w.task(&arn)["lastStatus"], "STOPPED");
    // A task not started by a service.
    let run = w.ecs(
        "RunTask",
        json!({"taskDefinition": td1, "launchType": "FARGATE", "networkConfiguration": net()}),
    );
    let solo = run["tasks"][0]["taskArn"].as_str().unwrap();
    let p = w.ecs(
        "UpdateTaskProtection",
        json!({"cluster": "default", "tasks": [solo], "protectionEnabled": true}),
    );
    assert_eq!(p["failures"][0]["reason"], "TASK_NOT_VALID");
    assert_eq!(p["protectedTasks"], json!([]));
    let e = w
        .call(
            "ECS",
            "UpdateTaskProtection",
            json!({"cluster": "default", "tasks": [solo], "protectionEnabled": true,
                   "expiresInMinutes": 2881}),
        )
        .unwrap_err();
    assert_eq!(e.code, "InvalidParameterException");
}

#[tokio::test(start_paused = true)]
async fn a_deployment_stopped_by_hand_rolls_back() {
    let w = world();
    let good = td(&w, GOOD);
    create(&w, "web", &good, 2, json!({}));
    w.converge().await;
    let bad = td(&w, BAD);
    w.ecs(
        "UpdateService",
        json!({"service": "web", "taskDefinition": bad}),
    );
    w.converge().await;
    let listed = w.ecs("ListServiceDeployments", json!({"service": "web"}));
    let current = listed["serviceDeployments"][0].clone();
    assert_eq!(current["status"], "IN_PROGRESS", "{listed}");
    let arn = current["serviceDeploymentArn"].as_str().unwrap();
    let e = w
        .call(
            "ECS",
            "StopServiceDeployment",
            json!({"serviceDeploymentArn": arn, "stopType": "ABORT"}),
        )
        .unwrap_err();
    assert_eq!(e.code, "InvalidParameterException");
    let done = listed["serviceDeployments"][1]["serviceDeploymentArn"].clone();
    let e = w
        .call(
            "ECS",
            "StopServiceDeployment",
            json!({"serviceDeploymentArn": done}),
        )
        .unwrap_err();
    assert_eq!(e.code, "ConflictException");
    let e = w
        .call(
            "ECS",
            "StopServiceDeployment",
            json!({"serviceDeploymentArn": arn.replace("/web/", "/nope/")}),
        )
        .unwrap_err();
    assert_eq!(e.code, "ServiceDeploymentNotFoundException");
    w.ecs(
        "StopServiceDeployment",
        json!({"serviceDeploymentArn": arn, "stopType": "ROLLBACK"}),
    );
    w.converge().await;
    let s = describe(&w, "web");
    assert_eq!(s["taskDefinition"], good.as_str());
    assert_eq!(s["deployments"].as_array().unwrap().len(), 1, "{s}");
    assert_eq!(s["deployments"][0]["rolloutState"], "COMPLETED");
    assert_eq!(s["runningCount"], 2);
    let listed = w.ecs("ListServiceDeployments", json!({"service": "web"}));
    let statuses: Vec<&str> = listed["serviceDeployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["SUCCESSFUL", "ROLLBACK_SUCCESSFUL", "SUCCESSFUL"]
    );
}

#[tokio::test(start_paused = true)]
async fn task_sets_of_an_external_service_are_kept_at_their_scale() {
    let w = world();
    let blue = td(&w, GOOD);
    let green = w.fargate(json!([{"name": "main", "image": "app:2"}]));
    let s = w.ecs(
        "CreateService",
        json!({"serviceName": "ext", "desiredCount": 4,
               "deploymentController": {"type": "EXTERNAL"}}),
    )["service"]
        .clone();
    assert_eq!(s["deployments"], json!([]), "{s}");
    let set = |td: &str, pct: f64| {
        w.ecs(
            "CreateTaskSet",
            json!({"service": "ext", "cluster": "default", "taskDefinition": td,
                   "externalId": "deploy-1", "launchType": "FARGATE",
                   "networkConfiguration": net(), "scale": {"unit": "PERCENT", "value": pct}}),
        )["taskSet"]
            .clone()
    };
    let a = set(&blue, 100.0);
    assert_eq!(a["status"], "ACTIVE");
    assert_eq!(a["computedDesiredCount"], 4);
    assert!(a["taskSetArn"]
        .as_str()
        .unwrap()
        .contains(":task-set/default/ext/"));
    let b = set(&green, 50.0);
    assert_eq!(b["computedDesiredCount"], 2);
    w.converge().await;
    let by = |id: &Value| {
        running(&w, "ext")
            .iter()
            .filter(|t| t["startedBy"] == *id && t["lastStatus"] == "RUNNING")
            .count()
    };
    assert_eq!(by(&a["id"]), 4);
    assert_eq!(by(&b["id"]), 2);
    let p = w.ecs(
        "UpdateServicePrimaryTaskSet",
        json!({"service": "ext", "cluster": "default", "primaryTaskSet": b["taskSetArn"]}),
    );
    assert_eq!(p["taskSet"]["status"], "PRIMARY");
    let e = w
        .call(
            "ECS",
            "DeleteTaskSet",
            json!({"service": "ext", "cluster": "default", "taskSet": b["id"]}),
        )
        .unwrap_err();
    assert_eq!(e.code, "InvalidParameterException");
    w.ecs(
        "UpdateTaskSet",
        json!({"service": "ext", "cluster": "default", "taskSet": a["id"],
               "scale": {"unit": "PERCENT", "value": 0.0}}),
    );
    w.ecs(
        "UpdateTaskSet",
        json!({"service": "ext", "cluster": "default", "taskSet": b["id"],
               "scale": {"unit": "PERCENT", "value": 100.0}}),
    );
    w.converge().await;
    assert_eq!(by(&a["id"]), 0);
    assert_eq!(by(&b["id"]), 4);
    let d = w.ecs(
        "DeleteTaskSet",
        json!({"service": "ext", "cluster": "default", "taskSet": a["taskSetArn"]}),
    );
    assert_eq!(d["taskSet"]["status"], "DRAINING");
    w.converge().await;
    let s = describe(&w, "ext");
    let sets = s["taskSets"].as_array().unwrap();
    assert_eq!(sets.len(), 1, "{s}");
    assert_eq!(sets[0]["status"], "PRIMARY");
    assert_eq!(sets[0]["stabilityStatus"], "STEADY_STATE");
    assert_eq!(sets[0]["runningCount"], 4);
    assert_eq!(s["runningCount"], 4);
    let described = w.ecs(
        "DescribeTaskSets",
        json!({"service": "ext", "cluster": "default", "taskSets": [a["id"], b["id"]]}),
    );
    assert_eq!(described["taskSets"].as_array().unwrap().len(), 1);
    assert_eq!(described["failures"][0]["reason"], "MISSING");
    // Scaling the service scales its sets.
    w.ecs(
        "UpdateService",
        json!({"service": "ext", "desiredCount": 2}),
    );
    w.converge().await;
    assert_eq!(by(&b["id"]), 2);
}

#[tokio::test(start_paused = true)]
async fn task_sets_refuse_what_ecs_refuses() {
    let w = world();
    let blue = td(&w, GOOD);
    create(&w, "plain", &blue, 1, json!({}));
    let e = w
        .call(
            "ECS",
            "CreateTaskSet",
            json!({"service": "plain", "cluster": "default", "taskDefinition": blue,
                   "launchType": "FARGATE", "networkConfiguration": net()}),
        )
        .unwrap_err();
    assert_eq!(e.code, "InvalidParameterException");
    w.ecs(
        "CreateService",
        json!({"serviceName": "ext", "desiredCount": 1,
               "deploymentController": {"type": "EXTERNAL"}}),
    );
    let e = w
        .call(
            "ECS",
            "CreateTaskSet",
            json!({"service": "ext", "cluster": "default", "taskDefinition": blue,
                   "launchType": "FARGATE", "networkConfiguration": net(),
                   "scale": {"unit": "PERCENT", "value": 150.0}}),
        )
        .unwrap_err();
    assert_eq!(e.code, "InvalidParameterException");
    let e = w
        .call(
            "ECS",
            "CreateTaskSet",
            json!({"service": "ext", "cluster": "default", "taskDefinition": blue,
                   "launchType": "FARGATE"}),
        )
        .unwrap_err();
    assert_eq!(
        e.code, "InvalidParameterException",
        "awsvpc needs a network"
    );
    let e = w
        .call(
            "ECS",
            "UpdateService",
            json!({"service": "ext", "taskDefinition": blue}),
        )
        .unwrap_err();
    assert_eq!(e.code, "InvalidParameterException");
    let e = w
        .call(
            "ECS",
            "UpdateTaskSet",
            json!({"service": "ext", "cluster": "default", "taskSet": "ecs-svc/1",
                   "scale": {"unit": "PERCENT", "value": 10.0}}),
        )
        .unwrap_err();
    assert_eq!(e.code, "TaskSetNotFoundException");
    let e = w
        .call(
            "ECS",
            "DescribeTaskSets",
            json!({"service": "nope", "cluster": "default"}),
        )
        .unwrap_err();
    assert_eq!(e.code, "ServiceNotFoundException");
    let sets = w.ecs(
        "DescribeTaskSets",
        json!({"service": "ext", "cluster": "default"}),
    );
    assert_eq!(sets["taskSets"], json!([]), "nothing was created");
}

#[tokio::test(start_paused = true)]
async fn tasks_that_run_and_then_exit_are_throttled_not_counted_by_the_breaker() {
    let w = world();
    let good = td(&w, GOOD);
    create(
        &w,
        "web",
        &good,
        2,
        json!({"deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true}}}),
    );
    w.converge().await;
    let exits = td(&w, "exits:1");
    w.ecs(
        "UpdateService",
        json!({"service": "web", "taskDefinition": exits}),
    );
    w.converge().await;
    let s = describe(&w, "web");
    let primary = &s["deployments"][0];
    assert_eq!(primary["taskDefinition"], exits.as_str());
    assert_eq!(primary["rolloutState"], "IN_PROGRESS", "no trip: {s}");
    assert_eq!(primary["failedTasks"], 0);
    assert!(events(&s).iter().any(
        |e| e.starts_with("(service web) is unable to consistently start tasks successfully.")
    ));
    assert_eq!(s["runningCount"], 2, "the old tasks keep serving");
}

/// A load balancer with a listener forwarding to an `ip` target group;
/// the group's ARN.
fn target_group(w: &World) -> String {
    let elb = |op: &str, input: Value| {
        w.call("Elastic Load Balancing v2", op, input)
            .unwrap_or_else(|e| panic!("{op}: {e}"))
    };
    let lb = elb(
        "CreateLoadBalancer",
        json!({"Name": "front", "Subnets": ["subnet-a", "subnet-b"]}),
    )["LoadBalancers"][0]["LoadBalancerArn"]
        .clone();
    let tg = elb(
        "CreateTargetGroup",
        json!({"Name": "web", "Protocol": "HTTP", "Port": 8080, "TargetType": "ip", "VpcId": "vpc-1"}),
    )["TargetGroups"][0]["TargetGroupArn"]
        .as_str()
        .unwrap()
        .to_string();
    elb(
        "CreateListener",
        json!({"LoadBalancerArn": lb, "Protocol": "HTTP", "Port": 80,
               "DefaultActions": [{"Type": "forward", "TargetGroupArn": tg}]}),
    );
    tg
}

/// The states of the group's targets, sorted.
fn target_states(w: &World, tg: &str) -> Vec<String> {
    let mut v: Vec<String> = w
        .store
        .read(|c| crate::elb::targets::of_group(c, tg))
        .unwrap()
        .iter()
        .map(|t| t.state.as_str().to_string())
        .collect();
    v.sort();
    v
}

/// What the load balancer's health checks would find: every target in
/// `from` state becomes `to`.
fn checks_find(w: &World, tg: &str, from: &str, to: &str, limit: usize) {
    use crate::elb::shapes::{TargetHealthReasonEnum, TargetHealthStateEnum};
    let now = w.clock.now_ms();
    w.store
        .write(|tx| {
            let to_state: TargetHealthStateEnum =
                serde_json::from_value(Value::String(to.into())).unwrap();
            let reason = (to_state == TargetHealthStateEnum::Unhealthy)
                .then_some(TargetHealthReasonEnum::TargetResponseCodeMismatch);
            for t in crate::elb::targets::of_group(tx, tg)?
                .iter()
                .filter(|t| t.state.as_str() == from)
                .take(limit)
            {
                let description = reason
                    .is_some()
                    .then(|| "Health checks failed with these codes: [500]".to_string());
                crate::elb::targets::set_health(tx, t, to_state, reason, description, now)?;
            }
            Ok(())
        })
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn tasks_behind_a_load_balancer_count_by_their_targets_and_drain_before_they_stop() {
    let w = world();
    let tg = target_group(&w);
    let with_port = |image: &str| {
        w.fargate(json!([{"name": "main", "image": image,
                          "portMappings": [{"containerPort": 8080}]}]))
    };
    let lbs = json!({"loadBalancers": [{"targetGroupArn": tg, "containerName": "main",
                                         "containerPort": 8080}]});
    create(&w, "web", &with_port(GOOD), 2, lbs);
    w.converge().await;
    // Registered, not yet checked: the deployment waits for the checks.
    assert_eq!(target_states(&w, &tg), ["initial", "initial"]);
    let s = describe(&w, "web");
    assert_eq!(s["deployments"][0]["rolloutState"], "IN_PROGRESS");
    assert!(
        events(&s)
            .iter()
            .any(|e| e == &format!("(service web) registered 1 targets in (target-group {tg})")),
        "{s}"
    );
    checks_find(&w, &tg, "initial", "healthy", 2);
    w.converge().await;
    assert_eq!(
        describe(&w, "web")["deployments"][0]["rolloutState"],
        "COMPLETED"
    );

    // A new revision: the old tasks serve until the new ones pass.
    let old: Vec<String> = running(&w, "web")
        .iter()
        .map(|t| t["taskArn"].as_str().unwrap().to_string())
        .collect();
    w.ecs(
        "UpdateService",
        json!({"service": "web", "taskDefinition": with_port("app:2")}),
    );
    w.converge().await;
    assert_eq!(running(&w, "web").len(), 4);
    assert_eq!(
        target_states(&w, &tg),
        ["healthy", "healthy", "initial", "initial"]
    );
    checks_find(&w, &tg, "initial", "healthy", 2);
    w.converge().await;
    // The old tasks are deregistered and keep running while they drain.
    assert_eq!(
        target_states(&w, &tg),
        ["draining", "draining", "healthy", "healthy"]
    );
    for arn in &old {
        assert_eq!(w.task(arn)["lastStatus"], "RUNNING");
    }
    w.clock.advance_ms(300_000);
    w.converge().await;
    for arn in &old {
        let t = w.task(arn);
        assert_eq!(t["lastStatus"], "STOPPED");
        assert!(t["stoppedReason"]
            .as_str()
            .unwrap()
            .starts_with("Scaling activity initiated by"));
    }
    let s = describe(&w, "web");
    assert_eq!(s["deployments"][0]["rolloutState"], "COMPLETED");

    // A task whose target fails its checks is replaced, after draining.
    let before: Vec<String> = running(&w, "web")
        .iter()
        .map(|t| t["taskArn"].as_str().unwrap().to_string())
        .collect();
    checks_find(&w, &tg, "healthy", "unhealthy", 1);
    w.converge().await;
    w.clock.advance_ms(300_000);
    w.converge().await;
    let failed: Vec<Value> = before
        .iter()
        .map(|a| w.task(a))
        .filter(|t| t["lastStatus"] == "STOPPED")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0]["stoppedReason"],
        format!("Task failed ELB health checks in (target-group {tg})")
    );
    let events = describe(&w, "web")["events"].to_string();
    let id = failed[0]["taskArn"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    assert!(
        events.contains(&format!(
            "(service web) (task {id}) (port 8080) is unhealthy in (target-group {tg}) due to (reason Health checks failed with these codes: [500])."
        )),
        "{events}"
    );
    assert_eq!(running(&w, "web").len(), 2);
}

#[tokio::test(start_paused = true)]
async fn load_balancers_of_a_service_are_checked_as_ecs_checks_them() {
    let w = world();
    let tg = target_group(&w);
    let td = w.fargate(json!([{"name": "main", "image": GOOD,
                               "portMappings": [{"containerPort": 8080}]}]));
    let try_create = |lb: Value| {
        w.call(
            "ECS",
            "CreateService",
            json!({"serviceName": "web", "taskDefinition": td, "desiredCount": 1,
                   "launchType": "FARGATE", "networkConfiguration": net(),
                   "loadBalancers": [lb]}),
        )
        .unwrap_err()
        .message
    };
    let port =
        try_create(json!({"targetGroupArn": tg, "containerName": "main", "containerPort": 9090}));
    assert_eq!(
        port,
        "The container main did not have a container port 9090 defined."
    );
    let name =
        try_create(json!({"targetGroupArn": tg, "containerName": "other", "containerPort": 8080}));
    assert!(name.contains("other"), "{name}");
    let missing = tg.replace("/web/", "/gone/");
    assert!(try_create(
        json!({"targetGroupArn": missing, "containerName": "main", "containerPort": 8080})
    )
    .contains("targetGroupArn"));
    // Nothing was made.
    let listed = w.call("ECS", "ListServices", json!({}));
    assert!(
        listed.as_ref().map_or(true, |l| l["serviceArns"]
            .as_array()
            .is_some_and(|a| a.is_empty())),
        "{listed:?}"
    );
}

/// Beside `target_group`'s blue group: a green one, and a listener rule
/// forwarding to blue. (blue, green, the rule's ARN.)
fn blue_and_green(w: &World) -> (String, String, String) {
    let elb = |op: &str, input: Value| {
        w.call("Elastic Load Balancing v2", op, input)
            .unwrap_or_else(|e| panic!("{op}: {e}"))
    };
    let blue = target_group(w);
    let green = elb(
        "CreateTargetGroup",
        json!({"Name": "web-green", "Protocol": "HTTP", "Port": 8080, "TargetType": "ip",
               "VpcId": "vpc-1"}),
    )["TargetGroups"][0]["TargetGroupArn"]
        .as_str()
        .unwrap()
        .to_string();
    let lb = elb("DescribeLoadBalancers", json!({"Names": ["front"]}))["LoadBalancers"][0]
        ["LoadBalancerArn"]
        .clone();
    let listener = elb("DescribeListeners", json!({"LoadBalancerArn": lb}))["Listeners"][0]
        ["ListenerArn"]
        .clone();
    let rule = elb(
        "CreateRule",
        json!({"ListenerArn": listener, "Priority": 1,
               "Conditions": [{"Field": "path-pattern", "Values": ["/*"]}],
               "Actions": [{"Type": "forward", "TargetGroupArn": blue}]}),
    )["Rules"][0]["RuleArn"]
        .as_str()
        .unwrap()
        .to_string();
    (blue, green, rule)
}

/// The rule's forward weights, by target group.
fn rule_weights(w: &World, rule: &str) -> std::collections::BTreeMap<String, i64> {
    w.store
        .read(|c| crate::elb::listeners::forward_weights(c, rule))
        .unwrap()
        .unwrap()
        .into_iter()
        .collect()
}

fn current_stage(w: &World) -> Value {
    let listed = w.ecs("ListServiceDeployments", json!({"service": "web"}));
    let arn = listed["serviceDeployments"][0]["serviceDeploymentArn"].clone();
    w.ecs(
        "DescribeServiceDeployments",
        json!({"serviceDeploymentArns": [arn]}),
    )["serviceDeployments"][0]
        .clone()
}

#[tokio::test(start_paused = true)]
async fn a_blue_green_deployment_shifts_traffic_bakes_and_rolls_back_its_weights() {
    let w = world();
    let (blue, green, rule) = blue_and_green(&w);
    let td = |image: &str| {
        w.fargate(json!([{"name": "main", "image": image,
                          "portMappings": [{"containerPort": 8080}]}]))
    };
    create(
        &w,
        "web",
        &td(GOOD),
        2,
        json!({
            "deploymentConfiguration": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 1},
            "loadBalancers": [{"targetGroupArn": blue, "containerName": "main", "containerPort": 8080,
                               "advancedConfiguration": {"alternateTargetGroupArn": green,
                                   "productionListenerRule": rule,
                                   "roleArn": "arn:aws:iam::000000000000:role/ecsInfrastructureRole"}}]}),
    );
    w.converge().await;
    checks_find(&w, &blue, "initial", "healthy", 2);
    w.converge().await;
    assert_eq!(
        describe(&w, "web")["deployments"][0]["rolloutState"],
        "COMPLETED"
    );
    let all_blue = std::collections::BTreeMap::from([(blue.clone(), 100), (green.clone(), 0)]);
    assert_eq!(rule_weights(&w, &rule), all_blue);

    // Green starts whole beside blue, in the alternate group, with no
    // traffic until its targets pass.
    let first: Vec<String> = running(&w, "web")
        .iter()
        .map(|t| t["taskArn"].as_str().unwrap().to_string())
        .collect();
    w.ecs(
        "UpdateService",
        json!({"service": "web", "taskDefinition": td("app:2")}),
    );
    w.converge().await;
    assert_eq!(running(&w, "web").len(), 4);
    assert_eq!(target_states(&w, &green), ["initial", "initial"]);
    assert_eq!(current_stage(&w)["lifecycleStage"], "SCALE_UP");
    assert_eq!(rule_weights(&w, &rule), all_blue);

    // All production traffic moves at once; blue keeps running through the
    // bake time, then drains and stops.
    checks_find(&w, &green, "initial", "healthy", 2);
    w.converge().await;
    let all_green = std::collections::BTreeMap::from([(blue.clone(), 0), (green.clone(), 100)]);
    assert_eq!(rule_weights(&w, &rule), all_green);
    let d = current_stage(&w);
    assert_eq!(d["lifecycleStage"], "BAKE_TIME", "{d}");
    assert_eq!(
        d["targetServiceRevision"]["requestedProductionTrafficWeight"],
        100.0
    );
    w.clock.advance_ms(30_000);
    w.converge().await;
    for arn in &first {
        assert_eq!(w.task(arn)["lastStatus"], "RUNNING");
    }
    w.clock.advance_ms(30_000);
    w.converge().await;
    assert_eq!(target_states(&w, &blue), ["draining", "draining"]);
    w.clock.advance_ms(300_000);
    w.converge().await;
    for arn in &first {
        assert_eq!(w.task(arn)["lastStatus"], "STOPPED");
    }
    let s = describe(&w, "web");
    assert_eq!(s["deployments"][0]["rolloutState"], "COMPLETED", "{s}");
    assert_eq!(s["deployments"].as_array().unwrap().len(), 1);

    // The next deployment goes to blue; stopped during its bake time, it
    // gives production back to green at once.
    w.ecs(
        "UpdateService",
        json!({"service": "web", "taskDefinition": td("app:3")}),
    );
    w.converge().await;
    checks_find(&w, &blue, "initial", "healthy", 2);
    w.converge().await;
    assert_eq!(rule_weights(&w, &rule), all_blue);
    assert_eq!(current_stage(&w)["lifecycleStage"], "BAKE_TIME");
    let arn = current_stage(&w)["serviceDeploymentArn"].clone();
    w.ecs(
        "StopServiceDeployment",
        json!({"serviceDeploymentArn": arn, "stopType": "ROLLBACK"}),
    );
    w.converge().await;
    assert_eq!(rule_weights(&w, &rule), all_green);
}

#[tokio::test(start_paused = true)]
async fn linear_and_canary_deployments_move_traffic_in_steps() {
    let w = world();
    let (blue, green, rule) = blue_and_green(&w);
    let td = |image: &str| {
        w.fargate(json!([{"name": "main", "image": image,
                          "portMappings": [{"containerPort": 8080}]}]))
    };
    let lb = json!([{"targetGroupArn": blue, "containerName": "main", "containerPort": 8080,
                     "advancedConfiguration": {"alternateTargetGroupArn": green,
                                               "productionListenerRule": rule}}]);
    create(
        &w,
        "web",
        &td(GOOD),
        1,
        json!({"deploymentConfiguration": {"strategy": "LINEAR",
                   "linearConfiguration": {"stepPercent": 40.0, "stepBakeTimeInMinutes": 1}},
               "loadBalancers": lb}),
    );
    w.converge().await;
    checks_find(&w, &blue, "initial", "healthy", 1);
    w.converge().await;
    w.ecs(
        "UpdateService",
        json!({"service": "web", "taskDefinition": td("app:2")}),
    );
    w.converge().await;
    checks_find(&w, &green, "initial", "healthy", 1);
    let mut seen = Vec::new();
    for _ in 0..4 {
        w.converge().await;
        seen.push(rule_weights(&w, &rule)[&green]);
        w.clock.advance_ms(60_000);
    }
    assert_eq!(seen, [40, 80, 100, 100]);
    // The old task drains (and counts toward the maximum) until it stops.
    w.clock.advance_ms(300_000);
    w.converge().await;

    // A canary: its share first, the rest after its bake time.
    w.ecs(
        "UpdateService",
        json!({"service": "web", "taskDefinition": td("app:3"),
               "deploymentConfiguration": {"strategy": "CANARY",
                   "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 2}}}),
    );
    w.converge().await;
    checks_find(&w, &blue, "initial", "healthy", 1);
    w.converge().await;
    assert_eq!(rule_weights(&w, &rule)[&blue], 10);
    w.clock.advance_ms(60_000);
    w.converge().await;
    assert_eq!(rule_weights(&w, &rule)[&blue], 10);
    w.clock.advance_ms(60_000);
    w.converge().await;
    assert_eq!(rule_weights(&w, &rule)[&blue], 100);

    // Without the advanced configuration, ECS refuses the strategy.
    let e = w
        .call(
            "ECS",
            "UpdateService",
            json!({"service": "web",
                   "loadBalancers": [{"targetGroupArn": blue, "containerName": "main",
                                      "containerPort": 8080}]}),
        )
        .unwrap_err();
    assert_eq!(e.code, "InvalidParameterException");
    assert!(
        e.message
            .contains("advancedConfiguration field is required"),
        "{}",
        e.message
    );
}
