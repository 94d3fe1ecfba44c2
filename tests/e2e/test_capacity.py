"""Capacity that scales (seed 002): Auto Scaling groups launching local EC2
instances from launch templates, instances registering with the cluster
their user data names, warm pools, capacity providers with managed scaling,
scale-in protection, mixed on-demand/spot groups and spot interruptions,
driven with boto3, the aws CLI and `berth instances interrupt`."""

import base64
import json
import os
import subprocess
import tempfile
import time

import botocore.exceptions
import pytest

from conftest import BERTH, BUSYBOX, Server, aws, client, signed_request, unique, wait_status

BOOT_S = 2.0
NOTICE_S = 3.0
SCALE_IN_S = 2.0
ZONES = ["us-east-1a", "us-east-1b"]


@pytest.fixture(scope="module")
def srv(images):
    """A server whose instances boot in 2 s, whose spot notice is 3 s and
    whose managed scaling scales in after 2 s below target."""
    d = tempfile.mkdtemp(prefix="berth-capacity-")
    s = Server(d, extra_args=[
        "--instance-boot-seconds", str(BOOT_S),
        "--spot-notice-seconds", str(NOTICE_S),
        "--managed-scale-in-seconds", str(SCALE_IN_S),
    ]).start()
    yield s
    assert s.stop() == 0, s.log()
    bad = [l for l in s.log().splitlines() if "does not declare" in l or "fleet step failed" in l]
    assert not bad, bad


@pytest.fixture
def ecs(srv):
    return client(srv.endpoint)


@pytest.fixture
def ec2(srv):
    return client(srv.endpoint, service="ec2")


@pytest.fixture
def asg(srv):
    return client(srv.endpoint, service="autoscaling")


@pytest.fixture
def asg_raw(srv):
    return client(srv.endpoint, service="autoscaling", validate=False)


def error_of(call, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(**kw)
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


def user_data(cluster, *extra):
    script = "#!/bin/bash\n" + f"echo ECS_CLUSTER={cluster} >> /etc/ecs/ecs.config\n"
    for line in extra:
        script += f"echo {line} >> /etc/ecs/ecs.config\n"
    return base64.b64encode(script.encode()).decode()


def template(ec2, cluster, instance_type="t3.small", spot=False, extra=()):
    data = {"InstanceType": instance_type, "ImageId": "ami-0123456789abcdef0",
            "UserData": user_data(cluster, *extra)}
    if spot:
        data["InstanceMarketOptions"] = {"MarketType": "spot"}
    name = unique("lt")
    ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData=data)
    return name


def group(asg, name):
    return asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]


def wait_for(what, fn, timeout=40, every=0.2):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def in_service(asg, name, n):
    def check():
        g = group(asg, name)
        live = [i for i in g["Instances"] if i["LifecycleState"] == "InService"]
        return live if len(live) == n and len(g["Instances"]) == n else None
    return check


def registered(ecs, cluster):
    arns = ecs.list_container_instances(cluster=cluster, status="ACTIVE")["containerInstanceArns"]
    if not arns:
        return []
    return ecs.describe_container_instances(cluster=cluster, containerInstances=arns)["containerInstances"]


def instance_usage(endpoint, cluster):
    """Berth's ListInstanceUsage for a cluster."""
    status, _, body = signed_request(endpoint, json.dumps({"cluster": cluster}), {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "Berth_20261123.ListInstanceUsage"})
    assert status == 200, body
    return json.loads(body)["usage"]


def cleanup(asg, name):
    try:
        asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
    except botocore.exceptions.ClientError:
        pass


# --- the Auto Scaling API: bad input changes nothing ------------------------

