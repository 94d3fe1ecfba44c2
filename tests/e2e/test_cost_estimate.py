"""`berth cost estimate`, black-box: the release binary on the example task
definition file and on a task definition registered in a running server.
Checks that the JSON answer is consistent with itself and with the rules
(per-second Fargate billing, waves, the cheapest choice), and that bad input
fails with a message naming the flag."""

import json
import math
import os
import subprocess

import pytest

from conftest import BERTH, ROOT, unique

EXAMPLE = os.path.join(ROOT, "examples", "cost", "render-task-definition.json")


def run(*args, env=None):
    if not os.path.exists(BERTH):
        pytest.fail(f"{BERTH} does not exist: build it with `cargo build --release`")
    e = dict(os.environ)
    e.pop("AWS_REGION", None)
    e.pop("AWS_DEFAULT_REGION", None)
    e.update(env or {})
    return subprocess.run([BERTH, "cost", "estimate", *args], capture_output=True, text=True, env=e)


def estimate_json(*args, env=None):
    p = run(*args, "--output", "json", env=env)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def choice(e, name):
    return next(c for c in e["choices"] if c["name"] == name)


def check_consistent(e):
    n = e["tasks"]
    assert e["waves"] == math.ceil(n / e["concurrency"])
    assert e["runSeconds"] == pytest.approx(e["waves"] * e["durationSeconds"])
    assert [c["name"] for c in e["choices"]] == ["FARGATE", "FARGATE_SPOT", "EC2", "EC2_SPOT"]
    offered = [c for c in e["choices"] if c["offered"]]
    for c in offered:
        assert c["totalUsd"] == pytest.approx(n * c["perTaskUsd"])
        assert c["totalUsd"] > 0
    for name in ("FARGATE", "FARGATE_SPOT"):
        c = choice(e, name)
        if c["offered"]:
            assert c["billedSeconds"] == max(60, math.ceil(e["durationSeconds"]))
    for name in ("EC2", "EC2_SPOT"):
        c = choice(e, name)
        p = c["packing"]
        assert p["tasks"] == e["concurrency"]
        assert p["instances"] == math.ceil(e["concurrency"] / p["tasksPerInstance"])
        assert p["hourlyUsd"] == pytest.approx(p["instances"] * p["instanceHourlyUsd"])
        assert c["totalUsd"] == pytest.approx(p["hourlyUsd"] * c["billedSeconds"] / 3600)
        assert 0 < p["cpuUtilisation"] <= 1 and 0 < p["memoryUtilisation"] <= 1
        assert p["spot"] == (name == "EC2_SPOT")
    cheapest = min(offered, key=lambda c: c["totalUsd"])
    assert e["cheapest"]["totalUsd"] == pytest.approx(cheapest["totalUsd"])
    assert e["cheapest"]["name"] in [c["name"] for c in offered if c["totalUsd"] == pytest.approx(cheapest["totalUsd"])]


def test_example_file_json():
    e = estimate_json("--task-definition", EXAMPLE, "--tasks", "55", "--duration", "5m", "--concurrency", "11")
    check_consistent(e)
    assert (e["tasks"], e["concurrency"], e["waves"], e["runSeconds"]) == (55, 11, 5, 1500)
    assert (e["task"]["cpu"], e["task"]["memoryMib"], e["task"]["architecture"]) == (2048, 4096, "X86_64")
    # 2 vCPU / 4 GB for 300 s at the us-east-1 rates.
    per_task = (2 * 0.04048 + 4 * 0.004445) * 300 / 3600
    assert choice(e, "FARGATE")["perTaskUsd"] == pytest.approx(per_task)
    assert e["region"] == "us-east-1"


def test_example_file_table():
    p = run("--task-definition", EXAMPLE, "--tasks", "55", "--duration", "5m", "--concurrency", "11")
    assert p.returncode == 0, p.stderr
    for word in ("FARGATE", "FARGATE_SPOT", "EC2 on-demand", "EC2 spot", "cheapest:", "estimate"):
        assert word in p.stdout, p.stdout


def test_arm64_and_no_burstable(tmp_path):
    td = json.load(open(EXAMPLE))
    td["runtimePlatform"]["cpuArchitecture"] = "ARM64"
    f = tmp_path / "arm.json"
    f.write_text(json.dumps(td))
    e = estimate_json("--task-definition", str(f), "--tasks", "7", "--duration", "90s",
                      "--no-burstable", "--region", "eu-west-1")
    check_consistent(e)
    assert not choice(e, "FARGATE_SPOT")["offered"]
    assert "ARM64" in choice(e, "FARGATE_SPOT")["note"]
    for name in ("EC2", "EC2_SPOT"):
        p = choice(e, name)["packing"]
        assert not p["burstable"]
        assert "g" in p["instanceType"].split(".")[0][2:], p["instanceType"]
    assert any("derived" in n.lower() for n in e["notes"])


def test_registered_task_definition(server, ecs):
    family = unique("cost-est")
    arn = ecs.register_task_definition(
        family=family,
        requiresCompatibilities=["EC2"],
        containerDefinitions=[
            {"name": "a", "image": "busybox", "cpu": 512, "memory": 1000},
            {"name": "b", "image": "busybox", "memoryReservation": 500},
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    for spec in (arn, f"{family}:1"):
        e = estimate_json("--task-definition", spec, "--tasks", "20", "--duration", "1h30m",
                          "--concurrency", "6", "--endpoint-url", server.endpoint)
        check_consistent(e)
        assert (e["task"]["cpu"], e["task"]["memoryMib"], e["task"]["source"]) == (512, 1500, "containers")
        assert e["fargateSize"] == {"cpu": 512, "memoryMib": 2048, "roundedUp": True}
        assert any("not a Fargate size" in n for n in e["notes"])


@pytest.mark.parametrize("args,needle", [
    (["--duration", "-5m"], "--duration"),
    (["--duration", "0s"], "--duration"),
    (["--duration", "soon"], "--duration"),
    (["--duration", "5m", "--tasks", "0"], "--tasks"),
    (["--duration", "5m", "--concurrency", "0"], "--concurrency"),
    (["--duration", "5m", "--region", "mars-north-1"], "us-east-1"),
])
def test_bad_input_names_the_flag(args, needle):
    base = ["--task-definition", EXAMPLE]
    if "--tasks" not in args:
        base += ["--tasks", "3"]
    p = run(*base, *args)
    assert p.returncode != 0
    assert needle in p.stderr, p.stderr
