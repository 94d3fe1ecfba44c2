"""The load balancer's data plane on real containers and real HTTP: a
listener on the load balancer's own address, round robin over healthy
targets, rules with fixed responses, real health checks flipping a target
unhealthy with ALB's reason, draining on deregistration, a WebSocket
through the listener; and ECS services
registering their tasks, with a rolling deployment under steady traffic
that loses no request."""

import base64
import hashlib
import http.client
import os
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import BERTH, TESTAPP, client, unique

NET = {"awsvpcConfiguration": {"subnets": ["subnet-0a1b2c3d"], "securityGroups": ["sg-1"]}}
EXEC_ROLE = "arn:aws:iam::000000000000:role/ecsTaskExecutionRole"
SUBNETS = ["subnet-aaaa1111", "subnet-bbbb2222"]


@pytest.fixture
def elb(server):
    return client(server.endpoint, "elbv2")


@pytest.fixture
def cluster(ecs, images):
    name = unique("lbc")
    ecs.create_cluster(clusterName=name)
    return name


def td(ecs, name="app", revision="1"):
    return ecs.register_task_definition(
        family=unique("lbweb"), networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="256", memory="512", executionRoleArn=EXEC_ROLE,
        containerDefinitions=[{"name": "web", "image": TESTAPP,
                               "command": ["berth-testapp", "serve", "--port", "8080"],
                               "portMappings": [{"containerPort": 8080}],
                               "environment": [{"name": "TESTAPP_NAME", "value": f"{name}-{revision}"}]}],
    )["taskDefinition"]["taskDefinitionArn"]


def get(host, port, path="/", method="GET", timeout=10, headers=None):
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read().decode(), {k.lower(): v for k, v in r.getheaders()}
    finally:
        c.close()


def wait_for(what, check, timeout=60):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"{what} did not happen within {timeout}s (last: {last})")


def task_ip(task):
    for a in task.get("attachments", []):
        for d in a.get("details", []):
            if d["name"] == "privateIPv4Address":
                return d["value"]
    raise AssertionError(f"no address: {task}")


def health(elb, tg):
    return {(h["Target"]["Id"], h["Target"]["Port"]): h["TargetHealth"]
            for h in elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]}


def load_balancer(elb, tg_kw=None):
    lb = elb.create_load_balancer(Name=unique("lb")[:32], Subnets=SUBNETS)["LoadBalancers"][0]
    kw = dict(Name=unique("tg")[:32], Protocol="HTTP", Port=8080, TargetType="ip", VpcId="vpc-12345678",
              HealthCheckPath="/health", HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
              HealthyThresholdCount=2, UnhealthyThresholdCount=2)
    kw.update(tg_kw or {})
    tg = elb.create_target_group(**kw)["TargetGroups"][0]["TargetGroupArn"]
    elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "5"}])
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]
    address = lb["AvailabilityZones"][0]["LoadBalancerAddresses"][0]["IpAddress"]
    return lb, tg, listener["ListenerArn"], address


def run_tasks(ecs, cluster, n, name="app"):
    arns = [t["taskArn"] for t in ecs.run_task(cluster=cluster, taskDefinition=td(ecs, name), count=n,
                                                launchType="FARGATE", networkConfiguration=NET)["tasks"]]
    tasks = wait_for("tasks running", lambda: (
        lambda ts: ts if all(t["lastStatus"] == "RUNNING" for t in ts) else None)(
        ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]))
    return tasks