def test_group_errors(asg, asg_raw, ec2, ecs):
    cluster = unique("c")
    lt = template(ec2, cluster)
    name = unique("asg")
    base = dict(AutoScalingGroupName=name, LaunchTemplate={"LaunchTemplateName": lt},
                AvailabilityZones=ZONES)
    code, msg = error_of(asg.create_auto_scaling_group, MinSize=3, MaxSize=1, **base)
    assert code == "ValidationError" and "min bound" in msg
    code, msg = error_of(asg.create_auto_scaling_group, MinSize=0, MaxSize=2, DesiredCapacity=5, **base)
    assert code == "ValidationError" and "Desired capacity:5" in msg
    code, msg = error_of(asg.create_auto_scaling_group, MinSize=0, MaxSize=2, AutoScalingGroupName=name,
                         LaunchTemplate={"LaunchTemplateName": "no-such-template"}, AvailabilityZones=ZONES)
    assert code == "ValidationError" and "does not exist" in msg
    code, msg = error_of(asg.create_auto_scaling_group, MinSize=0, MaxSize=2, AutoScalingGroupName=name,
                         LaunchTemplate={"LaunchTemplateName": lt, "Version": "7"}, AvailabilityZones=ZONES)
    assert code == "ValidationError" and "version 7" in msg
    code, _ = error_of(asg.create_auto_scaling_group, MinSize=0, MaxSize=2, AutoScalingGroupName=name,
                       LaunchTemplate={"LaunchTemplateName": lt})
    assert code == "ValidationError", "no zone and no subnet"
    code, _ = error_of(asg_raw.create_auto_scaling_group, AutoScalingGroupName=name, MaxSize=2,
                       LaunchTemplate={"LaunchTemplateName": lt}, AvailabilityZones=ZONES)
    assert code == "ValidationError", "MinSize is required"
    assert asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"] == []

    asg.create_auto_scaling_group(MinSize=0, MaxSize=2, **base)
    code, msg = error_of(asg.create_auto_scaling_group, MinSize=0, MaxSize=2, **base)
    assert code == "AlreadyExists" and name in msg
    code, msg = error_of(asg.set_desired_capacity, AutoScalingGroupName=name, DesiredCapacity=3)
    assert code == "ValidationError" and "above max value 2" in msg
    code, _ = error_of(asg.update_auto_scaling_group, AutoScalingGroupName=name, MinSize=3)
    assert code == "ValidationError"
    code, _ = error_of(asg.set_desired_capacity, AutoScalingGroupName=unique("ghost"), DesiredCapacity=1)
    assert code == "ValidationError"
    code, _ = error_of(asg.terminate_instance_in_auto_scaling_group, InstanceId="i-0123456789abcdef0",
                       ShouldDecrementDesiredCapacity=False)
    assert code == "ValidationError"
    g = group(asg, name)
    assert (g["MinSize"], g["MaxSize"], g["DesiredCapacity"]) == (0, 2, 0)
    assert g["LaunchTemplate"]["LaunchTemplateName"] == lt
    assert g["AvailabilityZones"] == ZONES and g["HealthCheckType"] == "EC2"
    assert g["AutoScalingGroupARN"].startswith("arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:")
    asg.delete_auto_scaling_group(AutoScalingGroupName=name)
    assert asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"] == []


# --- a group keeps its instances, registered with the user data's cluster ---

def test_group_launches_registers_and_replaces(srv, asg, ec2, ecs):
    cluster = unique("c")
    ecs.create_cluster(clusterName=cluster)
    lt = template(ec2, cluster, "t3.small")
    name = unique("asg")
    # The aws CLI, as seed 002's scripts drive it.
    aws(srv.endpoint, "autoscaling", "create-auto-scaling-group", "--auto-scaling-group-name", name,
        "--launch-template", f"LaunchTemplateName={lt}", "--min-size", "0", "--max-size", "3",
        "--desired-capacity", "2", "--vpc-zone-identifier", "subnet-aaa,subnet-bbb")
    try:
        live = wait_for("2 instances in service", in_service(asg, name, 2))
        assert sorted(i["AvailabilityZone"] for i in live) == ZONES, "spread over the subnets' zones"
        cis = wait_for("2 container instances", lambda: (r := registered(ecs, cluster)) and len(r) == 2 and r)
        assert {c["ec2InstanceId"] for c in cis} == {i["InstanceId"] for i in live}
        attrs = {a["name"]: a.get("value") for a in cis[0]["attributes"]}
        assert attrs["ecs.instance-type"] == "t3.small"
        ids = [i["InstanceId"] for i in live]
        desc = ec2.describe_instances(InstanceIds=ids)["Reservations"]
        assert {r["Instances"][0]["State"]["Name"] for r in desc} == {"running"}
        assert all(r["Instances"][0]["PrivateIpAddress"] for r in desc)

        # An instance that dies is replaced.
        ec2.terminate_instances(InstanceIds=[ids[0]])
        def replaced():
            now = {i["InstanceId"] for i in group(asg, name)["Instances"] if i["LifecycleState"] == "InService"}
            return len(now) == 2 and ids[0] not in now and now
        wait_for("a replacement", replaced)
        st = ec2.describe_instances(InstanceIds=[ids[0]])["Reservations"][0]["Instances"][0]["State"]["Name"]
        assert st == "terminated"
        acts = asg.describe_scaling_activities(AutoScalingGroupName=name)["Activities"]
        descs = [a["Description"] for a in acts]
        assert any(d == f"Terminating EC2 instance: {ids[0]}" for d in descs)
        assert sum(d.startswith("Launching a new EC2 instance: ") for d in descs) == 3
        assert all(a["StatusCode"] in ("Successful", "InProgress") for a in acts)

        # Terminating with decrement shrinks the group.
        victim = sorted(replaced())[0]
        out = asg.terminate_instance_in_auto_scaling_group(InstanceId=victim, ShouldDecrementDesiredCapacity=True)
        assert out["Activity"]["Description"] == f"Terminating EC2 instance: {victim}"
        assert group(asg, name)["DesiredCapacity"] == 1
        wait_for("1 instance", in_service(asg, name, 1))

        code, _ = error_of(asg.delete_auto_scaling_group, AutoScalingGroupName=name)
        assert code == "ResourceInUse", "a group with instances needs ForceDelete"
        asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=0)
        wait_for("no instances", lambda: group(asg, name)["Instances"] == [])
        assert wait_for("deregistered", lambda: registered(ecs, cluster) == [] or None) is not None
    finally:
        cleanup(asg, name)


