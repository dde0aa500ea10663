"""ELBv2's control plane with the real aws CLI and boto3 (AWS Query),
every boto3 response checked strictly against botocore's elbv2 model: load
balancers in Berth's subnets (an address of their own each), target
groups of IP targets, listeners, rules, attributes (an unknown key answered
with ELBv2's own error, which Terraform relies on), tags, paging and the
targets' health as DescribeTargetHealth shows it before any traffic."""
import ipaddress
import json
import subprocess

import botocore.exceptions
import pytest

import shapes
from conftest import BERTH_BIN


def elbv2(berth):
    client = shapes.install(berth.boto3_session().client("elbv2"))
    assert client.meta.service_model.resolved_protocol == "query"
    return client


def ip(berth, n):
    """The n-th address of the default subnet (this test Berth's own range)."""
    c = berth.boto3_session().client("ec2")
    cidr = c.describe_subnets(SubnetIds=["subnet-default"])["Subnets"][0]["CidrBlock"]
    return str(ipaddress.ip_network(cidr)[n])


def code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def berth_cli(berth, *args, output="json"):
    p = subprocess.run([BERTH_BIN, *args, "--output", output, "--data-dir", berth.data_dir],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout) if output == "json" else p.stdout


def test_cli_creates_an_internal_alb_with_a_listener_and_a_target_group(berth):
    _, out, _ = berth.aws("elbv2", "create-load-balancer", "--name", "web", "--subnets", "subnet-default",
                          "--scheme", "internal", "--type", "application")
    lb = out["LoadBalancers"][0]
    assert lb["LoadBalancerArn"].startswith("arn:aws:elasticloadbalancing:")
    assert ":loadbalancer/app/web/" in lb["LoadBalancerArn"]
    assert lb["DNSName"].startswith("internal-web-") and lb["DNSName"].endswith(".elb.amazonaws.com")
    assert lb["Scheme"] == "internal" and lb["Type"] == "application"
    assert lb["AvailabilityZones"][0]["SubnetId"] == "subnet-default"
    assert lb["SecurityGroups"] == ["sg-default"]
    _, out, _ = berth.aws("elbv2", "create-target-group", "--name", "web-tg", "--protocol", "HTTP", "--port", "8080",
                          "--vpc-id", "vpc-default", "--target-type", "ip", "--health-check-path", "/health")
    tg = out["TargetGroups"][0]
    assert tg["HealthCheckPath"] == "/health" and tg["Matcher"] == {"HttpCode": "200"}
    _, out, _ = berth.aws("elbv2", "create-listener", "--load-balancer-arn", lb["LoadBalancerArn"], "--protocol", "HTTP",
                          "--port", "80", "--default-actions", "Type=forward,TargetGroupArn=%s" % tg["TargetGroupArn"])
    listener = out["Listeners"][0]
    assert listener["Port"] == 80
    assert listener["DefaultActions"][0]["TargetGroupArn"] == tg["TargetGroupArn"]
    berth.aws("elbv2", "register-targets", "--target-group-arn", tg["TargetGroupArn"], "--targets", "Id=" + ip(berth, 50))
    _, out, _ = berth.aws("elbv2", "describe-target-health", "--target-group-arn", tg["TargetGroupArn"])
    health = out["TargetHealthDescriptions"][0]
    assert health["Target"] == {"Id": ip(berth, 50), "Port": 8080, "AvailabilityZone": health["Target"]["AvailabilityZone"]}
    assert health["TargetHealth"]["State"] == "initial"
    assert health["TargetHealth"]["Reason"] == "Elb.RegistrationInProgress"
    # berth lb: the same, for people and for programs.
    listed = berth_cli(berth, "lb", "ls")["loadBalancers"]
    assert [l["name"] for l in listed] == ["web"]
    described = berth_cli(berth, "lb", "describe", "web")
    assert described["listeners"][0]["port"] == "80"
    assert described["listeners"][0]["rules"][0]["priority"] == "default"
    targets = berth_cli(berth, "lb", "targets", "web-tg")["targets"]
    assert targets == [{"id": ip(berth, 50), "port": "8080", "state": "initial", "reason": "Elb.RegistrationInProgress",
                        "description": "Target registration is in progress"}]
    table = berth_cli(berth, "lb", "ls", output="table")
    assert "web" in table and "internal" in table
    # Errors in ELBv2's Query shape, as the CLI prints them.
    rc, _, err = berth.aws("elbv2", "create-load-balancer", "--name", "web", "--subnets", "subnet-default",
                           "--scheme", "internet-facing", check=False)
    assert rc != 0 and "DuplicateLoadBalancerName" in err


