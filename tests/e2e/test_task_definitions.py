"""Task definitions: registration rules, revisions, describe/list/deregister/delete."""

import json
import os

import botocore.exceptions
import pytest

from conftest import ROOT, AwsCliError, client, unique

SEED = os.path.join(ROOT, "examples", "lobster-streamlit-task.json")
SEED_INVALID = os.path.join(ROOT, "examples", "lobster-streamlit-task-invalid.json")


def ec2_td(family, **extra):
    td = {"family": family, "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 128}]}
    td.update(extra)
    return td


def fargate_td(family, cpu="256", memory="512", **extra):
    td = {"family": family, "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
          "cpu": cpu, "memory": memory,
          "containerDefinitions": [{"name": "app", "image": "busybox"}]}
    td.update(extra)
    return td


def error_of(call):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


def revisions(ecs, family):
    arns = ecs.list_task_definitions(familyPrefix=family, status="ACTIVE")["taskDefinitionArns"]
    arns += ecs.list_task_definitions(familyPrefix=family, status="INACTIVE")["taskDefinitionArns"]
    return sorted(int(a.rsplit(":", 1)[1]) for a in arns)


def test_seed_004_task_definition_registers_with_the_aws_cli(cli):
    out = cli("ecs", "register-task-definition", "--cli-input-json", f"file://{SEED}")
    td = out["taskDefinition"]
    assert td["family"] == "lobster-streamlit-task"
    assert td["taskDefinitionArn"] == f"arn:aws:ecs:us-east-1:000000000000:task-definition/lobster-streamlit-task:{td['revision']}"
    assert td["status"] == "ACTIVE"
    assert td["compatibilities"] == ["EC2", "FARGATE"]
    assert td["requiresCompatibilities"] == ["FARGATE"]
    assert (td["cpu"], td["memory"], td["networkMode"]) == ("512", "1024", "awsvpc")
    c = td["containerDefinitions"][0]
    assert c["portMappings"] == [{"containerPort": 8501, "hostPort": 8501, "protocol": "tcp"}]
    assert c["essential"] is True
    attrs = {a["name"] for a in td["requiresAttributes"]}
    assert {"ecs.capability.task-eni", "com.amazonaws.ecs.capability.logging-driver.awslogs",
            "ecs.capability.execution-role-awslogs", "com.amazonaws.ecs.capability.task-iam-role",
            "com.amazonaws.ecs.capability.ecr-auth", "ecs.capability.execution-role-ecr-pull"} <= attrs
    assert td["registeredBy"] == "arn:aws:iam::000000000000:root"
    assert isinstance(td["registeredAt"], str) or td["registeredAt"]
    again = cli("ecs", "describe-task-definition", "--task-definition", "lobster-streamlit-task")["taskDefinition"]
    assert again["revision"] == td["revision"]
    assert again["containerDefinitions"] == td["containerDefinitions"]


def test_seed_004_invalid_variant_is_refused_and_creates_nothing(cli):
    family = "lobster-streamlit-task"
    before = cli("ecs", "list-task-definitions", "--family-prefix", family)["taskDefinitionArns"]
    with pytest.raises(AwsCliError) as e:
        cli("ecs", "register-task-definition", "--cli-input-json", f"file://{SEED_INVALID}")
    assert "ClientException" in e.value.stderr
    assert "No Fargate configuration exists for given values: 512 CPU, 512 memory" in e.value.stderr
    after = cli("ecs", "list-task-definitions", "--family-prefix", family)["taskDefinitionArns"]
    assert before == after


def test_revisions_count_up_and_are_not_reused(ecs):
    family = unique("rev")
    for expected in (1, 2, 3):
        assert ecs.register_task_definition(**ec2_td(family))["taskDefinition"]["revision"] == expected
    ecs.deregister_task_definition(taskDefinition=f"{family}:3")
    assert ecs.register_task_definition(**ec2_td(family))["taskDefinition"]["revision"] == 4


def test_failed_registration_creates_no_revision(ecs):
    family = unique("atomic")
    ecs.register_task_definition(**ec2_td(family))
    bad_cases = [
        fargate_td(family, cpu="256", memory="4096"),
        {"family": family, "containerDefinitions": [{"name": "a", "image": "x", "memory": 64},
                                                   {"name": "a", "image": "y", "memory": 64}]},
        {"family": family, "containerDefinitions": [{"name": "a", "image": "x"}]},
    ]
    for bad in bad_cases:
        code, _ = error_of(lambda: ecs.register_task_definition(**bad))
        assert code == "ClientException"
    assert revisions(ecs, family) == [1]
    assert ecs.register_task_definition(**ec2_td(family))["taskDefinition"]["revision"] == 2


@pytest.mark.parametrize("cpu,memory,ok", [
    ("256", "512", True), ("256", "2048", True), ("256", "3072", False),
    ("512", "4096", True), ("512", "5120", False), ("1024", "2048", True),
    ("2048", "16384", True), ("2048", "4608", False), ("4096", "30720", True),
    ("8192", "20480", True), ("8192", "18432", False), ("16384", "122880", True),
    ("16384", "36864", False), ("300", "1024", False),
    ("1 vCPU", "2 GB", True), ("0.25 vCPU", "0.5 GB", True),
])
def test_fargate_cpu_memory_table(ecs, cpu, memory, ok):
    family = unique("size")
    if ok:
        td = ecs.register_task_definition(**fargate_td(family, cpu=cpu, memory=memory))["taskDefinition"]
        assert td["cpu"].isdigit() and td["memory"].isdigit()
    else:
        code, msg = error_of(lambda: ecs.register_task_definition(**fargate_td(family, cpu=cpu, memory=memory)))
        assert code == "ClientException"
        assert "No Fargate configuration exists" in msg


def test_units_are_stored_as_ecs_stores_them(ecs):
    td = ecs.register_task_definition(**fargate_td(unique("units"), cpu="1 vCPU", memory="2 GB"))["taskDefinition"]
    assert (td["cpu"], td["memory"]) == ("1024", "2048")


@pytest.mark.parametrize("change,needle", [
    ({"networkMode": "bridge"}, "awsvpc"),
    ({"cpu": None}, "'cpu' be defined at the task level"),
    ({"memory": None}, "'memory' be defined at the task level"),
    ({"pidMode": "host"}, "pidMode"),
    ({"ipcMode": "host"}, "ipcMode"),
    ({"volumes": [{"name": "data", "host": {"sourcePath": "/srv"}}]}, "sourcePath"),
    ({"containerDefinitions": [{"name": "app", "image": "busybox", "privileged": True}]}, "privileged"),
])
def test_fargate_rejections(ecs, change, needle):
    td = fargate_td(unique("fg"))
    for k, v in change.items():
        if v is None:
            td.pop(k)
        else:
            td[k] = v
    code, msg = error_of(lambda: ecs.register_task_definition(**td))
    assert code == "ClientException"
    assert needle in msg


def test_ec2_memory_rules(ecs):
    family = unique("mem")
    code, msg = error_of(lambda: ecs.register_task_definition(
        family=family, containerDefinitions=[{"name": "app", "image": "x"}]))
    assert (code, msg) == ("ClientException",
                           "Invalid setting for container 'app'. At least one of 'memory' or 'memoryReservation' must be specified.")
    code, msg = error_of(lambda: ecs.register_task_definition(
        family=family, memory="256", containerDefinitions=[{"name": "app", "image": "x", "memory": 512}]))
    assert "greater than for the task" in msg
    # Task memory alone is enough on EC2.
    td = ecs.register_task_definition(family=family, memory="256",
                                      containerDefinitions=[{"name": "app", "image": "x"}])["taskDefinition"]
    assert td["networkMode"] == "bridge"
    assert td["compatibilities"] == ["EC2"]
    assert "requiresCompatibilities" not in td


def test_port_mapping_rules(ecs):
    family = unique("ports")
    bad = fargate_td(family)
    bad["containerDefinitions"][0]["portMappings"] = [{"containerPort": 80, "hostPort": 8080}]
    code, msg = error_of(lambda: ecs.register_task_definition(**bad))
    assert "host ports and container ports in port mappings must match" in msg
    bridge = ec2_td(family)
    bridge["containerDefinitions"][0]["portMappings"] = [{"containerPort": 80, "hostPort": 0}, {"containerPort": 81}]
    td = ecs.register_task_definition(**bridge)["taskDefinition"]
    pm = td["containerDefinitions"][0]["portMappings"]
    assert pm[0] == {"containerPort": 80, "hostPort": 0, "protocol": "tcp"}
    assert pm[1]["containerPort"] == 81 and "hostPort" not in pm[1]


def test_container_rules(ecs):
    family = unique("cont")
    cases = [
        ([{"name": "a", "image": "x", "memory": 64}, {"name": "a", "image": "y", "memory": 64}],
         "Container names must be unique within a Task Definition."),
        ([{"name": "a", "image": "x", "memory": 64, "essential": False}],
         "Task definition doesn't have any essential container."),
        ([{"name": "a", "image": "x", "memory": 64, "dependsOn": [{"containerName": "ghost", "condition": "START"}]}],
         "Cannot depend on container + 'ghost' because it does not exist"),
    ]
    for containers, message in cases:
        code, msg = error_of(lambda: ecs.register_task_definition(family=family, containerDefinitions=containers))
        assert (code, msg) == ("ClientException", message)
    links = [{"name": "a", "image": "x", "memory": 64, "links": ["b"]}, {"name": "b", "image": "x", "memory": 64}]
    code, msg = error_of(lambda: ecs.register_task_definition(family=family, networkMode="awsvpc",
                                                              containerDefinitions=links))
    assert msg == "Links are not supported when networkMode=awsvpc."
    ok = ecs.register_task_definition(family=family, containerDefinitions=links)["taskDefinition"]
    assert ok["containerDefinitions"][0]["links"] == ["b"]
    deps = [{"name": "a", "image": "x", "memory": 64, "dependsOn": [{"containerName": "b", "condition": "HEALTHY"}]},
            {"name": "b", "image": "x", "memory": 64}]
    assert ecs.register_task_definition(family=family, containerDefinitions=deps)["taskDefinition"]["revision"] >= 1
    assert revisions(ecs, family) == [1, 2]


def test_describe_by_family_revision_and_arn(ecs):
    family = unique("desc")
    arn1 = ecs.register_task_definition(**ec2_td(family))["taskDefinition"]["taskDefinitionArn"]
    arn2 = ecs.register_task_definition(**ec2_td(family), tags=[{"key": "k", "value": "v"}])["taskDefinition"]["taskDefinitionArn"]
    assert ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]["taskDefinitionArn"] == arn2
    assert ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]["taskDefinitionArn"] == arn1
    assert ecs.describe_task_definition(taskDefinition=arn1)["taskDefinition"]["revision"] == 1
    out = ecs.describe_task_definition(taskDefinition=arn2, include=["TAGS"])
    assert out["tags"] == [{"key": "k", "value": "v"}]
    assert "tags" not in ecs.describe_task_definition(taskDefinition=arn2) or \
        ecs.describe_task_definition(taskDefinition=arn2)["tags"] == []
    code, msg = error_of(lambda: ecs.describe_task_definition(taskDefinition=f"{family}:9"))
    assert (code, msg) == ("ClientException", "Unable to describe task definition.")
    code, _ = error_of(lambda: ecs.describe_task_definition(taskDefinition=unique("nofamily")))
    assert code == "ClientException"


