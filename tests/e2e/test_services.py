"""Services on real Docker: the desired count kept, tasks replaced, rolling
deployments within their bounds, the circuit breaker rolling back, health
checks, deletion, recovery after kill -9, and ECS's answers to bad input."""

import json
import math
import os
import subprocess
import time

import botocore.exceptions
import pytest

from conftest import BERTH, BUSYBOX, TESTAPP, Server, aws, client, managed_containers, unique, wait_status

NET = {"awsvpcConfiguration": {"subnets": ["subnet-0a1b2c3d"], "securityGroups": ["sg-1"]}}
EXEC_ROLE = "arn:aws:iam::000000000000:role/ecsTaskExecutionRole"


@pytest.fixture
def cluster(ecs, images):
    name = unique("svc")
    ecs.create_cluster(clusterName=name)
    return name


def web_td(ecs, family=None, env="1", health=False, command=None):
    c = {"name": "web", "image": TESTAPP, "command": command or ["berth-testapp", "serve", "--port", "8080"],
         "environment": [{"name": "REVISION", "value": env}]}
    if health:
        c["healthCheck"] = {"command": ["CMD-SHELL", "berth-testapp health-check http://localhost:8080/health"],
                            "interval": 5, "timeout": 2, "retries": 1, "startPeriod": 0}
    return ecs.register_task_definition(
        family=family or unique("web"), networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="256", memory="512", executionRoleArn=EXEC_ROLE, containerDefinitions=[c],
    )["taskDefinition"]["taskDefinitionArn"]


def create(ecs, cluster, td, desired=2, **kw):
    return ecs.create_service(cluster=cluster, serviceName=unique("svc"), taskDefinition=td,
                              desiredCount=desired, launchType="FARGATE", networkConfiguration=NET,
                              **kw)["service"]


def describe(ecs, cluster, name):
    return ecs.describe_services(cluster=cluster, services=[name])["services"][0]


def wait_service(ecs, cluster, name, until, timeout=90, what="condition"):
    deadline = time.time() + timeout
    s = None
    while time.time() < deadline:
        s = describe(ecs, cluster, name)
        if until(s):
            return s
        time.sleep(0.25)
    raise AssertionError(f"service did not reach {what} within {timeout}s: {s}")


def steady(s):
    return (len(s["deployments"]) == 1 and s["runningCount"] == s["desiredCount"]
            and s["pendingCount"] == 0 and s["deployments"][0]["rolloutState"] == "COMPLETED")


def service_tasks(ecs, cluster, name, status="RUNNING"):
    arns = ecs.list_tasks(cluster=cluster, serviceName=name, desiredStatus=status)["taskArns"]
    return ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []


def stop_service(ecs, cluster, name):
    ecs.delete_service(cluster=cluster, service=name, force=True)
    wait_service(ecs, cluster, name, lambda s: s["status"] == "INACTIVE", 60, "INACTIVE")


