"""`berth migrate task-definition` and `berth migrate lint`: converted task
definitions register (from a file and from a registered ARN, both ways), a
FARGATE task and its EC2 conversion answer the same request, and blockers
and lint answer with their exit codes."""

import json
import os
import subprocess
import time
import urllib.request

import pytest

from conftest import BERTH, TESTAPP, unique, wait_status

NET = {"awsvpcConfiguration": {"subnets": ["subnet-0a1b2c3d"]}}


def berth(*args, endpoint=None):
    """Run the berth CLI; returns (exit code, stdout, stderr)."""
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    cmd = [BERTH, *args] + (["--endpoint-url", endpoint] if endpoint else [])
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return p.returncode, p.stdout, p.stderr


def write(tmp_path, name, doc):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


def convert(source, to, *extra, endpoint=None):
    code, out, err = berth("migrate", "task-definition", "--to", to, source, *extra, endpoint=endpoint)
    assert code == 0, err
    return json.loads(out), err


def ec2_api(family):
    """An EC2 definition: bridge, a linked database, no task size."""
    return {
        "family": family,
        "requiresCompatibilities": ["EC2"],
        "containerDefinitions": [
            {"name": "api", "image": TESTAPP, "cpu": 512, "memory": 1024, "links": ["db:database"],
             "command": ["berth-testapp", "serve", "--port", "3000"],
             "portMappings": [{"containerPort": 3000, "hostPort": 80}],
             "environment": [{"name": "DATABASE_URL", "value": "postgres://app@database:5432/app"}]},
            {"name": "db", "image": TESTAPP, "cpu": 188, "memoryReservation": 476,
             "command": ["berth-testapp", "serve", "--port", "5432"],
             "portMappings": [{"containerPort": 5432}]},
        ],
    }


def fargate_web(family, name="web", port=8080):
    return {
        "family": family, "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
        "cpu": "256", "memory": "512",
        "containerDefinitions": [{
            "name": name, "image": TESTAPP,
            "command": ["berth-testapp", "serve", "--port", str(port)],
            "environment": [{"name": "TESTAPP_NAME", "value": name}],
            "portMappings": [{"containerPort": port, "protocol": "tcp"}],
        }],
    }


def test_ec2_file_converts_to_fargate_and_registers(server, cli, tmp_path):
    src = write(tmp_path, "ec2.json", ec2_api(unique("api")))
    td, err = convert(src, "fargate", "--explain")
    assert td["networkMode"] == "awsvpc" and td["requiresCompatibilities"] == ["FARGATE"]
    assert (td["cpu"], td["memory"]) == ("1024", "2048")
    api = next(c for c in td["containerDefinitions"] if c["name"] == "api")
    assert "links" not in api
    assert api["environment"] == [{"name": "DATABASE_URL", "value": "postgres://app@localhost:5432/app"}]
    assert api["portMappings"][0]["hostPort"] == 3000
    assert "postgres://app@database:5432/app → postgres://app@localhost:5432/app" in err
    assert "cpu 700 (sum of containers) → 1024, memory 1500 (sum of containers) → 2048 MiB: $" in err
    assert "instead of $" in err and "why:" in err
    out = tmp_path / "fargate.json"
    out.write_text(json.dumps(td))
    reg = cli("ecs", "register-task-definition", "--cli-input-json", f"file://{out}")["taskDefinition"]
    assert reg["status"] == "ACTIVE" and "FARGATE" in reg["compatibilities"]
    assert reg["requiresCompatibilities"] == ["FARGATE"]


