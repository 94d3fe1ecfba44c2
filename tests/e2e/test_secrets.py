"""Secrets end to end: KMS, SSM Parameter Store and Secrets Manager through
the aws CLI and boto3, container `secrets` injected into FARGATE and EC2
tasks on real Docker, failures in ECS's words, and no plain value anywhere
under the data dir."""

import base64
import os

import botocore.exceptions
import pytest

from conftest import BUSYBOX, client, unique, wait_status
from test_ec2_tasks import add_instances, remove_instances

NET = {"awsvpcConfiguration": {"subnets": ["subnet-0a1b2c3d"]}}
EXEC_ROLE = "arn:aws:iam::000000000000:role/ecsTaskExecutionRole"


@pytest.fixture
def ssm(server):
    return client(server.endpoint, "ssm")


@pytest.fixture
def sm(server):
    return client(server.endpoint, "secretsmanager")


@pytest.fixture
def kms(server):
    return client(server.endpoint, "kms")


def code_of(excinfo):
    return excinfo.value.response["Error"]["Code"]


def test_kms_encrypts_and_decrypts_with_the_cli(cli, tmp_path):
    key = cli("kms", "create-key", "--description", "app")["KeyMetadata"]
    assert key["KeyState"] == "Enabled" and key["KeyManager"] == "CUSTOMER"
    alias = unique("alias/app")
    cli("kms", "create-alias", "--alias-name", alias, "--target-key-id", key["KeyId"])
    # The CLI takes blobs from files (fileb://) and prints them as base64.
    plain = tmp_path / "plain"
    plain.write_bytes(b"hello")
    blob = cli("kms", "encrypt", "--key-id", alias, "--plaintext", f"fileb://{plain}",
               "--encryption-context", "purpose=test")["CiphertextBlob"]
    sealed = tmp_path / "sealed"
    sealed.write_bytes(base64.b64decode(blob))
    out = cli("kms", "decrypt", "--ciphertext-blob", f"fileb://{sealed}", "--encryption-context", "purpose=test")
    assert base64.b64decode(out["Plaintext"]) == b"hello"
    assert out["KeyId"] == key["Arn"]
    with pytest.raises(Exception) as e:
        cli("kms", "decrypt", "--ciphertext-blob", f"fileb://{sealed}")
    assert "InvalidCiphertextException" in str(e.value)
    aliases = [a["AliasName"] for a in cli("kms", "list-aliases")["Aliases"]]
    assert alias in aliases


def test_parameters_versions_paths_labels_and_history(ssm, cli):
    p = "/" + unique("app")
    assert ssm.put_parameter(Name=f"{p}/url", Value="http://a", Type="String")["Version"] == 1
    assert ssm.put_parameter(Name=f"{p}/url", Value="http://b", Type="String", Overwrite=True)["Version"] == 2
    ssm.put_parameter(Name=f"{p}/db/password", Value="pw-1", Type="SecureString")
    ssm.put_parameter(Name=f"{p}/hosts", Value="a,b,c", Type="StringList")
    got = cli("ssm", "get-parameter", "--name", f"{p}/db/password", "--with-decryption")["Parameter"]
    assert got["Value"] == "pw-1" and got["Type"] == "SecureString"
    assert got["ARN"].endswith(f":parameter{p}/db/password")
    sealed = ssm.get_parameter(Name=f"{p}/db/password")["Parameter"]["Value"]
    assert sealed != "pw-1"
    assert ssm.get_parameter(Name=f"{p}/url:1")["Parameter"]["Value"] == "http://a"
    one_level = ssm.get_parameters_by_path(Path=p)["Parameters"]
    assert sorted(x["Name"] for x in one_level) == [f"{p}/hosts", f"{p}/url"]
    # The CLI pages GetParametersByPath itself (10 at most per call).
    every = cli("ssm", "get-parameters-by-path", "--path", p, "--recursive", "--with-decryption")["Parameters"]
    assert {x["Name"]: x["Value"] for x in every}[f"{p}/db/password"] == "pw-1"
    many = ssm.get_parameters(Names=[f"{p}/url", f"{p}/none"])
    assert [x["Name"] for x in many["Parameters"]] == [f"{p}/url"]
    assert many["InvalidParameters"] == [f"{p}/none"]
    ssm.label_parameter_version(Name=f"{p}/url", ParameterVersion=1, Labels=["stable"])
    assert ssm.get_parameter(Name=f"{p}/url:stable")["Parameter"]["Value"] == "http://a"
    history = ssm.get_parameter_history(Name=f"{p}/url")["Parameters"]
    assert [(h["Version"], h["Value"], h["Labels"]) for h in history] == [
        (1, "http://a", ["stable"]), (2, "http://b", [])]
    described = ssm.describe_parameters(ParameterFilters=[{"Key": "Path", "Option": "Recursive", "Values": [p]},
                                                          {"Key": "Type", "Values": ["SecureString"]}])
    [meta] = described["Parameters"]
    assert meta["Name"] == f"{p}/db/password" and meta["KeyId"].startswith("arn:aws:kms:")
    assert "Value" not in meta
    ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=f"{p}/url", Tags=[{"Key": "team", "Value": "a"}])
    assert ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=f"{p}/url")["TagList"] == [
        {"Key": "team", "Value": "a"}]
    out = ssm.delete_parameters(Names=[f"{p}/url", f"{p}/ghost"])
    assert out["DeletedParameters"] == [f"{p}/url"] and out["InvalidParameters"] == [f"{p}/ghost"]