def test_desired_count_kept_steady_state_and_listing(ecs, cluster, server):
    td = web_td(ecs)
    s = create(ecs, cluster, td, desired=2, tags=[{"key": "team", "value": "lobster"}],
               propagateTags="SERVICE")
    name = s["serviceName"]
    assert s["serviceArn"].endswith(f":service/{cluster}/{name}")
    assert s["status"] == "ACTIVE" and s["desiredCount"] == 2
    assert s["deploymentConfiguration"]["maximumPercent"] == 200
    assert s["deploymentConfiguration"]["minimumHealthyPercent"] == 100
    [dep] = s["deployments"]
    assert dep["status"] == "PRIMARY" and dep["rolloutState"] == "IN_PROGRESS"
    # The aws CLI's own waiter.
    aws(server.endpoint, "ecs", "wait", "services-stable", "--cluster", cluster, "--services", name)
    s = wait_service(ecs, cluster, name, steady, 60, "steady")
    messages = [e["message"] for e in s["events"]]
    assert f"(service {name}) has reached a steady state." in messages
    assert any(m.startswith(f"(service {name}) has started 2 tasks:") for m in messages), messages
    tasks = service_tasks(ecs, cluster, name)
    assert len(tasks) == 2
    for t in tasks:
        assert t["startedBy"] == dep["id"] and t["group"] == f"service:{name}"
        assert t["lastStatus"] == "RUNNING"
    tagged = ecs.describe_tasks(cluster=cluster, tasks=[tasks[0]["taskArn"]], include=["TAGS"])["tasks"][0]
    assert {"key": "team", "value": "lobster"} in tagged["tags"], "tags propagated from the service"
    assert ecs.describe_services(cluster=cluster, services=[name], include=["TAGS"])["services"][0]["tags"] == [
        {"key": "team", "value": "lobster"}]
    assert s["serviceArn"] in ecs.list_services(cluster=cluster)["serviceArns"]
    assert ecs.list_services(cluster=cluster, launchType="EC2")["serviceArns"] == []
    c = ecs.describe_clusters(clusters=[cluster])["clusters"][0]
    assert c["activeServicesCount"] == 1
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.delete_cluster(cluster=cluster)
    assert e.value.response["Error"]["Code"] == "ClusterContainsServicesException"
    deployments = ecs.list_service_deployments(cluster=cluster, service=name)["serviceDeployments"]
    assert [d["status"] for d in deployments] == ["SUCCESSFUL"]
    sd = ecs.describe_service_deployments(serviceDeploymentArns=[deployments[0]["serviceDeploymentArn"]])
    rev = sd["serviceDeployments"][0]["targetServiceRevision"]["arn"]
    assert ecs.describe_service_revisions(serviceRevisionArns=[rev])["serviceRevisions"][0]["taskDefinition"] == td
    stop_service(ecs, cluster, name)


def test_a_killed_task_is_replaced(ecs, cluster):
    s = create(ecs, cluster, web_td(ecs), desired=2)
    name = s["serviceName"]
    wait_service(ecs, cluster, name, steady, 60, "steady")
    victim = service_tasks(ecs, cluster, name)[0]["taskArn"]
    tid = victim.rsplit("/", 1)[1]
    subprocess.run(["docker", "kill", f"berth-{tid}-web"], check=True, capture_output=True)
    done = wait_status(ecs, cluster, victim, "STOPPED", timeout=30)
    assert done["stopCode"] == "EssentialContainerExited"

    def replaced(svc):
        arns = {t["taskArn"] for t in service_tasks(ecs, cluster, name)}
        return svc["runningCount"] == 2 and len(arns) == 2 and victim not in arns
    wait_service(ecs, cluster, name, replaced, 30, "the task replaced")
    stop_service(ecs, cluster, name)


