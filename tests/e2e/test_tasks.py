"""FARGATE tasks on real Docker: RunTask, the lifecycle, container semantics,
stop, recovery. Images are built locally (tests/images/build)."""

import os
import subprocess
import time

import botocore.exceptions
import pytest

from conftest import (BUSYBOX, TESTAPP, Server, client, managed_containers, unique, wait_status,
                      wait_task)

NET = {"awsvpcConfiguration": {"subnets": ["subnet-0a1b2c3d"], "securityGroups": ["sg-1"]}}


@pytest.fixture
def cluster(ecs, images):
    name = unique("fg")
    ecs.create_cluster(clusterName=name)
    return name


EXEC_ROLE = "arn:aws:iam::000000000000:role/ecsTaskExecutionRole"


def fargate(ecs, containers, cpu="256", memory="512", **extra):
    family = unique("task")
    return ecs.register_task_definition(
        family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu=cpu, memory=memory,
        containerDefinitions=containers, **extra)["taskDefinition"]["taskDefinitionArn"]


def run(ecs, cluster, td, **kw):
    out = ecs.run_task(cluster=cluster, taskDefinition=td, launchType="FARGATE", networkConfiguration=NET, **kw)
    assert out["failures"] == []
    return out["tasks"]


def container(task, name):
    return next(c for c in task["containers"] if c["name"] == name)


def test_task_runs_exits_0_and_reports_the_lifecycle(ecs, cluster):
    td = fargate(ecs, [{"name": "main", "image": BUSYBOX, "command": ["sh", "-c", "echo hello; sleep 1; exit 0"]}])
    [t] = run(ecs, cluster, td, startedBy="ci", group="batch", tags=[{"key": "k", "value": "v"}])
    assert t["lastStatus"] == "PROVISIONING" and t["desiredStatus"] == "RUNNING"
    assert t["launchType"] == "FARGATE" and t["platformVersion"] == "1.4.0"
    assert (t["cpu"], t["memory"]) == ("256", "512")
    running = wait_status(ecs, cluster, t["taskArn"], "RUNNING")
    eni = {d["name"]: d["value"] for d in running["attachments"][0]["details"]}
    assert running["attachments"][0]["type"] == "ElasticNetworkInterface"
    assert running["attachments"][0]["status"] == "ATTACHED"
    assert eni["subnetId"] == "subnet-0a1b2c3d"
    assert eni["networkInterfaceId"].startswith("eni-") and eni["macAddress"].count(":") == 5
    ip = eni["privateIPv4Address"]
    assert ip.count(".") == 3
    assert container(running, "main")["networkInterfaces"][0]["privateIpv4Address"] == ip
    assert running["connectivity"] == "CONNECTED"
    done = wait_status(ecs, cluster, t["taskArn"], "STOPPED")
    c = container(done, "main")
    assert c["exitCode"] == 0 and c["lastStatus"] == "STOPPED"
    assert c["imageDigest"]
    assert done["stopCode"] == "EssentialContainerExited"
    assert done["stoppedReason"] == "Essential container in task exited"
    assert done["desiredStatus"] == "STOPPED"
    stamps = [done[k] for k in ("createdAt", "pullStartedAt", "pullStoppedAt", "startedAt", "stoppingAt",
                                "executionStoppedAt", "stoppedAt")]
    assert stamps == sorted(stamps), stamps
    assert done["version"] > running["version"] > 1
    assert done["startedBy"] == "ci" and done["group"] == "batch"
    assert managed_containers(t["taskArn"]) == [], "containers and sandbox are removed"
    with_tags = ecs.describe_tasks(cluster=cluster, tasks=[t["taskArn"]], include=["TAGS"])["tasks"][0]
    assert with_tags["tags"] == [{"key": "k", "value": "v"}]


def test_essential_exit_code_stops_the_task(ecs, cluster):
    td = fargate(ecs, [
        {"name": "main", "image": TESTAPP, "command": ["berth-testapp", "exit", "3", "--after-ms", "500"]},
        {"name": "helper", "image": TESTAPP, "essential": False, "command": ["berth-testapp", "sleep", "300"]},
    ])
    [t] = run(ecs, cluster, td)
    done = wait_status(ecs, cluster, t["taskArn"], "STOPPED")
    assert container(done, "main")["exitCode"] == 3
    assert container(done, "helper")["lastStatus"] == "STOPPED"
    assert container(done, "helper")["exitCode"] == 143, "SIGTERM reached the other container"
    assert done["stopCode"] == "EssentialContainerExited"


