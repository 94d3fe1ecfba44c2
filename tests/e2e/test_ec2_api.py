"""The EC2 API subset in EC2's own Query dialect: DescribeInstanceTypes from
Berth's catalog and launch templates, through boto3 and the aws CLI."""

import base64
import json
import urllib.parse

import botocore.exceptions
import pytest

from conftest import aws, AwsCliError, client, signed_request, unique


@pytest.fixture
def ec2(server):
    return client(server.endpoint, service="ec2")


@pytest.fixture
def ec2_raw(server):
    return client(server.endpoint, service="ec2", validate=False)


def error_code(call, *args, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(*args, **kwargs)
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


# --- DescribeInstanceTypes -------------------------------------------------

def test_describe_named_instance_types(ec2):
    out = ec2.describe_instance_types(InstanceTypes=["t3.micro", "m7g.large"])
    by_name = {t["InstanceType"]: t for t in out["InstanceTypes"]}
    assert set(by_name) == {"t3.micro", "m7g.large"}
    t3 = by_name["t3.micro"]
    assert t3["VCpuInfo"]["DefaultVCpus"] == 2
    assert t3["MemoryInfo"]["SizeInMiB"] == 1024
    assert t3["ProcessorInfo"]["SupportedArchitectures"] == ["x86_64"]
    assert t3["BurstablePerformanceSupported"] is True
    assert by_name["m7g.large"]["ProcessorInfo"]["SupportedArchitectures"] == ["arm64"]
    assert out["ResponseMetadata"]["RequestId"]


def test_unknown_instance_type(ec2):
    code, message = error_code(ec2.describe_instance_types, InstanceTypes=["t3.micro", "x9.enormous"])
    assert code == "InvalidInstanceType"
    assert message == "The following supplied instance types do not exist: [x9.enormous]"


def test_instance_type_filters(ec2):
    out = ec2.describe_instance_types(Filters=[
        {"Name": "instance-type", "Values": ["c7g.*", "m7g.*"]},
        {"Name": "vcpu-info.default-vcpus", "Values": ["4"]},
    ])
    names = [t["InstanceType"] for t in out["InstanceTypes"]]
    assert names and all(n.split(".")[0] in ("c7g", "m7g") for n in names)
    assert all(t["VCpuInfo"]["DefaultVCpus"] == 4 for t in out["InstanceTypes"])
    arm = ec2.describe_instance_types(Filters=[
        {"Name": "processor-info.supported-architecture", "Values": ["arm64"]},
        {"Name": "current-generation", "Values": ["true"]},
    ])["InstanceTypes"]
    assert arm and all(t["ProcessorInfo"]["SupportedArchitectures"] == ["arm64"] for t in arm)
    assert all(t["CurrentGeneration"] for t in arm)
    code, _ = error_code(ec2.describe_instance_types, Filters=[{"Name": "colour", "Values": ["red"]}])
    assert code == "InvalidParameterValue"


def test_instance_type_pagination(ec2):
    everything = ec2.describe_instance_types()["InstanceTypes"]
    pages = list(ec2.get_paginator("describe_instance_types").paginate(PaginationConfig={"PageSize": 7}))
    assert len(pages) > 1
    assert all(len(p["InstanceTypes"]) <= 7 for p in pages)
    paged = [t["InstanceType"] for p in pages for t in p["InstanceTypes"]]
    assert sorted(paged) == sorted(t["InstanceType"] for t in everything)
    assert len(set(paged)) == len(paged)


def test_max_results_out_of_range(ec2_raw):
    code, message = error_code(ec2_raw.describe_instance_types, MaxResults=2)
    assert code == "InvalidParameterValue"
    assert "MaxResults" in message


def test_cli_describe_instance_types(server):
    out = aws(server.endpoint, "ec2", "describe-instance-types", "--instance-types", "c7g.xlarge")
    assert [t["InstanceType"] for t in out["InstanceTypes"]] == ["c7g.xlarge"]
    out = aws(server.endpoint, "ec2", "describe-instance-types",
              "--filters", "Name=instance-type,Values=t3.*",
              "--query", "InstanceTypes[].InstanceType")
    assert out and all(n.startswith("t3.") for n in out)
    with pytest.raises(AwsCliError) as e:
        aws(server.endpoint, "ec2", "describe-instance-types", "--instance-types", "q1.nothing")
    assert "InvalidInstanceType" in e.value.stderr


# --- Launch templates ------------------------------------------------------

USER_DATA = base64.b64encode(b"#!/bin/bash\necho ECS_CLUSTER=web >> /etc/ecs/ecs.config\n").decode()


def test_launch_template_round_trip(ec2):
    name = unique("lt")
    created = ec2.create_launch_template(
        LaunchTemplateName=name,
        VersionDescription="first",
        LaunchTemplateData={
            "InstanceType": "t3.small",
            "ImageId": "ami-0123456789abcdef0",
            "UserData": USER_DATA,
            "SecurityGroupIds": ["sg-1", "sg-2"],
            "IamInstanceProfile": {"Name": "ecsInstanceRole"},
            "InstanceMarketOptions": {"MarketType": "spot", "SpotOptions": {"SpotInstanceType": "one-time", "MaxPrice": "0.05"}},
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "role", "Value": "ecs"}]}],
        },
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": [{"Key": "team", "Value": "blue"}]}],
    )["LaunchTemplate"]
    lt_id = created["LaunchTemplateId"]
    assert lt_id.startswith("lt-") and len(lt_id) == 20
    assert created["LaunchTemplateName"] == name
    assert (created["DefaultVersionNumber"], created["LatestVersionNumber"]) == (1, 1)
    assert created["CreatedBy"] == "arn:aws:iam::000000000000:root"
    assert created["CreateTime"].year >= 2024
    assert created["Tags"] == [{"Key": "team", "Value": "blue"}]

    described = ec2.describe_launch_templates(LaunchTemplateIds=[lt_id])["LaunchTemplates"]
    assert [t["LaunchTemplateName"] for t in described] == [name]
    by_name = ec2.describe_launch_templates(LaunchTemplateNames=[name])["LaunchTemplates"]
    assert by_name[0]["LaunchTemplateId"] == lt_id

    v = ec2.describe_launch_template_versions(LaunchTemplateId=lt_id)["LaunchTemplateVersions"]
    assert len(v) == 1
    data = v[0]["LaunchTemplateData"]
    assert data["UserData"] == USER_DATA
    assert data["InstanceType"] == "t3.small"
    assert data["ImageId"] == "ami-0123456789abcdef0"
    assert data["SecurityGroupIds"] == ["sg-1", "sg-2"]
    assert data["IamInstanceProfile"] == {"Name": "ecsInstanceRole"}
    assert data["InstanceMarketOptions"]["MarketType"] == "spot"
    assert data["InstanceMarketOptions"]["SpotOptions"]["MaxPrice"] == "0.05"
    assert data["TagSpecifications"][0]["Tags"] == [{"Key": "role", "Value": "ecs"}]
    assert v[0]["VersionDescription"] == "first"
    assert v[0]["DefaultVersion"] is True

    deleted = ec2.delete_launch_template(LaunchTemplateName=name)["LaunchTemplate"]
    assert deleted["LaunchTemplateId"] == lt_id
    code, message = error_code(ec2.describe_launch_templates, LaunchTemplateIds=[lt_id])
    assert code == "InvalidLaunchTemplateId.NotFound"
    assert lt_id in message
    # The name is free again.
    ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={"ImageId": "ami-1"})
    ec2.delete_launch_template(LaunchTemplateName=name)


