"""`berth migrate apprunner` and `berth migrate compose`, black-box: the
berth binary converts files, the aws CLI registers what it wrote in a running
Berth, and a converted App Runner service and Compose file run as FARGATE
tasks that answer HTTP. Bad input exits non-zero, names the field and writes
nothing."""

import json
import os
import subprocess
import time
import urllib.request

import botocore.session
import pytest
from botocore.validate import ParamValidator

from conftest import BERTH, TESTAPP, aws, client, unique, wait_status, wait_task

NET = {"awsvpcConfiguration": {"subnets": ["subnet-0a1b2c3d"], "securityGroups": ["sg-1"]}}

# Each generated file and the AWS CLI command (service, operation) it is input for.
APPRUNNER_FILES = {
    "task-definition.json": ("ecs", "RegisterTaskDefinition"),
    "target-group.json": ("elbv2", "CreateTargetGroup"),
    "listener.json": ("elbv2", "CreateListener"),
    "service.json": ("ecs", "CreateService"),
    "scalable-target.json": ("application-autoscaling", "RegisterScalableTarget"),
    "scaling-policy.json": ("application-autoscaling", "PutScalingPolicy"),
}


def berth(*args, cwd=None):
    return subprocess.run([BERTH, "migrate", *args], capture_output=True, text=True, cwd=cwd, timeout=60)


def check_input(service, operation, params):
    """The document is valid input for the operation, as the aws CLI checks
    --cli-input-json before sending: no unknown or missing members, right types."""
    model = botocore.session.get_session().get_service_model(service)
    report = ParamValidator().validate(params, model.operation_model(operation).input_shape)
    assert not report.has_errors(), f"{service} {operation}: {report.generate_report()}"


def register(server, path):
    out = aws(server.endpoint, "ecs", "register-task-definition", "--cli-input-json", f"file://{path}")
    return out["taskDefinition"]


def apprunner_doc(name, image, port, **image_config):
    return {"Service": {
        "ServiceName": name,
        "ServiceId": "0123456789abcdef0123456789abcdef",
        "ServiceArn": f"arn:aws:apprunner:us-east-1:000000000000:service/{name}/0123456789abcdef0123456789abcdef",
        "ServiceUrl": "abcdefgh.us-east-1.awsapprunner.com",
        "CreatedAt": "2025-01-10T10:00:00+00:00",
        "UpdatedAt": "2025-01-10T10:00:00+00:00",
        "Status": "RUNNING",
        "SourceConfiguration": {
            "ImageRepository": {
                "ImageIdentifier": image,
                "ImageConfiguration": {"Port": str(port), **image_config},
                "ImageRepositoryType": "ECR",
            },
            "AutoDeploymentsEnabled": False,
        },
        "InstanceConfiguration": {"Cpu": "0.25 vCPU", "Memory": "0.5 GB",
                                  "InstanceRoleArn": "arn:aws:iam::000000000000:role/app-instance"},
        "HealthCheckConfiguration": {"Protocol": "HTTP", "Path": "/health", "Interval": 5, "Timeout": 2,
                                     "HealthyThreshold": 1, "UnhealthyThreshold": 3},
        "AutoScalingConfigurationSummary": {
            "AutoScalingConfigurationArn": "arn:aws:apprunner:us-east-1:000000000000:autoscalingconfiguration/DefaultConfiguration/1/00000000000000000000000000000001",
            "AutoScalingConfigurationName": "DefaultConfiguration", "AutoScalingConfigurationRevision": 1},
        "NetworkConfiguration": {"EgressConfiguration": {"EgressType": "DEFAULT"},
                                 "IngressConfiguration": {"IsPubliclyAccessible": True}},
    }}


def convert_apprunner(tmp_path, doc, *extra):
    src = tmp_path / "service.json"
    src.write_text(json.dumps(doc))
    out = tmp_path / "out"
    p = berth("apprunner", str(src), "--output-dir", str(out), *extra)
    assert p.returncode == 0, p.stderr
    return out, p