def test_deregister_then_delete(ecs):
    family = unique("life")
    ecs.register_task_definition(**ec2_td(family))
    ecs.register_task_definition(**ec2_td(family))
    td = ecs.deregister_task_definition(taskDefinition=f"{family}:2")["taskDefinition"]
    assert td["status"] == "INACTIVE" and "deregisteredAt" in td
    # Still describable; family-only describe now picks the latest ACTIVE one.
    assert ecs.describe_task_definition(taskDefinition=f"{family}:2")["taskDefinition"]["status"] == "INACTIVE"
    assert ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]["revision"] == 1
    code, _ = error_of(lambda: ecs.deregister_task_definition(taskDefinition=family))
    assert code == "ClientException"
    out = ecs.delete_task_definitions(taskDefinitions=[f"{family}:2", f"{family}:1", f"{family}:7"])
    assert [t["status"] for t in out["taskDefinitions"]] == ["DELETE_IN_PROGRESS"]
    reasons = sorted(f["reason"] for f in out["failures"])
    assert any("still in ACTIVE status" in r for r in reasons)
    assert any("does not exist" in r for r in reasons)
    assert ecs.describe_task_definition(taskDefinition=f"{family}:2")["taskDefinition"]["status"] == "DELETE_IN_PROGRESS"
    assert ecs.list_task_definitions(familyPrefix=family, status="DELETE_IN_PROGRESS")["taskDefinitionArns"][0].endswith(":2")


