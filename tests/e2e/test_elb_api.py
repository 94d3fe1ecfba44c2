"""Elastic Load Balancing v2: the API, driven by boto3 and the aws CLI.
Load balancers, target groups, listeners, rules, targets, tags and
attributes, and every bad input with ELB's code and nothing changed."""

import botocore.exceptions
import pytest

from conftest import client, unique

SUBNETS = ["subnet-aaaa1111", "subnet-bbbb2222"]


@pytest.fixture
def elb(server):
    return client(server.endpoint, "elbv2")


@pytest.fixture
def elb_raw(server):
    """Without the client's own checks, so the server's are reached."""
    return client(server.endpoint, "elbv2", validate=False)


def code_of(call):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


def make_lb(elb, name=None, **kw):
    name = name or unique("lb")[:32]
    return elb.create_load_balancer(Name=name, Subnets=SUBNETS, **kw)["LoadBalancers"][0]


def make_tg(elb, name=None, **kw):
    name = name or unique("tg")[:32]
    args = dict(Name=name, Protocol="HTTP", Port=8080, TargetType="ip", VpcId="vpc-12345678")
    args.update(kw)
    return elb.create_target_group(**args)["TargetGroups"][0]


def test_load_balancer_lifecycle(elb, cli):
    name = unique("web")[:32]
    lb = make_lb(elb, name, Tags=[{"Key": "team", "Value": "video"}])
    arn = lb["LoadBalancerArn"]
    assert arn.startswith("arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/" + name + "/")
    assert lb["DNSName"].startswith(name + "-") and lb["DNSName"].endswith(".us-east-1.elb.amazonaws.com")
    assert lb["State"]["Code"] == "active"
    assert lb["Type"] == "application" and lb["Scheme"] == "internet-facing"
    assert [z["SubnetId"] for z in lb["AvailabilityZones"]] == SUBNETS
    assert len({z["ZoneName"] for z in lb["AvailabilityZones"]}) == 2
    # Creating it again with the same settings answers the same one.
    assert make_lb(elb, name)["LoadBalancerArn"] == arn
    found = elb.describe_load_balancers(Names=[name])["LoadBalancers"]
    assert [l["LoadBalancerArn"] for l in found] == [arn]
    # The aws CLI speaks the same protocol.
    out = cli("elbv2", "describe-load-balancers", "--load-balancer-arns", arn)
    assert out["LoadBalancers"][0]["LoadBalancerName"] == name
    tags = elb.describe_tags(ResourceArns=[arn])["TagDescriptions"][0]["Tags"]
    assert tags == [{"Key": "team", "Value": "video"}]

    attrs = {a["Key"]: a["Value"] for a in elb.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]}
    assert attrs["idle_timeout.timeout_seconds"] == "60"
    assert attrs["deletion_protection.enabled"] == "false"
    elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
        {"Key": "idle_timeout.timeout_seconds", "Value": "120"},
        {"Key": "deletion_protection.enabled", "Value": "true"}])
    code, _ = code_of(lambda: elb.delete_load_balancer(LoadBalancerArn=arn))
    assert code == "OperationNotPermitted"
    elb.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=[
        {"Key": "deletion_protection.enabled", "Value": "false"}])
    elb.delete_load_balancer(LoadBalancerArn=arn)
    code, _ = code_of(lambda: elb.describe_load_balancers(LoadBalancerArns=[arn]))
    assert code == "LoadBalancerNotFound"


def test_two_load_balancers_get_addresses_of_their_own(elb):
    a, b = make_lb(elb), make_lb(elb)
    ip = lambda lb: lb["AvailabilityZones"][0]["LoadBalancerAddresses"][0]["IpAddress"]
    assert ip(a) != ip(b)
    assert ip(a).startswith("10.")


def test_target_group_defaults_attributes_and_modify(elb):
    tg = make_tg(elb)
    assert tg["HealthCheckPath"] == "/" and tg["HealthCheckPort"] == "traffic-port"
    assert (tg["HealthCheckIntervalSeconds"], tg["HealthCheckTimeoutSeconds"]) == (30, 5)
    assert (tg["HealthyThresholdCount"], tg["UnhealthyThresholdCount"]) == (5, 2)
    assert tg["Matcher"] == {"HttpCode": "200"} and tg["TargetType"] == "ip"
    assert tg["LoadBalancerArns"] == []
    arn = tg["TargetGroupArn"]
    assert ":targetgroup/" + tg["TargetGroupName"] + "/" in arn
    out = elb.modify_target_group(TargetGroupArn=arn, HealthCheckPath="/health", HealthCheckIntervalSeconds=10,
                                  HealthyThresholdCount=2, Matcher={"HttpCode": "200-299"})["TargetGroups"][0]
    assert (out["HealthCheckPath"], out["HealthCheckIntervalSeconds"], out["Matcher"]["HttpCode"]) == ("/health", 10, "200-299")
    attrs = {a["Key"]: a["Value"] for a in elb.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]}
    assert attrs["deregistration_delay.timeout_seconds"] == "300"
    assert attrs["load_balancing.algorithm.type"] == "round_robin"
    elb.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "5"},
        {"Key": "stickiness.enabled", "Value": "true"}])
    attrs = {a["Key"]: a["Value"] for a in elb.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]}
    assert (attrs["deregistration_delay.timeout_seconds"], attrs["stickiness.enabled"]) == ("5", "true")
    elb.delete_target_group(TargetGroupArn=arn)
    code, _ = code_of(lambda: elb.describe_target_groups(TargetGroupArns=[arn]))
    assert code == "TargetGroupNotFound"