def test_scale_in_protection(asg, ec2, ecs):
    cluster = unique("c")
    ecs.create_cluster(clusterName=cluster)
    name = unique("asg")
    asg.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=0, MaxSize=3, DesiredCapacity=2,
                                  LaunchTemplate={"LaunchTemplateName": template(ec2, cluster)},
                                  AvailabilityZones=ZONES)
    try:
        live = wait_for("2 in service", in_service(asg, name, 2))
        keep = live[0]["InstanceId"]
        asg.set_instance_protection(AutoScalingGroupName=name, InstanceIds=[keep], ProtectedFromScaleIn=True)
        asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=0)
        left = wait_for("the unprotected one gone",
                        lambda: (g := group(asg, name)["Instances"]) and len(g) == 1 and g)
        assert left[0]["InstanceId"] == keep and left[0]["ProtectedFromScaleIn"] is True
        time.sleep(1)
        assert [i["InstanceId"] for i in group(asg, name)["Instances"]] == [keep], "protection holds"
        code, _ = error_of(asg.set_instance_protection, AutoScalingGroupName=name,
                           InstanceIds=["i-0123456789abcdef0"], ProtectedFromScaleIn=False)
        assert code == "ValidationError"
        asg.set_instance_protection(AutoScalingGroupName=name, InstanceIds=[keep], ProtectedFromScaleIn=False)
        wait_for("scaled in", lambda: group(asg, name)["Instances"] == [])
    finally:
        cleanup(asg, name)


def test_mixed_instances_policy_splits_markets(asg, ec2, ecs):
    cluster = unique("c")
    ecs.create_cluster(clusterName=cluster)
    lt = template(ec2, cluster, "t3.small")
    name = unique("asg")
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name, MinSize=0, MaxSize=6, DesiredCapacity=5, AvailabilityZones=ZONES,
        MixedInstancesPolicy={
            "LaunchTemplate": {"LaunchTemplateSpecification": {"LaunchTemplateName": lt},
                               "Overrides": [{"InstanceType": "t3.small"}, {"InstanceType": "t3a.small"}]},
            "InstancesDistribution": {"OnDemandBaseCapacity": 1, "OnDemandPercentageAboveBaseCapacity": 50,
                                      "SpotAllocationStrategy": "lowest-price"},
        })
    try:
        live = wait_for("5 in service", in_service(asg, name, 5))
        ids = [i["InstanceId"] for i in live]
        insts = [r["Instances"][0] for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]]
        spot = [i for i in insts if i.get("InstanceLifecycle") == "spot"]
        on_demand = [i for i in insts if "InstanceLifecycle" not in i]
        # 1 base + 50% of the 4 above it: 3 on-demand, 2 spot.
        assert (len(on_demand), len(spot)) == (3, 2)
        assert {i["InstanceType"] for i in on_demand} == {"t3.small"}, "on-demand: the first override"
        assert {i["InstanceType"] for i in spot} == {"t3a.small"}, "lowest-price spot: the cheaper type"
    finally:
        cleanup(asg, name)


# --- warm pools ----------------------------------------------------------