def test_list_task_definitions_filters_sorts_and_paginates(fresh_server):
    ecs = client(fresh_server.endpoint)
    for fam in ("alpha", "beta"):
        for _ in range(3):
            ecs.register_task_definition(**ec2_td(fam))
    ecs.deregister_task_definition(taskDefinition="beta:2")
    names = lambda arns: [a.split("/")[-1] for a in arns]
    assert names(ecs.list_task_definitions()["taskDefinitionArns"]) == ["alpha:1", "alpha:2", "alpha:3", "beta:1", "beta:3"]
    assert names(ecs.list_task_definitions(sort="DESC")["taskDefinitionArns"]) == ["beta:3", "beta:1", "alpha:3", "alpha:2", "alpha:1"]
    assert names(ecs.list_task_definitions(familyPrefix="beta")["taskDefinitionArns"]) == ["beta:1", "beta:3"]
    assert names(ecs.list_task_definitions(status="INACTIVE")["taskDefinitionArns"]) == ["beta:2"]
    pages = list(ecs.get_paginator("list_task_definitions").paginate(PaginationConfig={"PageSize": 2}))
    assert [len(p["taskDefinitionArns"]) for p in pages] == [2, 2, 1]
    desc_pages = list(ecs.get_paginator("list_task_definitions").paginate(sort="DESC", PaginationConfig={"PageSize": 2}))
    assert names(sum((p["taskDefinitionArns"] for p in desc_pages), [])) == ["beta:3", "beta:1", "alpha:3", "alpha:2", "alpha:1"]