def test_round_robin_rules_health_checks_and_draining(ecs, elb, cluster, server):
    tasks = run_tasks(ecs, cluster, 2)
    ips = [task_ip(t) for t in tasks]
    lb, tg, listener, address = load_balancer(elb)
    # Nothing registered: ALB answers 503 itself.
    status, body, headers = wait_for("the listener", lambda: (lambda r: r if r[0] == 503 else None)(
        _try(lambda: get(address, 80))))
    assert "503 Service Temporarily Unavailable" in body and headers.get("server") == "awselb/2.0"

    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": ip} for ip in ips])
    wait_for("both targets healthy", lambda: all(
        h["State"] == "healthy" for h in health(elb, tg).values()) and len(health(elb, tg)) == 2)
    seen = {get(address, 80)[1] for _ in range(6)}
    assert len(seen) == 2 and all(s.startswith("berth-testapp name=app-1") for s in seen)
    # `berth lb` shows where to point a browser, and the targets' health.
    out = subprocess.run([BERTH, "lb", "--endpoint-url", elb.meta.endpoint_url], capture_output=True,
                         text=True, check=True).stdout
    assert f"http://{address}:80" in out and lb["DNSName"] in out and "2 healthy" in out, out
    assert f"{ips[0]}:8080" in out
    # The load balancer's name is made to resolve to its address.
    hosts = wait_for("the hosts entry", lambda: (lambda t: t if lb["DNSName"] in t else None)(
        open(os.path.join(server.data_dir, "hosts")).read()))
    assert f"{address} {lb['DNSName']}" in hosts
    # The backend sees who asked, through the proxy.
    status, env, _ = get(address, 80, "/env")
    assert status == 200
    # A WebSocket through the listener: upgraded, then messages both ways.
    assert websocket_echo(address, 80, ["hello", "x" * 70000, "again"]) == ["hello", "x" * 70000, "again"]

    elb.create_rule(ListenerArn=listener, Priority=1, Conditions=[{"Field": "path-pattern", "Values": ["/teapot"]}],
                    Actions=[{"Type": "fixed-response", "FixedResponseConfig": {
                        "StatusCode": "418", "ContentType": "text/plain", "MessageBody": "short and stout"}}])
    assert wait_for("the rule", lambda: (lambda r: r if r[0] == 418 else None)(get(address, 80, "/teapot")))[1] \
        == "short and stout"

    # One target starts failing its health checks: ALB says why, and stops
    # sending it requests.
    assert get(ips[0], 8080, "/unhealthy", method="POST")[0] == 200
    h = wait_for("unhealthy", lambda: (lambda h: h if h["State"] == "unhealthy" else None)(
        health(elb, tg)[(ips[0], 8080)]), timeout=40)
    assert h["Reason"] == "Target.ResponseCodeMismatch"
    assert "[500]" in h["Description"]
    bodies = {get(address, 80)[1] for _ in range(6)}
    assert len(bodies) == 1

    # Deregistered, it drains for the deregistration delay, then is gone.
    elb.deregister_targets(TargetGroupArn=tg, Targets=[{"Id": ips[1]}])
    h = health(elb, tg)[(ips[1], 8080)]
    assert (h["State"], h["Reason"]) == ("draining", "Target.DeregistrationInProgress")
    wait_for("deregistered", lambda: (ips[1], 8080) not in health(elb, tg), timeout=30)
    # Every target unhealthy: ALB fails open and still routes to them.
    status, body, _ = get(address, 80)
    assert status == 200

    # Deleted, the load balancer leaves nothing behind on the machine: its
    # address, its listener and its name in the hosts file are gone.
    elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    wait_for("the address removed", lambda: f" {address}/" not in subprocess.run(
        ["ip", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout, timeout=15)
    listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=True).stdout
    assert f"{address}:80 " not in listening, listening
    wait_for("the hosts entry removed", lambda: lb["DNSName"] not in open(
        os.path.join(server.data_dir, "hosts")).read(), timeout=15)


def websocket_echo(host, port, messages):
    """Open a WebSocket on /ws, send each message as a masked text frame,
    and return the texts the server echoed."""
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall((f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        f = s.makefile("rb")
        status = f.readline().decode()
        assert " 101 " in status, status
        head = {}
        while (line := f.readline().decode().strip()):
            k, v = line.split(":", 1)
            head[k.strip().lower()] = v.strip()
        want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode())
                                .digest()).decode()
        assert head.get("sec-websocket-accept") == want, head
        echoed = []
        for m in messages:
            data, mask = m.encode(), os.urandom(4)
            n = len(data)
            size = bytes([0x80 | n]) if n < 126 else (
                bytes([0x80 | 126]) + struct.pack(">H", n) if n <= 0xFFFF else bytes([0x80 | 127]) + struct.pack(">Q", n))
            s.sendall(bytes([0x81]) + size + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
            b0, b1 = f.read(2)
            assert b0 == 0x81 and not b1 & 0x80, (b0, b1)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", f.read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", f.read(8))[0]
            echoed.append(f.read(n).decode())
        s.sendall(bytes([0x88, 0x80]) + os.urandom(4))
        assert f.read(2)[0] == 0x88
    return echoed


def _try(f):
    try:
        return f()
    except OSError as e:
        return (None, str(e), {})


def test_a_service_behind_the_load_balancer_deploys_without_losing_a_request(ecs, elb, cluster):
    lb, tg, _, address = load_balancer(elb)
    name = unique("svc")
    ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=td(ecs, "svc", "1"), desiredCount=2,
                       launchType="FARGATE", networkConfiguration=NET, healthCheckGracePeriodSeconds=10,
                       loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 8080}],
                       deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": 200})

    def healthy_count():
        return sum(1 for h in health(elb, tg).values() if h["State"] == "healthy")

    wait_for("two healthy targets", lambda: healthy_count() == 2, timeout=90)
    s = ecs.describe_services(cluster=cluster, services=[name])["services"][0]
    events = [e["message"] for e in s["events"]]
    assert any(f"registered 1 targets in (target-group {tg})" in m for m in events), events
    seen = {get(address, 80)[1] for _ in range(6)}
    assert seen and all("name=svc-1" in b for b in seen)

    # A steady client loop through the whole rolling deployment.
    results = []
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            try:
                status, body, _ = get(address, 80, timeout=10)
                results.append((status, body))
            except OSError as e:
                results.append((None, str(e)))
            time.sleep(0.02)

    t = threading.Thread(target=loop)
    t.start()
    try:
        ecs.update_service(cluster=cluster, service=name, taskDefinition=td(ecs, "svc", "2"))

        def rolled():
            s = ecs.describe_services(cluster=cluster, services=[name])["services"][0]
            done = (len(s["deployments"]) == 1 and s["deployments"][0]["rolloutState"] == "COMPLETED"
                    and s["runningCount"] == 2)
            return done and all("name=svc-2" in b for _, b in results[-5:])

        wait_for("the deployment", rolled, timeout=150)
    finally:
        stop.set()
        t.join()
    failed = [r for r in results if r[0] != 200]
    assert len(results) > 50
    assert failed == [], failed[:5]
    assert any("name=svc-1" in b for _, b in results) and any("name=svc-2" in b for _, b in results)
    s = ecs.describe_services(cluster=cluster, services=[name])["services"][0]
    assert any(f"deregistered 1 targets in (target-group {tg})" in e["message"] for e in s["events"])
    ecs.delete_service(cluster=cluster, service=name, force=True)
    wait_for("targets gone", lambda: not health(elb, tg), timeout=60)