def test_parameter_store_bad_input_changes_nothing(ssm):
    p = "/" + unique("bad")
    ssm.put_parameter(Name=p, Value="v", Type="String")
    cases = [
        (lambda: ssm.get_parameter(Name=p + "-missing"), "ParameterNotFound"),
        (lambda: ssm.put_parameter(Name=p, Value="w", Type="String"), "ParameterAlreadyExists"),
        (lambda: ssm.get_parameter(Name=p + ":7"), "ParameterVersionNotFound"),
        (lambda: ssm.put_parameter(Name="/l" * 16, Value="v", Type="String"), "HierarchyLevelLimitExceededException"),
        (lambda: ssm.put_parameter(Name="no/slash", Value="v", Type="String"), "ValidationException"),
        (lambda: ssm.put_parameter(Name="/aws/mine", Value="v", Type="String"), "ValidationException"),
        (lambda: ssm.put_parameter(Name=p + "x", Value="x" * 4097, Type="String", Tier="Standard"),
         "ValidationException"),
        (lambda: ssm.put_parameter(Name=p + "n", Value="abc", Type="String", AllowedPattern="^\\d+$"),
         "ParameterPatternMismatchException"),
        (lambda: ssm.delete_parameter(Name=p + "-missing"), "ParameterNotFound"),
    ]
    for call, code in cases:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert code_of(e) == code, e.value
    assert ssm.get_parameter(Name=p)["Parameter"]["Value"] == "v"
    assert ssm.get_parameter_history(Name=p)["Parameters"][-1]["Version"] == 1
    for name in (p + "x", p + "n"):
        with pytest.raises(botocore.exceptions.ClientError):
            ssm.get_parameter(Name=name)


def test_secrets_manager_versions_and_deletion(sm, cli):
    name = unique("prod/db")
    made = sm.create_secret(Name=name, SecretString='{"user": "app", "password": "pw-1"}')
    arn = made["ARN"]
    assert arn.startswith(f"arn:aws:secretsmanager:us-east-1:000000000000:secret:{name}-") and len(arn) == len(
        f"arn:aws:secretsmanager:us-east-1:000000000000:secret:{name}-") + 6
    assert sm.get_secret_value(SecretId=name)["SecretString"] == '{"user": "app", "password": "pw-1"}'
    sm.put_secret_value(SecretId=arn, SecretString="second")
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "second"
    previous = sm.get_secret_value(SecretId=arn, VersionStage="AWSPREVIOUS")
    assert previous["VersionId"] == made["VersionId"]
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert sorted(sum(stages.values(), [])) == ["AWSCURRENT", "AWSPREVIOUS"]
    got = cli("secretsmanager", "get-secret-value", "--secret-id", name)
    assert got["SecretString"] == "second" and got["ARN"] == arn
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.create_secret(Name=name, SecretString="x")
    assert code_of(e) == "ResourceExistsException"
    sm.delete_secret(SecretId=arn, RecoveryWindowInDays=7)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.get_secret_value(SecretId=arn)
    assert code_of(e) == "InvalidRequestException"
    sm.restore_secret(SecretId=arn)
    assert sm.get_secret_value(SecretId=arn)["SecretString"] == "second"
    sm.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.get_secret_value(SecretId=arn)
    assert code_of(e) == "ResourceNotFoundException"


@pytest.fixture
def fargate_cluster(ecs, images):
    name = unique("sec")
    ecs.create_cluster(clusterName=name)
    return name


def checking_container(expected):
    """A container that exits 0 only when each variable holds its value
    (compared by digest, so the command does not hold the value)."""
    import hashlib
    tests = " && ".join(
        f'[ "$(printf %s "${k}" | sha256sum | cut -d" " -f1)" = "{hashlib.sha256(v.encode()).hexdigest()}" ]'
        for k, v in expected.items()) or "true"
    return {"name": "main", "image": BUSYBOX, "command": ["sh", "-c", f"{tests} && exit 0 || exit 7"]}


