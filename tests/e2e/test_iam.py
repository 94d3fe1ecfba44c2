"""IAM and STS end to end: users, roles, groups of policies and instance
profiles through boto3 and the aws CLI; a user's keys limited to what its
policies allow, at once; AssumeRole with a trust policy and an ExternalId
(the seed-000 flow) whose temporary credentials work only with their
session token; and errors in IAM's words."""

import json
import os
from datetime import datetime, timezone

import boto3
import botocore.config
import botocore.exceptions
import pytest

from conftest import REGION, AwsCliError, client, unique

ACCOUNT = "000000000000"
ROOT_ARN = f"arn:aws:iam::{ACCOUNT}:root"
ECS_FULL_ACCESS = "arn:aws:iam::aws:policy/AmazonECS_FullAccess"
EXEC_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
EXTERNAL_ID = "cloudburst-external-id"


@pytest.fixture
def iam(server):
    return client(server.endpoint, "iam")


@pytest.fixture
def sts(server):
    return client(server.endpoint, "sts")


def session_client(endpoint, service, key_id, secret, token=None):
    """A client of a boto3 session holding someone else's credentials."""
    session = boto3.Session(aws_access_key_id=key_id, aws_secret_access_key=secret,
                            aws_session_token=token, region_name=REGION)
    return session.client(service, endpoint_url=endpoint,
                          config=botocore.config.Config(retries={"max_attempts": 1}))


def error_of(call):
    """(code, HTTP status, message) of a call that must fail."""
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    r = e.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"].get("Message", "")


def cli_error(cli, *args, **kw):
    """The stderr of an aws CLI call that must fail."""
    with pytest.raises(AwsCliError) as e:
        cli(*args, **kw)
    return e.value.stderr


def allow(action, resource="*", sid=None):
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    if sid:
        statement["Sid"] = sid
    return {"Version": "2012-10-17", "Statement": [statement]}


