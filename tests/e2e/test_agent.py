"""`berth agent`: a second process that registers a container instance with a
server and runs the tasks placed on it, over the server's authenticated
internal API; and what happens when it stops answering.

The agent runs on the same Docker Engine as the server here, under its own
owner label, so neither sweeps the other's containers."""

import json
import os
import signal
import subprocess
import time

import pytest

from conftest import BERTH, BUSYBOX, Server, client, signed_request, unique, wait_status

TIMEOUT_S = 3
GRACE_S = 3


@pytest.fixture
def server(tmp_path):
    s = Server(str(tmp_path), ["--agent-timeout-seconds", str(TIMEOUT_S),
                               "--agent-grace-seconds", str(GRACE_S)]).start()
    yield s
    s.stop()
    strict = [l for l in s.log().splitlines() if "strict output" in l or "does not declare" in l]
    assert not strict, strict


class AgentProc:
    def __init__(self, server, cluster, state_dir, *args, secret="test"):
        self.state_dir = state_dir
        self.log_path = os.path.join(state_dir, "agent.log")
        os.makedirs(state_dir, exist_ok=True)
        env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY=secret,
                   AWS_DEFAULT_REGION="us-east-1", BERTH_LOG="info")
        self.proc = subprocess.Popen(
            [BERTH, "agent", "--server", server.endpoint, "--cluster", cluster,
             "--state-dir", state_dir, *args],
            stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT, env=env)

    def state(self):
        with open(os.path.join(self.state_dir, "agent.json")) as f:
            return json.load(f)

    def log(self):
        return open(self.log_path, errors="replace").read()[-5000:]

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)


@pytest.fixture
def agents():
    started = []
    yield started
    for a in started:
        if a.proc.poll() is None:
            a.kill9()


def wait_for(what, f, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = f()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def instance(ecs, cluster, arn):
    return ecs.describe_container_instances(cluster=cluster, containerInstances=[arn])["containerInstances"][0]


def docker_running(task_arn):
    out = subprocess.run(["docker", "ps", "-a", "--filter", f"label=berth.task={task_arn}",
                          "--format", "{{.Label \"berth.managed\"}} {{.State}} {{.Names}}"],
                         capture_output=True, text=True, check=True).stdout
    return [l.split() for l in out.splitlines() if l and "pause" not in l]


def start_agent(agents, server, cluster, tmp_path, *args, **kw):
    a = AgentProc(server, cluster, str(tmp_path / "agent"), *args, **kw)
    agents.append(a)
    return a


def registered(a):
    def f():
        if a.proc.poll() is not None:
            raise AssertionError(f"agent exited {a.proc.returncode}:\n{a.log()}")
        try:
            return a.state().get("containerInstanceArn")
        except (OSError, ValueError):
            return None
    return wait_for("the agent to register", f)


def test_agent_runs_tasks_and_its_disconnection_stops_them(server, agents, images, tmp_path):
    ecs = client(server.endpoint)
    logs = client(server.endpoint, "logs")
    cluster = unique("agent")
    ecs.create_cluster(clusterName=cluster)
    a = start_agent(agents, server, cluster, tmp_path, "--cpu", "1024", "--memory", "1024",
                    "--instance-type", "t3.small", "--attribute", "role=edge", "--address", "127.0.0.1")
    arn = registered(a)
    ci = instance(ecs, cluster, arn)
    assert ci["agentConnected"] is True and ci["status"] == "ACTIVE"
    attrs = {x["name"]: x.get("value") for x in ci["attributes"]}
    assert attrs["role"] == "edge" and attrs["ecs.instance-type"] == "t3.small"
    cpu = next(r for r in ci["registeredResources"] if r["name"] == "CPU")["integerValue"]
    assert cpu == 1024

    group = unique("/agent/logs")
    td = ecs.register_task_definition(
        family=unique("agent"), requiresCompatibilities=["EC2"],
        containerDefinitions=[{
            "name": "main", "image": BUSYBOX, "memory": 128,
            "command": ["sh", "-c", "echo hello-from-agent; exec sleep 3600"],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": group, "awslogs-region": "us-east-1",
                "awslogs-stream-prefix": "ecs", "awslogs-create-group": "true"}}}],
    )["taskDefinition"]["taskDefinitionArn"]

    # A task placed on the agent's instance runs in Docker under the agent.
    [t] = ecs.run_task(cluster=cluster, taskDefinition=td, launchType="EC2")["tasks"]
    assert t["containerInstanceArn"] == arn
    wait_status(ecs, cluster, t["taskArn"], "RUNNING")
    owner = a.state()["owner"]
    [[label, state, _]] = docker_running(t["taskArn"])
    assert (label, state) == (owner, "running")
    stream = f"ecs/main/{t['taskArn'].rsplit('/', 1)[1]}"
    wait_for("the container's output in CloudWatch Logs", lambda: any(
        e["message"] == "hello-from-agent"
        for e in logs.get_log_events(logGroupName=group, logStreamName=stream)["events"]))
    assert instance(ecs, cluster, arn)["runningTasksCount"] == 1

    # StopTask goes through the agent.
    ecs.stop_task(cluster=cluster, task=t["taskArn"], reason="done")
    stopped = wait_status(ecs, cluster, t["taskArn"], "STOPPED")
    assert stopped["stopCode"] == "UserInitiated" and stopped["containers"][0]["exitCode"] is not None
    wait_for("the task's containers removed", lambda: not docker_running(t["taskArn"]))

    # Another task; then the agent dies.
    [t2] = ecs.run_task(cluster=cluster, taskDefinition=td, launchType="EC2")["tasks"]
    wait_status(ecs, cluster, t2["taskArn"], "RUNNING")
    a.kill9()
    wait_for("agentConnected false", lambda: instance(ecs, cluster, arn)["agentConnected"] is False,
             timeout=TIMEOUT_S + 10)
    assert ecs.describe_tasks(cluster=cluster, tasks=[t2["taskArn"]])["tasks"][0]["lastStatus"] == "RUNNING", \
        "within the grace period the task is left alone"
    gone = wait_status(ecs, cluster, t2["taskArn"], "STOPPED", timeout=GRACE_S + 15)
    assert gone["stoppedReason"].startswith("Container instance agent disconnected"), gone["stoppedReason"]
    assert gone["stopCode"] == "TaskFailedToStart" and gone["desiredStatus"] == "STOPPED"
    assert all(c["lastStatus"] == "STOPPED" for c in gone["containers"])
    assert instance(ecs, cluster, arn)["runningTasksCount"] == 0
    assert docker_running(t2["taskArn"]), "nobody was there to remove it"

    # Restarted, the agent is the same instance again and removes what
    # belongs to no live task.
    b = start_agent(agents, server, cluster, tmp_path)
    wait_for("agentConnected true", lambda: instance(ecs, cluster, arn)["agentConnected"] is True)
    assert b.state()["containerInstanceArn"] == arn
    assert ecs.list_container_instances(cluster=cluster)["containerInstanceArns"] == [arn]
    wait_for("the orphaned container removed", lambda: not docker_running(t2["taskArn"]))
    b.stop()


