"""Metering on real Docker: tasks that really ran are billed for the seconds
they ran (as AWS bills them), usage survives a restart, EC2 tasks pay their
share of their instance and the rest is idle, and `berth cost usage` /
`berth cost report` show it."""

import json
import os
import subprocess
import time

import pytest

from conftest import BERTH, TESTAPP, client, signed_request, unique, wait_status

NET = {"awsvpcConfiguration": {"subnets": ["subnet-0a1b2c3d"], "securityGroups": ["sg-1"]}}


def berth(server, *args, check=True):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    p = subprocess.run([BERTH, *args, "--endpoint-url", server.endpoint], capture_output=True, text=True, env=env)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def berth_call(endpoint, operation, body):
    """A call to Berth's own API (JSON 1.1, SigV4); returns the answer."""
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"Berth_20261123.{operation}"}
    status, _, data = signed_request(endpoint, json.dumps(body), headers)
    assert status == 200, data
    return json.loads(data)


def usage(server, *args):
    return json.loads(berth(server, "cost", "usage", "--output", "json", *args).stdout)


def report(server, *args):
    return json.loads(berth(server, "cost", "report", "--output", "json", *args).stdout)


def fargate_td(ecs, ms, cpu="256", memory="512", **extra):
    return ecs.register_task_definition(
        family=unique("metered"), networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu=cpu, memory=memory,
        containerDefinitions=[{"name": "main", "image": TESTAPP,
                               "command": ["berth-testapp", "exit", "0", "--after-ms", str(ms)]}],
        **extra)["taskDefinition"]["taskDefinitionArn"]


def run_until_stopped(ecs, cluster, td, **kw):
    """Run one task; return it STOPPED and the wall-clock seconds between
    seeing it begin to pull and seeing it stopped."""
    [t] = ecs.run_task(cluster=cluster, taskDefinition=td, **kw)["tasks"]
    arn = t["taskArn"]
    began = None
    deadline = time.time() + 60
    while time.time() < deadline:
        t = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
        if began is None and "pullStartedAt" in t:
            began = time.time()
        if t["lastStatus"] == "STOPPED":
            return t, time.time() - began
        time.sleep(0.05)
    raise AssertionError(f"task did not stop: {t}")


@pytest.fixture
def cluster(ecs, images):
    name = unique("cost")
    ecs.create_cluster(clusterName=name)
    return name


def test_fargate_tasks_are_metered_for_the_seconds_they_ran(server, ecs, cluster):
    td = fargate_td(ecs, 2500, cpu="512", memory="1024")
    short_td = fargate_td(ecs, 100)
    t, observed = run_until_stopped(ecs, cluster, td, launchType="FARGATE", networkConfiguration=NET,
                                    startedBy="nightly")
    short, _ = run_until_stopped(ecs, cluster, short_td, launchType="FARGATE", networkConfiguration=NET)
    out = usage(server, "--cluster", cluster)
    by_arn = {u["taskArn"]: u for u in out["tasks"]}
    u = by_arn[t["taskArn"]]
    ran = (t["stoppedAt"] - t["pullStartedAt"]).total_seconds()
    assert abs(u["seconds"] - ran) < 0.01, (u, ran)
    # Within a second of the run time the client observed.
    assert abs(u["seconds"] - observed) < 1.0, (u["seconds"], observed)
    assert u["seconds"] >= 2.5
    assert not u["running"] and u["launchType"] == "FARGATE"
    assert (u["cpu"], u["memory"], u["cpuArchitecture"]) == (512, 1024, "x86_64")
    # Billed as Fargate: the one-minute minimum for a run this short.
    assert u["billedSeconds"] == 60
    fargate_us_east_1 = 0.5 * 0.04048 + 1.0 * 0.004445
    assert abs(u["costUsd"] - fargate_us_east_1 * 60 / 3600) < 1e-9, u
    assert by_arn[short["taskArn"]]["billedSeconds"] == 60

    r = report(server, "--cluster", cluster, "--group-by", "task")
    assert r["groupBy"] == "task"
    line = next(l for l in r["lines"] if l["key"] == t["taskArn"].rsplit("/", 1)[1])
    assert abs(line["seconds"] - u["seconds"]) < 1e-6
    assert abs(line["asRunUsd"] - u["costUsd"]) < 1e-12
    assert abs(line["fargateUsd"] - u["costUsd"]) < 1e-12, "ran on FARGATE: the same"
    assert line["fargateSpotUsd"] < line["fargateUsd"]
    assert line["ec2SpotUsd"] < line["ec2OnDemandUsd"]
    assert r["total"]["tasks"] == 2
    assert r["idle"]["instances"] == 0
    options = [r["total"][k] for k in ("fargateUsd", "fargateSpotUsd", "ec2OnDemandUsd", "ec2SpotUsd")]
    assert abs(r["cheapest"]["usd"] - min(options)) < 1e-12
    by_started = report(server, "--cluster", cluster, "--group-by", "started-by")
    assert sorted(l["key"] for l in by_started["lines"]) == ["(no startedBy)", "nightly"]
    table = berth(server, "cost", "report", "--cluster", cluster).stdout
    assert "FARGATE_SPOT" in table and "idle capacity" in table and "cheapest for this usage" in table