def test_non_essential_exit_does_not_stop_the_task(ecs, cluster):
    td = fargate(ecs, [
        {"name": "main", "image": TESTAPP, "command": ["berth-testapp", "sleep", "300"]},
        {"name": "oneshot", "image": BUSYBOX, "essential": False, "command": ["sh", "-c", "exit 7"]},
    ])
    [t] = run(ecs, cluster, td)
    task = wait_task(ecs, cluster, t["taskArn"], lambda x: container(x, "oneshot").get("exitCode") == 7,
                     what="oneshot exited")
    assert task["lastStatus"] == "RUNNING" and task["desiredStatus"] == "RUNNING"
    ecs.stop_task(cluster=cluster, task=t["taskArn"])
    wait_status(ecs, cluster, t["taskArn"], "STOPPED")


def test_containers_of_a_task_share_localhost(ecs, cluster):
    td = fargate(ecs, [
        {"name": "web", "image": TESTAPP, "essential": False, "command": ["berth-testapp", "serve", "--port", "8080"],
         "environment": [{"name": "TESTAPP_NAME", "value": "web-one"}]},
        {"name": "client", "image": BUSYBOX,
         "command": ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://localhost:8080/ | grep -q web-one && exit 0; sleep 0.3; done; exit 1"]},
    ])
    [t] = run(ecs, cluster, td)
    done = wait_status(ecs, cluster, t["taskArn"], "STOPPED")
    assert container(done, "client")["exitCode"] == 0


def test_task_ip_answers_from_the_host(ecs, cluster):
    td = fargate(ecs, [{"name": "web", "image": TESTAPP, "command": ["berth-testapp", "serve", "--port", "8080"],
                        "portMappings": [{"containerPort": 8080}]}])
    [t] = run(ecs, cluster, td)
    task = wait_status(ecs, cluster, t["taskArn"], "RUNNING")
    ip = container(task, "web")["networkInterfaces"][0]["privateIpv4Address"]
    import urllib.request
    deadline = time.time() + 10
    while True:
        try:
            body = urllib.request.urlopen(f"http://{ip}:8080/", timeout=2).read().decode()
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    assert "berth-testapp" in body
    ecs.stop_task(cluster=cluster, task=t["taskArn"])
    wait_status(ecs, cluster, t["taskArn"], "STOPPED")


def test_overrides_command_and_environment(ecs, cluster):
    td = fargate(ecs, [{"name": "main", "image": BUSYBOX, "command": ["sh", "-c", "exit 1"],
                        "environment": [{"name": "CODE", "value": "4"}]}])
    [t] = run(ecs, cluster, td, overrides={"containerOverrides": [
        {"name": "main", "command": ["sh", "-c", "exit $CODE"], "environment": [{"name": "CODE", "value": "5"}]}]})
    done = wait_status(ecs, cluster, t["taskArn"], "STOPPED")
    assert container(done, "main")["exitCode"] == 5
    assert done["overrides"]["containerOverrides"][0]["name"] == "main"


def test_depends_on_start_success_healthy(ecs, cluster):
    td = fargate(ecs, [
        {"name": "init", "image": BUSYBOX, "essential": False, "command": ["sh", "-c", "sleep 1; exit 0"]},
        {"name": "db", "image": TESTAPP, "command": ["berth-testapp", "serve", "--port", "9000"],
         "healthCheck": {"command": ["CMD", "berth-testapp", "health-check", "http://localhost:9000/health"],
                         "interval": 5, "timeout": 2, "retries": 2, "startPeriod": 0}},
        {"name": "sidecar", "image": TESTAPP, "essential": False, "command": ["berth-testapp", "sleep", "300"],
         "dependsOn": [{"containerName": "db", "condition": "START"}]},
        {"name": "app", "image": TESTAPP, "command": ["berth-testapp", "sleep", "300"],
         "dependsOn": [{"containerName": "init", "condition": "SUCCESS"},
                       {"containerName": "db", "condition": "HEALTHY"}]},
    ], cpu="512", memory="1024")
    [t] = run(ecs, cluster, td)
    task = wait_status(ecs, cluster, t["taskArn"], "RUNNING", timeout=90)
    assert container(task, "db")["healthStatus"] == "HEALTHY"
    tid = t["taskArn"].rsplit("/", 1)[1]

    def state(name, field):
        return subprocess.run(["docker", "inspect", "-f", "{{.State.%s}}" % field, f"berth-{tid}-{name}"],
                              capture_output=True, text=True, check=True).stdout.strip()
    assert state("app", "StartedAt") > state("init", "FinishedAt"), "app waited for init to succeed"
    assert state("init", "ExitCode") == "0"
    ecs.stop_task(cluster=cluster, task=t["taskArn"])
    wait_status(ecs, cluster, t["taskArn"], "STOPPED", timeout=60)


def test_depends_on_success_that_fails_stops_the_task(ecs, cluster):
    td = fargate(ecs, [
        {"name": "init", "image": BUSYBOX, "essential": False, "command": ["sh", "-c", "exit 1"]},
        {"name": "app", "image": BUSYBOX, "command": ["sleep", "300"],
         "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}]},
    ])
    [t] = run(ecs, cluster, td)
    done = wait_status(ecs, cluster, t["taskArn"], "STOPPED")
    assert done["stopCode"] == "TaskFailedToStart"
    assert "init" in done["stoppedReason"]
    assert "exitCode" not in container(done, "app"), "app never started"


def test_health_check_turns_unhealthy(ecs, cluster):
    td = fargate(ecs, [{"name": "web", "image": TESTAPP, "command": ["berth-testapp", "serve", "--port", "8080"],
                        "healthCheck": {"command": ["CMD-SHELL", "berth-testapp health-check http://localhost:8080/health"],
                                        "interval": 5, "timeout": 2, "retries": 1}}])
    [t] = run(ecs, cluster, td)
    healthy = wait_task(ecs, cluster, t["taskArn"], lambda x: x.get("healthStatus") == "HEALTHY", 40, "HEALTHY")
    ip = container(healthy, "web")["networkInterfaces"][0]["privateIpv4Address"]
    import urllib.request
    urllib.request.urlopen(urllib.request.Request(f"http://{ip}:8080/unhealthy", method="POST"), timeout=5).read()
    sick = wait_task(ecs, cluster, t["taskArn"], lambda x: x.get("healthStatus") == "UNHEALTHY", 40, "UNHEALTHY")
    assert container(sick, "web")["healthStatus"] == "UNHEALTHY"
    ecs.stop_task(cluster=cluster, task=t["taskArn"])
    wait_status(ecs, cluster, t["taskArn"], "STOPPED")


def test_stop_task_sigterm_trapped_and_ignored(ecs, cluster):
    td = fargate(ecs, [
        {"name": "polite", "image": TESTAPP, "command": ["berth-testapp", "sleep", "300", "--trap-sigterm", "0"]},
        {"name": "stubborn", "image": TESTAPP, "essential": False, "stopTimeout": 3,
         "command": ["berth-testapp", "sleep", "300", "--ignore-sigterm"]},
    ])
    [t] = run(ecs, cluster, td)
    wait_status(ecs, cluster, t["taskArn"], "RUNNING")
    stopped = ecs.stop_task(cluster=cluster, task=t["taskArn"], reason="maintenance window")["task"]
    assert stopped["desiredStatus"] == "STOPPED"
    assert stopped["stopCode"] == "UserInitiated" and stopped["stoppedReason"] == "maintenance window"
    done = wait_status(ecs, cluster, t["taskArn"], "STOPPED")
    assert container(done, "polite")["exitCode"] == 0
    assert container(done, "stubborn")["exitCode"] == 137, "killed after its stopTimeout"
    assert 2.5 <= (done["executionStoppedAt"] - done["stoppingAt"]).total_seconds() < 20


def test_out_of_memory_kill(ecs, cluster):
    td = fargate(ecs, [{"name": "hog", "image": TESTAPP, "memory": 32, "command": ["berth-testapp", "alloc", "128"]}])
    [t] = run(ecs, cluster, td)
    done = wait_status(ecs, cluster, t["taskArn"], "STOPPED")
    c = container(done, "hog")
    assert c["exitCode"] == 137
    assert c["reason"] == "OutOfMemoryError: Container killed due to memory usage"


def docker_inspect(name, fmt):
    return subprocess.run(["docker", "inspect", "--format", fmt, name], capture_output=True, text=True,
                          check=True).stdout.strip()


def task_cgroup_file(task_id, controller, v1_file, v2_file):
    """A file of the task's cgroup, in the cgroup layout Docker uses here."""
    version = subprocess.run(["docker", "info", "--format", "{{.CgroupVersion}}"], capture_output=True,
                             text=True, check=True).stdout.strip()
    if version == "2":
        return f"/sys/fs/cgroup/berth/{task_id}/{v2_file}"
    return f"/sys/fs/cgroup/{controller}/berth/{task_id}/{v1_file}"


def test_task_memory_and_cpu_bound_all_its_containers(ecs, cluster):
    """Task memory is one hard limit for all the task's containers together
    (none has a limit of its own here), task cpu one quota: a cgroup per task
    holds them, and goes when the task stops."""
    td = fargate(ecs, [
        {"name": "main", "image": TESTAPP, "command": ["berth-testapp", "sleep", "300"]},
        {"name": "hog", "image": TESTAPP, "essential": False, "command": ["berth-testapp", "alloc", "1300"]},
    ], cpu="512", memory="1024")
    [t] = run(ecs, cluster, td)
    task_id = t["taskArn"].rsplit("/", 1)[1]
    deadline = time.time() + 60
    while True:
        task = ecs.describe_tasks(cluster=cluster, tasks=[t["taskArn"]])["tasks"][0]
        if "exitCode" in container(task, "hog") or time.time() > deadline:
            break
        time.sleep(0.3)
    hog = container(task, "hog")
    assert hog.get("exitCode") == 137, hog
    assert hog["reason"] == "OutOfMemoryError: Container killed due to memory usage"
    assert task["lastStatus"] == "RUNNING", "a non-essential container's exit does not stop the task"
    main = f"berth-{task_id}-main"
    assert docker_inspect(main, "{{.HostConfig.CgroupParent}}") == f"/berth/{task_id}"
    assert docker_inspect(main, "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}") == "0 0", \
        "the limits are the task's, not each container's"
    limit = task_cgroup_file(task_id, "memory", "memory.limit_in_bytes", "memory.max")
    assert open(limit).read().strip() == str(1024 << 20)
    quota = task_cgroup_file(task_id, "cpu", "cpu.cfs_quota_us", "cpu.max")
    assert open(quota).read().split()[0] == "50000", "512 CPU units = half of each 100 ms period"
    ecs.stop_task(cluster=cluster, task=t["taskArn"])
    wait_status(ecs, cluster, t["taskArn"], "STOPPED")
    assert not os.path.exists(os.path.dirname(limit)), "the task's cgroup is removed"


def test_unpullable_image_fails_only_that_task(ecs, cluster):
    bad = fargate(ecs, [{"name": "main", "image": "127.0.0.1:9/nothing/here:1"}])
    good = fargate(ecs, [{"name": "main", "image": BUSYBOX, "command": ["true"]}])
    [b] = run(ecs, cluster, bad)
    [g] = run(ecs, cluster, good)
    done = wait_status(ecs, cluster, b["taskArn"], "STOPPED")
    assert done["stopCode"] == "TaskFailedToStart"
    assert done["stoppedReason"].startswith("CannotPullContainerError:")
    assert container(done, "main")["reason"].startswith("CannotPullContainerError:")
    ok = wait_status(ecs, cluster, g["taskArn"], "STOPPED")
    assert container(ok, "main")["exitCode"] == 0


def test_bad_input_starts_nothing(ecs, ecs_raw, cluster):
    before = len(managed_containers())
    td = fargate(ecs, [{"name": "main", "image": BUSYBOX}])
    ec2_only = ecs.register_task_definition(family=unique("ec2"), containerDefinitions=[
        {"name": "main", "image": BUSYBOX, "memory": 64}])["taskDefinition"]["taskDefinitionArn"]
    inactive = fargate(ecs, [{"name": "main", "image": BUSYBOX}])
    ecs.deregister_task_definition(taskDefinition=inactive)

    def err(**kw):
        args = dict(cluster=cluster, taskDefinition=td, launchType="FARGATE", networkConfiguration=NET)
        args.update(kw)
        args = {k: v for k, v in args.items() if v is not None}
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs_raw.run_task(**args)
        return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]

    assert err(taskDefinition=unique("nope"))[0] == "ClientException"
    assert err(taskDefinition=inactive)[0] == "ClientException"
    assert err(cluster=unique("nocluster"))[0] == "ClusterNotFoundException"
    code, msg = err(networkConfiguration=None)
    assert code == "InvalidParameterException" and "Network Configuration" in msg
    assert err(count=0)[0] == "InvalidParameterException"
    assert err(count=11)[0] == "InvalidParameterException"
    code, msg = err(taskDefinition=ec2_only, networkConfiguration=None)
    assert (code, msg) == ("InvalidParameterException", "Task definition does not support launch_type FARGATE.")
    code, msg = err(overrides={"containerOverrides": [{"name": "ghost", "command": ["x"]}]})
    assert code == "InvalidParameterException" and "ghost" in msg
    code, _ = err(capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}])
    assert code == "InvalidParameterException", "launchType and capacityProviderStrategy together"
    time.sleep(1)
    assert len(managed_containers()) == before