def test_warm_pool_instances_join_faster_than_cold(asg, ec2, ecs):
    cluster = unique("c")
    ecs.create_cluster(clusterName=cluster)
    lt = template(ec2, cluster)
    warm, cold = unique("warm"), unique("cold")
    for n in (warm, cold):
        asg.create_auto_scaling_group(AutoScalingGroupName=n, MinSize=0, MaxSize=2, DesiredCapacity=0,
                                      LaunchTemplate={"LaunchTemplateName": lt}, AvailabilityZones=ZONES)
    try:
        asg.put_warm_pool(AutoScalingGroupName=warm, MinSize=1, MaxGroupPreparedCapacity=1, PoolState="Stopped")
        pool = wait_for("a stopped warm instance", lambda: (w := asg.describe_warm_pool(AutoScalingGroupName=warm))
                        and [i for i in w["Instances"] if i["LifecycleState"] == "Warmed:Stopped"])
        warm_id = pool[0]["InstanceId"]
        cfg = asg.describe_warm_pool(AutoScalingGroupName=warm)["WarmPoolConfiguration"]
        assert cfg["MinSize"] == 1 and cfg["PoolState"] == "Stopped"
        st = ec2.describe_instances(InstanceIds=[warm_id])["Reservations"][0]["Instances"][0]["State"]["Name"]
        assert st == "stopped"
        assert registered(ecs, cluster) == [], "warm instances hold no containers and are not registered"
        assert group(asg, warm)["WarmPoolSize"] == 1
        # Its boot was billed (idle: no task can use it); stopped, it costs nothing more.
        usage = instance_usage(ecs.meta.endpoint_url, cluster)
        boot = [u for u in usage if u["ec2InstanceId"] == warm_id]
        assert len(boot) == 1 and boot[0]["containerInstanceArn"] == ""
        assert BOOT_S <= boot[0]["seconds"] < BOOT_S + 2
        assert boot[0]["idleUsd"] == boot[0]["costUsd"] > 0 and boot[0]["attributedUsd"] == 0
        time.sleep(0.5)
        again = [u for u in instance_usage(ecs.meta.endpoint_url, cluster) if u["ec2InstanceId"] == warm_id]
        assert again[0]["seconds"] == boot[0]["seconds"], "a stopped warm instance accrues nothing"

        # Both groups scale out at the same moment: the warm instance joins first.
        asg.set_desired_capacity(AutoScalingGroupName=warm, DesiredCapacity=1)
        asg.set_desired_capacity(AutoScalingGroupName=cold, DesiredCapacity=1)
        cis = wait_for("both registered", lambda: (r := registered(ecs, cluster)) and len(r) == 2 and r)
        by_id = {c["ec2InstanceId"]: c for c in cis}
        assert warm_id in by_id, "the warm pool's own instance went into service"
        other = next(c for i, c in by_id.items() if i != warm_id)
        assert by_id[warm_id]["registeredAt"] < other["registeredAt"]
        acts = [a["Description"] for a in asg.describe_scaling_activities(AutoScalingGroupName=warm)["Activities"]]
        assert f"Launching a new EC2 instance from warm pool: {warm_id}" in acts
        # The pool refills to its MinSize.
        wait_for("the pool refilled", lambda: len(asg.describe_warm_pool(AutoScalingGroupName=warm)["Instances"]) == 1)
        asg.delete_warm_pool(AutoScalingGroupName=warm, ForceDelete=True)
        wait_for("pool emptied", lambda: asg.describe_warm_pool(AutoScalingGroupName=warm)["Instances"] == [])
    finally:
        cleanup(asg, warm)
        cleanup(asg, cold)


# --- capacity providers and managed scaling (the seed 002 flow) ----------

def test_capacity_provider_errors(ecs, asg, ec2):
    ecs_raw = client(ecs.meta.endpoint_url, validate=False)
    cluster = unique("c")
    ecs.create_cluster(clusterName=cluster)
    name = unique("asg")
    asg.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=0, MaxSize=2,
                                  LaunchTemplate={"LaunchTemplateName": template(ec2, cluster)},
                                  AvailabilityZones=ZONES)
    arn = group(asg, name)["AutoScalingGroupARN"]
    try:
        code, _ = error_of(ecs.create_capacity_provider, name=unique("cp"), autoScalingGroupProvider={
            "autoScalingGroupArn": arn.replace(name, "ghost")})
        assert code == "InvalidParameterException"
        code, msg = error_of(ecs.create_capacity_provider, name=unique("cp"), autoScalingGroupProvider={
            "autoScalingGroupArn": arn, "managedScaling": {"status": "ENABLED"},
            "managedTerminationProtection": "ENABLED"})
        assert code == "InvalidParameterException" and "instance protection from scale in" in msg
        code, _ = error_of(ecs.create_capacity_provider, name="fargate-mine",
                           autoScalingGroupProvider={"autoScalingGroupArn": arn})
        assert code == "InvalidParameterException"
        cp = unique("cp")
        out = ecs.create_capacity_provider(name=cp, autoScalingGroupProvider={
            "autoScalingGroupArn": arn, "managedScaling": {"status": "ENABLED", "targetCapacity": 90}})
        p = out["capacityProvider"]
        assert p["status"] == "ACTIVE" and p["name"] == cp
        ms = p["autoScalingGroupProvider"]["managedScaling"]
        assert (ms["targetCapacity"], ms["minimumScalingStepSize"], ms["instanceWarmupPeriod"]) == (90, 1, 300)
        code, msg = error_of(ecs.create_capacity_provider, name=unique("cp"),
                             autoScalingGroupProvider={"autoScalingGroupArn": arn})
        assert code == "ClientException" and "already being used" in msg
        code, _ = error_of(ecs.put_cluster_capacity_providers, cluster=cluster, capacityProviders=[cp],
                           defaultCapacityProviderStrategy=[{"capacityProvider": cp, "weight": 0}])
        assert code == "InvalidParameterException", "weights all zero"
        code, _ = error_of(ecs.put_cluster_capacity_providers, cluster=cluster, capacityProviders=[cp, "FARGATE"],
                           defaultCapacityProviderStrategy=[{"capacityProvider": cp, "weight": 1},
                                                            {"capacityProvider": "FARGATE", "weight": 1}])
        assert code == "InvalidParameterException", "ASG and Fargate providers mixed"
        code, _ = error_of(ecs.put_cluster_capacity_providers, cluster=cluster, capacityProviders=[],
                           defaultCapacityProviderStrategy=[{"capacityProvider": cp, "weight": 1}])
        assert code == "InvalidParameterException", "strategy names a provider not associated"
        c = ecs.describe_clusters(clusters=[cluster])["clusters"][0]
        assert c["capacityProviders"] == [] and c["defaultCapacityProviderStrategy"] == []
        ecs.put_cluster_capacity_providers(cluster=cluster, capacityProviders=[cp],
                                           defaultCapacityProviderStrategy=[{"capacityProvider": cp, "weight": 1}])
        code, msg = error_of(ecs.delete_capacity_provider, capacityProvider=cp)
        assert code == "ClientException" and cluster in msg
        code, _ = error_of(ecs_raw.run_task, cluster=cluster, taskDefinition="x", launchType="EC2",
                           capacityProviderStrategy=[{"capacityProvider": cp, "weight": 1}])
        assert code == "InvalidParameterException"
        ecs.update_capacity_provider(name=cp, autoScalingGroupProvider={
            "managedScaling": {"status": "ENABLED", "targetCapacity": 100, "maximumScalingStepSize": 2}})
        p = ecs.describe_capacity_providers(capacityProviders=[cp])["capacityProviders"][0]
        assert p["autoScalingGroupProvider"]["managedScaling"]["maximumScalingStepSize"] == 2
        ecs.put_cluster_capacity_providers(cluster=cluster, capacityProviders=[], defaultCapacityProviderStrategy=[])
        assert ecs.delete_capacity_provider(capacityProvider=cp)["capacityProvider"]["status"] == "INACTIVE"
        builtins = [p["name"] for p in ecs.describe_capacity_providers()["capacityProviders"]]
        assert "FARGATE" in builtins and "FARGATE_SPOT" in builtins and cp not in builtins
    finally:
        cleanup(asg, name)