def test_versions_latest_default_and_source(ec2):
    name = unique("ver")
    lt_id = ec2.create_launch_template(
        LaunchTemplateName=name,
        LaunchTemplateData={"InstanceType": "t3.micro", "ImageId": "ami-1", "UserData": USER_DATA},
    )["LaunchTemplate"]["LaunchTemplateId"]
    v2 = ec2.create_launch_template_version(
        LaunchTemplateId=lt_id, SourceVersion="1", LaunchTemplateData={"InstanceType": "m7g.medium"},
    )["LaunchTemplateVersion"]
    assert v2["VersionNumber"] == 2 and v2["DefaultVersion"] is False
    assert v2["LaunchTemplateData"]["ImageId"] == "ami-1"  # inherited
    assert v2["LaunchTemplateData"]["UserData"] == USER_DATA
    assert v2["LaunchTemplateData"]["InstanceType"] == "m7g.medium"
    v3 = ec2.create_launch_template_version(
        LaunchTemplateName=name, LaunchTemplateData={"InstanceType": "c7g.large"},
    )["LaunchTemplateVersion"]
    assert v3["VersionNumber"] == 3
    assert "ImageId" not in v3["LaunchTemplateData"]  # no SourceVersion: nothing inherited

    def numbers(**kw):
        out = ec2.describe_launch_template_versions(LaunchTemplateName=name, **kw)
        return [v["VersionNumber"] for v in out["LaunchTemplateVersions"]]

    assert numbers() == [3, 2, 1]
    assert numbers(Versions=["$Latest"]) == [3]
    assert numbers(Versions=["$Default"]) == [1]
    assert numbers(Versions=["2", "$Default"]) == [2, 1]
    assert numbers(MinVersion="2") == [3, 2]

    t = ec2.describe_launch_templates(LaunchTemplateNames=[name])["LaunchTemplates"][0]
    assert (t["DefaultVersionNumber"], t["LatestVersionNumber"]) == (1, 3)
    modified = ec2.modify_launch_template(LaunchTemplateId=lt_id, DefaultVersion="2")["LaunchTemplate"]
    assert modified["DefaultVersionNumber"] == 2
    assert numbers(Versions=["$Default"]) == [2]

    code, message = error_code(ec2.describe_launch_template_versions, LaunchTemplateId=lt_id, Versions=["9"])
    assert code == "InvalidLaunchTemplateId.VersionNotFound"
    assert message == f"Could not find the specified version 9 for the launch template with ID {lt_id}."
    code, _ = error_code(ec2.create_launch_template_version, LaunchTemplateId=lt_id, SourceVersion="7",
                         LaunchTemplateData={"ImageId": "ami-1"})
    assert code == "InvalidLaunchTemplateId.VersionNotFound"
    code, _ = error_code(ec2.modify_launch_template, LaunchTemplateId=lt_id, DefaultVersion="42")
    assert code == "InvalidLaunchTemplateId.VersionNotFound"
    ec2.delete_launch_template(LaunchTemplateId=lt_id)