def test_a_blue_green_deployment_switches_traffic_and_rolls_back(ecs, elb, cluster):
    lb, blue, listener, address = load_balancer(elb)
    green = elb.create_target_group(
        Name=unique("green")[:32], Protocol="HTTP", Port=8080, TargetType="ip", VpcId="vpc-12345678",
        HealthCheckPath="/health", HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
        HealthyThresholdCount=2, UnhealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
    for g in (blue, green):
        elb.modify_target_group_attributes(TargetGroupArn=g, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": "5"}])
    rule = elb.create_rule(ListenerArn=listener, Priority=10,
                           Conditions=[{"Field": "path-pattern", "Values": ["/*"]}],
                           Actions=[{"Type": "forward", "TargetGroupArn": blue}])["Rules"][0]["RuleArn"]
    name = unique("bg")
    ecs.create_service(
        cluster=cluster, serviceName=name, taskDefinition=td(ecs, "bg", "1"), desiredCount=1,
        launchType="FARGATE", networkConfiguration=NET,
        deploymentConfiguration={"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0},
        loadBalancers=[{"targetGroupArn": blue, "containerName": "web", "containerPort": 8080,
                        "advancedConfiguration": {
                            "alternateTargetGroupArn": green, "productionListenerRule": rule,
                            "roleArn": "arn:aws:iam::000000000000:role/ecsInfrastructureRoleForLoadBalancers"}}])

    def weights():
        r = elb.describe_rules(RuleArns=[rule])["Rules"][0]
        return {t["TargetGroupArn"]: t["Weight"] for t in r["Actions"][0]["ForwardConfig"]["TargetGroups"]}

    def serving(revision):
        return wait_for(f"{revision} serving", lambda: (lambda r: r if f"name=bg-{revision}" in r[1] else None)(
            _try(lambda: get(address, 80))), timeout=120)

    serving("1")
    assert weights() == {blue: 100, green: 0}

    # Green starts beside blue, takes all production traffic at once, and
    # blue goes.
    ecs.update_service(cluster=cluster, service=name, taskDefinition=td(ecs, "bg", "2"))
    serving("2")
    assert weights() == {blue: 0, green: 100}
    assert {get(address, 80)[1].split()[1] for _ in range(5)} == {"name=bg-2"}
    wait_for("blue drained", lambda: not health(elb, blue), timeout=60)

    # The next revision goes to blue; stopped while it bakes, production
    # goes back to green at once.
    ecs.update_service(cluster=cluster, service=name, taskDefinition=td(ecs, "bg", "3"),
                       deploymentConfiguration={"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5})
    serving("3")
    assert weights() == {blue: 100, green: 0}
    deployments = ecs.list_service_deployments(cluster=cluster, service=name)["serviceDeployments"]
    current = ecs.describe_service_deployments(
        serviceDeploymentArns=[deployments[0]["serviceDeploymentArn"]])["serviceDeployments"][0]
    assert current["lifecycleStage"] == "BAKE_TIME", current
    ecs.stop_service_deployment(serviceDeploymentArn=current["serviceDeploymentArn"], stopType="ROLLBACK")
    serving("2")
    assert weights() == {blue: 0, green: 100}
    ecs.delete_service(cluster=cluster, service=name, force=True)