def test_capacity_provider_fargate_spot(ecs, cluster):
    td = fargate(ecs, [{"name": "main", "image": BUSYBOX, "command": ["true"]}])
    strategy = [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.run_task(cluster=cluster, taskDefinition=td, networkConfiguration=NET,
                     capacityProviderStrategy=strategy)
    assert e.value.response["Error"]["Code"] == "InvalidParameterException", "not associated with the cluster"
    ecs.put_cluster_capacity_providers(cluster=cluster, capacityProviders=["FARGATE", "FARGATE_SPOT"],
                                       defaultCapacityProviderStrategy=[])
    out = ecs.run_task(cluster=cluster, taskDefinition=td, networkConfiguration=NET,
                       capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}])
    t = out["tasks"][0]
    assert t["capacityProviderName"] == "FARGATE_SPOT" and t["launchType"] == "FARGATE"
    wait_status(ecs, cluster, t["taskArn"], "STOPPED")


def test_list_describe_counters_and_delete_cluster(ecs, cluster):
    td = fargate(ecs, [{"name": "main", "image": BUSYBOX, "command": ["sleep", "300"]}])
    tasks = run(ecs, cluster, td, count=3, startedBy="lister")
    arns = [t["taskArn"] for t in tasks]
    for a in arns:
        wait_status(ecs, cluster, a, "RUNNING")
    c = ecs.describe_clusters(clusters=[cluster], include=["STATISTICS"])["clusters"][0]
    assert c["runningTasksCount"] == 3 and c["pendingTasksCount"] == 0
    assert {s["name"]: s["value"] for s in c["statistics"]}["runningFargateTasksCount"] == "3"
    with pytest.raises(ecs.exceptions.ClusterContainsTasksException):
        ecs.delete_cluster(cluster=cluster)
    listed = ecs.list_tasks(cluster=cluster, startedBy="lister")["taskArns"]
    assert sorted(listed) == sorted(arns)
    family = td.rsplit("/", 1)[1].split(":")[0]
    assert len(ecs.list_tasks(cluster=cluster, family=family)["taskArns"]) == 3
    pages = list(ecs.get_paginator("list_tasks").paginate(cluster=cluster, PaginationConfig={"PageSize": 2}))
    assert [len(p["taskArns"]) for p in pages] == [2, 1]
    short_id = arns[0].rsplit("/", 1)[1]
    out = ecs.describe_tasks(cluster=cluster, tasks=[short_id, "0123456789abcdef0123456789abcdef"])
    assert out["tasks"][0]["taskArn"] == arns[0]
    assert out["failures"][0]["reason"] == "MISSING"
    ecs.stop_task(cluster=cluster, task=arns[0])
    wait_status(ecs, cluster, arns[0], "STOPPED")
    assert arns[0] in ecs.list_tasks(cluster=cluster, desiredStatus="STOPPED")["taskArns"]
    assert arns[0] not in ecs.list_tasks(cluster=cluster)["taskArns"]
    for a in arns[1:]:
        ecs.stop_task(cluster=cluster, task=a)
    for a in arns[1:]:
        wait_status(ecs, cluster, a, "STOPPED")
    assert ecs.delete_cluster(cluster=cluster)["cluster"]["status"] == "INACTIVE"