def get_http(url, timeout=20):
    deadline = time.time() + timeout
    while True:
        try:
            return urllib.request.urlopen(url, timeout=2).read().decode()
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def task_ip(task, container):
    c = next(c for c in task["containers"] if c["name"] == container)
    return c["networkInterfaces"][0]["privateIpv4Address"]


@pytest.fixture
def cluster(ecs, images):
    name = unique("migrate")
    ecs.create_cluster(clusterName=name)
    return name


def test_apprunner_files_are_valid_cli_input_and_the_task_definition_registers(server, tmp_path):
    name = unique("lobster-streamlit")
    doc = apprunner_doc(
        name, "000000000000.dkr.ecr.us-east-1.amazonaws.com/homara:latest", 8501,
        RuntimeEnvironmentVariables={"STREAMLIT_SERVER_HEADLESS": "true"},
        RuntimeEnvironmentSecrets={"OPENAI_API_KEY": "arn:aws:secretsmanager:us-east-1:000000000000:secret:openai-AbCdEf"},
        StartCommand="streamlit run app.py --server.port 8501")
    doc["Service"]["InstanceConfiguration"].update({"Cpu": "1 vCPU", "Memory": "3 GB"})
    scaling = tmp_path / "scaling.json"
    scaling.write_text(json.dumps({"AutoScalingConfiguration": {"MinSize": 2, "MaxSize": 5, "MaxConcurrency": 80}}))
    out, p = convert_apprunner(tmp_path, doc, "--auto-scaling", str(scaling), "--cluster", "lobster-cluster")
    assert sorted(os.listdir(out)) == sorted([*APPRUNNER_FILES, "README.md"])
    assert "note:" in p.stderr
    docs = {}
    for f, (service, operation) in APPRUNNER_FILES.items():
        docs[f] = json.loads((out / f).read_text())
        check_input(service, operation, docs[f])
    assert docs["target-group.json"]["TargetType"] == "ip"
    assert docs["target-group.json"]["Port"] == 8501
    assert docs["target-group.json"]["HealthCheckPath"] == "/health"
    assert docs["service.json"]["desiredCount"] == 2
    assert docs["service.json"]["launchType"] == "FARGATE"
    assert docs["scalable-target.json"]["MaxCapacity"] == 5
    assert docs["scaling-policy.json"]["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 80 * 60
    readme = (out / "README.md").read_text()
    assert "REPLACE_WITH_SUBNET_ID" in readme
    order = [readme.index(c) for c in ("register-task-definition", "create-target-group", "create-listener",
                                       "create-service", "register-scalable-target", "put-scaling-policy")]
    assert order == sorted(order)

    td = register(server, out / "task-definition.json")
    assert td["family"] == name and td["revision"] >= 1
    assert (td["cpu"], td["memory"]) == ("1024", "3072")
    assert td["networkMode"] == "awsvpc" and "FARGATE" in td["compatibilities"]
    c = td["containerDefinitions"][0]
    assert c["command"] == ["streamlit", "run", "app.py", "--server.port", "8501"]
    assert c["secrets"][0]["name"] == "OPENAI_API_KEY"
    assert c["portMappings"][0]["hostPort"] == 8501
    assert c["logConfiguration"]["logDriver"] == "awslogs"
    assert c["healthCheck"]["command"][0] == "CMD-SHELL"


def test_apprunner_service_runs_as_a_fargate_task_and_answers_http(server, ecs, cluster, tmp_path):
    name = unique("ar-web")
    doc = apprunner_doc(name, TESTAPP, 8080, StartCommand="berth-testapp serve --port 8080",
                        RuntimeEnvironmentVariables={"TESTAPP_NAME": "from-apprunner"})
    out, _ = convert_apprunner(tmp_path, doc)
    td = register(server, out / "task-definition.json")
    # Step 0 of the generated README: the log group.
    group = td["containerDefinitions"][0]["logConfiguration"]["options"]["awslogs-group"]
    assert f"aws logs create-log-group --log-group-name {group}" in (out / "README.md").read_text()
    client(server.endpoint, service="logs").create_log_group(logGroupName=group)
    t = ecs.run_task(cluster=cluster, taskDefinition=td["taskDefinitionArn"], launchType="FARGATE",
                     networkConfiguration=NET)["tasks"][0]
    try:
        task = wait_status(ecs, cluster, t["taskArn"], "RUNNING", timeout=90)
        body = get_http(f"http://{task_ip(task, name)}:8080/")
        assert "from-apprunner" in body
        healthy = wait_task(ecs, cluster, t["taskArn"], lambda x: x.get("healthStatus") == "HEALTHY", 60, "HEALTHY")
        assert healthy["containers"][0]["healthStatus"] == "HEALTHY"
    finally:
        ecs.stop_task(cluster=cluster, task=t["taskArn"])
        wait_status(ecs, cluster, t["taskArn"], "STOPPED", timeout=60)


COMPOSE = """\
version: "3.8"
x-defaults: &defaults
  image: berth-test/testapp:latest
  labels:
    app: migrate-test
services:
  web:
    <<: *defaults
    command: berth-testapp serve --port 8080
    environment:
      - TESTAPP_NAME=from-compose
    env_file: web.env
    ports:
      - "8080:8080"
      - target: 9090
        protocol: tcp
    healthcheck:
      test: ["CMD", "berth-testapp", "health-check", "http://localhost:8080/health"]
      interval: 5s
      timeout: 2s
      retries: 3
      start_period: 1s
    depends_on:
      init:
        condition: service_completed_successfully
      sidecar:
        condition: service_started
    deploy:
      replicas: 2
      resources:
        limits: {cpus: "0.25", memory: 256M}
        reservations: {memory: 128M}
    logging:
      driver: awslogs
      options:
        awslogs-group: /ecs/compose-web
        awslogs-region: us-east-1
        awslogs-stream-prefix: web
        awslogs-create-group: "true"
    working_dir: /
    stop_grace_period: 5s
    networks: [front]
  init:
    <<: *defaults
    entrypoint: ["sh", "-c"]
    command: ["exit 0"]
  sidecar:
    <<: *defaults
    command: ["berth-testapp", "sleep", "300"]
    mem_limit: 128m
networks:
  front: {}
"""


# The Fargate compose files log with awslogs: they need an execution role.
EXEC_ROLE = "arn:aws:iam::000000000000:role/ecsTaskExecutionRole"


def write_compose(tmp_path, text=COMPOSE):
    (tmp_path / "docker-compose.yml").write_text(text)
    (tmp_path / "web.env").write_text("# for web\nFROM_ENV_FILE=yes\nTESTAPP_NAME=overridden-by-environment\n")
    return tmp_path / "docker-compose.yml"


def test_compose_to_fargate_registers_and_runs(server, ecs, cluster, tmp_path):
    f = write_compose(tmp_path)
    family = unique("compose-fg")
    out = tmp_path / "fargate"
    p = berth("compose", str(f), "--to", "fargate", "--family", family, "--output-dir", str(out),
              "--execution-role-arn", EXEC_ROLE)
    assert p.returncode == 0, p.stderr
    for key in ("services.web.deploy.replicas", "services.web.networks"):
        assert key in p.stderr, p.stderr
    doc = json.loads((out / "task-definition.json").read_text())
    check_input("ecs", "RegisterTaskDefinition", doc)
    td = register(server, out / "task-definition.json")
    assert td["family"] == family and td["networkMode"] == "awsvpc"
    assert td["executionRoleArn"] == EXEC_ROLE
    assert (td["cpu"], td["memory"]) == ("256", "512")
    web = next(c for c in td["containerDefinitions"] if c["name"] == "web")
    assert {"name": "FROM_ENV_FILE", "value": "yes"} in web["environment"]
    assert {"name": "TESTAPP_NAME", "value": "from-compose"} in web["environment"]
    assert web["dependsOn"] == [{"containerName": "init", "condition": "SUCCESS"},
                                {"containerName": "sidecar", "condition": "START"}]
    assert web["healthCheck"]["interval"] == 5 and web["healthCheck"]["startPeriod"] == 1
    assert web["dockerLabels"] == {"app": "migrate-test"}
    assert [m["containerPort"] for m in web["portMappings"]] == [8080, 9090]

    t = ecs.run_task(cluster=cluster, taskDefinition=td["taskDefinitionArn"], launchType="FARGATE",
                     networkConfiguration=NET)["tasks"][0]
    try:
        task = wait_status(ecs, cluster, t["taskArn"], "RUNNING", timeout=90)
        assert "from-compose" in get_http(f"http://{task_ip(task, 'web')}:8080/")
        init = next(c for c in wait_task(ecs, cluster, t["taskArn"],
                                         lambda x: any(c["name"] == "init" and c.get("exitCode") == 0
                                                       for c in x["containers"]), 30, "init exited")["containers"]
                    if c["name"] == "init")
        assert init["exitCode"] == 0
    finally:
        ecs.stop_task(cluster=cluster, task=t["taskArn"])
        wait_status(ecs, cluster, t["taskArn"], "STOPPED", timeout=60)


def test_compose_to_ec2_registers(server, tmp_path):
    f = write_compose(tmp_path)
    family = unique("compose-ec2")
    p = berth("compose", str(f), "--to", "ec2", "--family", family)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    check_input("ecs", "RegisterTaskDefinition", doc)
    path = tmp_path / "ec2.json"
    path.write_text(p.stdout)
    td = register(server, path)
    assert td["networkMode"] == "bridge" and "cpu" not in td
    web = next(c for c in td["containerDefinitions"] if c["name"] == "web")
    assert web["portMappings"][0] == {"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}
    assert (web["memory"], web["memoryReservation"]) == (256, 128)
    init = next(c for c in td["containerDefinitions"] if c["name"] == "init")
    assert init["essential"] is False and init["memoryReservation"] == 512


def test_compose_family_defaults_to_the_directory(tmp_path):
    d = tmp_path / "shop_front"
    d.mkdir()
    f = write_compose(d)
    p = berth("compose", str(f), "--to", "fargate", "--execution-role-arn", EXEC_ROLE)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["family"] == "shop_front"


def test_compose_to_fargate_without_execution_role_fails_and_writes_nothing(tmp_path):
    f = write_compose(tmp_path)
    out = tmp_path / "out"
    p = berth("compose", str(f), "--to", "fargate", "--output-dir", str(out))
    assert p.returncode != 0
    assert "--execution-role-arn" in p.stderr and "awslogs" in p.stderr, p.stderr
    assert not out.exists()
    assert p.stdout == ""


def test_apprunner_without_image_fails_and_writes_nothing(tmp_path):
    doc = apprunner_doc("no-image", "x", 8080)
    del doc["Service"]["SourceConfiguration"]["ImageRepository"]["ImageIdentifier"]
    src = tmp_path / "service.json"
    src.write_text(json.dumps(doc))
    out = tmp_path / "out"
    p = berth("apprunner", str(src), "--output-dir", str(out))
    assert p.returncode != 0
    assert "ImageIdentifier" in p.stderr, p.stderr
    assert not out.exists()
    assert os.listdir(tmp_path) == ["service.json"]


@pytest.mark.parametrize("text, to, field", [
    ("version: '1'\nservices:\n  a: {image: x}\n", "fargate", "version"),
    ("services:\n  a: {build: .}\n", "fargate", "services.a.build"),
    ("services:\n  a: {image: x, privileged: true}\n", "fargate", "services.a.privileged"),
    ("services:\n  a: {image: x, network_mode: host}\n", "fargate", "services.a.network_mode"),
    ("services:\n  a: {image: x, volumes: ['/srv/data:/data']}\n", "fargate", "services.a.volumes"),
    ("services:\n  a: {image: x, volumes: ['./data:/data']}\n", "ec2", "services.a.volumes"),
])
def test_compose_bad_input_fails_naming_the_key_and_writes_nothing(tmp_path, text, to, field):
    f = tmp_path / "compose.yaml"
    f.write_text(text)
    out = tmp_path / "out"
    p = berth("compose", str(f), "--to", to, "--output-dir", str(out))
    assert p.returncode != 0
    assert field in p.stderr, p.stderr
    assert not out.exists()
    assert p.stdout == ""