def test_seed_002_managed_scaling_flow(asg, ec2, ecs):
    """Launch template with ECS user data → ASG (min 0, max 3) → capacity
    provider with managed scaling → cluster default strategy → RunTask of
    more tasks than fit → PROVISIONING → instances launched and joined →
    RUNNING → tasks end → scaled in to zero."""
    cluster = unique("c")
    ecs.create_cluster(clusterName=cluster)
    lt = template(ec2, cluster, "t3.small")
    name = unique("asg")
    asg.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=0, MaxSize=3, DesiredCapacity=0,
                                  LaunchTemplate={"LaunchTemplateName": lt, "Version": "$Latest"},
                                  AvailabilityZones=ZONES, NewInstancesProtectedFromScaleIn=True)
    arn = group(asg, name)["AutoScalingGroupARN"]
    cp = unique("cp")
    ecs.create_capacity_provider(name=cp, autoScalingGroupProvider={
        "autoScalingGroupArn": arn, "managedTerminationProtection": "ENABLED",
        "managedScaling": {"status": "ENABLED", "targetCapacity": 100}})
    ecs.put_cluster_capacity_providers(cluster=cluster, capacityProviders=[cp],
                                       defaultCapacityProviderStrategy=[{"capacityProvider": cp, "weight": 1}])
    # t3.small registers 2048 CPU units: two of these tasks per instance.
    td = ecs.register_task_definition(
        family=unique("job"), requiresCompatibilities=["EC2"], cpu="1024", memory="256",
        containerDefinitions=[{"name": "main", "image": BUSYBOX, "command": ["sleep", "4"], "essential": True}],
    )["taskDefinition"]["taskDefinitionArn"]
    try:
        out = ecs.run_task(cluster=cluster, taskDefinition=td, count=5)
        assert out["failures"] == []
        tasks = out["tasks"]
        assert len(tasks) == 5
        assert all(t["lastStatus"] == "PROVISIONING" and t["capacityProviderName"] == cp for t in tasks)
        assert all("containerInstanceArn" not in t for t in tasks), "no capacity yet"
        arns = [t["taskArn"] for t in tasks]
        # Managed scaling: 5 tasks at 2 per instance need 3 instances.
        wait_for("desired 3", lambda: group(asg, name)["DesiredCapacity"] == 3, timeout=10)
        for a in arns:
            t = wait_status(ecs, cluster, a, "RUNNING", timeout=60)
            assert t["containerInstanceArn"] and t["launchType"] == "EC2"
        cis = registered(ecs, cluster)
        assert len(cis) == 3 and all(c["capacityProviderName"] == cp for c in cis)
        # Instances running tasks are protected from scale-in.
        prot = wait_for("protection", lambda: all(i["ProtectedFromScaleIn"] for i in group(asg, name)["Instances"]))
        assert prot
        for a in arns:
            t = wait_status(ecs, cluster, a, "STOPPED", timeout=60)
            assert t["containers"][0]["exitCode"] == 0
        # Empty and below target: scaled in to zero after the scale-in period.
        wait_for("scaled in to zero", lambda: group(asg, name)["DesiredCapacity"] == 0, timeout=30)
        wait_for("no instances", lambda: group(asg, name)["Instances"] == [], timeout=30)
        assert registered(ecs, cluster) == []
        # A task stopped while it waits never runs.
        out = ecs.run_task(cluster=cluster, taskDefinition=td, count=1)
        waiting = out["tasks"][0]["taskArn"]
        ecs.stop_task(cluster=cluster, task=waiting)
        t = wait_status(ecs, cluster, waiting, "STOPPED", timeout=10)
        assert t["stopCode"] == "UserInitiated" and "containerInstanceArn" not in t
    finally:
        ecs.put_cluster_capacity_providers(cluster=cluster, capacityProviders=[], defaultCapacityProviderStrategy=[])
        ecs.delete_capacity_provider(capacityProvider=cp)
        cleanup(asg, name)