def test_listener_rules_and_priorities(elb):
    lb = make_lb(elb)
    tg = make_tg(elb)
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])["Listeners"][0]
    larn = listener["ListenerArn"]
    assert ":listener/app/" in larn and listener["Port"] == 80
    action = listener["DefaultActions"][0]
    assert action["ForwardConfig"]["TargetGroups"] == [{"TargetGroupArn": tg["TargetGroupArn"], "Weight": 1}]
    # The target group now belongs to the load balancer.
    got = elb.describe_target_groups(TargetGroupArns=[tg["TargetGroupArn"]])["TargetGroups"][0]
    assert got["LoadBalancerArns"] == [lb["LoadBalancerArn"]]
    by_lb = elb.describe_target_groups(LoadBalancerArn=lb["LoadBalancerArn"])["TargetGroups"]
    assert [t["TargetGroupArn"] for t in by_lb] == [tg["TargetGroupArn"]]

    fixed = {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "418", "ContentType": "text/plain",
                                                                "MessageBody": "teapot"}}
    r1 = elb.create_rule(ListenerArn=larn, Priority=10, Actions=[fixed],
                         Conditions=[{"Field": "path-pattern", "Values": ["/tea/*"]}])["Rules"][0]
    r2 = elb.create_rule(ListenerArn=larn, Priority=20, Actions=[fixed],
                         Conditions=[{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Env",
                                                                                   "Values": ["blue"]}}])["Rules"][0]
    assert r1["Conditions"][0]["PathPatternConfig"]["Values"] == ["/tea/*"]
    rules = elb.describe_rules(ListenerArn=larn)["Rules"]
    assert [r["Priority"] for r in rules] == ["10", "20", "default"]
    assert rules[-1]["IsDefault"] is True
    code, _ = code_of(lambda: elb.create_rule(ListenerArn=larn, Priority=10, Actions=[fixed],
                                              Conditions=[{"Field": "path-pattern", "Values": ["/x"]}]))
    assert code == "PriorityInUse"
    # Swapping two priorities is one call.
    elb.set_rule_priorities(RulePriorities=[{"RuleArn": r1["RuleArn"], "Priority": 20},
                                            {"RuleArn": r2["RuleArn"], "Priority": 10}])
    rules = elb.describe_rules(ListenerArn=larn)["Rules"]
    assert [r["RuleArn"] for r in rules[:2]] == [r2["RuleArn"], r1["RuleArn"]]
    elb.modify_rule(RuleArn=r1["RuleArn"], Conditions=[{"Field": "path-pattern", "Values": ["/coffee"]}])
    assert elb.describe_rules(RuleArns=[r1["RuleArn"]])["Rules"][0]["Conditions"][0]["Values"] == ["/coffee"]
    code, _ = code_of(lambda: elb.delete_rule(RuleArn=rules[-1]["RuleArn"]))
    assert code == "OperationNotPermitted"
    elb.delete_rule(RuleArn=r2["RuleArn"])
    assert len(elb.describe_rules(ListenerArn=larn)["Rules"]) == 2

    # A target group a listener uses cannot be deleted.
    code, _ = code_of(lambda: elb.delete_target_group(TargetGroupArn=tg["TargetGroupArn"]))
    assert code == "ResourceInUse"
    code, _ = code_of(lambda: elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                                  DefaultActions=[fixed]))
    assert code == "DuplicateListener"
    elb.modify_listener(ListenerArn=larn, Port=8081)
    assert elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"][0]["Port"] == 8081
    elb.delete_listener(ListenerArn=larn)
    code, _ = code_of(lambda: elb.describe_listeners(ListenerArns=[larn]))
    assert code == "ListenerNotFound"
    elb.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])