def trust_policy(principal, condition=None):
    statement = {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


def user_with_key(iam, name):
    """A user with an access key: (user ARN, key id, secret)."""
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return arn, key["AccessKeyId"], key["SecretAccessKey"]


def no_policy_allows(arn, action):
    return f"User: {arn} is not authorized to perform: {action} because no identity-based policy allows the {action} action"


def test_seed_flow_user_assumes_role_with_external_id_and_uses_ecs(server, iam, ecs):
    suffix = os.urandom(4).hex()
    user = f"cloudburst-{suffix}"
    user_arn, key_id, secret = user_with_key(iam, user)
    assert user_arn == f"arn:aws:iam::{ACCOUNT}:user/{user}"
    assert key_id.startswith("AKIA") and len(key_id) == 20
    role = f"CloudBurstFargateRole-{suffix}"
    trust = trust_policy({"AWS": user_arn}, {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}})
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    assert role_arn == f"arn:aws:iam::{ACCOUNT}:role/{role}"
    iam.attach_role_policy(RoleName=role, PolicyArn=ECS_FULL_ACCESS)
    cluster_arn = ecs.create_cluster(clusterName=f"cloudburst-{suffix}")["cluster"]["clusterArn"]

    user_sts = session_client(server.endpoint, "sts", key_id, secret)
    # A wrong ExternalId, or none, does not meet the trust policy's condition.
    for extra in ({"ExternalId": "not-the-external-id"}, {}):
        code, status, message = error_of(lambda: user_sts.assume_role(
            RoleArn=role_arn, RoleSessionName="cloudburst-session", **extra))
        assert (code, status) == ("AccessDenied", 403), extra
        assert message.startswith(
            f"User: {user_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"), message

    out = user_sts.assume_role(RoleArn=role_arn, RoleSessionName="cloudburst-session", ExternalId=EXTERNAL_ID)
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and creds["SessionToken"]
    assert creds["Expiration"] > datetime.now(timezone.utc)
    session_arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/cloudburst-session"
    assert out["AssumedRoleUser"]["Arn"] == session_arn
    role_id = out["AssumedRoleUser"]["AssumedRoleId"]
    assert role_id.startswith("AROA") and role_id.endswith(":cloudburst-session")

    temp = (creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    role_ecs = session_client(server.endpoint, "ecs", *temp)
    listed = [a for page in role_ecs.get_paginator("list_clusters").paginate() for a in page["clusterArns"]]
    assert cluster_arn in listed
    who = session_client(server.endpoint, "sts", *temp).get_caller_identity()
    assert (who["Arn"], who["Account"], who["UserId"]) == (session_arn, ACCOUNT, role_id)

    # The user itself holds no policy: its own keys may not use ECS.
    user_ecs = session_client(server.endpoint, "ecs", key_id, secret)
    code, _, message = error_of(user_ecs.list_clusters)
    assert code == "AccessDeniedException"
    assert message == no_policy_allows(user_arn, "ecs:ListClusters")


def test_cli_user_may_do_what_its_policies_allow_at_once(cli):
    name = unique("cli-user")
    arn = cli("iam", "create-user", "--user-name", name)["User"]["Arn"]
    key = cli("iam", "create-access-key", "--user-name", name)["AccessKey"]
    as_user = {"access_key": key["AccessKeyId"], "secret_key": key["SecretAccessKey"]}

    err = cli_error(cli, "ecs", "list-clusters", **as_user)
    assert "(AccessDeniedException)" in err and no_policy_allows(arn, "ecs:ListClusters") in err
    cli("iam", "attach-user-policy", "--user-name", name, "--policy-arn", ECS_FULL_ACCESS)
    assert isinstance(cli("ecs", "list-clusters", **as_user)["clusterArns"], list)
    assert cli("iam", "list-attached-user-policies", "--user-name", name)["AttachedPolicies"] == [
        {"PolicyName": "AmazonECS_FullAccess", "PolicyArn": ECS_FULL_ACCESS}]
    cli("iam", "detach-user-policy", "--user-name", name, "--policy-arn", ECS_FULL_ACCESS)
    err = cli_error(cli, "ecs", "list-clusters", **as_user)
    assert "(AccessDeniedException)" in err and no_policy_allows(arn, "ecs:ListClusters") in err

    # IAM is guarded too (AccessDenied, as Query services word it), until an
    # inline policy lets the user read itself, and only itself.
    err = cli_error(cli, "iam", "get-user", "--user-name", name, **as_user)
    assert "(AccessDenied)" in err
    assert (f"User: {arn} is not authorized to perform: iam:GetUser on resource: {arn} "
            "because no identity-based policy allows the iam:GetUser action") in err
    cli("iam", "put-user-policy", "--user-name", name, "--policy-name", "read-self",
        "--policy-document", json.dumps(allow("iam:GetUser", arn)))
    me = cli("iam", "get-user", "--user-name", name, **as_user)["User"]
    assert (me["Arn"], me["UserName"]) == (arn, name) and me["UserId"].startswith("AIDA")
    err = cli_error(cli, "iam", "get-user", "--user-name", unique("someone-else"), **as_user)
    assert "(AccessDenied)" in err and "iam:GetUser on resource:" in err
    # The inline policy is not ECS: list-clusters stays denied.
    assert "(AccessDeniedException)" in cli_error(cli, "ecs", "list-clusters", **as_user)


def test_temporary_credentials_require_their_session_token(server, sts):
    out = sts.get_session_token()["Credentials"]
    key_id, secret, token = out["AccessKeyId"], out["SecretAccessKey"], out["SessionToken"]
    assert key_id.startswith("ASIA") and token
    wrong = "IQoJb3JpZ2luX2VjE" + "A" * 128
    for extra in ({}, {"aws_session_token": wrong}):
        temp_sts = client(server.endpoint, "sts", access_key=key_id, secret_key=secret, **extra)
        code, status, message = error_of(temp_sts.get_caller_identity)
        assert (code, status) == ("InvalidClientTokenId", 403), extra
        assert message == "The security token included in the request is invalid.", message
        temp_ecs = client(server.endpoint, "ecs", access_key=key_id, secret_key=secret, **extra)
        assert error_of(temp_ecs.list_clusters)[0] == "UnrecognizedClientException", extra
    # With its token the root's session is the root.
    who = client(server.endpoint, "sts", access_key=key_id, secret_key=secret,
                 aws_session_token=token).get_caller_identity()
    assert (who["Arn"], who["Account"], who["UserId"]) == (ROOT_ARN, ACCOUNT, ACCOUNT)
    temp_ecs = client(server.endpoint, "ecs", access_key=key_id, secret_key=secret, aws_session_token=token)
    assert isinstance(temp_ecs.list_clusters()["clusterArns"], list)
    assert sts.get_access_key_info(AccessKeyId=key_id)["Account"] == ACCOUNT


def test_roles_inline_and_managed_policies_round_trip(cli, iam):
    role = unique("app-role")
    trust = trust_policy({"Service": "ecs-tasks.amazonaws.com"})
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust), Description="app")
    got = cli("iam", "get-role", "--role-name", role)["Role"]
    assert got["AssumeRolePolicyDocument"] == trust
    assert (got["Description"], got["MaxSessionDuration"]) == ("app", 3600)
    assert got["RoleId"].startswith("AROA")

    logs = allow(["logs:CreateLogStream", "logs:PutLogEvents"])
    iam.put_role_policy(RoleName=role, PolicyName="logs", PolicyDocument=json.dumps(logs))
    assert iam.get_role_policy(RoleName=role, PolicyName="logs")["PolicyDocument"] == logs
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == ["logs"]
    bad = {"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Action": "ecs:*", "Resource": "*"}]}
    assert error_of(lambda: iam.put_role_policy(RoleName=role, PolicyName="bad", PolicyDocument=json.dumps(bad)))[
        0] == "MalformedPolicyDocument"
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == ["logs"]

    # Managed policies keep five versions; the default one cannot go.
    name = unique("app-policy")
    docs = {f"v{n}": allow("ecs:List*", sid=f"Version{n}") for n in range(1, 6)}
    policy = iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(docs["v1"]))["Policy"]
    arn = policy["Arn"]
    assert (arn, policy["DefaultVersionId"]) == (f"arn:aws:iam::{ACCOUNT}:policy/{name}", "v1")
    for n in range(2, 6):
        made = iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(docs[f"v{n}"]),
                                         SetAsDefault=True)["PolicyVersion"]
        assert (made["VersionId"], made["IsDefaultVersion"]) == (f"v{n}", True)
    code, status, _ = error_of(lambda: iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(docs["v1"])))
    assert (code, status) == ("LimitExceeded", 409)
    code, status, _ = error_of(lambda: iam.delete_policy_version(PolicyArn=arn, VersionId="v5"))
    assert (code, status) == ("DeleteConflict", 409)
    versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    assert sorted(v["VersionId"] for v in versions) == ["v1", "v2", "v3", "v4", "v5"]
    assert [v["VersionId"] for v in versions if v["IsDefaultVersion"]] == ["v5"]
    assert iam.get_policy_version(PolicyArn=arn, VersionId="v3")["PolicyVersion"]["Document"] == docs["v3"]
    iam.set_default_policy_version(PolicyArn=arn, VersionId="v2")
    iam.delete_policy_version(PolicyArn=arn, VersionId="v5")
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v2"
    # Numbers are not reused.
    again = iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(docs["v1"]))["PolicyVersion"]
    assert again["VersionId"] == "v6"

    aws_scope = {p["Arn"] for p in cli("iam", "list-policies", "--scope", "AWS")["Policies"]}
    assert {EXEC_POLICY, ECS_FULL_ACCESS} <= aws_scope and arn not in aws_scope
    local_scope = {p["Arn"] for p in cli("iam", "list-policies", "--scope", "Local")["Policies"]}
    assert arn in local_scope and EXEC_POLICY not in local_scope


