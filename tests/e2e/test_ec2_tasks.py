"""EC2 launch type end to end: tasks on local container instances
(`berth instances add`), with bridge, host and awsvpc networking on real
Docker, ports reachable at the instance's own address."""

import json
import os
import subprocess
import time
import urllib.request

import pytest

from conftest import BERTH, TESTAPP, unique, wait_status, wait_task


def add_instances(server, cluster, count=1, itype="t3.medium"):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    p = subprocess.run([BERTH, "instances", "add", "--cluster", cluster, "--instance-type", itype,
                        "--count", str(count), "--endpoint-url", server.endpoint, "--output", "json"],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["instances"]


def remove_instances(server, cluster, instances):
    subprocess.run([BERTH, "instances", "remove", "--cluster", cluster, "--endpoint-url", server.endpoint,
                    *[i["containerInstanceArn"] for i in instances]], capture_output=True, text=True)


@pytest.fixture
def cluster(server, ecs, images):
    name = unique("ec2run")
    ecs.create_cluster(clusterName=name)
    made = []
    yield name, lambda count=1, itype="t3.medium": made.extend(add_instances(server, name, count, itype)) or made
    # Removing the instances stops whatever still runs on them.
    remove_instances(server, name, made)


def http_get(host, port, path="/", timeout=20):
    """GET until it answers (the task may have just started)."""
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=3) as r:
                return r.read().decode()
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def ec2_td(ecs, containers, **extra):
    return ecs.register_task_definition(family=unique("ec2"), containerDefinitions=containers,
                                        requiresCompatibilities=["EC2"], **extra)["taskDefinition"]["taskDefinitionArn"]


def server_container(name, port, host_port=None, memory=64, **extra):
    pm = {"containerPort": port, "protocol": "tcp"}
    if host_port is not None:
        pm["hostPort"] = host_port
    return dict({"name": name, "image": TESTAPP, "memory": memory, "cpu": 128,
                 "command": ["berth-testapp", "serve", "--port", str(port)],
                 "environment": [{"name": "TESTAPP_NAME", "value": name}],
                 "portMappings": [pm]}, **extra)


def bindings(task, name):
    return next(c for c in task["containers"] if c["name"] == name)["networkBindings"]


def resources(ecs, cluster, arn):
    ci = ecs.describe_container_instances(cluster=cluster, containerInstances=[arn])["containerInstances"][0]
    return {r["name"]: (r.get("integerValue") if r["type"] == "INTEGER" else sorted(r["stringSetValue"]))
            for r in ci["remainingResources"]}, ci


def test_bridge_static_and_dynamic_ports_at_the_instance_address(ecs, cluster):
    name, add = cluster
    [inst] = add()
    td = ec2_td(ecs, [server_container("web", 8080, host_port=0),
                      server_container("api", 9000, host_port=9000)])
    out = ecs.run_task(cluster=name, taskDefinition=td, launchType="EC2")
    assert out["failures"] == []
    [t] = out["tasks"]
    assert t["containerInstanceArn"] == inst["containerInstanceArn"]
    assert "platformVersion" not in t and t["attachments"] == []
    running = wait_status(ecs, name, t["taskArn"], "RUNNING")
    [web] = bindings(running, "web")
    [api] = bindings(running, "api")
    assert web["bindIP"] == api["bindIP"] == inst["address"]
    assert api["hostPort"] == 9000 and api["containerPort"] == 9000 and api["protocol"] == "tcp"
    assert web["containerPort"] == 8080 and web["hostPort"] not in (0, 8080) and web["hostPort"] > 1024
    assert "name=api" in http_get(inst["address"], 9000)
    assert "name=web" in http_get(inst["address"], web["hostPort"])
    remaining, ci = resources(ecs, name, inst["containerInstanceArn"])
    registered = {r["name"]: r.get("integerValue") for r in ci["registeredResources"]}
    assert remaining["CPU"] == registered["CPU"] - 256 and remaining["MEMORY"] == registered["MEMORY"] - 128
    assert "9000" in remaining["PORTS"], "the static port is taken on this instance"
    assert ci["runningTasksCount"] == 1
    ecs.stop_task(cluster=name, task=t["taskArn"])
    wait_status(ecs, name, t["taskArn"], "STOPPED")
    remaining, ci = resources(ecs, name, inst["containerInstanceArn"])
    assert remaining["CPU"] == registered["CPU"] and remaining["MEMORY"] == registered["MEMORY"]
    assert "9000" not in remaining["PORTS"] and ci["runningTasksCount"] == 0
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://{inst['address']}:9000/", timeout=3)