def test_fargate_file_converts_to_ec2_and_registers(server, ecs, tmp_path):
    src = write(tmp_path, "fargate.json", fargate_web(unique("web")))
    td, err = convert(src, "ec2")
    assert td["networkMode"] == "bridge" and td["requiresCompatibilities"] == ["EC2"]
    assert td["containerDefinitions"][0]["portMappings"][0]["hostPort"] == 0
    assert "why:" not in err, "reasons only with --explain"
    assert "networkMode: awsvpc → bridge" in err
    reg = ecs.register_task_definition(**td)["taskDefinition"]
    assert reg["networkMode"] == "bridge" and reg["compatibilities"] == ["EC2"]
    static, _ = convert(src, "ec2", "--static-ports")
    assert static["containerDefinitions"][0]["portMappings"][0]["hostPort"] == 8080
    ecs.register_task_definition(**static)


def test_registered_definitions_convert_by_arn_and_family(server, ecs):
    ec2_arn = ecs.register_task_definition(**ec2_api(unique("api")))["taskDefinition"]["taskDefinitionArn"]
    td, _ = convert(ec2_arn, "fargate", endpoint=server.endpoint)
    for f in ("taskDefinitionArn", "revision", "status", "compatibilities", "requiresAttributes", "registeredAt"):
        assert f not in td
    reg = ecs.register_task_definition(**td)["taskDefinition"]
    assert reg["requiresCompatibilities"] == ["FARGATE"] and (reg["cpu"], reg["memory"]) == ("1024", "2048")

    family = unique("web")
    rev = ecs.register_task_definition(**fargate_web(family))["taskDefinition"]["revision"]
    td, _ = convert(f"{family}:{rev}", "ec2", endpoint=server.endpoint)
    reg = ecs.register_task_definition(**td)["taskDefinition"]
    assert reg["networkMode"] == "bridge" and reg["revision"] == rev + 1
    assert reg["containerDefinitions"][0]["portMappings"][0]["hostPort"] == 0


def add_instance(server, cluster):
    code, out, err = berth("instances", "add", "--cluster", cluster, "--instance-type", "t3.medium",
                           "--count", "1", "--output", "json", endpoint=server.endpoint)
    assert code == 0, err
    return json.loads(out)["instances"][0]


def http_get(host, port, path, timeout=30):
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=3) as r:
                return r.status, r.read().decode()
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def cluster(server, ecs, images):
    name = unique("migrate")
    ecs.create_cluster(clusterName=name)
    made = []
    yield name, made
    for t in ecs.list_tasks(cluster=name)["taskArns"]:
        ecs.stop_task(cluster=name, task=t)
    if made:
        berth("instances", "remove", "--cluster", name, *[i["containerInstanceArn"] for i in made],
              endpoint=server.endpoint)


def test_fargate_task_and_its_ec2_conversion_answer_the_same(server, ecs, cluster, tmp_path):
    name, made = cluster
    inst = add_instance(server, name)
    made.append(inst)
    src = write(tmp_path, "web.json", fargate_web(unique("side"), name="side", port=8080))

    fargate_arn = ecs.register_task_definition(**json.loads(open(src).read()))["taskDefinition"]["taskDefinitionArn"]
    [ft] = ecs.run_task(cluster=name, taskDefinition=fargate_arn, launchType="FARGATE",
                        networkConfiguration=NET)["tasks"]
    running = wait_status(ecs, name, ft["taskArn"], "RUNNING")
    eni = {d["name"]: d["value"] for d in running["attachments"][0]["details"]}
    fargate_at = (eni["privateIPv4Address"], 8080)

    td, _ = convert(src, "ec2")
    ec2_arn = ecs.register_task_definition(**td)["taskDefinition"]["taskDefinitionArn"]
    out = ecs.run_task(cluster=name, taskDefinition=ec2_arn, launchType="EC2")
    assert out["failures"] == []
    [et] = out["tasks"]
    assert et["containerInstanceArn"] == inst["containerInstanceArn"]
    running = wait_status(ecs, name, et["taskArn"], "RUNNING")
    [b] = running["containers"][0]["networkBindings"]
    assert b["containerPort"] == 8080 and b["hostPort"] not in (0, 8080), "a dynamic host port"
    ec2_at = (inst["address"], b["hostPort"])

    for path in ("/health", "/"):
        f_status, f_body = http_get(*fargate_at, path)
        e_status, e_body = http_get(*ec2_at, path)
        # The answer names the host (the container's hostname); the rest is the same.
        strip = lambda body: " ".join(w for w in body.split() if not w.startswith("host="))
        assert (f_status, strip(f_body)) == (e_status, strip(e_body)), (f_body, e_body)
        assert f_status == 200
    assert "name=side" in http_get(*ec2_at, "/")[1]