def test_launch_template_errors(ec2, ec2_raw):
    name = unique("dup")
    ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={"ImageId": "ami-1"})
    code, message = error_code(ec2.create_launch_template, LaunchTemplateName=name, LaunchTemplateData={"ImageId": "ami-1"})
    assert (code, message) == ("InvalidLaunchTemplateName.AlreadyExistsException",
                               "Launch template name already in use.")
    ec2.delete_launch_template(LaunchTemplateName=name)

    missing = unique("missing")
    code, message = error_code(ec2.describe_launch_templates, LaunchTemplateNames=[missing])
    assert code == "InvalidLaunchTemplateName.NotFoundException"
    assert message == f"The specified launch template, with template name {missing}, does not exist."
    code, _ = error_code(ec2.delete_launch_template, LaunchTemplateName=missing)
    assert code == "InvalidLaunchTemplateName.NotFoundException"
    code, _ = error_code(ec2.describe_launch_template_versions, LaunchTemplateName=missing)
    assert code == "InvalidLaunchTemplateName.NotFoundException"
    code, message = error_code(ec2.delete_launch_template, LaunchTemplateId="lt-0123456789abcdef0")
    assert code == "InvalidLaunchTemplateId.NotFound"
    assert message == "The specified launch template, with template ID lt-0123456789abcdef0, does not exist."

    for bad in ["ab", "x" * 129, "with space", "star*"]:
        code, _ = error_code(ec2_raw.create_launch_template, LaunchTemplateName=bad, LaunchTemplateData={"ImageId": "ami-1"})
        assert code == "InvalidLaunchTemplateName.MalformedException", bad

    code, _ = error_code(ec2.create_launch_template, LaunchTemplateName=unique("it"),
                         LaunchTemplateData={"InstanceType": "z9.mega"})
    assert code == "InvalidParameterValue"
    code, _ = error_code(ec2.create_launch_template, LaunchTemplateName=unique("ud"),
                         LaunchTemplateData={"UserData": "not base64!"})
    assert code == "InvalidUserData.Malformed"
    # An empty LaunchTemplateData has no parameters on the wire: EC2 refuses it.
    for data in [None, {}]:
        kw = {} if data is None else {"LaunchTemplateData": data}
        code, message = error_code(ec2_raw.create_launch_template, LaunchTemplateName=unique("nodata"), **kw)
        assert code == "MissingParameter"
        assert message == ("No launch template data was provided. "
                           "Launch template data is required to create a launch template.")