# --- spot --------------------------------------------------------------

def test_spot_interruption_drains_and_replaces(srv, asg, ec2, ecs):
    cluster = unique("c")
    ecs.create_cluster(clusterName=cluster)
    lt = template(ec2, cluster, "t3.small", spot=True, extra=["ECS_ENABLE_SPOT_INSTANCE_DRAINING=true"])
    name = unique("asg")
    asg.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=1, MaxSize=1, DesiredCapacity=1,
                                  LaunchTemplate={"LaunchTemplateName": lt}, AvailabilityZones=ZONES)
    try:
        first = wait_for("1 in service", in_service(asg, name, 1))[0]["InstanceId"]
        inst = ec2.describe_instances(InstanceIds=[first])["Reservations"][0]["Instances"][0]
        assert inst["InstanceLifecycle"] == "spot"
        ci = wait_for("registered", lambda: registered(ecs, cluster))[0]
        td = ecs.register_task_definition(
            family=unique("svc"), requiresCompatibilities=["EC2"],
            containerDefinitions=[{"name": "main", "image": BUSYBOX, "command": ["sleep", "300"], "stopTimeout": 2,
                                   "memory": 64, "essential": True}],
        )["taskDefinition"]["taskDefinitionArn"]
        task = ecs.start_task(cluster=cluster, taskDefinition=td,
                              containerInstances=[ci["containerInstanceArn"]])["tasks"][0]["taskArn"]
        wait_status(ecs, cluster, task, "RUNNING")
        p = subprocess.run([BERTH, "instances", "interrupt", "--endpoint-url", srv.endpoint, first],
                           capture_output=True, text=True,
                           env=dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                                    AWS_DEFAULT_REGION="us-east-1"))
        assert p.returncode == 0, p.stderr
        assert first in p.stdout and "interruption notice" in p.stdout
        # Draining: the instance goes DRAINING and its task stops, naming the interruption.
        d = ecs.describe_container_instances(cluster=cluster, containerInstances=[ci["containerInstanceArn"]])
        assert d["containerInstances"][0]["status"] == "DRAINING"
        t = wait_status(ecs, cluster, task, "STOPPED", timeout=30)
        assert t["stopCode"] == "TerminationNotice" and "Spot interruption" in t["stoppedReason"]
        # After the notice the instance is reclaimed and the group replaces it.
        def replaced():
            ids = [i["InstanceId"] for i in group(asg, name)["Instances"] if i["LifecycleState"] == "InService"]
            return ids and ids[0] != first and ids
        new = wait_for("a replacement", replaced, timeout=30)[0]
        st = ec2.describe_instances(InstanceIds=[first])["Reservations"][0]["Instances"][0]["State"]["Name"]
        assert st == "terminated"
        wait_for("replacement registered", lambda: [c for c in registered(ecs, cluster) if c["ec2InstanceId"] == new])
        acts = [a["Cause"] for a in asg.describe_scaling_activities(AutoScalingGroupName=name)["Activities"]]
        assert any("Spot Instance interruption notice" in c for c in acts)
        # An on-demand instance cannot be interrupted.
        p = subprocess.run([BERTH, "instances", "interrupt", "--endpoint-url", srv.endpoint, "i-0123456789abcdef0"],
                           capture_output=True, text=True,
                           env=dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                                    AWS_DEFAULT_REGION="us-east-1"))
        assert p.returncode != 0 and "MISSING" in p.stderr
    finally:
        cleanup(asg, name)