def test_a_running_task_is_metered_so_far(server, ecs, cluster):
    td = fargate_td(ecs, 60000)
    [t] = ecs.run_task(cluster=cluster, taskDefinition=td, launchType="FARGATE", networkConfiguration=NET)["tasks"]
    wait_status(ecs, cluster, t["taskArn"], "RUNNING")
    time.sleep(1.0)
    first = next(u for u in usage(server, "--cluster", cluster)["tasks"] if u["taskArn"] == t["taskArn"])
    assert first["running"] and "meteredTo" not in first
    time.sleep(1.0)
    second = next(u for u in usage(server, "--cluster", cluster)["tasks"] if u["taskArn"] == t["taskArn"])
    assert second["seconds"] >= first["seconds"] + 0.9
    ecs.stop_task(cluster=cluster, task=t["taskArn"])
    wait_status(ecs, cluster, t["taskArn"], "STOPPED")
    done = next(u for u in usage(server, "--cluster", cluster)["tasks"] if u["taskArn"] == t["taskArn"])
    assert not done["running"] and done["meteredTo"] >= done["meteredFrom"]


def test_usage_is_frozen_at_stop_and_survives_a_restart(fresh_server, images):
    ecs = client(fresh_server.endpoint)
    name = unique("cost")
    ecs.create_cluster(clusterName=name)
    td = fargate_td(ecs, 300)
    t, _ = run_until_stopped(ecs, name, td, launchType="FARGATE", networkConfiguration=NET)
    before = usage(fresh_server, "--cluster", name)["tasks"]
    assert len(before) == 1 and before[0]["taskArn"] == t["taskArn"]
    fresh_server.kill9()
    fresh_server.start()
    time.sleep(1.5)
    after = usage(fresh_server, "--cluster", name)["tasks"]
    assert after == before