def test_kill_9_mid_task_then_restart_finishes_it(tmp_path, images):
    s = Server(str(tmp_path)).start()
    ecs = client(s.endpoint)
    ecs.create_cluster(clusterName="crash")
    td = ecs.register_task_definition(
        family="crash", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[{"name": "main", "image": BUSYBOX, "command": ["sh", "-c", "sleep 4; exit 0"]}],
    )["taskDefinition"]["taskDefinitionArn"]
    long = ecs.register_task_definition(
        family="crash-long", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[{"name": "main", "image": TESTAPP, "command": ["berth-testapp", "sleep", "300"]}],
    )["taskDefinition"]["taskDefinitionArn"]
    [short] = run(ecs, "crash", td)
    [stays] = run(ecs, "crash", long)
    wait_status(ecs, "crash", short["taskArn"], "RUNNING")
    wait_status(ecs, "crash", stays["taskArn"], "RUNNING")
    s.kill9()
    time.sleep(5)  # the short task's container exits while the server is down
    s.start()
    ecs = client(s.endpoint)
    done = wait_status(ecs, "crash", short["taskArn"], "STOPPED")
    assert container(done, "main")["exitCode"] == 0
    assert done["stopCode"] == "EssentialContainerExited"
    adopted = ecs.describe_tasks(cluster="crash", tasks=[stays["taskArn"]])["tasks"][0]
    assert adopted["lastStatus"] == "RUNNING", "the still-running task is adopted, not restarted"
    assert len(managed_containers(stays["taskArn"])) == 2
    ecs.stop_task(cluster="crash", task=stays["taskArn"])
    wait_status(ecs, "crash", stays["taskArn"], "STOPPED")
    assert managed_containers(stays["taskArn"]) == []
    s.stop()


