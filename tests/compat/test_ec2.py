"""EC2's VPC subset with the real aws CLI and boto3 (EC2 protocol), every
boto3 response checked strictly against botocore's EC2 model: the groups
and subnets made here are Berth's own, which `berth sg`/`berth subnet`
show and the firewall enforces."""
import json
import subprocess

import botocore.exceptions
import pytest

import shapes
from conftest import BERTH_BIN
from test_tasks import NETWORK, definition, tasks_berth  # noqa: F401  (a fixture)

ACCOUNT = "000000000000"


def ec2(berth):
    client = shapes.install(berth.boto3_session().client("ec2"))
    assert client.meta.service_model.resolved_protocol == "ec2"
    return client


def code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def berth_cli(berth, *args):
    p = subprocess.run([BERTH_BIN, *args, "--output", "json", "--data-dir", berth.data_dir],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_cli_security_groups_as_the_issue_has_them(berth):
    _, web, _ = berth.aws("ec2", "create-security-group", "--group-name", "web", "--description", "web tier")
    _, client, _ = berth.aws("ec2", "create-security-group", "--group-name", "client", "--description", "callers")
    web_id, client_id = web["GroupId"], client["GroupId"]
    berth.aws("ec2", "authorize-security-group-ingress", "--group-id", web_id, "--protocol", "tcp", "--port", "8080",
              "--source-group", client_id)
    _, out, _ = berth.aws("ec2", "describe-security-groups", "--group-ids", web_id)
    g = out["SecurityGroups"][0]
    assert g["GroupName"] == "web" and g["VpcId"] == "vpc-default" and g["OwnerId"] == ACCOUNT
    assert g["IpPermissions"] == [{"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [],
                                   "Ipv6Ranges": [], "PrefixListIds": [],
                                   "UserIdGroupPairs": [{"GroupId": client_id, "UserId": ACCOUNT}]}]
    assert g["IpPermissionsEgress"][0]["IpRanges"] == [{"CidrIp": "0.0.0.0/0"}]
    rc, _, err = berth.aws("ec2", "authorize-security-group-ingress", "--group-id", web_id, "--protocol", "tcp",
                           "--port", "8080", "--source-group", client_id, check=False)
    assert rc != 0 and "InvalidPermission.Duplicate" in err, err
    _, out, _ = berth.aws("ec2", "describe-security-groups", "--filters", "Name=group-name,Values=web,client")
    assert sorted(x["GroupName"] for x in out["SecurityGroups"]) == ["client", "web"]
    _, out, _ = berth.aws("ec2", "describe-subnets")
    s = {x["SubnetId"]: x for x in out["Subnets"]}["subnet-default"]
    assert s["VpcId"] == "vpc-default" and s["DefaultForAz"] is True and s["State"] == "available"
    _, out, _ = berth.aws("sts", "get-caller-identity")
    assert out["Account"] == ACCOUNT
    # berth sg shows the same group, with the same rule.
    groups = {x["groupId"]: x for x in berth_cli(berth, "sg", "ls")["securityGroups"]}
    assert groups[web_id]["ingress"] == [{"ipProtocol": "tcp", "fromPort": 8080, "toPort": 8080,
                                          "sourceGroupId": client_id}]
    assert groups[web_id]["egress"] == [{"ipProtocol": "-1", "fromPort": None, "toPort": None, "cidrIp": "0.0.0.0/0"}]


def test_boto3_groups_rules_and_terraforms_revokes(berth):
    c = ec2(berth)
    gid = c.create_security_group(GroupName="api", Description="api", VpcId="vpc-default",
                                  TagSpecifications=[{"ResourceType": "security-group",
                                                      "Tags": [{"Key": "team", "Value": "core"}]}])["GroupId"]
    # Terraform removes both default egress rules at once after creating a group.
    c.revoke_security_group_egress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "-1", "FromPort": 0, "ToPort": 0, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.revoke_security_group_egress(GroupId=gid, IpPermissions=[
            {"IpProtocol": "-1", "FromPort": 0, "ToPort": 0, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
    assert code(e) == "InvalidPermission.NotFound"
    assert c.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]["IpPermissionsEgress"] == []
    added = c.authorize_security_group_egress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
    assert added["Return"] is True and added["SecurityGroupRules"][0]["IsEgress"] is True
    c.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "udp", "FromPort": 5000, "ToPort": 5010, "IpRanges": [{"CidrIp": "10.89.0.0/16"}]},
        {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1, "UserIdGroupPairs": [{"GroupId": "sg-default"}]}])
    rules = c.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])["SecurityGroupRules"]
    assert sorted((r["IsEgress"], r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in rules) == [
        (False, "icmp", -1, -1), (False, "udp", 5000, 5010), (True, "tcp", 443, 443)]
    udp = [r for r in rules if r["IpProtocol"] == "udp"][0]
    got = c.describe_security_group_rules(SecurityGroupRuleIds=[udp["SecurityGroupRuleId"]])["SecurityGroupRules"]
    assert got == [udp]
    c.revoke_security_group_ingress(GroupId=gid, SecurityGroupRuleIds=[udp["SecurityGroupRuleId"]])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.revoke_security_group_ingress(GroupId=gid, IpPermissions=[
            {"IpProtocol": "udp", "FromPort": 5000, "ToPort": 5010, "IpRanges": [{"CidrIp": "10.89.0.0/16"}]}])
    assert code(e) == "InvalidPermission.NotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_security_group(GroupName="api", Description="again")
    assert code(e) == "InvalidGroup.Duplicate"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.describe_security_groups(GroupIds=["sg-0123456789abcdef0"])
    assert code(e) == "InvalidGroup.NotFound"
    found = c.describe_security_groups(Filters=[{"Name": "tag:team", "Values": ["core"]},
                                                {"Name": "vpc-id", "Values": ["vpc-default"]}])["SecurityGroups"]
    assert [g["GroupId"] for g in found] == [gid]
    for i in range(6):
        c.create_security_group(GroupName="page-%d" % i, Description="d")
    pages = list(c.get_paginator("describe_security_groups").paginate(PaginationConfig={"PageSize": 5}))
    assert [len(p["SecurityGroups"]) for p in pages] == [5, 3]
    assert c.delete_security_group(GroupId=gid)["Return"] is True
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.delete_security_group(GroupId="sg-default")
    assert code(e) == "CannotDelete"


def test_boto3_subnets_tags_and_the_vpc(berth):
    c = ec2(berth)
    vpcs = c.describe_vpcs()["Vpcs"]
    assert [v["VpcId"] for v in vpcs] == ["vpc-default"] and vpcs[0]["IsDefault"] is True
    assert c.describe_account_attributes(AttributeNames=["default-vpc"])["AccountAttributes"][0][
        "AttributeValues"] == [{"AttributeValue": "vpc-default"}]
    zones = c.describe_availability_zones()["AvailabilityZones"]
    assert zones[0]["ZoneName"] == "us-east-1a" and zones[0]["State"] == "available"
    assert [r["RegionName"] for r in c.describe_regions()["Regions"]] == ["us-east-1"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_subnet(VpcId="vpc-default", CidrBlock="8.8.8.0/24")
    assert code(e) == "InvalidSubnet.Range"
    s = c.create_subnet(VpcId="vpc-default", CidrBlock="10.209.7.0/24", AvailabilityZone="us-east-1a",
                        TagSpecifications=[{"ResourceType": "subnet", "Tags": [{"Key": "Name", "Value": "jobs"}]}])["Subnet"]
    assert s["CidrBlock"] == "10.209.7.0/24" and s["AvailableIpAddressCount"] == 253
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_subnet(VpcId="vpc-default", CidrBlock="10.209.7.128/25")
    assert code(e) == "InvalidSubnet.Conflict"
    c.create_tags(Resources=[s["SubnetId"]], Tags=[{"Key": "env", "Value": "test"}])
    got = c.describe_subnets(Filters=[{"Name": "tag:env", "Values": ["test"]}])["Subnets"]
    assert [x["SubnetId"] for x in got] == [s["SubnetId"]]
    assert sorted((t["Key"], t["Value"]) for t in got[0]["Tags"]) == [("Name", "jobs"), ("env", "test")]
    tags = c.describe_tags(Filters=[{"Name": "resource-id", "Values": [s["SubnetId"]]}])["Tags"]
    assert sorted(t["Key"] for t in tags) == ["Name", "env"]
    subnets = {x["subnetId"]: x for x in berth_cli(berth, "subnet", "ls")["subnets"]}
    assert subnets[s["SubnetId"]]["name"] == "jobs"
    c.delete_tags(Resources=[s["SubnetId"]], Tags=[{"Key": "env"}])
    assert [t["Key"] for t in c.describe_tags(Filters=[{"Name": "resource-id", "Values": [s["SubnetId"]]}])["Tags"]] == ["Name"]
    c.delete_subnet(SubnetId=s["SubnetId"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.delete_subnet(SubnetId=s["SubnetId"])
    assert code(e) == "InvalidSubnetID.NotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)
    assert code(e) == "UnsupportedOperation" and "RunInstances" in e.value.response["Error"]["Message"]


def test_a_running_tasks_eni_and_the_group_it_holds(tasks_berth):  # noqa: F811
    berth = tasks_berth
    c = ec2(berth)
    gid = c.create_security_group(GroupName="svc", Description="svc")["GroupId"]
    ecs = berth.ecs()
    ecs.register_task_definition(**definition("eni", "sleep 60"))
    network = {"awsvpcConfiguration": dict(NETWORK["awsvpcConfiguration"], securityGroups=[gid])}
    arn = ecs.run_task(taskDefinition="eni", networkConfiguration=network)["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_running").wait(tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    task = ecs.describe_tasks(tasks=[arn])["tasks"][0]
    details = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}
    _, out, _ = berth.aws("ec2", "describe-network-interfaces", "--network-interface-ids", details["networkInterfaceId"])
    eni = out["NetworkInterfaces"][0]
    assert eni["PrivateIpAddress"] == details["privateIPv4Address"]
    assert eni["SubnetId"] == details["subnetId"] == "subnet-default"
    assert eni["Status"] == "in-use" and eni["InterfaceType"] == "interface" and eni["RequesterManaged"] is True
    assert eni["Groups"] == [{"GroupId": gid, "GroupName": "svc"}]
    assert eni["Description"] == "arn:aws:ecs:us-east-1:%s:attachment/%s" % (ACCOUNT, task["attachments"][0]["id"])
    assert eni["MacAddress"] == details["macAddress"]
    by_group = c.describe_network_interfaces(Filters=[{"Name": "group-id", "Values": [gid]}])["NetworkInterfaces"]
    assert [n["NetworkInterfaceId"] for n in by_group] == [details["networkInterfaceId"]]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.delete_security_group(GroupId=gid)
    assert code(e) == "DependencyViolation"
    ecs.stop_task(task=arn, reason="done")
    ecs.get_waiter("tasks_stopped").wait(tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert c.describe_network_interfaces(Filters=[{"Name": "group-id", "Values": [gid]}])["NetworkInterfaces"] == []
    c.delete_security_group(GroupId=gid)
