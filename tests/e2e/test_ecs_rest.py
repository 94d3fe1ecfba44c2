"""The rest of the ECS API, driven by the aws CLI and boto3: account
settings, task protection, service deployments stopped by hand, the agent's
endpoints, and task sets for the EXTERNAL deployment controller."""

import time

import botocore.exceptions
import pytest

from conftest import aws, client, unique
from test_services import create, service_tasks, steady, stop_service, wait_service, web_td

ROOT = "arn:aws:iam::000000000000:root"
USER = "arn:aws:iam::000000000000:user/alice"


def code_of(excinfo):
    return excinfo.value.response["Error"]["Code"]


def test_account_settings_per_principal_over_the_account_default(fresh_server):
    ecs = client(fresh_server.endpoint)
    cli = lambda *a: aws(fresh_server.endpoint, *a)
    # Nothing set: the listing is empty, the effective settings are ECS's.
    assert ecs.list_account_settings()["settings"] == []
    eff = {s["name"]: s for s in cli("ecs", "list-account-settings", "--effective-settings")["settings"]}
    assert eff["containerInsights"] == {"name": "containerInsights", "value": "disabled",
                                        "principalArn": ROOT, "type": "aws_managed"}
    assert eff["taskLongArnFormat"]["value"] == "enabled"
    assert eff["fargateTaskRetirementWaitPeriod"]["value"] == "7"
    assert len(eff) == 11

    # The account default, then one user's own setting over it.
    d = cli("ecs", "put-account-setting-default", "--name", "containerInsights", "--value", "enhanced")
    assert d["setting"] == {"name": "containerInsights", "value": "enhanced", "principalArn": ROOT, "type": "user"}
    u = ecs.put_account_setting(name="containerInsights", value="disabled", principalArn=USER)["setting"]
    assert u["principalArn"] == USER and u["value"] == "disabled"
    mine = ecs.list_account_settings(name="containerInsights", effectiveSettings=True)["settings"]
    assert [s["value"] for s in mine] == ["enhanced"]
    alice = ecs.list_account_settings(name="containerInsights", effectiveSettings=True, principalArn=USER)
    assert [s["value"] for s in alice["settings"]] == ["disabled"]
    assert ecs.list_account_settings(principalArn=USER)["settings"] == [u]
    assert ecs.list_account_settings(name="containerInsights", value="enhanced")["settings"][0]["value"] == "enhanced"

    # The setting takes effect: a new cluster gets the caller's value.
    c = ecs.create_cluster(clusterName="insights")["cluster"]
    assert c["settings"] == [{"name": "containerInsights", "value": "enhanced"}]
    c = ecs.create_cluster(clusterName="own", settings=[{"name": "containerInsights", "value": "disabled"}])
    assert c["cluster"]["settings"] == [{"name": "containerInsights", "value": "disabled"}]

    # Deleting the user's setting falls back to the account default.
    gone = ecs.delete_account_setting(name="containerInsights", principalArn=USER)["setting"]
    assert gone["value"] == "enhanced" and gone["principalArn"] == ROOT
    assert ecs.list_account_settings(principalArn=USER)["settings"] == []

    # Pagination over the effective settings.
    page = ecs.list_account_settings(effectiveSettings=True, maxResults=4)
    assert len(page["settings"]) == 4 and page["nextToken"]
    rest = ecs.list_account_settings(effectiveSettings=True, maxResults=10, nextToken=page["nextToken"])
    assert len(rest["settings"]) == 7 and "nextToken" not in rest


@pytest.mark.parametrize("name,value", [
    ("containerInsights", "on"),
    ("fargateTaskRetirementWaitPeriod", "3"),
    ("guardDutyActivate", "enabled"),
    ("serviceLongArnFormat", "disabled"),
])
def test_bad_account_settings_are_refused_and_change_nothing(ecs, name, value):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.put_account_setting(name=name, value=value)
    assert code_of(e) == "InvalidParameterException"
    assert ecs.list_account_settings(name=name)["settings"] == []


def test_a_principal_of_another_account_is_refused(ecs):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.put_account_setting(name="awsvpcTrunking", value="enabled",
                                principalArn="arn:aws:iam::999999999999:user/bob")
    assert code_of(e) == "InvalidParameterException"
    assert "999999999999" in e.value.response["Error"]["Message"]


@pytest.fixture
def cluster(ecs, images):
    name = unique("rest")
    ecs.create_cluster(clusterName=name)
    return name


def test_a_protected_task_outlasts_scale_in_on_docker(ecs, cluster, cli):
    s = create(ecs, cluster, web_td(ecs), desired=2)
    name = s["serviceName"]
    wait_service(ecs, cluster, name, steady, 60, "steady")
    # The task scale-in would stop first (the newest, then by ARN) is the
    # one protected.
    tasks = sorted(service_tasks(ecs, cluster, name), key=lambda t: (-t["createdAt"].timestamp(), t["taskArn"]))
    keep = tasks[0]["taskArn"]
    p = cli("ecs", "update-task-protection", "--cluster", cluster, "--tasks", keep,
            "--protection-enabled", "--expires-in-minutes", "30")
    [pt] = p["protectedTasks"]
    assert pt["taskArn"] == keep and pt["protectionEnabled"] is True
    assert 29 * 60 < pt["expirationDate"] - time.time() <= 30 * 60
    ecs.update_service(cluster=cluster, service=name, desiredCount=1)
    wait_service(ecs, cluster, name, lambda x: x["runningCount"] == 1, 60, "one task")
    left = service_tasks(ecs, cluster, name)
    assert [t["taskArn"] for t in left] == [keep], "the protected task is the one kept"
    got = cli("ecs", "get-task-protection", "--cluster", cluster, "--tasks", keep)
    assert got["protectedTasks"][0]["protectionEnabled"] is True
    stop_service(ecs, cluster, name)