def test_vanished_container_and_orphans(tmp_path, images):
    s = Server(str(tmp_path)).start()
    ecs = client(s.endpoint)
    ecs.create_cluster(clusterName="orph")
    td = ecs.register_task_definition(
        family="orph", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[{"name": "main", "image": TESTAPP, "command": ["berth-testapp", "sleep", "300"]}],
    )["taskDefinition"]["taskDefinitionArn"]
    [t] = run(ecs, "orph", td)
    wait_status(ecs, "orph", t["taskArn"], "RUNNING")
    s.kill9()
    tid = t["taskArn"].rsplit("/", 1)[1]
    owner = subprocess.run(["docker", "inspect", "-f", '{{index .Config.Labels "berth.managed"}}', f"berth-{tid}-main"],
                           check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run(["docker", "rm", "-f", f"berth-{tid}-main"], check=True, capture_output=True)
    ghost = "arn:aws:ecs:us-east-1:000000000000:task/orph/ffffffffffffffffffffffffffffffff"
    other = "arn:aws:ecs:us-east-1:000000000000:task/orph/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
    # A container of another Berth server on the same engine is left alone.
    subprocess.run(["docker", "run", "-d", "--name", unique("berth-other"), "--label", "berth.managed=someone-else",
                    "--label", f"berth.task={other}", BUSYBOX, "sleep", "300"], check=True, capture_output=True)
    subprocess.run(["docker", "run", "-d", "--name", unique("berth-orphan"), "--label", f"berth.managed={owner}",
                    "--label", f"berth.task={ghost}", BUSYBOX, "sleep", "300"], check=True, capture_output=True)
    assert managed_containers(ghost)
    s.start()
    ecs = client(s.endpoint)
    done = wait_status(ecs, "orph", t["taskArn"], "STOPPED")
    assert "gone" in done["stoppedReason"]
    deadline = time.time() + 20
    while managed_containers(ghost) and time.time() < deadline:
        time.sleep(0.3)
    assert managed_containers(ghost) == [], "the orphan was removed"
    assert managed_containers(t["taskArn"]) == []
    assert len(managed_containers(other)) == 1, "another server's container is not ours to remove"
    subprocess.run(["docker", "rm", "-f"] + managed_containers(other), check=True, capture_output=True)
    s.stop()


def test_awslogs_captures_stdout_and_stderr(ecs, cluster, cli):
    group = "/ecs/" + unique("logs")
    td = fargate(ecs, [{"name": "main", "image": TESTAPP,
                        "command": ["sh", "-c", "berth-testapp log 5; echo to-stderr >&2; berth-testapp exit 0"],
                        "logConfiguration": {"logDriver": "awslogs", "options": {
                            "awslogs-group": group, "awslogs-region": "us-east-1",
                            "awslogs-stream-prefix": "ecs", "awslogs-create-group": "true"}}}],
                 executionRoleArn=EXEC_ROLE)
    [t] = run(ecs, cluster, td)
    done = wait_status(ecs, cluster, t["taskArn"], "STOPPED")
    assert container(done, "main")["exitCode"] == 0
    tid = t["taskArn"].rsplit("/", 1)[1]
    stream = f"ecs/main/{tid}"
    events = cli("logs", "get-log-events", "--log-group-name", group, "--log-stream-name", stream,
                 "--start-from-head")["events"]
    messages = [e["message"] for e in events]
    for i in range(1, 6):
        assert f"line {i}" in messages
    assert "to-stderr" in messages
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps)
    started = done["startedAt"].timestamp() * 1000
    assert abs(stamps[0] - started) < 10_000, "events carry the container's own timestamps"
    found = cli("logs", "filter-log-events", "--log-group-name", group, "--filter-pattern", "\"to-stderr\"")["events"]
    assert [e["message"] for e in found] == ["to-stderr"]
    assert found[0]["logStreamName"] == stream