def test_fargate_spot_interruption(srv, ecs):
    cluster = unique("c")
    ecs.create_cluster(clusterName=cluster, capacityProviders=["FARGATE", "FARGATE_SPOT"])
    td = ecs.register_task_definition(
        family=unique("spot"), requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        containerDefinitions=[{"name": "main", "image": BUSYBOX, "command": ["sleep", "300"], "stopTimeout": 2, "essential": True}],
    )["taskDefinition"]["taskDefinitionArn"]
    net = {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}
    spot = ecs.run_task(cluster=cluster, taskDefinition=td, networkConfiguration=net,
                        capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}])["tasks"][0]
    plain = ecs.run_task(cluster=cluster, taskDefinition=td, networkConfiguration=net,
                         capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}])["tasks"][0]
    wait_status(ecs, cluster, spot["taskArn"], "RUNNING")
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    p = subprocess.run([BERTH, "instances", "interrupt", "--endpoint-url", srv.endpoint, "--cluster", cluster,
                        spot["taskArn"]], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    t = wait_status(ecs, cluster, spot["taskArn"], "STOPPED", timeout=30)
    assert t["stopCode"] == "SpotInterruption" and t["stoppedReason"] == "Your Spot Task was interrupted."
    p = subprocess.run([BERTH, "instances", "interrupt", "--endpoint-url", srv.endpoint, "--cluster", cluster,
                        plain["taskArn"]], capture_output=True, text=True, env=env)
    assert p.returncode != 0 and "NOT_FARGATE_SPOT" in p.stderr
    ecs.stop_task(cluster=cluster, task=plain["taskArn"])
    # A strategy split by base and weight.
    out = ecs.run_task(cluster=cluster, taskDefinition=td, networkConfiguration=net, count=5,
                       capacityProviderStrategy=[{"capacityProvider": "FARGATE", "base": 1, "weight": 1},
                                                 {"capacityProvider": "FARGATE_SPOT", "weight": 3}])
    names = [t["capacityProviderName"] for t in out["tasks"]]
    assert names.count("FARGATE") == 2 and names.count("FARGATE_SPOT") == 3
    for t in out["tasks"]:
        ecs.stop_task(cluster=cluster, task=t["taskArn"])
    # Leave nothing running behind for the next test.
    for t in [plain, *out["tasks"]]:
        wait_status(ecs, cluster, t["taskArn"], "STOPPED", timeout=60)


def test_random_spot_interruptions_for_rehearsal(images, tmp_path):
    """With --spot-interruption-rate, spot instances are interrupted at
    random (here: at once) and replaced; on-demand ones are left alone."""
    s = Server(str(tmp_path), extra_args=[
        "--instance-boot-seconds", "0.5", "--spot-notice-seconds", "1",
        "--spot-interruption-rate", "100000000",
    ]).start()
    try:
        ec2 = client(s.endpoint, service="ec2")
        asg = client(s.endpoint, service="autoscaling")
        ecs = client(s.endpoint)
        cluster = unique("c")
        ecs.create_cluster(clusterName=cluster)
        spot, steady = unique("spot"), unique("steady")
        asg.create_auto_scaling_group(AutoScalingGroupName=spot, MinSize=1, MaxSize=1, AvailabilityZones=ZONES,
                                      LaunchTemplate={"LaunchTemplateName": template(ec2, cluster, spot=True)})
        asg.create_auto_scaling_group(AutoScalingGroupName=steady, MinSize=1, MaxSize=1, AvailabilityZones=ZONES,
                                      LaunchTemplate={"LaunchTemplateName": template(ec2, cluster)})
        first_steady = wait_for("on-demand in service", in_service(asg, steady, 1))[0]["InstanceId"]

        def interrupted_twice():
            acts = asg.describe_scaling_activities(AutoScalingGroupName=spot)["Activities"]
            n = sum("Spot Instance interruption notice" in a["Cause"] for a in acts)
            return n >= 2 and n
        wait_for("two random interruptions", interrupted_twice, timeout=30)
        assert [i["InstanceId"] for i in group(asg, steady)["Instances"]] == [first_steady]
        acts = asg.describe_scaling_activities(AutoScalingGroupName=steady)["Activities"]
        assert not any("interruption" in a["Cause"] for a in acts)
    finally:
        s.stop()


def test_groups_survive_kill_9_mid_boot(images, tmp_path):
    """A group's acknowledged desired capacity and its booting instances are
    in the store: after kill -9 the restarted server finishes the boots and
    registers them."""
    s = Server(str(tmp_path), extra_args=["--instance-boot-seconds", "2"]).start()
    try:
        ec2 = client(s.endpoint, service="ec2")
        asg = client(s.endpoint, service="autoscaling")
        ecs = client(s.endpoint)
        cluster = unique("c")
        ecs.create_cluster(clusterName=cluster)
        name = unique("asg")
        asg.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=0, MaxSize=3, DesiredCapacity=2,
                                      AvailabilityZones=ZONES,
                                      LaunchTemplate={"LaunchTemplateName": template(ec2, cluster)})
        pending = wait_for("launched", lambda: (g := group(asg, name)["Instances"]) and len(g) == 2
                           and all(i["LifecycleState"] == "Pending" for i in g) and g, timeout=5, every=0.05)
        s.kill9()
        s.start()
        asg = client(s.endpoint, service="autoscaling")
        ecs = client(s.endpoint)
        live = wait_for("2 in service after restart", in_service(asg, name, 2))
        assert {i["InstanceId"] for i in live} == {i["InstanceId"] for i in pending}, "the same instances"
        cis = wait_for("registered", lambda: (r := registered(ecs, cluster)) and len(r) == 2 and r)
        assert {c["ec2InstanceId"] for c in cis} == {i["InstanceId"] for i in pending}
        asg.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
        wait_for("group gone", lambda: asg.describe_auto_scaling_groups(
            AutoScalingGroupNames=[name])["AutoScalingGroups"] == [])
    finally:
        s.stop()


