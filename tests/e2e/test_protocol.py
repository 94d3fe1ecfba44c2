"""The wire protocols: JSON 1.1 routing and errors, Query dispatch, SigV4."""

import datetime
import json

import botocore.exceptions
import pytest

from conftest import ECS_TARGET, aws, AwsCliError, client, ecs_call, signed_request, unique


def test_every_response_carries_a_request_id(server):
    status, headers, body = ecs_call(server.endpoint, "ListClusters", {})
    assert status == 200
    assert headers.get("x-amzn-RequestId") or headers.get("x-amzn-requestid")
    status, headers, body = ecs_call(server.endpoint, "NoSuchOperation", {})
    assert status == 400
    assert headers.get("x-amzn-RequestId") or headers.get("x-amzn-requestid")


def test_unknown_operation_and_unknown_target(server):
    status, _, body = ecs_call(server.endpoint, "NoSuchOperation", {})
    assert (status, body["__type"]) == (400, "UnknownOperationException")
    status, _, data = signed_request(
        server.endpoint, "{}",
        {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "NotAService_2020.Describe"})
    assert status == 400
    assert json.loads(data)["__type"] == "UnknownOperationException"


def test_malformed_json_is_a_serialization_exception(server):
    status, _, body = ecs_call(server.endpoint, "CreateCluster", b'{"clusterName": "x",')
    assert (status, body["__type"]) == (400, "SerializationException")
    status, _, body = ecs_call(server.endpoint, "CreateCluster", b'["not", "an", "object"]')
    assert body["__type"] == "SerializationException"


def test_wrong_types_are_rejected(server, ecs_raw):
    status, _, body = ecs_call(server.endpoint, "ListClusters", {"maxResults": "ten"})
    assert (status, body["__type"]) == (400, "SerializationException")
    assert "maxResults" in body["message"]
    status, _, body = ecs_call(server.endpoint, "DescribeClusters", {"clusters": "web"})
    assert body["__type"] == "SerializationException"