def test_ec2_tasks_pay_their_share_and_the_rest_is_idle(server, ecs, cluster):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    p = subprocess.run([BERTH, "instances", "add", "--cluster", cluster, "--instance-type", "t3.medium",
                        "--endpoint-url", server.endpoint, "--output", "json"], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    [inst] = json.loads(p.stdout)["instances"]
    td = ecs.register_task_definition(
        family=unique("metered-ec2"), requiresCompatibilities=["EC2"], networkMode="bridge",
        containerDefinitions=[{"name": "main", "image": TESTAPP, "cpu": 1024, "memory": 1024,
                               "command": ["berth-testapp", "exit", "0", "--after-ms", "1500"]}],
    )["taskDefinition"]["taskDefinitionArn"]
    t, observed = run_until_stopped(ecs, cluster, td, launchType="EC2")
    subprocess.run([BERTH, "instances", "remove", "--cluster", cluster, "--endpoint-url", server.endpoint,
                    inst["containerInstanceArn"]], capture_output=True, text=True, env=env, check=True)
    out = usage(server, "--cluster", cluster)
    [u] = out["tasks"]
    assert u["launchType"] == "EC2" and u["instanceType"] == "t3.medium"
    assert u["containerInstanceArn"] == inst["containerInstanceArn"]
    # Metered while its reservation is held: from placement to stop.
    held = (t["stoppedAt"] - t["createdAt"]).total_seconds()
    assert abs(u["seconds"] - held) < 0.01
    assert u["share"]["cpu"] == pytest.approx(1024 / 2048)
    assert u["share"]["memory"] == pytest.approx(1024 / inst["registeredMemory"])
    [i] = out["instances"]
    assert i["instanceType"] == "t3.medium" and i["market"] == "on-demand" and not i["running"]
    assert i["billedSeconds"] >= 60, "the 60-second minimum"
    t3_medium = 0.0416
    assert i["costUsd"] == pytest.approx(t3_medium * i["billedSeconds"] / 3600)
    assert u["costUsd"] == pytest.approx(t3_medium * u["share"]["price"] * u["billedSeconds"] / 3600)
    assert i["attributedUsd"] == pytest.approx(u["costUsd"])
    assert i["idleUsd"] == pytest.approx(i["costUsd"] - u["costUsd"])
    r = report(server, "--cluster", cluster)
    assert r["idle"]["usd"] == pytest.approx(i["idleUsd"])
    assert r["total"]["asRunUsd"] == pytest.approx(i["costUsd"]), "tasks' shares plus idle: the instance"


def test_the_usage_api_pages_and_filters(server, ecs, cluster):
    td = fargate_td(ecs, 100)
    arns = [run_until_stopped(ecs, cluster, td, launchType="FARGATE", networkConfiguration=NET)[0]["taskArn"] for _ in range(3)]
    seen, token = [], None
    while True:
        body = {"cluster": cluster, "maxResults": 2}
        if token:
            body["nextToken"] = token
        out = berth_call(server.endpoint, "ListTaskUsage", body)
        seen += [u["taskArn"] for u in out["usage"]]
        token = out.get("nextToken")
        if not token:
            break
    assert seen == arns
    future = berth_call(server.endpoint, "ListTaskUsage", {"cluster": cluster, "since": time.time() + 3600})
    assert future["usage"] == []
    assert usage(server, "--cluster", cluster, "--since", "1h")["tasks"] != []
    bad = berth(server, "cost", "report", "--since", "yesterday-ish", check=False)
    assert bad.returncode != 0 and "--since" in bad.stderr and bad.stdout == ""


def test_an_instance_that_ran_no_task_shows_no_negative_cost(server, ecs, cluster):
    berth(server, "instances", "add", "--cluster", cluster, "--instance-type", "t3.medium")
    table = berth(server, "cost", "usage", "--cluster", cluster).stdout
    assert "t3.medium" in table, table
    assert "$-" not in table, table
    [i] = usage(server, "--cluster", cluster)["instances"]
    assert i["attributedUsd"] == 0 and i["idleUsd"] == i["costUsd"]


def test_a_cluster_of_another_region_is_not_reported_as_all_zero(server, images):
    name = unique("elsewhere")
    client(server.endpoint, region="eu-west-1").create_cluster(clusterName=name)
    p = berth(server, "cost", "report", "--cluster", name, check=False)
    assert p.returncode == 1 and p.stdout == "", p.stdout
    assert f"cluster {name} does not exist in region us-east-1 (from $AWS_REGION or $AWS_DEFAULT_REGION)" \
           in p.stderr and "pass --region" in p.stderr, p.stderr
    out = json.loads(berth(server, "cost", "report", "--output", "json", "--cluster", name,
                           "--region", "eu-west-1").stdout)
    assert any("no usage in region eu-west-1 (from --region)" in n for n in out["notes"]), out["notes"]