def test_same_static_port_on_two_instances(ecs, cluster):
    name, add = cluster
    add(2)
    td = ec2_td(ecs, [server_container("web", 7000, host_port=7000)])
    out = ecs.run_task(cluster=name, taskDefinition=td, launchType="EC2", count=2)
    assert out["failures"] == []
    tasks = [wait_status(ecs, name, t["taskArn"], "RUNNING") for t in out["tasks"]]
    addresses = {bindings(t, "web")[0]["bindIP"] for t in tasks}
    assert len(addresses) == 2, "one per instance, each on its own address"
    for a in addresses:
        assert "name=web" in http_get(a, 7000)
    out = ecs.run_task(cluster=name, taskDefinition=td, launchType="EC2")
    assert out["tasks"] == [] and {f["reason"] for f in out["failures"]} == {"RESOURCE:PORTS"}


def test_host_mode_shares_the_instance_network(ecs, cluster):
    name, add = cluster
    [inst] = add()
    td = ec2_td(ecs, [
        server_container("app", 7070),
        {"name": "probe", "image": TESTAPP, "memory": 32, "essential": False,
         "command": ["berth-testapp", "health-check", "http://localhost:7070/health"],
         "dependsOn": [{"containerName": "app", "condition": "START"}]},
    ], networkMode="host")
    [t] = ecs.run_task(cluster=name, taskDefinition=td, launchType="EC2")["tasks"]
    running = wait_status(ecs, name, t["taskArn"], "RUNNING")
    [b] = bindings(running, "app")
    assert (b["bindIP"], b["hostPort"], b["containerPort"]) == (inst["address"], 7070, 7070)
    assert "name=app" in http_get(inst["address"], 7070)
    probed = wait_task(ecs, name, t["taskArn"],
                       lambda x: next(c for c in x["containers"] if c["name"] == "probe").get("exitCode") is not None)
    assert next(c for c in probed["containers"] if c["name"] == "probe")["exitCode"] == 0, \
        "containers of a host-mode task reach each other on localhost"


def test_links_between_bridge_containers(ecs, cluster):
    name, add = cluster
    add()
    td = ec2_td(ecs, [
        server_container("db", 5432),
        {"name": "client", "image": TESTAPP, "memory": 32, "essential": False, "links": ["db:database"],
         "command": ["berth-testapp", "health-check", "http://database:5432/health"]},
    ])
    [t] = ecs.run_task(cluster=name, taskDefinition=td, launchType="EC2")["tasks"]
    done = wait_task(ecs, name, t["taskArn"],
                     lambda x: next(c for c in x["containers"] if c["name"] == "client").get("exitCode") is not None)
    assert next(c for c in done["containers"] if c["name"] == "client")["exitCode"] == 0


def test_awsvpc_on_ec2_has_its_own_address(ecs, cluster):
    name, add = cluster
    add()
    td = ec2_td(ecs, [server_container("web", 8081)], networkMode="awsvpc")
    [t] = ecs.run_task(cluster=name, taskDefinition=td, launchType="EC2", networkConfiguration={
        "awsvpcConfiguration": {"subnets": ["subnet-1"]}})["tasks"]
    running = wait_status(ecs, name, t["taskArn"], "RUNNING")
    eni = {d["name"]: d["value"] for d in running["attachments"][0]["details"]}
    assert "name=web" in http_get(eni["privateIPv4Address"], 8081)


def test_removing_an_instance_stops_its_tasks(server, ecs, cluster):
    name, add = cluster
    [inst] = add()
    td = ec2_td(ecs, [{"name": "main", "image": TESTAPP, "memory": 32, "command": ["berth-testapp", "sleep", "300"]}])
    [t] = ecs.run_task(cluster=name, taskDefinition=td, launchType="EC2")["tasks"]
    wait_status(ecs, name, t["taskArn"], "RUNNING")
    remove_instances(server, name, [inst])
    done = wait_status(ecs, name, t["taskArn"], "STOPPED")
    assert done["stoppedReason"] == "Container instance removed"
    labels = subprocess.run(["docker", "ps", "-a", "--filter", f"label=berth.task={t['taskArn']}", "-q"],
                            capture_output=True, text=True).stdout.split()
    assert labels == [], "its containers are gone"
    # The agent's sweep (every 30 s) takes the instance's address off the machine.
    deadline = time.time() + 45
    while inst["address"] in subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout:
        assert time.time() < deadline, f"{inst['address']} is still on the machine"
        time.sleep(1)