def test_awslogs_missing_group_fails_the_task(ecs, cluster):
    td = fargate(ecs, [{"name": "main", "image": BUSYBOX, "command": ["true"],
                        "logConfiguration": {"logDriver": "awslogs", "options": {
                            "awslogs-group": "/ecs/" + unique("absent"), "awslogs-region": "us-east-1",
                            "awslogs-stream-prefix": "ecs"}}}],
                 executionRoleArn=EXEC_ROLE)
    [t] = run(ecs, cluster, td)
    done = wait_status(ecs, cluster, t["taskArn"], "STOPPED")
    assert done["stopCode"] == "TaskFailedToStart"
    assert done["stoppedReason"].startswith("ResourceInitializationError:")
    assert "log group does not exist" in done["stoppedReason"]


def awslogs(group, prefix="ecs"):
    return {"logDriver": "awslogs", "options": {
        "awslogs-group": group, "awslogs-region": "us-east-1",
        "awslogs-stream-prefix": prefix, "awslogs-create-group": "true"}}


def stream_messages(cli, group, stream):
    events = cli("logs", "get-log-events", "--log-group-name", group, "--log-stream-name", stream,
                 "--start-from-head")["events"]
    return [e["message"] for e in events]


def test_awslogs_of_containers_started_after_their_dependencies(ecs, cluster, cli):
    """Every container's output reaches its stream, whenever it starts:
    after a dependency COMPLETEs or SUCCEEDs, or beside one it STARTs after."""
    group = "/ecs/" + unique("deps")
    td = fargate(ecs, [
        {"name": "init", "image": TESTAPP, "essential": False,
         "command": ["sh", "-c", "echo init-done"], "logConfiguration": awslogs(group)},
        {"name": "main", "image": TESTAPP, "essential": True,
         "command": ["sh", "-c", "sleep 1; berth-testapp log 3 --interval-ms 100; sleep 1"],
         "dependsOn": [{"containerName": "init", "condition": "COMPLETE"}],
         "logConfiguration": awslogs(group)},
        {"name": "side", "image": TESTAPP, "essential": False,
         "command": ["sh", "-c", "echo side-started; sleep 30"],
         "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}],
         "logConfiguration": awslogs(group)},
        {"name": "sidecar", "image": TESTAPP, "essential": False,
         "command": ["sh", "-c", "echo sidecar-started; sleep 30"],
         "dependsOn": [{"containerName": "side", "condition": "START"}],
         "logConfiguration": awslogs(group)},
    ], executionRoleArn=EXEC_ROLE)
    [t] = run(ecs, cluster, td)
    done = wait_status(ecs, cluster, t["taskArn"], "STOPPED")
    assert done["stopCode"] == "EssentialContainerExited", done.get("stoppedReason")
    tid = t["taskArn"].rsplit("/", 1)[1]
    assert stream_messages(cli, group, f"ecs/init/{tid}") == ["init-done"]
    assert stream_messages(cli, group, f"ecs/main/{tid}") == ["line 1", "line 2", "line 3"]
    assert stream_messages(cli, group, f"ecs/side/{tid}") == ["side-started"]
    assert stream_messages(cli, group, f"ecs/sidecar/{tid}") == ["sidecar-started"]