def test_list_task_definition_families(fresh_server):
    ecs = client(fresh_server.endpoint)
    for fam in ("web-a", "web-b", "worker"):
        ecs.register_task_definition(**ec2_td(fam))
    ecs.deregister_task_definition(taskDefinition="web-b:1")
    assert ecs.list_task_definition_families()["families"] == ["web-a", "web-b", "worker"]
    assert ecs.list_task_definition_families(status="ACTIVE")["families"] == ["web-a", "worker"]
    assert ecs.list_task_definition_families(status="INACTIVE")["families"] == ["web-b"]
    assert ecs.list_task_definition_families(familyPrefix="web")["families"] == ["web-a", "web-b"]
    page = ecs.list_task_definition_families(maxResults=1)
    assert page["families"] == ["web-a"]
    page2 = ecs.list_task_definition_families(maxResults=2, nextToken=page["nextToken"])
    assert page2["families"] == ["web-b", "worker"] and "nextToken" not in page2


def test_unparseable_task_size(ecs):
    for field, value in (("cpu", "abc"), ("memory", "lots")):
        td = ec2_td(unique("bad-size"), **{field: value})
        code, msg = error_of(lambda: ecs.register_task_definition(**td))
        assert code == "ClientException"
        assert msg.startswith(f"Invalid '{field}' setting for task.")
