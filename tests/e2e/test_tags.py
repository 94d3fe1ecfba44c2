"""TagResource, UntagResource, ListTagsForResource on clusters and task definitions."""

import botocore.exceptions
import pytest

from conftest import unique


def code_of(call):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    return e.value.response["Error"]["Code"]


def test_tag_untag_list_cluster(cli):
    name = unique("tagged")
    arn = cli("ecs", "create-cluster", "--cluster-name", name, "--tags", "key=env,value=dev")["cluster"]["clusterArn"]
    cli("ecs", "tag-resource", "--resource-arn", arn, "--tags", "key=team,value=video", "key=env,value=prod")
    tags = {t["key"]: t["value"] for t in cli("ecs", "list-tags-for-resource", "--resource-arn", arn)["tags"]}
    assert tags == {"env": "prod", "team": "video"}
    cli("ecs", "untag-resource", "--resource-arn", arn, "--tag-keys", "env")
    assert cli("ecs", "list-tags-for-resource", "--resource-arn", arn)["tags"] == [{"key": "team", "value": "video"}]


def test_tag_task_definition(ecs):
    family = unique("tagtd")
    arn = ecs.register_task_definition(family=family, tags=[{"key": "a", "value": "1"}],
                                       containerDefinitions=[{"name": "c", "image": "x", "memory": 64}])["taskDefinition"]["taskDefinitionArn"]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "b", "value": "2"}])
    assert {t["key"] for t in ecs.list_tags_for_resource(resourceArn=arn)["tags"]} == {"a", "b"}
    assert {t["key"] for t in ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])["tags"]} == {"a", "b"}


def test_tag_limits_and_reserved_prefix(ecs, ecs_raw):
    arn = ecs.create_cluster(clusterName=unique("limits"))["cluster"]["clusterArn"]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": f"k{i}", "value": "v"} for i in range(49)])
    # The 51st tag is one too many, and nothing of the failed call sticks.
    assert code_of(lambda: ecs.tag_resource(resourceArn=arn, tags=[{"key": "x1", "value": "v"},
                                                                    {"key": "x2", "value": "v"}])) == "InvalidParameterException"
    assert len(ecs.list_tags_for_resource(resourceArn=arn)["tags"]) == 49
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "x1", "value": "v"}])
    assert len(ecs.list_tags_for_resource(resourceArn=arn)["tags"]) == 50
    assert code_of(lambda: ecs.tag_resource(resourceArn=arn, tags=[{"key": "aws:owner", "value": "v"}])) == "InvalidParameterException"
    assert code_of(lambda: ecs.tag_resource(resourceArn=arn, tags=[{"key": "AWS:owner", "value": "v"}])) == "InvalidParameterException"
    assert code_of(lambda: ecs_raw.tag_resource(resourceArn=arn, tags=[{"key": "k" * 129, "value": "v"}])) == "InvalidParameterException"
    assert code_of(lambda: ecs_raw.tag_resource(resourceArn=arn, tags=[{"key": "k", "value": "v" * 257}])) == "InvalidParameterException"
    assert code_of(lambda: ecs.create_cluster(clusterName=unique("c"), tags=[{"key": "aws:x", "value": "v"}])) == "InvalidParameterException"


def test_tagging_unknown_or_invalid_resources(ecs):
    missing = "arn:aws:ecs:us-east-1:000000000000:cluster/" + unique("ghost")
    assert code_of(lambda: ecs.tag_resource(resourceArn=missing, tags=[{"key": "k", "value": "v"}])) == "ResourceNotFoundException"
    assert code_of(lambda: ecs.list_tags_for_resource(resourceArn="not-an-arn")) == "InvalidParameterException"