def test_missing_required_member(server, ecs_raw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs_raw.describe_task_definition()
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "taskDefinition" in e.value.response["Error"]["Message"]


def test_invalid_enum_value(server, ecs_raw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs_raw.register_task_definition(family=unique("enum"), networkMode="wifi",
                                         containerDefinitions=[{"name": "a", "image": "x", "memory": 64}])
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "networkMode" in e.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs_raw.describe_clusters(include=["EVERYTHING"])
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"


def test_body_over_10_mb_gets_413(server):
    big = json.dumps({"clusterName": "x", "pad": "a" * (10 * 1024 * 1024 + 10)})
    status, _, body = ecs_call(server.endpoint, "CreateCluster", big)
    assert status == 413
    assert body["__type"] == "RequestEntityTooLargeException"


def test_unsigned_request_is_refused(server):
    status, _, data = signed_request(
        server.endpoint, "{}",
        {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{ECS_TARGET}.ListClusters"},
        sign=False)
    assert status in (400, 403)
    assert json.loads(data)["__type"] == "MissingAuthenticationTokenException"


def test_wrong_secret_is_an_invalid_signature(server):
    bad = client(server.endpoint, secret_key="not-the-secret")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bad.list_clusters()
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_unknown_access_key(server):
    with pytest.raises(AwsCliError) as e:
        aws(server.endpoint, "ecs", "list-clusters", access_key="AKIDONTKNOW")
    assert "UnrecognizedClientException" in e.value.stderr


def test_skewed_date_is_expired(server):
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)
    status, _, body = ecs_call(server.endpoint, "ListClusters", {}, when=past)
    assert status == 400
    assert body["__type"] == "InvalidSignatureException"
    assert "expired" in body["message"].lower()
    # Within 15 minutes is fine.
    near = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=10)
    status, _, body = ecs_call(server.endpoint, "ListClusters", {}, when=near)
    assert status == 200


def test_tampered_body_fails_the_signature(server):
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{ECS_TARGET}.CreateCluster"}
    import botocore.auth, botocore.awsrequest, botocore.credentials, urllib.request
    req = botocore.awsrequest.AWSRequest(method="POST", url=server.endpoint + "/",
                                         data='{"clusterName":"a"}', headers=headers)
    botocore.auth.SigV4Auth(botocore.credentials.Credentials("test", "test"), "ecs", "us-east-1").add_auth(req)
    p = req.prepare()
    r = urllib.request.Request(p.url, data=b'{"clusterName":"b"}', method="POST", headers=dict(p.headers))
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(r)
    assert json.loads(e.value.read())["__type"] == "InvalidSignatureException"
    assert "b" not in [c.split("/")[-1] for c in client(server.endpoint).list_clusters()["clusterArns"]]


def test_query_protocol_sts_get_caller_identity(server):
    out = aws(server.endpoint, "sts", "get-caller-identity")
    assert out["Account"] == "000000000000"
    assert out["Arn"] == "arn:aws:iam::000000000000:root"
    sts = client(server.endpoint, service="sts")
    assert sts.get_caller_identity()["Account"] == "000000000000"


def test_query_protocol_errors(server):
    sts = client(server.endpoint, service="sts", secret_key="wrong")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.get_caller_identity()
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    body = "Action=NoSuchAction&Version=2011-06-15"
    status, _, data = signed_request(server.endpoint, body,
                                     {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
                                     service="sts")
    assert status == 400
    text = data.decode()
    assert "<ErrorResponse>" in text and "<Code>UnknownOperationException</Code>" in text
    assert "<Type>Sender</Type>" in text and "<RequestId>" in text
    status, _, data = signed_request(server.endpoint, "Action=GetCallerIdentity&Version=2011-06-15",
                                     {"Content-Type": "application/x-www-form-urlencoded"},
                                     service="sts", sign=False)
    assert status == 403
    assert "<Code>MissingAuthenticationToken</Code>" in data.decode()


def test_region_comes_from_the_credential_scope(server):
    name = unique("regional")
    west = client(server.endpoint, region="eu-west-1")
    arn = west.create_cluster(clusterName=name)["cluster"]["clusterArn"]
    assert arn == f"arn:aws:ecs:eu-west-1:000000000000:cluster/{name}"
    east = client(server.endpoint, region="us-east-1")
    assert east.describe_clusters(clusters=[name])["failures"][0]["reason"] == "MISSING"


def test_additional_keys_from_file_and_environment(tmp_path):
    from conftest import Server
    creds = tmp_path / "keys"
    creds.write_text("# extra keys\nAKIAFILE filesecret 111111111111\n")
    s = Server(str(tmp_path), ["--credentials-file", str(creds)],
               env={"BERTH_CREDENTIALS": "AKIAENV:envsecret:222222222222"}).start()
    try:
        a = client(s.endpoint, service="sts", access_key="AKIAFILE", secret_key="filesecret")
        assert a.get_caller_identity()["Account"] == "111111111111"
        b = client(s.endpoint, access_key="AKIAENV", secret_key="envsecret")
        arn = b.create_cluster(clusterName="mine")["cluster"]["clusterArn"]
        assert ":222222222222:" in arn
        # Accounts do not see each other's clusters.
        assert client(s.endpoint).list_clusters()["clusterArns"] == []
    finally:
        s.stop()


# A signature scoped to another service than the one called is refused, as
# AWS refuses it, whatever the service.
@pytest.mark.parametrize("target,service", [
    (f"{ECS_TARGET}.ListClusters", "ecs"),
    ("Logs_20140328.DescribeLogGroups", "logs"),
])
def test_signature_scoped_to_another_service_is_refused_json(server, target, service):
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target}
    status, _, data = signed_request(server.endpoint, "{}", headers, service="s3")
    body = json.loads(data)
    assert (status, body["__type"]) == (400, "InvalidSignatureException")
    assert body["message"] == f"Credential should be scoped to correct service: '{service}'. "
    # Signed for the right service, the same call is served.
    status, _, _ = signed_request(server.endpoint, "{}", headers, service=service)
    assert status == 200


@pytest.mark.parametrize("form,service", [
    ("Action=GetCallerIdentity&Version=2011-06-15", "sts"),
    ("Action=DescribeInstanceTypes&Version=2016-11-15", "ec2"),
    ("Action=DescribeAutoScalingGroups&Version=2011-01-01", "autoscaling"),
])
def test_signature_scoped_to_another_service_is_refused_query(server, form, service):
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    status, _, data = signed_request(server.endpoint, form, headers, service="s3")
    text = data.decode()
    assert status == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in text
    assert f"Credential should be scoped to correct service: &apos;{service}&apos;." in text \
        or f"Credential should be scoped to correct service: '{service}'." in text
    status, _, _ = signed_request(server.endpoint, form, headers, service=service)
    assert status == 200


SERVED = "it serves ECS (subset), CloudWatch Logs"


def cli_error(server, *args):
    with pytest.raises(AwsCliError) as e:
        aws(server.endpoint, *args)
    return e.value.stderr.strip()


def test_unserved_services_are_named_in_their_own_error_shape(server):
    # REST-XML (S3): the operation is named from its route.
    err = cli_error(server, "s3api", "create-bucket", "--bucket", "b")
    assert "(NotImplemented) when calling the CreateBucket operation: " \
           "Berth does not serve the S3 operation CreateBucket; " + SERVED in err, err
    err = cli_error(server, "s3", "ls")
    assert "Berth does not serve the S3 operation ListBuckets" in err, err
    # REST-JSON (Lambda).
    err = cli_error(server, "lambda", "get-function", "--function-name", "f")
    assert "(UnknownOperationException) when calling the GetFunction operation: " \
           "Berth does not serve the Lambda operation GetFunction; " + SERVED in err, err
    # Query (SNS), JSON (Kinesis), Smithy RPC v2 CBOR (CloudWatch).
    err = cli_error(server, "sns", "list-topics")
    assert "(UnknownOperationException) when calling the ListTopics operation: " \
           "Berth does not serve the SNS operation ListTopics" in err, err
    err = cli_error(server, "kinesis", "list-streams")
    assert "Berth does not serve the Kinesis operation ListStreams; " + SERVED in err, err
    err = cli_error(server, "cloudwatch", "list-metrics")
    assert "Berth does not serve the CloudWatch operation ListMetrics" in err, err


def test_unserved_operations_of_served_services(server):
    err = cli_error(server, "ecs", "describe-daemon", "--daemon-arn",
                    "arn:aws:ecs:us-east-1:000000000000:daemon/c/d")
    assert "(UnknownOperationException) when calling the DescribeDaemon operation: " \
           "Berth does not serve the ECS operation DescribeDaemon yet" in err, err
    err = cli_error(server, "ec2", "describe-vpcs")
    assert "(InvalidAction) when calling the DescribeVpcs operation: " \
           "Berth does not serve the EC2 operation DescribeVpcs yet" in err, err
    err = cli_error(server, "logs", "put-metric-filter", "--log-group-name", "g",
                    "--filter-name", "f", "--filter-pattern", "x", "--metric-transformations",
                    "metricName=m,metricNamespace=n,metricValue=1")
    assert "Berth does not serve the CloudWatch Logs operation PutMetricFilter yet" in err, err
    # SSM is served for Parameter Store only.
    err = cli_error(server, "ssm", "describe-instance-information")
    assert "Berth does not serve the SSM operation DescribeInstanceInformation yet" in err, err


def test_served_services_are_listed(server):
    import urllib.request
    with urllib.request.urlopen(server.endpoint + "/_berth/services") as r:
        listing = json.loads(r.read())
    by_name = {s["name"]: s for s in listing["services"]}
    assert "RunTask" in by_name["ECS"]["operations"]
    assert "CreateService" in by_name["ECS"]["operations"]
    assert "CreateTaskSet" in by_name["ECS"]["operations"]
    assert "DescribeDaemon" not in by_name["ECS"]["operations"]
    assert by_name["STS"]["protocol"] == "query"
    assert "DescribeInstanceTypes" in by_name["EC2"]["operations"]