def agent_call(server, op, body, **kw):
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"Berth_20261123.{op}"}
    status, _, data = signed_request(server.endpoint, json.dumps(body), headers, **kw)
    return status, json.loads(data)


def test_internal_api_is_authenticated_and_scoped_to_the_instance(server, agents, tmp_path):
    ecs = client(server.endpoint)
    cluster = unique("agent")
    ecs.create_cluster(clusterName=cluster)

    # Bad credentials: the agent is refused and registers nothing.
    bad = start_agent(agents, server, cluster, tmp_path, secret="wrong")
    assert bad.proc.wait(timeout=20) != 0
    assert "SignatureDoesNotMatch" in bad.log() or "signature" in bad.log().lower(), bad.log()
    assert ecs.list_container_instances(cluster=cluster)["containerInstanceArns"] == []

    # Two instances registered as agents do; a task placed on the first.
    def reg(n):
        doc = {"instanceId": f"i-0000000000000000{n}", "instanceType": "t3.medium",
               "availabilityZone": "us-east-1a", "privateIp": "127.0.0.1"}
        return ecs.register_container_instance(
            cluster=cluster, instanceIdentityDocument=json.dumps(doc))["containerInstance"]["containerInstanceArn"]
    first, second = reg(1), reg(2)
    td = ecs.register_task_definition(family=unique("agent"), requiresCompatibilities=["EC2"],
                                      containerDefinitions=[{"name": "main", "image": BUSYBOX, "memory": 64}],
                                      )["taskDefinition"]["taskDefinitionArn"]
    [t] = ecs.start_task(cluster=cluster, taskDefinition=td, containerInstances=[first])["tasks"]

    status, out = agent_call(server, "AgentHeartbeat", {"containerInstanceArn": first})
    assert status == 200 and out["taskArns"] == [t["taskArn"]]
    status, out = agent_call(server, "AgentGetTask", {"containerInstanceArn": first, "taskArn": t["taskArn"],
                                                      "includeTaskDefinition": True})
    assert status == 200 and out["task"]["desiredStatus"] == "RUNNING"
    assert json.loads(out["taskDefinition"])["family"] == td.rsplit("/", 1)[1].split(":")[0]
    assert json.loads(out["task"]["document"])["lastStatus"] == "PROVISIONING"

    # The other instance's agent may not read, write or stop it.
    for op, extra in [("AgentGetTask", {}),
                      ("AgentSaveTask", {"document": out["task"]["document"], "runtime": out["task"]["runtime"]}),
                      ("AgentRequestStop", {"stopCode": "UserInitiated", "reason": "no"})]:
        status, err = agent_call(server, op, {"containerInstanceArn": second, "taskArn": t["taskArn"], **extra})
        assert status == 400 and err["__type"].endswith("AccessDeniedException"), (op, err)
    status, out = agent_call(server, "AgentHeartbeat", {"containerInstanceArn": second})
    assert status == 200 and out["taskArns"] == []
    # Nor can anyone without a valid signature.
    status, err = agent_call(server, "AgentHeartbeat", {"containerInstanceArn": first}, secret_key="wrong")
    assert status in (400, 403) and "Signature" in err["__type"]
    assert ecs.describe_tasks(cluster=cluster, tasks=[t["taskArn"]])["tasks"][0]["desiredStatus"] == "RUNNING"

    # Its agent never answers: after the timeout and the grace period the
    # task is stopped.
    gone = wait_status(ecs, cluster, t["taskArn"], "STOPPED", timeout=TIMEOUT_S + GRACE_S + 15)
    assert gone["stoppedReason"].startswith("Container instance agent disconnected")