def test_describe_launch_templates_filters_and_pages(ec2):
    prefix = unique("flt")
    ids = []
    for i in range(5):
        ids.append(ec2.create_launch_template(
            LaunchTemplateName=f"{prefix}-{i}", LaunchTemplateData={"ImageId": "ami-1"},
            TagSpecifications=[{"ResourceType": "launch-template",
                                "Tags": [{"Key": "group", "Value": prefix}, {"Key": "n", "Value": str(i)}]}],
        )["LaunchTemplate"]["LaunchTemplateId"])
    by_name = ec2.describe_launch_templates(
        Filters=[{"Name": "launch-template-name", "Values": [f"{prefix}-*"]}])["LaunchTemplates"]
    assert sorted(t["LaunchTemplateId"] for t in by_name) == sorted(ids)
    by_tag = ec2.describe_launch_templates(
        Filters=[{"Name": f"tag:group", "Values": [prefix]}, {"Name": "tag:n", "Values": ["1", "3"]}])
    assert sorted(t["LaunchTemplateName"] for t in by_tag["LaunchTemplates"]) == [f"{prefix}-1", f"{prefix}-3"]
    pages = list(ec2.get_paginator("describe_launch_templates").paginate(
        Filters=[{"Name": "tag-key", "Values": ["group"]}, {"Name": "tag:group", "Values": [prefix]}],
        PaginationConfig={"PageSize": 2}))
    assert [len(p["LaunchTemplates"]) for p in pages] == [2, 2, 1]
    for lt_id in ids:
        ec2.delete_launch_template(LaunchTemplateId=lt_id)


