"""Clusters through the aws CLI and boto3."""

import botocore.exceptions
import pytest

from conftest import AwsCliError, unique


def test_create_is_idempotent_by_name(cli):
    name = unique("web")
    first = cli("ecs", "create-cluster", "--cluster-name", name)["cluster"]
    again = cli("ecs", "create-cluster", "--cluster-name", name)["cluster"]
    assert first["clusterArn"] == again["clusterArn"] == f"arn:aws:ecs:us-east-1:000000000000:cluster/{name}"
    assert first["status"] == "ACTIVE"
    arns = cli("ecs", "list-clusters")["clusterArns"]
    assert arns.count(first["clusterArn"]) == 1


def test_counters_are_zero_for_an_empty_cluster(ecs):
    c = ecs.create_cluster(clusterName=unique("empty"))["cluster"]
    for k in ("runningTasksCount", "pendingTasksCount", "activeServicesCount", "registeredContainerInstancesCount"):
        assert c[k] == 0


def test_describe_reports_missing_as_failures(ecs):
    name = unique("known")
    ecs.create_cluster(clusterName=name)
    out = ecs.describe_clusters(clusters=[name, "nope-" + name])
    assert [c["clusterName"] for c in out["clusters"]] == [name]
    assert out["failures"] == [{"arn": f"arn:aws:ecs:us-east-1:000000000000:cluster/nope-{name}", "reason": "MISSING"}]


def test_describe_by_arn_and_include(ecs):
    name = unique("inc")
    arn = ecs.create_cluster(clusterName=name, tags=[{"key": "team", "value": "video"}],
                             settings=[{"name": "containerInsights", "value": "enabled"}])["cluster"]["clusterArn"]
    plain = ecs.describe_clusters(clusters=[arn])["clusters"][0]
    assert plain.get("tags", []) == [] and plain.get("settings", []) == []
    full = ecs.describe_clusters(clusters=[arn], include=["TAGS", "SETTINGS", "STATISTICS"])["clusters"][0]
    assert full["tags"] == [{"key": "team", "value": "video"}]
    assert full["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    stats = {s["name"]: s["value"] for s in full["statistics"]}
    assert stats["runningFargateTasksCount"] == "0"


def test_default_cluster_is_created_on_first_use(fresh_server):
    from conftest import client
    ecs = client(fresh_server.endpoint)
    assert ecs.describe_clusters()["failures"][0]["reason"] == "MISSING"
    c = ecs.create_cluster()["cluster"]
    assert c["clusterName"] == "default"
    assert ecs.describe_clusters()["clusters"][0]["clusterName"] == "default"


def test_list_clusters_paginates(fresh_server):
    from conftest import client
    ecs = client(fresh_server.endpoint)
    names = [f"page-{i:02d}" for i in range(7)]
    for n in names:
        ecs.create_cluster(clusterName=n)
    page = ecs.list_clusters(maxResults=3)
    assert len(page["clusterArns"]) == 3 and "nextToken" in page
    seen = []
    for p in ecs.get_paginator("list_clusters").paginate(PaginationConfig={"PageSize": 2}):
        seen += p["clusterArns"]
    assert [a.split("/")[-1] for a in seen] == names
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.list_clusters(nextToken="garbage!")
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"


def test_list_clusters_max_results_bounds(ecs_raw):
    for bad in (0, 101):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs_raw.list_clusters(maxResults=bad)
        assert e.value.response["Error"]["Code"] == "InvalidParameterException"


def test_delete_cluster_reads_inactive(cli):
    name = unique("gone")
    cli("ecs", "create-cluster", "--cluster-name", name)
    deleted = cli("ecs", "delete-cluster", "--cluster", name)["cluster"]
    assert deleted["status"] == "INACTIVE"
    described = cli("ecs", "describe-clusters", "--clusters", name)["clusters"][0]
    assert described["status"] == "INACTIVE"
    assert deleted["clusterArn"] not in cli("ecs", "list-clusters")["clusterArns"]
    with pytest.raises(AwsCliError) as e:
        cli("ecs", "delete-cluster", "--cluster", name)
    assert "ClusterNotFoundException" in e.value.stderr
    # Creating it again brings it back.
    again = cli("ecs", "create-cluster", "--cluster-name", name)["cluster"]
    assert again["status"] == "ACTIVE"


def test_delete_unknown_cluster(ecs):
    with pytest.raises(ecs.exceptions.ClusterNotFoundException):
        ecs.delete_cluster(cluster=unique("never"))


def test_update_cluster_settings(cli, ecs):
    name = unique("ci")
    cli("ecs", "create-cluster", "--cluster-name", name)
    out = cli("ecs", "update-cluster-settings", "--cluster", name,
              "--settings", "name=containerInsights,value=enhanced")["cluster"]
    assert out["settings"] == [{"name": "containerInsights", "value": "enhanced"}]
    desc = ecs.describe_clusters(clusters=[name], include=["SETTINGS"])["clusters"][0]
    assert desc["settings"] == [{"name": "containerInsights", "value": "enhanced"}]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.update_cluster_settings(cluster=name, settings=[{"name": "containerInsights", "value": "sometimes"}])
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
    desc = ecs.describe_clusters(clusters=[name], include=["SETTINGS"])["clusters"][0]
    assert desc["settings"][0]["value"] == "enhanced"


def test_update_cluster_configuration(ecs):
    name = unique("cfg")
    ecs.create_cluster(clusterName=name)
    cfg = {"executeCommandConfiguration": {"logging": "DEFAULT"}}
    out = ecs.update_cluster(cluster=name, configuration=cfg)["cluster"]
    assert out["configuration"] == cfg
    desc = ecs.describe_clusters(clusters=[name], include=["CONFIGURATIONS"])["clusters"][0]
    assert desc["configuration"] == cfg
    with pytest.raises(ecs.exceptions.ClusterNotFoundException):
        ecs.update_cluster(cluster=unique("nope"), configuration=cfg)


def test_invalid_cluster_name(ecs):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.create_cluster(clusterName="has spaces")
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"
