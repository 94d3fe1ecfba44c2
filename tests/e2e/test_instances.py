"""Container instances, attributes and placement (the EC2 launch type), driven
with boto3, the aws CLI and `berth instances`.

Placement tests register instances through RegisterContainerInstance, as an
agent on another machine would: no agent answers for them, so their tasks
stay PROVISIONING and keep their reservations, which is what placement is
measured against."""

import json
import os
import subprocess

import botocore.exceptions
import pytest

from conftest import BERTH, unique


def berth(server, *args, check=True):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    p = subprocess.run([BERTH, "instances", *args, "--endpoint-url", server.endpoint, "--output", "json"],
                       capture_output=True, text=True, env=env)
    if check:
        assert p.returncode == 0, p.stderr
    return (json.loads(p.stdout) if p.stdout.strip() else None), p


@pytest.fixture
def cluster(ecs):
    name = unique("ec2")
    ecs.create_cluster(clusterName=name)
    return name


def register(ecs, cluster, az="us-east-1a", itype="t3.medium", cpu=2048, memory=4000, attributes=()):
    doc = {"instanceId": "i-" + os.urandom(8).hex()[:17], "instanceType": itype, "availabilityZone": az,
           "region": "us-east-1", "imageId": "ami-0123456789abcdef0",
           "architecture": "arm64" if itype.split(".")[0].endswith("g") else "x86_64",
           "privateIp": "10.0.0.1"}
    out = ecs.register_container_instance(
        cluster=cluster, instanceIdentityDocument=json.dumps(doc),
        totalResources=[{"name": "CPU", "type": "INTEGER", "integerValue": cpu},
                        {"name": "MEMORY", "type": "INTEGER", "integerValue": memory},
                        {"name": "PORTS", "type": "STRINGSET", "stringSetValue": ["22", "2375", "2376", "51678", "51679"]},
                        {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": []}],
        versionInfo={"agentVersion": "1.89.0", "agentHash": "abc", "dockerVersion": "20.10"},
        attributes=[{"name": k, "value": v} for k, v in attributes])
    return out["containerInstance"]


def resource(ci, key, name):
    r = next(r for r in ci[key] if r["name"] == name)
    return r.get("stringSetValue") if r["type"] == "STRINGSET" else r["integerValue"]


def ec2_td(ecs, containers, **extra):
    return ecs.register_task_definition(family=unique("ec2td"), containerDefinitions=containers,
                                        requiresCompatibilities=["EC2"], **extra)["taskDefinition"]["taskDefinitionArn"]


def sleeper(memory=256, cpu=256, ports=()):
    c = {"name": "main", "image": "berth-test/busybox:latest", "memory": memory, "cpu": cpu,
         "command": ["sleep", "3600"]}
    if ports:
        c["portMappings"] = [{"containerPort": p, "hostPort": p} for p in ports]
    return c


def instance_of(ecs, cluster, task):
    return task["containerInstanceArn"]


def test_berth_instances_add_list_remove(server, ecs, cluster):
    out, _ = berth(server, "add", "--cluster", cluster, "--instance-type", "t3.medium", "--count", "2")
    added = out["instances"]
    assert len(added) == 2 and all(i["local"] and i["status"] == "ACTIVE" for i in added)
    assert {i["availabilityZone"] for i in added} == {"us-east-1a", "us-east-1b"}, "zones taken in turn"
    assert added[0]["address"] != added[1]["address"]
    arns = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
    assert sorted(arns) == sorted(i["containerInstanceArn"] for i in added)
    [ci, _] = ecs.describe_container_instances(cluster=cluster, containerInstances=arns)["containerInstances"]
    assert ci["status"] == "ACTIVE" and ci["agentConnected"] is True
    assert resource(ci, "registeredResources", "CPU") == 2048, "t3.medium: 2 vCPU"
    assert 3500 < resource(ci, "registeredResources", "MEMORY") < 4096, "4 GiB less what the OS keeps"
    assert sorted(resource(ci, "registeredResources", "PORTS")) == ["22", "2375", "2376", "51678", "51679"]
    assert ci["remainingResources"] == ci["registeredResources"]
    attrs = {a["name"]: a.get("value") for a in ci["attributes"]}
    assert attrs["ecs.instance-type"] == "t3.medium" and attrs["ecs.cpu-architecture"] == "x86_64"
    assert attrs["ecs.os-type"] == "linux" and attrs["ecs.availability-zone"].startswith("us-east-1")
    assert "ecs.ami-id" in attrs and "com.amazonaws.ecs.capability.logging-driver.awslogs" in attrs
    assert ci["ec2InstanceId"].startswith("i-") and ci["versionInfo"]["agentVersion"]
    graviton, _ = berth(server, "add", "--cluster", cluster, "--instance-type", "m7g.large",
                        "--availability-zone", "us-east-1c")
    g = ecs.describe_container_instances(cluster=cluster, containerInstances=[
        graviton["instances"][0]["containerInstanceArn"]])["containerInstances"][0]
    assert {a["name"]: a.get("value") for a in g["attributes"]}["ecs.cpu-architecture"] == "arm64"
    c = ecs.describe_clusters(clusters=[cluster])["clusters"][0]
    assert c["registeredContainerInstancesCount"] == 3
    listed, _ = berth(server, "list", "--cluster", cluster)
    assert len(listed["instances"]) == 3
    table = subprocess.run([BERTH, "instances", "list", "--cluster", cluster, "--endpoint-url", server.endpoint],
                           capture_output=True, text=True)
    assert table.returncode == 0 and "m7g.large" in table.stdout and "INSTANCE" in table.stdout
    removed, _ = berth(server, "remove", "--cluster", cluster, added[0]["ec2InstanceId"])
    assert removed["instances"][0]["status"] == "INACTIVE"
    assert ecs.describe_clusters(clusters=[cluster])["clusters"][0]["registeredContainerInstancesCount"] == 2
    _, p = berth(server, "remove", "--cluster", cluster, "i-doesnotexist", check=False)
    assert p.returncode != 0 and "MISSING" in p.stderr
    _, p = berth(server, "add", "--cluster", cluster, "--instance-type", "t9.huge", check=False)
    assert p.returncode != 0 and "InvalidParameterException" in p.stderr and "t9.huge" in p.stderr


def test_berth_cli_reports_an_unreachable_server(server):
    p = subprocess.run([BERTH, "instances", "list", "--endpoint-url", "http://127.0.0.1:9"],
                       capture_output=True, text=True)
    assert p.returncode != 0 and "cannot reach Berth" in p.stderr


def test_run_task_ec2_without_instances(ecs, cluster):
    td = ec2_td(ecs, [sleeper()])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.run_task(cluster=cluster, taskDefinition=td, launchType="EC2")
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "No Container Instances were found in your cluster" in e.value.response["Error"]["Message"]


def test_binpack_fills_one_instance_before_the_next(ecs, cluster):
    a = register(ecs, cluster)
    b = register(ecs, cluster)
    td = ec2_td(ecs, [sleeper(memory=1000)])
    out = ecs.run_task(cluster=cluster, taskDefinition=td, launchType="EC2", count=3,
                       placementStrategy=[{"type": "binpack", "field": "memory"}])
    assert out["failures"] == []
    placed = [t["containerInstanceArn"] for t in out["tasks"]]
    assert len(set(placed)) == 1, placed
    first = placed[0]
    out = ecs.run_task(cluster=cluster, taskDefinition=td, launchType="EC2", count=2,
                       placementStrategy=[{"type": "binpack", "field": "memory"}])
    placed2 = [t["containerInstanceArn"] for t in out["tasks"]]
    assert placed2[0] == first, "the fuller instance takes the task while it fits"
    assert placed2[1] != first, "then the next instance"
    ci = {c["containerInstanceArn"]: c for c in ecs.describe_container_instances(
        cluster=cluster, containerInstances=[a["containerInstanceArn"], b["containerInstanceArn"]])["containerInstances"]}
    assert resource(ci[first], "remainingResources", "MEMORY") == 0
    assert resource(ci[first], "remainingResources", "CPU") == 2048 - 4 * 256
    assert ci[first]["pendingTasksCount"] == 4
    other = placed2[1]
    assert resource(ci[other], "remainingResources", "MEMORY") == 3000
    listed = ecs.list_tasks(cluster=cluster, containerInstance=first)["taskArns"]
    assert len(listed) == 4


def test_not_enough_memory_or_cpu_fails_with_the_resource(ecs, cluster):
    register(ecs, cluster, memory=512)
    big = ec2_td(ecs, [sleeper(memory=1024)])
    out = ecs.run_task(cluster=cluster, taskDefinition=big, launchType="EC2")
    assert out["tasks"] == [] and [f["reason"] for f in out["failures"]] == ["RESOURCE:MEMORY"]
    hungry = ec2_td(ecs, [sleeper(memory=64, cpu=4096)])
    out = ecs.run_task(cluster=cluster, taskDefinition=hungry, launchType="EC2")
    assert [f["reason"] for f in out["failures"]] == ["RESOURCE:CPU"]
    assert out["failures"][0]["arn"].startswith("arn:aws:ecs:us-east-1:")


def test_same_static_port_needs_another_instance(ecs, cluster):
    register(ecs, cluster)
    td = ec2_td(ecs, [sleeper(ports=[8080])])
    out = ecs.run_task(cluster=cluster, taskDefinition=td, launchType="EC2", count=2)
    assert len(out["tasks"]) == 1
    assert [f["reason"] for f in out["failures"]] == ["RESOURCE:PORTS"]
    ci = ecs.describe_container_instances(cluster=cluster, containerInstances=[
        out["tasks"][0]["containerInstanceArn"]])["containerInstances"][0]
    assert "8080" in resource(ci, "remainingResources", "PORTS")
    register(ecs, cluster)
    out = ecs.run_task(cluster=cluster, taskDefinition=td, launchType="EC2")
    assert out["failures"] == [], "a second instance has the port free"


def test_spread_across_availability_zones(ecs, cluster):
    for az in ["us-east-1a", "us-east-1b", "us-east-1c"]:
        register(ecs, cluster, az=az)
    td = ec2_td(ecs, [sleeper(memory=64)])
    out = ecs.run_task(cluster=cluster, taskDefinition=td, launchType="EC2", count=6,
                       placementStrategy=[{"type": "spread", "field": "attribute:ecs.availability-zone"}])
    zones = [t["availabilityZone"] for t in out["tasks"]]
    assert sorted(zones) == ["us-east-1a", "us-east-1a", "us-east-1b", "us-east-1b", "us-east-1c", "us-east-1c"]


def test_distinct_instance(ecs, cluster):
    register(ecs, cluster)
    register(ecs, cluster)
    td = ec2_td(ecs, [sleeper(memory=64)])
    out = ecs.run_task(cluster=cluster, taskDefinition=td, launchType="EC2", count=3,
                       placementConstraints=[{"type": "distinctInstance"}])
    assert len({t["containerInstanceArn"] for t in out["tasks"]}) == 2
    assert len(out["tasks"]) == 2
    assert {f["reason"] for f in out["failures"]} == {"DistinctInstance placement constraint unsatisfied."}


@pytest.mark.parametrize("expression,expected", [
    ("attribute:ecs.instance-type == m5.large", {"m5"}),
    ("attribute:ecs.instance-type != m5.large", {"t3", "c7g"}),
    ("attribute:ecs.instance-type =~ t3.*", {"t3"}),
    ("attribute:ecs.instance-type !~ t3.*", {"m5", "c7g"}),
    ("attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", {"t3", "m5"}),
    ("attribute:ecs.availability-zone not_in [us-east-1a, us-east-1b]", {"c7g"}),
    ("attribute:stack exists", {"m5"}),
    ("attribute:stack !exists", {"t3", "c7g"}),
    ("attribute:ecs.cpu-architecture == arm64 or attribute:stack == prod", {"m5", "c7g"}),
    ("not(attribute:ecs.instance-type == t3.medium) and attribute:ecs.availability-zone != us-east-1c", {"m5"}),
    ("runningTasksCount == 0 and agentConnected == true", {"t3", "m5", "c7g"}),
])
def test_member_of_and_filter_share_the_query_language(ecs, cluster, expression, expected):
    names = {}
    for itype, az, attrs in [("t3.medium", "us-east-1a", ()), ("m5.large", "us-east-1b", [("stack", "prod")]),
                             ("c7g.large", "us-east-1c", ())]:
        ci = register(ecs, cluster, az=az, itype=itype, attributes=attrs)
        names[ci["containerInstanceArn"]] = itype.split(".")[0]
    listed = ecs.list_container_instances(cluster=cluster, filter=expression)["containerInstanceArns"]
    assert {names[a] for a in listed} == expected
    td = ec2_td(ecs, [sleeper(memory=64)])
    # Spread, so every eligible instance gets a task (random could miss one).
    out = ecs.run_task(cluster=cluster, taskDefinition=td, launchType="EC2", count=6,
                       placementStrategy=[{"type": "spread", "field": "instanceId"}],
                       placementConstraints=[{"type": "memberOf", "expression": expression}])
    assert {names[t["containerInstanceArn"]] for t in out["tasks"]} == expected
    assert len(out["tasks"]) == 6


def test_member_of_unsatisfied_and_task_group(ecs, cluster):
    register(ecs, cluster)
    td = ec2_td(ecs, [sleeper(memory=64)])
    out = ecs.run_task(cluster=cluster, taskDefinition=td, launchType="EC2",
                       placementConstraints=[{"type": "memberOf", "expression": "attribute:ecs.instance-type == x1.32xlarge"}])
    assert out["tasks"] == [] and out["failures"][0]["reason"] == "MemberOf placement constraint unsatisfied."
    web = ecs.run_task(cluster=cluster, taskDefinition=td, launchType="EC2", group="web")["tasks"][0]
    register(ecs, cluster)
    out = ecs.run_task(cluster=cluster, taskDefinition=td, launchType="EC2", count=3,
                       placementConstraints=[{"type": "memberOf", "expression": "task:group == web"}])
    assert {t["containerInstanceArn"] for t in out["tasks"]} == {web["containerInstanceArn"]}


def test_task_definition_constraints_and_required_attributes(ecs, cluster):
    register(ecs, cluster, itype="t3.medium")
    register(ecs, cluster, itype="m5.large")
    td = ec2_td(ecs, [sleeper(memory=64)],
                placementConstraints=[{"type": "memberOf", "expression": "attribute:ecs.instance-type == m5.large"}])
    out = ecs.run_task(cluster=cluster, taskDefinition=td, launchType="EC2", count=2)
    types = set()
    for t in out["tasks"]:
        ci = ecs.describe_container_instances(cluster=cluster, containerInstances=[t["containerInstanceArn"]])
        types.add({a["name"]: a.get("value") for a in ci["containerInstances"][0]["attributes"]}["ecs.instance-type"])
    assert types == {"m5.large"}
    splunk = dict(sleeper(memory=64), logConfiguration={"logDriver": "splunk", "options": {}})
    needs = ec2_td(ecs, [splunk])
    out = ecs.run_task(cluster=cluster, taskDefinition=needs, launchType="EC2")
    assert out["tasks"] == [] and {f["reason"] for f in out["failures"]} == {"ATTRIBUTE"}


def test_malformed_expressions(ecs, cluster):
    register(ecs, cluster)
    td = ec2_td(ecs, [sleeper(memory=64)])
    for bad in ["attribute:ecs.instance-type ==", "(attribute:a == b", "foo bar baz", "attribute:x in [a, b"]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs.list_container_instances(cluster=cluster, filter=bad)
        assert e.value.response["Error"]["Code"] == "InvalidParameterException", bad
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs.run_task(cluster=cluster, taskDefinition=td, launchType="EC2",
                         placementConstraints=[{"type": "memberOf", "expression": bad}])
        assert e.value.response["Error"]["Code"] == "InvalidParameterException", bad
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.run_task(cluster=cluster, taskDefinition=td, launchType="EC2",
                     placementStrategy=[{"type": "binpack", "field": "disk"}])
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    assert ecs.list_tasks(cluster=cluster)["taskArns"] == [], "nothing placed"


def test_draining_takes_no_new_tasks(ecs, cluster):
    a = register(ecs, cluster)
    b = register(ecs, cluster)
    out = ecs.update_container_instances_state(cluster=cluster, containerInstances=[a["containerInstanceArn"]],
                                               status="DRAINING")
    assert out["containerInstances"][0]["status"] == "DRAINING"
    td = ec2_td(ecs, [sleeper(memory=64)])
    out = ecs.run_task(cluster=cluster, taskDefinition=td, launchType="EC2", count=4)
    assert {t["containerInstanceArn"] for t in out["tasks"]} == {b["containerInstanceArn"]}
    ecs.update_container_instances_state(cluster=cluster, containerInstances=[b["containerInstanceArn"]],
                                         status="DRAINING")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.run_task(cluster=cluster, taskDefinition=td, launchType="EC2")
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    assert len(ecs.list_container_instances(cluster=cluster, status="DRAINING")["containerInstanceArns"]) == 2
    with pytest.raises(botocore.exceptions.ClientError):
        ecs.update_container_instances_state(cluster=cluster, containerInstances=[a["containerInstanceArn"]],
                                             status="INACTIVE")


def test_start_task_on_named_instances(ecs, cluster):
    a = register(ecs, cluster)
    other = unique("other")
    ecs.create_cluster(clusterName=other)
    foreign = register(ecs, other)
    td = ec2_td(ecs, [sleeper(memory=64)])
    out = ecs.start_task(cluster=cluster, taskDefinition=td,
                         containerInstances=[a["containerInstanceArn"], foreign["containerInstanceArn"]])
    assert [t["containerInstanceArn"] for t in out["tasks"]] == [a["containerInstanceArn"]]
    assert out["failures"] == [{"arn": foreign["containerInstanceArn"], "reason": "MISSING"}]
    big = ec2_td(ecs, [sleeper(memory=8000)])
    out = ecs.start_task(cluster=cluster, taskDefinition=big, containerInstances=[a["containerInstanceArn"]])
    assert out["tasks"] == [] and out["failures"][0]["reason"] == "RESOURCE:MEMORY"


def test_deregister_refuses_while_tasks_run_unless_forced(ecs, cluster):
    a = register(ecs, cluster)
    td = ec2_td(ecs, [sleeper(memory=64)])
    [t] = ecs.run_task(cluster=cluster, taskDefinition=td, launchType="EC2")["tasks"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.deregister_container_instance(cluster=cluster, containerInstance=a["containerInstanceArn"])
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    out = ecs.deregister_container_instance(cluster=cluster, containerInstance=a["containerInstanceArn"], force=True)
    assert out["containerInstance"]["status"] == "INACTIVE"
    task = ecs.describe_tasks(cluster=cluster, tasks=[t["taskArn"]])["tasks"][0]
    assert task["desiredStatus"] == "STOPPED"
    assert ecs.describe_clusters(clusters=[cluster])["clusters"][0]["registeredContainerInstancesCount"] == 0
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.deregister_container_instance(cluster=cluster, containerInstance="0123456789abcdef0123456789abcdef")
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    missing = ecs.describe_container_instances(cluster=cluster, containerInstances=["nope"])
    assert missing["failures"][0]["reason"] == "MISSING"


def test_attributes(ecs, cli, cluster):
    a = register(ecs, cluster)
    arn = a["containerInstanceArn"]
    out = ecs.put_attributes(cluster=cluster, attributes=[
        {"name": "stack", "value": "prod", "targetType": "container-instance", "targetId": arn},
        {"name": "gpu", "targetType": "container-instance", "targetId": arn.rsplit("/", 1)[1]}])
    assert {x["name"] for x in out["attributes"]} == {"stack", "gpu"}
    listed = cli("ecs", "list-attributes", "--cluster", cluster, "--target-type", "container-instance",
                 "--attribute-name", "stack")["attributes"]
    assert listed == [{"name": "stack", "value": "prod", "targetType": "container-instance", "targetId": arn}]
    by_value = ecs.list_attributes(cluster=cluster, targetType="container-instance", attributeName="stack",
                                   attributeValue="dev")["attributes"]
    assert by_value == []
    assert ecs.list_container_instances(cluster=cluster, filter="attribute:gpu exists")["containerInstanceArns"] == [arn]
    ecs.delete_attributes(cluster=cluster, attributes=[{"name": "gpu", "targetId": arn}])
    assert ecs.list_container_instances(cluster=cluster, filter="attribute:gpu exists")["containerInstanceArns"] == []
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.put_attributes(cluster=cluster, attributes=[{"name": "x", "value": "y", "targetId": "nope"}])
    assert e.value.response["Error"]["Code"] == "TargetNotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.put_attributes(cluster=cluster, attributes=[{"name": "bad name", "value": "y", "targetId": arn}])
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.put_attributes(cluster=cluster, attributes=[
            {"name": f"custom{i}", "value": "v", "targetId": arn} for i in range(10)] + [])
        ecs.put_attributes(cluster=cluster, attributes=[{"name": "one-too-many", "value": "v", "targetId": arn}])
    assert e.value.response["Error"]["Code"] == "AttributeLimitExceededException"