def test_fargate_task_gets_ssm_and_secrets_manager_values(ecs, ssm, sm, fargate_cluster):
    p = "/" + unique("svc")
    ssm.put_parameter(Name=f"{p}/database-url", Value="postgres://app:pw@db:5432/app", Type="SecureString")
    ssm.put_parameter(Name=f"{p}/mode", Value="blue", Type="String")
    arn = sm.create_secret(Name=unique("openai"), SecretString='{"key": "sk-test-1", "org": "o"}')["ARN"]
    container = checking_container({"DATABASE_URL": "postgres://app:pw@db:5432/app", "MODE": "blue",
                                    "OPENAI_API_KEY": "sk-test-1"})
    container["secrets"] = [
        {"name": "DATABASE_URL", "valueFrom": f"{p}/database-url"},
        {"name": "MODE", "valueFrom": f"arn:aws:ssm:us-east-1:000000000000:parameter{p}/mode"},
        {"name": "OPENAI_API_KEY", "valueFrom": f"{arn}:key::"},
    ]
    td = ecs.register_task_definition(
        family=unique("sec"), networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256",
        memory="512", executionRoleArn=EXEC_ROLE, containerDefinitions=[container])["taskDefinition"]
    [t] = ecs.run_task(cluster=fargate_cluster, taskDefinition=td["taskDefinitionArn"], launchType="FARGATE",
                       networkConfiguration=NET)["tasks"]
    done = wait_status(ecs, fargate_cluster, t["taskArn"], "STOPPED")
    assert done["containers"][0]["exitCode"] == 0, done
    shown = str(done) + str(ecs.describe_task_definition(taskDefinition=td["taskDefinitionArn"]))
    assert "pw@db" not in shown and "sk-test-1" not in shown


def test_a_missing_secret_fails_the_task_as_ecs_does(ecs, sm, fargate_cluster):
    container = checking_container({})
    container["secrets"] = [{"name": "A", "valueFrom": "/" + unique("missing")}]
    td = ecs.register_task_definition(
        family=unique("sec"), networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256",
        memory="512", executionRoleArn=EXEC_ROLE, containerDefinitions=[container])["taskDefinition"]
    [t] = ecs.run_task(cluster=fargate_cluster, taskDefinition=td["taskDefinitionArn"], launchType="FARGATE",
                       networkConfiguration=NET)["tasks"]
    done = wait_status(ecs, fargate_cluster, t["taskArn"], "STOPPED")
    assert done["stopCode"] == "TaskFailedToStart"
    assert done["stoppedReason"].startswith(
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval "
        "failed: unable to retrieve secrets from ssm"), done["stoppedReason"]
    gone = "arn:aws:secretsmanager:us-east-1:000000000000:secret:" + unique("gone") + "-AbCdEf"
    container["secrets"] = [{"name": "A", "valueFrom": gone}]
    td = ecs.register_task_definition(
        family=unique("sec"), networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256",
        memory="512", executionRoleArn=EXEC_ROLE, containerDefinitions=[container])["taskDefinition"]
    [t] = ecs.run_task(cluster=fargate_cluster, taskDefinition=td["taskDefinitionArn"], launchType="FARGATE",
                       networkConfiguration=NET)["tasks"]
    done = wait_status(ecs, fargate_cluster, t["taskArn"], "STOPPED")
    assert "unable to retrieve secret from asm" in done["stoppedReason"], done["stoppedReason"]
    assert "ResourceNotFoundException" in done["stoppedReason"], done["stoppedReason"]


def test_ec2_task_gets_its_secrets(server, ecs, ssm, images):
    cluster = unique("sec-ec2")
    ecs.create_cluster(clusterName=cluster)
    made = add_instances(server, cluster)
    try:
        name = "/" + unique("ec2") + "/token"
        ssm.put_parameter(Name=name, Value="tok-42", Type="SecureString")
        container = dict(checking_container({"TOKEN": "tok-42"}), memory=64)
        container["secrets"] = [{"name": "TOKEN", "valueFrom": name}]
        td = ecs.register_task_definition(family=unique("sec"), requiresCompatibilities=["EC2"],
                                          executionRoleArn=EXEC_ROLE,
                                          containerDefinitions=[container])["taskDefinition"]
        out = ecs.run_task(cluster=cluster, taskDefinition=td["taskDefinitionArn"], launchType="EC2")
        assert out["failures"] == [], out["failures"]
        [t] = out["tasks"]
        done = wait_status(ecs, cluster, t["taskArn"], "STOPPED")
        assert done["containers"][0]["exitCode"] == 0, done
    finally:
        remove_instances(server, cluster, made)


def test_no_plain_secret_is_stored_under_the_data_dir(fresh_server):
    ssm = client(fresh_server.endpoint, "ssm")
    sm = client(fresh_server.endpoint, "secretsmanager")
    marker = "PLAIN-" + os.urandom(8).hex()
    ssm.put_parameter(Name="/leak/param", Value=marker, Type="SecureString")
    sm.create_secret(Name="leak-secret", SecretString=marker)
    sm.put_secret_value(SecretId="leak-secret", SecretBinary=marker.encode())
    assert ssm.get_parameter(Name="/leak/param", WithDecryption=True)["Parameter"]["Value"] == marker
    fresh_server.stop()
    found = []
    for root, _, files in os.walk(fresh_server.data_dir):
        for f in files:
            path = os.path.join(root, f)
            with open(path, "rb") as fh:
                if marker.encode() in fh.read():
                    found.append(path)
    assert found == [], found
    assert marker not in fresh_server.log()
    key = os.path.join(fresh_server.data_dir, "kms", "master.key")
    assert oct(os.stat(key).st_mode & 0o777) == "0o600"
    # Acknowledged writes survive a restart, and decrypt with the same key.
    fresh_server.start()
    again = client(fresh_server.endpoint, "ssm").get_parameter(Name="/leak/param", WithDecryption=True)
    assert again["Parameter"]["Value"] == marker