def test_cli_create_launch_template(server):
    name = unique("cli")
    data = {"InstanceType": "t3.medium", "UserData": USER_DATA, "ImageId": "ami-2"}
    out = aws(server.endpoint, "ec2", "create-launch-template", "--launch-template-name", name,
              "--launch-template-data", json.dumps(data))
    lt_id = out["LaunchTemplate"]["LaunchTemplateId"]
    out = aws(server.endpoint, "ec2", "describe-launch-template-versions", "--launch-template-id", lt_id,
              "--versions", "$Latest")
    got = out["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    assert got == data
    with pytest.raises(AwsCliError) as e:
        aws(server.endpoint, "ec2", "create-launch-template", "--launch-template-name", name,
            "--launch-template-data", '{"ImageId": "ami-3"}')
    assert "InvalidLaunchTemplateName.AlreadyExistsException" in e.value.stderr
    aws(server.endpoint, "ec2", "delete-launch-template", "--launch-template-id", lt_id)


# --- The wire shape --------------------------------------------------------

def ec2_raw_call(server, params, **kw):
    body = urllib.parse.urlencode(dict(params, Version="2016-11-15"))
    return signed_request(server.endpoint, body,
                          {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
                          service="ec2", **kw)


def test_wire_shape(server):
    status, headers, body = ec2_raw_call(server, {"Action": "DescribeInstanceTypes", "InstanceType.1": "t3.micro"})
    assert status == 200
    text = body.decode()
    assert text.count("<DescribeInstanceTypesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">") == 1
    assert "<requestId>" in text and "Result>" not in text
    assert "<instanceTypeSet><item>" in text and "<instanceType>t3.micro</instanceType>" in text
    assert "<supportedArchitectures><item>x86_64</item></supportedArchitectures>" in text
    status, _, body = ec2_raw_call(server, {"Action": "DescribeInstanceTypes", "InstanceType.1": "nope.x"})
    assert status == 400
    text = body.decode()
    assert text.startswith("<?xml") and "<Response><Errors><Error><Code>InvalidInstanceType</Code>" in text
    assert "<RequestID>" in text
    status, _, body = ec2_raw_call(server, {"Action": "RunRockets"})
    assert status == 400 and b"<Code>InvalidAction</Code>" in body
    # Authentication failures come in EC2's error shape too.
    status, _, body = ec2_raw_call(server, {"Action": "DescribeInstanceTypes"}, access_key="nobody")
    assert status == 403 and b"<Response><Errors><Error><Code>InvalidClientTokenId</Code>" in body


# --- Instances: Berth's local container instances ---------------------------

def berth_instances(server, *args):
    import os
    import subprocess
    from conftest import BERTH
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    p = subprocess.run([BERTH, "instances", *args, "--endpoint-url", server.endpoint, "--output", "json"],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_describe_and_terminate_local_instances(server, ec2):
    ecs = client(server.endpoint)
    cluster = unique("ec2api")
    ecs.create_cluster(clusterName=cluster)
    added = berth_instances(server, "add", "--cluster", cluster, "--instance-type", "m7g.large",
                            "--availability-zone", "us-east-1c")["instances"][0]
    iid = added["ec2InstanceId"]
    out = ec2.describe_instances(InstanceIds=[iid])
    [inst] = [i for r in out["Reservations"] for i in r["Instances"]]
    assert inst["InstanceId"] == iid
    assert inst["InstanceType"] == "m7g.large"
    assert inst["State"] == {"Code": 16, "Name": "running"}
    assert inst["Placement"]["AvailabilityZone"] == "us-east-1c"
    assert inst["PrivateIpAddress"] == added["address"]
    assert inst["Architecture"] == "arm64"
    running = ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["running"]},
                                              {"Name": "instance-type", "Values": ["m7g.*"]}])
    assert iid in [i["InstanceId"] for r in running["Reservations"] for i in r["Instances"]]

    changes = ec2.terminate_instances(InstanceIds=[iid])["TerminatingInstances"]
    assert changes == [{"InstanceId": iid, "PreviousState": {"Code": 16, "Name": "running"},
                        "CurrentState": {"Code": 32, "Name": "shutting-down"}}]
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert inst["State"]["Name"] == "terminated"
    assert ecs.describe_clusters(clusters=[cluster])["clusters"][0]["registeredContainerInstancesCount"] == 0

    code, _ = error_code(ec2.describe_instances, InstanceIds=["i-0123456789abcdef0"])
    assert code == "InvalidInstanceID.NotFound"
    code, _ = error_code(ec2.terminate_instances, InstanceIds=["nonsense"])
    assert code == "InvalidInstanceID.Malformed"