def test_awslogs_of_a_container_started_later_arrive_live(ecs, cluster, cli):
    """A container started after its dependency completed has its output
    in its stream while it runs, not only when the task stops."""
    group = "/ecs/" + unique("live")
    td = fargate(ecs, [
        {"name": "init", "image": TESTAPP, "essential": False,
         "command": ["true"], "logConfiguration": awslogs(group)},
        {"name": "main", "image": TESTAPP,
         "command": ["sh", "-c", "echo up; sleep 60"],
         "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}],
         "logConfiguration": awslogs(group)},
    ], executionRoleArn=EXEC_ROLE)
    [t] = run(ecs, cluster, td)
    wait_status(ecs, cluster, t["taskArn"], "RUNNING")
    tid = t["taskArn"].rsplit("/", 1)[1]
    deadline = time.time() + 20
    while time.time() < deadline and stream_messages(cli, group, f"ecs/main/{tid}") != ["up"]:
        time.sleep(0.3)
    assert stream_messages(cli, group, f"ecs/main/{tid}") == ["up"]
    ecs.stop_task(cluster=cluster, task=t["taskArn"])
    wait_status(ecs, cluster, t["taskArn"], "STOPPED")


def test_awslogs_continue_exactly_once_across_a_restart(tmp_path, images):
    """Output written while the server was down, and after, reaches the
    stream of an adopted container, live and each line once."""
    s = Server(str(tmp_path)).start()
    ecs = client(s.endpoint)
    logs = client(s.endpoint, service="logs")
    name = unique("restart-logs")
    ecs.create_cluster(clusterName=name)
    group = "/ecs/" + unique("adopted")
    lines = 120
    td = fargate(ecs, [{"name": "main", "image": TESTAPP,
                        "command": ["berth-testapp", "log", str(lines), "--interval-ms", "100"],
                        "logConfiguration": awslogs(group)}],
                 executionRoleArn=EXEC_ROLE)
    [t] = run(ecs, name, td)
    wait_status(ecs, name, t["taskArn"], "RUNNING")
    tid = t["taskArn"].rsplit("/", 1)[1]
    stream = f"ecs/main/{tid}"

    def messages():
        try:
            return [e["message"] for e in logs.get_log_events(
                logGroupName=group, logStreamName=stream, startFromHead=True, limit=10000)["events"]]
        except logs.exceptions.ResourceNotFoundException:
            return []

    deadline = time.time() + 20
    while time.time() < deadline and len(messages()) < 5:
        time.sleep(0.1)
    assert len(messages()) >= 5
    s.kill9()
    time.sleep(1.5)
    s.start()
    ecs = client(s.endpoint)
    logs = client(s.endpoint, service="logs")
    try:
        # Live: lines written after the restart arrive while the task runs.
        deadline = time.time() + 30
        while time.time() < deadline and len(messages()) < 60:
            time.sleep(0.2)
        seen = len(messages())
        still_running = ecs.describe_tasks(cluster=name, tasks=[t["taskArn"]])["tasks"][0]["lastStatus"]
        assert seen >= 60 and still_running == "RUNNING", (seen, still_running)
        wait_status(ecs, name, t["taskArn"], "STOPPED", timeout=60)
        assert messages() == [f"line {i}" for i in range(1, lines + 1)]
    finally:
        s.stop()
