"""A second SDK family with its own serializers: the AWS SDK for
JavaScript v3 (`@aws-sdk/client-ec2`, `client-ecs`, `client-sts`,
`client-scheduler`, installed by scripts/test.sh into
tests/compat/js/node_modules) runs a few of the same calls — EC2 protocol,
AWS Query, AWS JSON 1.1, REST-JSON — against a real
`berth up`, with the credentials files it writes."""
import json
import os
import shutil
import subprocess

import pytest

JS = os.path.join(os.path.dirname(__file__), "js")

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not os.path.isdir(os.path.join(JS, "node_modules", "@aws-sdk", "client-scheduler")),
    reason="needs node and the JS SDK (scripts/test.sh installs them)")


def test_js_sdk_ec2_sts_and_ecs(berth):
    env = berth.client_env()
    env["BERTH_ENDPOINT"] = berth.endpoint
    env["AWS_REGION"] = "us-east-1"
    p = subprocess.run(["node", os.path.join(JS, "calls.mjs")], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["identity"]["Account"] == "000000000000"
    assert out["identity"]["Arn"] == "arn:aws:iam::000000000000:root"
    [g] = out["groups"]
    assert g["GroupId"] == out["groupId"] and g["GroupName"] == "js-web" and g["VpcId"] == "vpc-default"
    assert g["IpPermissions"][0]["FromPort"] == 8080
    assert g["IpPermissions"][0]["IpRanges"] == [{"CidrIp": "10.0.0.0/8"}]
    assert out["duplicate"]["name"] == "InvalidGroup.Duplicate", out["duplicate"]
    assert out["duplicate"]["status"] == 400
    assert "subnet-default" in out["subnets"]
    assert out["vpcs"] == ["vpc-default"]
    assert out["cluster"] == "arn:aws:ecs:us-east-1:000000000000:cluster/js"
    assert out["cluster"] in out["clusters"]
    assert out["schedules"] == []
    [group] = out["scheduleGroups"]
    assert group["Name"] == "default" and group["State"] == "ACTIVE"
    assert group["Arn"] == "arn:aws:scheduler:us-east-1:000000000000:schedule-group/default"
    assert group["CreationDate"].endswith("Z"), group  # parsed into a Date from epoch seconds
    assert out["missingSchedule"]["name"] == "ResourceNotFoundException", out["missingSchedule"]
    assert out["missingSchedule"]["status"] == 404
    assert "ops/nightly" in out["missingSchedule"]["message"]