def test_an_external_agent_reports_its_tasks_through_the_ecs_agent_api(ecs, server, cluster, cli):
    from test_instances import ec2_td, register, sleeper
    ci = register(ecs, cluster)
    td = ec2_td(ecs, [sleeper()])
    [task] = ecs.run_task(cluster=cluster, taskDefinition=td, launchType="EC2")["tasks"]
    arn = task["taskArn"]
    assert task["containerInstanceArn"] == ci["containerInstanceArn"]
    assert task["lastStatus"] == "PROVISIONING", "nothing runs it until its agent says so"

    poll = cli("ecs", "discover-poll-endpoint", "--cluster", cluster)
    assert poll["endpoint"] == server.endpoint
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.update_container_agent(cluster=cluster, containerInstance=ci["containerInstanceArn"])
    assert code_of(e) == "NoUpdateAvailableException"

    ack = ecs.submit_container_state_change(cluster=cluster, task=arn, containerName="main",
                                            status="RUNNING", runtimeId="abc123")
    assert ack["acknowledgment"] == "ACK"
    ecs.submit_task_state_change(cluster=cluster, task=arn, status="RUNNING",
                                 pullStartedAt=time.time() - 2, pullStoppedAt=time.time() - 1)
    t = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
    assert t["lastStatus"] == "RUNNING" and "startedAt" in t and "pullStartedAt" in t
    assert t["containers"][0]["lastStatus"] == "RUNNING" and t["containers"][0]["runtimeId"] == "abc123"
    # Backwards is ignored; forward to STOPPED with the agent's words.
    ecs.submit_task_state_change(cluster=cluster, task=arn, status="PENDING")
    assert ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]["lastStatus"] == "RUNNING"
    ecs.submit_task_state_change(cluster=cluster, task=arn, status="STOPPED", reason="Essential container exited",
                                 containers=[{"containerName": "main", "status": "STOPPED", "exitCode": 3}])
    t = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
    assert t["lastStatus"] == "STOPPED" and t["containers"][0]["exitCode"] == 3
    assert t["stoppedReason"] == "Essential container exited"

    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.submit_task_state_change(cluster=cluster, task=arn, status="SLEEPING")
    assert code_of(e) == "InvalidParameterException"


def test_tasks_of_berths_own_agent_are_not_reported_through_it(ecs, cluster):
    from test_services import NET
    td = web_td(ecs)
    [task] = ecs.run_task(cluster=cluster, taskDefinition=td, launchType="FARGATE",
                          networkConfiguration=NET)["tasks"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.submit_task_state_change(cluster=cluster, task=task["taskArn"], status="STOPPED")
    assert code_of(e) == "InvalidParameterException"
    ecs.stop_task(cluster=cluster, task=task["taskArn"])


def test_no_namespace_and_no_waiting_hook(ecs):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.list_services_by_namespace(namespace="web.local")
    assert code_of(e) == "NamespaceNotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.continue_service_deployment(
            serviceDeploymentArn="arn:aws:ecs:us-east-1:000000000000:service-deployment/default/none/1",
            hookId="h")
    assert code_of(e) == "ServiceDeploymentNotFoundException"


def test_an_external_controller_shifts_a_service_between_task_sets(ecs, cluster, cli):
    from test_services import NET, describe
    blue, green = web_td(ecs, env="blue"), web_td(ecs, env="green")
    name = unique("ext")
    s = cli("ecs", "create-service", "--cluster", cluster, "--service-name", name, "--desired-count", "2",
            "--deployment-controller", "type=EXTERNAL")["service"]
    assert s["deploymentController"] == {"type": "EXTERNAL"} and s["deployments"] == []

    def task_set(td, pct):
        return ecs.create_task_set(cluster=cluster, service=name, taskDefinition=td, launchType="FARGATE",
                                   networkConfiguration=NET, externalId="release-7",
                                   scale={"unit": "PERCENT", "value": pct})["taskSet"]

    a = task_set(blue, 100)
    b = task_set(green, 50)
    assert (a["computedDesiredCount"], b["computedDesiredCount"]) == (2, 1)

    def counts(svc):
        return {t["id"]: (t["runningCount"], t["stabilityStatus"]) for t in svc["taskSets"]}
    wait_service(ecs, cluster, name, lambda x: counts(x) == {a["id"]: (2, "STEADY_STATE"),
                                                             b["id"]: (1, "STEADY_STATE")}, 60, "both sets up")
    for t in ecs.describe_tasks(cluster=cluster, tasks=ecs.list_tasks(cluster=cluster, serviceName=name)["taskArns"])["tasks"]:
        assert t["group"] == f"service:{name}" and t["startedBy"] in (a["id"], b["id"])
    cli("ecs", "update-service-primary-task-set", "--cluster", cluster, "--service", name,
        "--primary-task-set", b["taskSetArn"])
    ecs.update_task_set(cluster=cluster, service=name, taskSet=b["id"], scale={"unit": "PERCENT", "value": 100})
    ecs.delete_task_set(cluster=cluster, service=name, taskSet=a["taskSetArn"], force=True)
    s = wait_service(ecs, cluster, name, lambda x: counts(x) == {b["id"]: (2, "STEADY_STATE")}, 60, "green only")
    assert s["taskSets"][0]["status"] == "PRIMARY" and s["taskDefinition"] == green
    sets = ecs.describe_task_sets(cluster=cluster, service=name, taskSets=[a["id"]])
    assert sets["failures"][0]["reason"] == "MISSING"
    stop_service(ecs, cluster, name)