def test_users_and_instance_profiles_fail_in_iams_words(cli, iam):
    user = unique("app-user")
    iam.create_user(UserName=user)
    assert error_of(lambda: iam.create_user(UserName=user))[:2] == ("EntityAlreadyExists", 409)
    key_id = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    assert error_of(lambda: iam.delete_user(UserName=user)) == (
        "DeleteConflict", 409, "Cannot delete entity, must delete access keys first.")
    assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]] == [key_id]
    iam.delete_access_key(UserName=user, AccessKeyId=key_id)
    iam.delete_user(UserName=user)
    assert error_of(lambda: iam.get_user(UserName=user)) == (
        "NoSuchEntity", 404, f"The user with name {user} cannot be found.")
    err = cli_error(cli, "iam", "get-user", "--user-name", user)
    assert "(NoSuchEntity)" in err and f"The user with name {user} cannot be found." in err

    trust = json.dumps(trust_policy({"Service": "ec2.amazonaws.com"}))
    role, other = unique("instance-role"), unique("other-role")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)
    iam.create_role(RoleName=other, AssumeRolePolicyDocument=trust)
    profile = unique("profile")
    made = iam.create_instance_profile(InstanceProfileName=profile)["InstanceProfile"]
    assert made["Arn"] == f"arn:aws:iam::{ACCOUNT}:instance-profile/{profile}"
    iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=role)
    code, status, _ = error_of(lambda: iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=other))
    assert (code, status) == ("LimitExceeded", 409)
    got = iam.get_instance_profile(InstanceProfileName=profile)["InstanceProfile"]
    assert [r["RoleName"] for r in got["Roles"]] == [role]
    listed = iam.list_instance_profiles_for_role(RoleName=role)["InstanceProfiles"]
    assert [p["InstanceProfileName"] for p in listed] == [profile]
    assert iam.list_instance_profiles_for_role(RoleName=other)["InstanceProfiles"] == []
    assert error_of(lambda: iam.delete_role(RoleName=role))[:2] == ("DeleteConflict", 409)
    assert cli("iam", "list-account-aliases")["AccountAliases"] == []