def test_targets_register_describe_and_deregister(elb):
    tg = make_tg(elb)
    arn = tg["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": "10.9.0.1"}, {"Id": "10.9.0.2", "Port": 9000}])
    health = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    assert [(h["Target"]["Id"], h["Target"]["Port"]) for h in health] == [("10.9.0.1", 8080), ("10.9.0.2", 9000)]
    # No listener routes to the group yet.
    assert {(h["TargetHealth"]["State"], h["TargetHealth"]["Reason"]) for h in health} == {("unused", "Target.NotInUse")}
    asked = elb.describe_target_health(TargetGroupArn=arn, Targets=[{"Id": "10.9.0.3"}])["TargetHealthDescriptions"]
    assert asked[0]["TargetHealth"]["Reason"] == "Target.NotRegistered"
    elb.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": "10.9.0.1"}])
    health = elb.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
    assert [h["Target"]["Id"] for h in health] == ["10.9.0.2"]
    code, _ = code_of(lambda: elb.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": "10.9.0.1"}]))
    assert code == "InvalidTarget"


def test_bad_input_gets_elbs_errors_and_changes_nothing(elb, elb_raw):
    lb = make_lb(elb)
    name = lb["LoadBalancerName"]
    code, _ = code_of(lambda: elb.create_load_balancer(Name=name, Subnets=["subnet-cccc3333", "subnet-dddd4444"]))
    assert code == "DuplicateLoadBalancerName"
    code, _ = code_of(lambda: elb.create_load_balancer(Name=unique("one")[:32], Subnets=["subnet-aaaa1111"]))
    assert code == "ValidationError"
    code, _ = code_of(lambda: elb.create_load_balancer(Name="-bad-", Subnets=SUBNETS))
    assert code == "ValidationError"
    code, msg = code_of(lambda: elb.create_load_balancer(Name=unique("nlb")[:32], Subnets=SUBNETS, Type="network"))
    assert code == "OperationNotPermitted" and "network" in msg

    tg = make_tg(elb)
    code, _ = code_of(lambda: make_tg(elb, tg["TargetGroupName"], Port=9999))
    assert code == "DuplicateTargetGroupName"
    for bad in [dict(HealthCheckIntervalSeconds=4), dict(HealthCheckTimeoutSeconds=121),
                dict(HealthyThresholdCount=11), dict(UnhealthyThresholdCount=1),
                dict(HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=5),
                dict(HealthCheckPath="health"), dict(Matcher={"HttpCode": "600"})]:
        code, _ = code_of(lambda: make_tg(elb_raw, **bad))
        assert code == "ValidationError", bad
    code, _ = code_of(lambda: elb_raw.modify_target_group(TargetGroupArn=tg["TargetGroupArn"], HealthCheckIntervalSeconds=400))
    assert code == "ValidationError"
    assert elb.describe_target_groups(TargetGroupArns=[tg["TargetGroupArn"]])["TargetGroups"][0]["HealthCheckIntervalSeconds"] == 30

    code, _ = code_of(lambda: elb.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": "i-0123456789abcdef0"}]))
    assert code == "InvalidTarget"
    inst = make_tg(elb, TargetType="instance")
    code, _ = code_of(lambda: elb.register_targets(TargetGroupArn=inst["TargetGroupArn"], Targets=[{"Id": "i-0123456789abcdef0"}]))
    assert code == "InvalidTarget"
    code, _ = code_of(lambda: elb.register_targets(TargetGroupArn=tg["TargetGroupArn"],
                                                   Targets=[{"Id": f"10.1.{i // 250}.{i % 250 + 1}"} for i in range(1001)]))
    assert code == "TooManyTargets"
    assert elb.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])["TargetHealthDescriptions"] == []

    missing_tg = tg["TargetGroupArn"].rsplit("/", 1)[0] + "/0000000000000000"
    code, _ = code_of(lambda: elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                                  DefaultActions=[{"Type": "forward", "TargetGroupArn": missing_tg}]))
    assert code == "TargetGroupNotFound"
    code, _ = code_of(lambda: elb.describe_listeners(ListenerArns=[lb["LoadBalancerArn"].replace(":loadbalancer/", ":listener/") + "/0000000000000000"]))
    assert code == "ListenerNotFound"
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                   DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])["Listeners"][0]
    # A target group belongs to one load balancer.
    other = make_lb(elb)
    code, _ = code_of(lambda: elb.create_listener(LoadBalancerArn=other["LoadBalancerArn"], Protocol="HTTP", Port=80,
                                                  DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}]))
    assert code == "TargetGroupAssociationLimit"
    fixed = [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200"}}]
    for conditions in [[{"Field": "path-pattern", "Values": ["/a", "/b", "/c", "/d", "/e", "/f"]}],
                       [{"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/99"]}}],
                       [{"Field": "cookie", "Values": ["x"]}],
                       [{"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["get"]}}]]:
        code, _ = code_of(lambda: elb.create_rule(ListenerArn=listener["ListenerArn"], Priority=5, Actions=fixed,
                                                  Conditions=conditions))
        assert code == "ValidationError", conditions
    code, _ = code_of(lambda: elb.create_rule(ListenerArn=listener["ListenerArn"], Priority=5, Conditions=[{"Field": "path-pattern", "Values": ["/a"]}],
                                              Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "302"}}]))
    assert code == "ValidationError"
    assert [r["Priority"] for r in elb.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]] == ["default"]
    code, _ = code_of(lambda: elb_raw.modify_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"], Attributes=[
        {"Key": "idle_timeout.timeout_seconds", "Value": "0"}]))
    assert code == "ValidationError"
    code, _ = code_of(lambda: elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="TCP", Port=81,
                                                  DefaultActions=fixed))
    assert code == "ValidationError"
    code, _ = code_of(lambda: elb.add_tags(ResourceArns=[lb["LoadBalancerArn"]], Tags=[{"Key": "aws:x", "Value": "y"}]))
    assert code == "ValidationError"