def test_a_short_lived_group_instance_is_billed_one_minimum(asg, ec2, ecs):
    """EC2 bills one 60-second minimum per start: an instance that booted
    and then spent a few seconds in the cluster is billed 60 s in all, not
    a minimum for its time in the cluster plus its boot."""
    cluster = unique("c")
    ecs.create_cluster(clusterName=cluster)
    name = unique("short")
    asg.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=0, MaxSize=1, DesiredCapacity=1,
                                  LaunchTemplate={"LaunchTemplateName": template(ec2, cluster)},
                                  AvailabilityZones=ZONES)
    try:
        [ci] = wait_for("registered", lambda: registered(ecs, cluster))
        asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=0)
        wait_for("deregistered", lambda: registered(ecs, cluster) == [])
        rows = [u for u in instance_usage(ecs.meta.endpoint_url, cluster) if u["ec2InstanceId"] == ci["ec2InstanceId"]]
        boot = [u for u in rows if u["containerInstanceArn"] == ""]
        member = [u for u in rows if u["containerInstanceArn"] != ""]
        assert len(boot) == 1 and len(member) == 1, rows
        assert BOOT_S <= boot[0]["seconds"] < BOOT_S + 2
        assert boot[0]["seconds"] + member[0]["seconds"] < 60
        assert boot[0]["billedSeconds"] + member[0]["billedSeconds"] == 60, rows
    finally:
        cleanup(asg, name)


def test_run_task_waits_while_the_only_instance_drains(asg, ec2, ecs):
    """With managed scaling, a provider whose instances are all draining can
    still grow: RunTask puts the task in PROVISIONING, managed scaling
    launches an instance, and the task runs there."""
    cluster = unique("c")
    ecs.create_cluster(clusterName=cluster)
    name = unique("asg")
    asg.create_auto_scaling_group(AutoScalingGroupName=name, MinSize=0, MaxSize=2, DesiredCapacity=1,
                                  LaunchTemplate={"LaunchTemplateName": template(ec2, cluster, "t3.small")},
                                  AvailabilityZones=ZONES)
    cp = unique("cp")
    ecs.create_capacity_provider(name=cp, autoScalingGroupProvider={
        "autoScalingGroupArn": group(asg, name)["AutoScalingGroupARN"],
        "managedScaling": {"status": "ENABLED", "targetCapacity": 100}})
    ecs.put_cluster_capacity_providers(cluster=cluster, capacityProviders=[cp], defaultCapacityProviderStrategy=[])
    td = ecs.register_task_definition(
        family=unique("job"), requiresCompatibilities=["EC2"], cpu="256", memory="128",
        containerDefinitions=[{"name": "main", "image": BUSYBOX, "command": ["sleep", "2"]}],
    )["taskDefinition"]["taskDefinitionArn"]
    try:
        [first] = wait_for("registered", lambda: registered(ecs, cluster))
        ecs.update_container_instances_state(cluster=cluster, containerInstances=[first["containerInstanceArn"]],
                                             status="DRAINING")
        out = ecs.run_task(cluster=cluster, taskDefinition=td,
                           capacityProviderStrategy=[{"capacityProvider": cp, "weight": 1}])
        assert out["failures"] == []
        [t] = out["tasks"]
        assert t["lastStatus"] == "PROVISIONING" and "containerInstanceArn" not in t
        wait_for("desired 2", lambda: group(asg, name)["DesiredCapacity"] == 2, timeout=10)
        running = wait_status(ecs, cluster, t["taskArn"], "RUNNING", timeout=60)
        assert running["containerInstanceArn"] != first["containerInstanceArn"]
        wait_status(ecs, cluster, t["taskArn"], "STOPPED", timeout=60)
    finally:
        ecs.put_cluster_capacity_providers(cluster=cluster, capacityProviders=[], defaultCapacityProviderStrategy=[])
        ecs.delete_capacity_provider(capacityProvider=cp)
        cleanup(asg, name)