def test_root_may_not_assume_roles_and_sessions_stay_within_the_maximum(server, iam, sts):
    role = unique("account-role")
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(
        trust_policy({"AWS": ROOT_ARN})))["Role"]["Arn"]
    assert error_of(lambda: sts.assume_role(RoleArn=role_arn, RoleSessionName="root")) == (
        "AccessDenied", 403, "Roles may not be assumed by root accounts.")

    # A trust policy naming the account also needs the caller's own permission.
    user = unique("assumer")
    _, key_id, secret = user_with_key(iam, user)
    user_sts = session_client(server.endpoint, "sts", key_id, secret)
    assert error_of(lambda: user_sts.assume_role(RoleArn=role_arn, RoleSessionName="sess"))[:2] == (
        "AccessDenied", 403)
    iam.put_user_policy(UserName=user, PolicyName="assume",
                        PolicyDocument=json.dumps(allow("sts:AssumeRole", role_arn)))
    code, _, message = error_of(lambda: user_sts.assume_role(RoleArn=role_arn, RoleSessionName="sess",
                                                             DurationSeconds=3601))
    assert code == "ValidationError"
    assert message == "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
    out = user_sts.assume_role(RoleArn=role_arn, RoleSessionName="sess", DurationSeconds=900)
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/sess"


def test_task_execution_role_is_allowed_what_its_policy_grants(cli, iam):
    name = f"ecsTaskExecutionRole-{os.urandom(4).hex()}"
    trust = trust_policy({"Service": "ecs-tasks.amazonaws.com"})
    role_arn = cli("iam", "create-role", "--role-name", name,
                   "--assume-role-policy-document", json.dumps(trust))["Role"]["Arn"]
    assert role_arn == f"arn:aws:iam::{ACCOUNT}:role/{name}"
    cli("iam", "attach-role-policy", "--role-name", name, "--policy-arn", EXEC_POLICY)
    assert cli("iam", "list-attached-role-policies", "--role-name", name)["AttachedPolicies"] == [
        {"PolicyName": "AmazonECSTaskExecutionRolePolicy", "PolicyArn": EXEC_POLICY}]
    holders = iam.list_entities_for_policy(PolicyArn=EXEC_POLICY)["PolicyRoles"]
    assert name in [r["RoleName"] for r in holders]

    results = iam.simulate_principal_policy(
        PolicySourceArn=role_arn, ActionNames=["ecr:GetAuthorizationToken", "ecs:RunTask"])["EvaluationResults"]
    assert {r["EvalActionName"]: r["EvalDecision"] for r in results} == {
        "ecr:GetAuthorizationToken": "allowed", "ecs:RunTask": "implicitDeny"}
    # AWS managed policies are AWS's to change.
    code, status, _ = error_of(lambda: iam.delete_policy(PolicyArn=EXEC_POLICY))
    assert (code, status) == ("AccessDenied", 403)