def test_full_lifecycle_with_boto3(berth):
    c = elbv2(berth)
    lb = c.create_load_balancer(Name="api", Subnets=["subnet-default"], Scheme="internet-facing",
                                Tags=[{"Key": "team", "Value": "a"}])["LoadBalancers"][0]
    lb_arn = lb["LoadBalancerArn"]
    assert lb["State"]["Code"] == "provisioning"
    assert ".elb.amazonaws.com" in lb["DNSName"] and not lb["DNSName"].startswith("internal-")
    # Idempotent with the same settings.
    again = c.create_load_balancer(Name="api", Subnets=["subnet-default"], Scheme="internet-facing")
    assert again["LoadBalancers"][0]["LoadBalancerArn"] == lb_arn

    # Load balancer attributes: documented defaults, a change, an unknown key.
    attrs = {a["Key"]: a["Value"] for a in c.describe_load_balancer_attributes(LoadBalancerArn=lb_arn)["Attributes"]}
    assert attrs["idle_timeout.timeout_seconds"] == "60"
    assert attrs["deletion_protection.enabled"] == "false"
    assert attrs["routing.http2.enabled"] == "true"
    changed = c.modify_load_balancer_attributes(LoadBalancerArn=lb_arn, Attributes=[
        {"Key": "idle_timeout.timeout_seconds", "Value": "300"}])["Attributes"]
    assert {"Key": "idle_timeout.timeout_seconds", "Value": "300"} in changed
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.modify_load_balancer_attributes(LoadBalancerArn=lb_arn, Attributes=[{"Key": "no.such.key", "Value": "1"}])
    assert code(e) == "ValidationError"
    assert "is not recognized" in e.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.modify_load_balancer_attributes(LoadBalancerArn=lb_arn, Attributes=[
            {"Key": "idle_timeout.timeout_seconds", "Value": "0"}])
    assert code(e) == "ValidationError"
    # Terraform's reads for every load balancer.
    cap = c.describe_capacity_reservation(LoadBalancerArn=lb_arn)
    assert cap["CapacityReservationState"] == []

    # Target groups: defaults per protocol, validation, attributes.
    tgs = []
    for name in ["blue", "green"]:
        tgs.append(c.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId="vpc-default", TargetType="ip",
                                         Matcher={"HttpCode": "200,202"})["TargetGroups"][0])
    blue, green = (t["TargetGroupArn"] for t in tgs)
    assert tgs[0]["HealthCheckTimeoutSeconds"] == 5 and tgs[0]["HealthyThresholdCount"] == 5
    assert tgs[0]["HealthCheckProtocol"] == "HTTP" and tgs[0]["HealthCheckPort"] == "traffic-port"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_target_group(Name="inst", Protocol="HTTP", Port=80, VpcId="vpc-default", TargetType="instance")
    assert code(e) == "ValidationError"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_target_group(Name="blue", Protocol="HTTP", Port=81, VpcId="vpc-default", TargetType="ip")
    assert code(e) == "DuplicateTargetGroupName"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_target_group(Name="bad", Protocol="HTTP", Port=80, VpcId="vpc-default", TargetType="ip",
                              Matcher={"HttpCode": "600"})
    assert code(e) == "ValidationError"
    modified = c.modify_target_group(TargetGroupArn=blue, HealthCheckPath="/ready", HealthCheckIntervalSeconds=10,
                                     HealthCheckTimeoutSeconds=3)["TargetGroups"][0]
    assert (modified["HealthCheckPath"], modified["HealthCheckIntervalSeconds"]) == ("/ready", 10)
    tg_attrs = {a["Key"]: a["Value"] for a in c.describe_target_group_attributes(TargetGroupArn=blue)["Attributes"]}
    assert tg_attrs["deregistration_delay.timeout_seconds"] == "300"
    assert tg_attrs["load_balancing.algorithm.type"] == "round_robin"
    assert tg_attrs["stickiness.type"] == "lb_cookie"
    c.modify_target_group_attributes(TargetGroupArn=blue, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "0"},
        {"Key": "load_balancing.algorithm.type", "Value": "least_outstanding_requests"},
        {"Key": "stickiness.enabled", "Value": "true"}])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.modify_target_group_attributes(TargetGroupArn=blue, Attributes=[{"Key": "bogus", "Value": "1"}])
    assert code(e) == "ValidationError" and "is not recognized" in e.value.response["Error"]["Message"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.modify_target_group_attributes(TargetGroupArn=blue, Attributes=[
            {"Key": "slow_start.duration_seconds", "Value": "60"}])
    assert code(e) == "InvalidConfigurationRequest", "slow start with least outstanding requests"

    # Targets before any listener: unused.
    c.register_targets(TargetGroupArn=blue, Targets=[{"Id": ip(berth, 30)}, {"Id": ip(berth, 31), "Port": 8080}])
    states = c.describe_target_health(TargetGroupArn=blue)["TargetHealthDescriptions"]
    assert [(s["Target"]["Id"], s["TargetHealth"]["State"], s["TargetHealth"]["Reason"]) for s in states] == [
        (ip(berth, 30), "unused", "Target.NotInUse"), (ip(berth, 31), "unused", "Target.NotInUse")]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.register_targets(TargetGroupArn=blue, Targets=[{"Id": "203.0.113.9"}])
    assert code(e) == "InvalidTarget"
    asked = c.describe_target_health(TargetGroupArn=blue, Targets=[{"Id": ip(berth, 99), "Port": 80}])
    assert asked["TargetHealthDescriptions"][0]["TargetHealth"]["Reason"] == "Target.NotRegistered"

    # A listener with weighted groups and stickiness; rules of every condition kind.
    listener = c.create_listener(LoadBalancerArn=lb_arn, Protocol="HTTP", Port=80, DefaultActions=[{
        "Type": "forward", "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": blue, "Weight": 80}, {"TargetGroupArn": green, "Weight": 20}],
            "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 60}}}])["Listeners"][0]
    l_arn = listener["ListenerArn"]
    fwd = listener["DefaultActions"][0]["ForwardConfig"]
    assert [g["Weight"] for g in fwd["TargetGroups"]] == [80, 20]
    assert fwd["TargetGroupStickinessConfig"] == {"Enabled": True, "DurationSeconds": 60}
    states = c.describe_target_health(TargetGroupArn=blue)["TargetHealthDescriptions"]
    assert {s["TargetHealth"]["State"] for s in states} == {"initial"}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_listener(LoadBalancerArn=lb_arn, Protocol="HTTP", Port=80,
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": blue}])
    assert code(e) == "DuplicateListener"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_listener(LoadBalancerArn=lb_arn, Protocol="TCP", Port=81,
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": blue}])
    assert code(e) == "UnsupportedProtocol"
    l_attrs = c.describe_listener_attributes(ListenerArn=l_arn)["Attributes"]
    assert {"Key": "routing.http.response.server.enabled", "Value": "true"} in l_attrs
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.modify_listener_attributes(ListenerArn=l_arn, Attributes=[{"Key": "tcp.idle_timeout.seconds", "Value": "60"}])
    assert code(e) == "ValidationError"

    conditions = [
        [{"Field": "path-pattern", "Values": ["/api/*"]}],
        [{"Field": "host-header", "HostHeaderConfig": {"Values": ["a.example.com"]}}],
        [{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Env", "Values": ["canary"]}}],
        [{"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["POST"]}}],
        [{"Field": "query-string", "QueryStringConfig": {"Values": [{"Key": "v", "Value": "2"}]}}],
        [{"Field": "source-ip", "SourceIpConfig": {"Values": ["10.0.0.0/8"]}}],
    ]
    rule_arns = []
    for i, cond in enumerate(conditions):
        r = c.create_rule(ListenerArn=l_arn, Priority=10 * (i + 1), Conditions=cond,
                          Actions=[{"Type": "forward", "TargetGroupArn": green}])["Rules"][0]
        assert r["Priority"] == str(10 * (i + 1)) and r["IsDefault"] is False
        rule_arns.append(r["RuleArn"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_rule(ListenerArn=l_arn, Priority=10, Conditions=conditions[0],
                      Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}])
    assert code(e) == "PriorityInUse"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_rule(ListenerArn=l_arn, Priority=99, Conditions=[{"Field": "path-pattern", "Values": list("abcdef")}],
                      Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}])
    assert code(e) == "ValidationError", "more than five condition values"
    redirect = c.create_rule(ListenerArn=l_arn, Priority=70, Conditions=[{"Field": "path-pattern", "Values": ["/old"]}],
                             Actions=[{"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "StatusCode": "HTTP_301"}}])
    assert redirect["Rules"][0]["Actions"][0]["RedirectConfig"]["Host"] == "#{host}"
    rules = c.describe_rules(ListenerArn=l_arn)["Rules"]
    assert [r["Priority"] for r in rules] == ["10", "20", "30", "40", "50", "60", "70", "default"]
    assert rules[-1]["IsDefault"] is True and rules[-1]["Conditions"] == []
    swapped = c.set_rule_priorities(RulePriorities=[{"RuleArn": rule_arns[0], "Priority": 20},
                                                    {"RuleArn": rule_arns[1], "Priority": 10}])["Rules"]
    assert sorted(r["Priority"] for r in swapped) == ["10", "20"]
    c.modify_rule(RuleArn=rule_arns[0], Conditions=[{"Field": "path-pattern", "Values": ["/v2/*"]}])
    got = c.describe_rules(RuleArns=[rule_arns[0]])["Rules"][0]
    assert got["Priority"] == "20" and got["Conditions"][0]["Values"] == ["/v2/*"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.delete_rule(RuleArn=rules[-1]["RuleArn"])
    assert code(e) == "OperationNotPermitted"
    c.delete_rule(RuleArn=rule_arns[5])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.describe_rules(RuleArns=[rule_arns[5]])
    assert code(e) == "RuleNotFound"

    # Paging with Marker/PageSize, via boto3's paginator too.
    page = c.describe_rules(ListenerArn=l_arn, PageSize=3)
    assert len(page["Rules"]) == 3 and page["NextMarker"]
    seen = []
    marker = None
    while True:
        kw = {"Marker": marker} if marker else {}
        page = c.describe_rules(ListenerArn=l_arn, PageSize=3, **kw)
        seen += [r["RuleArn"] for r in page["Rules"]]
        marker = page.get("NextMarker")
        if not marker:
            break
    assert len(seen) == len(set(seen)) == 7
    names = [t["TargetGroupName"] for p in c.get_paginator("describe_target_groups").paginate(PaginationConfig={"PageSize": 1})
             for t in p["TargetGroups"]]
    assert names == ["blue", "green"]
    described = c.describe_target_groups(LoadBalancerArn=lb_arn)["TargetGroups"]
    assert all(t["LoadBalancerArns"] == [lb_arn] for t in described)

    # Tags on every kind of resource.
    c.add_tags(ResourceArns=[lb_arn, blue, l_arn, rule_arns[0]], Tags=[{"Key": "env", "Value": "prod"}])
    c.remove_tags(ResourceArns=[lb_arn], TagKeys=["team"])
    descs = {d["ResourceArn"]: d["Tags"] for d in c.describe_tags(ResourceArns=[lb_arn, blue, l_arn, rule_arns[0]])["TagDescriptions"]}
    assert descs[lb_arn] == [{"Key": "env", "Value": "prod"}]
    assert descs[rule_arns[0]] == [{"Key": "env", "Value": "prod"}]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.add_tags(ResourceArns=[lb_arn], Tags=[{"Key": "aws:x", "Value": "1"}])
    assert code(e) == "ValidationError"

    # Draining: deregistration with a delay of 0 takes the target away at once;
    # green keeps its default of 300 s.
    c.deregister_targets(TargetGroupArn=blue, Targets=[{"Id": ip(berth, 30)}])
    left = c.describe_target_health(TargetGroupArn=blue)["TargetHealthDescriptions"]
    assert [s["Target"]["Id"] for s in left] == [ip(berth, 31)]
    c.register_targets(TargetGroupArn=green, Targets=[{"Id": ip(berth, 40)}])
    c.deregister_targets(TargetGroupArn=green, Targets=[{"Id": ip(berth, 40)}])
    draining = c.describe_target_health(TargetGroupArn=green)["TargetHealthDescriptions"][0]["TargetHealth"]
    assert (draining["State"], draining["Reason"]) == ("draining", "Target.DeregistrationInProgress")

    # Deleting: a group in use is refused; deletion protection is honoured.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.delete_target_group(TargetGroupArn=green)
    assert code(e) == "ResourceInUse"
    c.modify_load_balancer_attributes(LoadBalancerArn=lb_arn, Attributes=[{"Key": "deletion_protection.enabled", "Value": "true"}])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.delete_load_balancer(LoadBalancerArn=lb_arn)
    assert code(e) == "OperationNotPermitted"
    c.modify_load_balancer_attributes(LoadBalancerArn=lb_arn, Attributes=[{"Key": "deletion_protection.enabled", "Value": "false"}])
    c.delete_load_balancer(LoadBalancerArn=lb_arn)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.describe_listeners(ListenerArns=[l_arn])
    assert code(e) == "ListenerNotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.describe_load_balancers(Names=["api"])
    assert code(e) == "LoadBalancerNotFound"
    c.delete_target_group(TargetGroupArn=green)
    c.delete_target_group(TargetGroupArn=blue)
    assert c.describe_target_groups()["TargetGroups"] == []


def test_network_load_balancer_with_a_tcp_listener(berth):
    c = elbv2(berth)
    lb = c.create_load_balancer(Name="db", Subnets=["subnet-default"], Type="network", Scheme="internal")["LoadBalancers"][0]
    assert ":loadbalancer/net/db/" in lb["LoadBalancerArn"]
    assert lb["DNSName"].startswith("internal-db-") and ".elb.us-east-1.amazonaws.com" in lb["DNSName"]
    address = lb["AvailabilityZones"][0]["LoadBalancerAddresses"][0]["PrivateIPv4Address"]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(ip(berth, 0) + "/24")
    tg = c.create_target_group(Name="db-tg", Protocol="TCP", Port=5432, VpcId="vpc-default", TargetType="ip")["TargetGroups"][0]
    assert tg["HealthCheckProtocol"] == "TCP" and tg["HealthCheckTimeoutSeconds"] == 10 and "Matcher" not in tg
    attrs = {a["Key"]: a["Value"] for a in c.describe_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"])["Attributes"]}
    assert attrs["stickiness.type"] == "source_ip"
    listener = c.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="TCP", Port=5432,
                                 DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])["Listeners"][0]
    l_attrs = {a["Key"]: a["Value"] for a in c.describe_listener_attributes(ListenerArn=listener["ListenerArn"])["Attributes"]}
    assert l_attrs == {"tcp.idle_timeout.seconds": "350"}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": address}])
    assert code(e) == "InvalidTarget", "a load balancer's own address"
    limits = {l["Name"]: l["Max"] for l in c.describe_account_limits()["Limits"]}
    assert limits["network-load-balancers"] == "50"
    assert any(p["Name"] == "ELBSecurityPolicy-2016-08" for p in c.describe_ssl_policies()["SslPolicies"])