def test_rolling_update_stays_within_its_bounds(ecs, cluster):
    family = unique("roll")
    td1 = web_td(ecs, family, env="1")
    s = create(ecs, cluster, td1, desired=3,
               deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": 150})
    name = s["serviceName"]
    wait_service(ecs, cluster, name, steady, 60, "steady")
    old = {t["taskArn"] for t in service_tasks(ecs, cluster, name)}
    td2 = web_td(ecs, family, env="2")
    s = ecs.update_service(cluster=cluster, service=name, taskDefinition=td2)["service"]
    assert [d["status"] for d in s["deployments"]] == ["PRIMARY", "ACTIVE"]
    assert s["deployments"][0]["taskDefinition"] == td2
    # Sample: never fewer than ceil(3 × 50%) RUNNING, never more than
    # floor(3 × 150%) tasks RUNNING or PENDING.
    lowest, highest = 3, 0
    deadline = time.time() + 90
    while time.time() < deadline:
        s = describe(ecs, cluster, name)
        running = s["runningCount"]
        total = running + s["pendingCount"]
        lowest, highest = min(lowest, running), max(highest, total)
        if steady(s) and s["deployments"][0]["taskDefinition"] == td2:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the deployment did not complete: {s}")
    assert lowest >= math.ceil(3 * 0.5), lowest
    assert highest <= 4, highest
    new = service_tasks(ecs, cluster, name)
    assert len(new) == 3 and all(t["taskDefinitionArn"] == td2 for t in new)
    primary = s["deployments"][0]["id"]
    for arn in old:
        t = wait_status(ecs, cluster, arn, "STOPPED", timeout=30)
        assert t["stopCode"] == "ServiceSchedulerInitiated"
        assert t["stoppedReason"] == f"Scaling activity initiated by (deployment {primary})"
    messages = [e["message"] for e in s["events"]]
    assert f"(service {name}) (deployment {primary}) deployment completed." in messages
    stop_service(ecs, cluster, name)


def test_circuit_breaker_rolls_back_a_crashing_deployment(ecs, cluster):
    family = unique("brk")
    good = web_td(ecs, family)
    s = create(ecs, cluster, good, desired=2, deploymentConfiguration={
        "deploymentCircuitBreaker": {"enable": True, "rollback": True}})
    name = s["serviceName"]
    s = wait_service(ecs, cluster, name, steady, 60, "steady")
    first = s["deployments"][0]["id"]
    # A revision whose container cannot start: its tasks never run.
    bad = web_td(ecs, family, command=["/no/such/program"])
    failed_id = ecs.update_service(cluster=cluster, service=name, taskDefinition=bad)["service"]["deployments"][0]["id"]

    def rolled_back(svc):
        p = svc["deployments"][0]
        return p["id"] != failed_id and p["taskDefinition"] == good and steady(svc)
    s = wait_service(ecs, cluster, name, rolled_back, 120, "rolled back")
    messages = [e["message"] for e in s["events"]]
    assert f"(service {name}) (deployment {failed_id}) deployment failed: tasks failed to start." in messages
    assert f"(service {name}) rolling back to deployment {first}." in messages
    statuses = {d["status"] for d in ecs.list_service_deployments(cluster=cluster, service=name)["serviceDeployments"]}
    assert "ROLLBACK_SUCCESSFUL" in statuses, statuses
    # The failed deployment's tasks all stopped, none runs the bad revision.
    assert all(t["taskDefinitionArn"] == good for t in service_tasks(ecs, cluster, name))
    stop_service(ecs, cluster, name)


def test_a_task_failing_its_health_check_is_replaced(ecs, cluster):
    s = create(ecs, cluster, web_td(ecs, health=True), desired=1)
    name = s["serviceName"]
    wait_service(ecs, cluster, name, steady, 90, "steady")
    [t] = service_tasks(ecs, cluster, name)
    ip = t["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]
    import urllib.request
    urllib.request.urlopen(urllib.request.Request(f"http://{ip}:8080/unhealthy", method="POST"), timeout=5).read()
    done = wait_status(ecs, cluster, t["taskArn"], "STOPPED", timeout=60)
    assert done["stopCode"] == "ServiceSchedulerInitiated"
    assert done["stoppedReason"] == "Task failed container health checks"

    def replaced(svc):
        return steady(svc) and t["taskArn"] not in {x["taskArn"] for x in service_tasks(ecs, cluster, name)}
    s = wait_service(ecs, cluster, name, replaced, 90, "replaced")
    tid = t["taskArn"].rsplit("/", 1)[1]
    assert f"(service {name}) (task {tid}) failed container health checks." in [e["message"] for e in s["events"]]
    stop_service(ecs, cluster, name)


def test_scale_to_zero_then_delete(ecs, cluster):
    s = create(ecs, cluster, web_td(ecs), desired=2)
    name = s["serviceName"]
    wait_service(ecs, cluster, name, steady, 60, "steady")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.delete_service(cluster=cluster, service=name)
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "scaled above 0" in e.value.response["Error"]["Message"]
    ecs.update_service(cluster=cluster, service=name, desiredCount=0)
    wait_service(ecs, cluster, name, lambda x: x["runningCount"] == 0 and x["pendingCount"] == 0, 30, "zero")
    assert service_tasks(ecs, cluster, name) == []
    d = ecs.delete_service(cluster=cluster, service=name)["service"]
    assert d["status"] == "DRAINING"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.update_service(cluster=cluster, service=name, desiredCount=1)
    assert e.value.response["Error"]["Code"] == "ServiceNotActiveException"
    wait_service(ecs, cluster, name, lambda x: x["status"] == "INACTIVE", 30, "INACTIVE")
    assert ecs.list_services(cluster=cluster)["serviceArns"] == []
    assert ecs.describe_clusters(clusters=[cluster])["clusters"][0]["activeServicesCount"] == 0
    # The name can be used again.
    again = create(ecs, cluster, web_td(ecs), desired=0)
    assert again["status"] == "ACTIVE"


def test_kill9_mid_deployment_resumes_with_exact_counts(tmp_path, images):
    srv = Server(str(tmp_path)).start()
    ecs = client(srv.endpoint)
    cluster = unique("svc")
    ecs.create_cluster(clusterName=cluster)
    family = unique("k9")
    td1 = web_td(ecs, family, env="1")
    s = create(ecs, cluster, td1, desired=3)
    name = s["serviceName"]
    wait_service(ecs, cluster, name, steady, 90, "steady")
    td2 = web_td(ecs, family, env="2")
    ecs.update_service(cluster=cluster, service=name, taskDefinition=td2)
    wait_service(ecs, cluster, name, lambda x: x["deployments"][0]["runningCount"] >= 1, 60, "one new task")
    srv.kill9()
    srv.start()
    try:
        s = wait_service(ecs, cluster, name,
                         lambda x: steady(x) and x["deployments"][0]["taskDefinition"] == td2, 120, "steady")
        running = service_tasks(ecs, cluster, name)
        assert len(running) == 3, running
        assert all(t["taskDefinitionArn"] == td2 for t in running)
        # Every stopped task's containers are gone: nothing orphaned.
        stopped = ecs.list_tasks(cluster=cluster, serviceName=name, desiredStatus="STOPPED")["taskArns"]
        for arn in stopped:
            wait_status(ecs, cluster, arn, "STOPPED", timeout=60)
            assert managed_containers(arn) == [], arn
        # No surplus was ever started for a slot: 3 + 3 tasks in all.
        assert len(stopped) == 3, stopped
        stop_service(ecs, cluster, name)
    finally:
        srv.stop()


def error_of(call):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


def test_bad_input_gets_ecs_errors_and_changes_nothing(ecs, ecs_raw, cluster):
    td = web_td(ecs)
    name = unique("bad")
    base = dict(cluster=cluster, serviceName=name, taskDefinition=td, desiredCount=1, launchType="FARGATE",
                networkConfiguration=NET)
    assert error_of(lambda: ecs.update_service(cluster=cluster, service="nope", desiredCount=1))[0] == \
        "ServiceNotFoundException"
    assert error_of(lambda: ecs.delete_service(cluster=cluster, service="nope"))[0] == "ServiceNotFoundException"
    assert error_of(lambda: ecs.create_service(**dict(base, cluster="no-such-cluster")))[0] == \
        "ClusterNotFoundException"
    code, msg = error_of(lambda: ecs.create_service(**{k: v for k, v in base.items() if k != "networkConfiguration"}))
    assert code == "InvalidParameterException" and "Network Configuration must be provided" in msg
    code, msg = error_of(lambda: ecs.create_service(**dict(base, schedulingStrategy="DAEMON", desiredCount=1)))
    assert code == "InvalidParameterException" and "DAEMON" in msg
    code, _ = error_of(lambda: ecs.create_service(**dict(
        base, deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": 50})))
    assert code == "InvalidParameterException"
    code, msg = error_of(lambda: ecs.create_service(**dict(
        base, placementConstraints=[{"type": "distinctInstance"}])))
    assert code == "InvalidParameterException" and "FARGATE" in msg
    code, msg = error_of(lambda: ecs_raw.create_service(**dict(base, desiredCount=-1)))
    assert code == "InvalidParameterException"
    ec2_only = ecs.register_task_definition(family=unique("ec2"), requiresCompatibilities=["EC2"],
                                            containerDefinitions=[{"name": "a", "image": BUSYBOX, "memory": 32}])
    on_ec2_only = {k: v for k, v in base.items() if k != "networkConfiguration"}
    on_ec2_only["taskDefinition"] = ec2_only["taskDefinition"]["taskDefinitionArn"]
    code, msg = error_of(lambda: ecs.create_service(**on_ec2_only))
    assert code == "InvalidParameterException" and msg == "Task definition does not support launch_type FARGATE."
    gone = web_td(ecs)
    ecs.deregister_task_definition(taskDefinition=gone)
    code, _ = error_of(lambda: ecs.create_service(**dict(base, taskDefinition=gone)))
    assert code == "ClientException"
    assert ecs.list_services(cluster=cluster)["serviceArns"] == [], "nothing was created"
    # The same request twice is one service; a different one is refused.
    first = ecs.create_service(**dict(base, desiredCount=0))["service"]
    again = ecs.create_service(**dict(base, desiredCount=0))["service"]
    assert again["serviceArn"] == first["serviceArn"]
    code, msg = error_of(lambda: ecs.create_service(**dict(base, desiredCount=3)))
    assert (code, msg) == ("InvalidParameterException", "Creation of service was not idempotent.")
    assert describe(ecs, cluster, name)["desiredCount"] == 0, "unchanged"
    missing = ecs.describe_services(cluster=cluster, services=[name, "ghost"])
    assert [f["reason"] for f in missing["failures"]] == ["MISSING"]
    assert missing["failures"][0]["arn"].endswith(f":service/{cluster}/ghost")
    ecs.delete_service(cluster=cluster, service=name)


def add_instances(server, cluster, count=1):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    p = subprocess.run([BERTH, "instances", "add", "--cluster", cluster, "--instance-type", "t3.medium",
                        "--count", str(count), "--endpoint-url", server.endpoint, "--output", "json"],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    return [i["containerInstanceArn"] for i in json.loads(p.stdout)["instances"]]


def test_daemon_follows_instances_as_they_join_and_drain(ecs, cluster, server):
    first = add_instances(server, cluster, 2)
    td = ecs.register_task_definition(
        family=unique("daemon"), requiresCompatibilities=["EC2"],
        containerDefinitions=[{"name": "agent", "image": TESTAPP, "memory": 32,
                               "command": ["berth-testapp", "sleep", "600"]}])["taskDefinition"]["taskDefinitionArn"]
    code, msg = error_of(lambda: ecs.create_service(cluster=cluster, serviceName="d", taskDefinition=td,
                                                    schedulingStrategy="DAEMON", launchType="FARGATE"))
    assert code == "InvalidParameterException" and "FARGATE" in msg
    s = ecs.create_service(cluster=cluster, serviceName=unique("daemon"), taskDefinition=td,
                           schedulingStrategy="DAEMON")["service"]
    name = s["serviceName"]
    assert s["schedulingStrategy"] == "DAEMON"

    def placed():
        return sorted(t["containerInstanceArn"] for t in service_tasks(ecs, cluster, name)
                      if t["lastStatus"] == "RUNNING")
    wait_service(ecs, cluster, name, lambda x: steady(x) and x["desiredCount"] == 2, 60, "two")
    assert placed() == sorted(first)
    third = add_instances(server, cluster, 1)
    wait_service(ecs, cluster, name, lambda x: steady(x) and x["desiredCount"] == 3, 60, "three")
    assert placed() == sorted(first + third)
    ecs.update_container_instances_state(cluster=cluster, containerInstances=[first[0]], status="DRAINING")
    wait_service(ecs, cluster, name, lambda x: steady(x) and x["desiredCount"] == 2, 60, "drained")
    assert first[0] not in placed()
    stop_service(ecs, cluster, name)
    subprocess.run([BERTH, "instances", "remove", "--cluster", cluster, "--endpoint-url", server.endpoint,
                    *first, *third], capture_output=True, text=True)


def test_berth_services_lists_and_waits_for_a_deployment(ecs, cluster, server):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")

    def berth(*args):
        return subprocess.run([BERTH, "services", *args, "--cluster", cluster, "--endpoint-url", server.endpoint],
                              capture_output=True, text=True, env=env, timeout=120)
    s = create(ecs, cluster, web_td(ecs), desired=2)
    name = s["serviceName"]
    p = berth("wait-stable", name)
    assert p.returncode == 0, p.stderr
    assert "stable after" in p.stdout, p.stdout
    assert f"(service {name}) has reached a steady state." in p.stdout, p.stdout
    p = berth("list")
    assert p.returncode == 0, p.stderr
    [row] = [l for l in p.stdout.splitlines() if l.startswith(name)]
    assert "ACTIVE" in row and "2/2" in row and "PRIMARY" in row and "COMPLETED" in row, row
    p = berth("wait-stable", "ghost", "--timeout", "1")
    assert p.returncode == 1 and "MISSING" in p.stderr, p.stderr
    stop_service(ecs, cluster, name)