def test_lint_exit_codes(tmp_path):
    ok = write(tmp_path, "ok.json", ec2_api("lint-ok"))
    code, out, err = berth("migrate", "lint", "--to", "fargate", ok)
    assert code == 0, err
    assert "change   networkMode: bridge → awsvpc" in out and "blocker" not in out
    assert "converts to FARGATE with" in out

    blocked = ec2_api("lint-blocked")
    blocked["containerDefinitions"][1]["privileged"] = True
    blocked["volumes"] = [{"name": "data", "host": {"sourcePath": "/srv/data"}}]
    path = write(tmp_path, "blocked.json", blocked)
    code, out, err = berth("migrate", "lint", "--to", "fargate", path)
    assert code == 2, (out, err)
    assert "blocker  containerDefinitions[db].privileged" in out
    assert "blocker  volumes[data].host.sourcePath" in out
    assert "cannot run on FARGATE: 2 blocker(s)" in out

    code, out, _ = berth("migrate", "lint", "--to", "fargate", path, "--format", "json")
    report = json.loads(out)
    assert code == 2 and report["blocked"] is True and report["target"] == "FARGATE"
    assert {f["path"] for f in report["findings"] if f["kind"] == "blocker"} == {
        "containerDefinitions[db].privileged", "volumes[data].host.sourcePath"}

    code, out, _ = berth("migrate", "lint", "--to", "ec2", write(tmp_path, "f.json", fargate_web("lint-f")))
    assert code == 0 and "hostPort: absent → 0 (dynamic)" in out

    code, out, _ = berth("migrate", "lint", "--help")
    assert code == 0 and "2 at least one blocker" in out


def test_blockers_and_bad_input_print_nothing_on_stdout(tmp_path):
    blocked = fargate_web("blocked-ec2")
    blocked["networkMode"] = "host"
    blocked["requiresCompatibilities"] = ["EC2"]
    blocked["pidMode"] = "host"
    blocked["containerDefinitions"][0]["logConfiguration"] = {"logDriver": "json-file"}
    blocked["containerDefinitions"][0]["resourceRequirements"] = [{"type": "GPU", "value": "1"}]
    path = write(tmp_path, "blocked.json", blocked)
    code, out, err = berth("migrate", "task-definition", "--to", "fargate", path)
    assert code == 2 and out == ""
    for what in ("pidMode", "logConfiguration.logDriver", "resourceRequirements"):
        assert what in err, err

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, out, err = berth("migrate", "task-definition", "--to", "ec2", str(bad))
    assert code == 1 and out == "" and "is not valid JSON" in err

    code, out, err = berth("migrate", "task-definition", "--to", "ec2",
                           write(tmp_path, "notd.json", {"family": "x"}))
    assert code == 1 and out == "" and "containerDefinitions" in err

    code, out, err = berth("migrate", "task-definition", "--to", "fargate",
                           write(tmp_path, "badcpu.json", {"family": "x", "cpu": "lots",
                                                           "containerDefinitions": [{"name": "a", "image": "x"}]}))
    assert code == 1 and out == "" and "cpu" in err

    code, out, err = berth("migrate", "task-definition", "--to", "fargate", "--network-mode", "bridge",
                           write(tmp_path, "ec2.json", ec2_api("x")))
    assert code == 1 and out == "" and "awsvpc" in err
