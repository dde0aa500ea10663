"""The strict shape checker itself must catch what it claims to."""
import boto3
import pytest

import shapes


def ecs_model():
    return boto3.Session(region_name="us-east-1").client(
        "ecs", aws_access_key_id="x", aws_secret_access_key="y").meta.service_model


@pytest.mark.parametrize("body,ok", [
    ({"clusterArns": ["a"], "nextToken": "t"}, True),
    ({"clusterArns": "a"}, False),
    ({"clusterArns": ["a"], "surprise": 1}, False),
    ({"clusterArns": [1]}, False),
    ({"clusterArns": None}, False),
])
def test_list_clusters_output(body, ok):
    shape = ecs_model().operation_model("ListClusters").output_shape
    if ok:
        shapes.check(shape, body)
    else:
        with pytest.raises(shapes.ShapeError):
            shapes.check(shape, body)


def test_enums_and_numbers():
    shape = ecs_model().operation_model("DescribeTaskDefinition").output_shape
    shapes.check(shape, {"taskDefinition": {"revision": 1, "status": "ACTIVE", "registeredAt": 1.5}})
    with pytest.raises(shapes.ShapeError):
        shapes.check(shape, {"taskDefinition": {"status": "SLEEPING"}})
    with pytest.raises(shapes.ShapeError):
        shapes.check(shape, {"taskDefinition": {"revision": "1"}})


def test_xml_documents_are_checked_strictly():
    import botocore.session
    ec2 = botocore.session.get_session().get_service_model("ec2")
    op = ec2.operation_model("DescribeSecurityGroups")
    ok = (b'<DescribeSecurityGroupsResponse xmlns="x"><requestId>r</requestId><securityGroupInfo><item>'
          b'<groupId>sg-1</groupId><ipPermissions><item><ipProtocol>tcp</ipProtocol><fromPort>80</fromPort>'
          b'</item></ipPermissions></item></securityGroupInfo></DescribeSecurityGroupsResponse>')
    shapes.check_xml_response(op, "ec2", ok)
    for bad in [ok.replace(b"<groupId>sg-1</groupId>", b"<colour>red</colour>"),
                ok.replace(b"<fromPort>80</fromPort>", b"<fromPort>eighty</fromPort>"),
                ok.replace(b"<requestId>r</requestId>", b""),
                ok.replace(b"<item><ipProtocol>", b"<member><ipProtocol>").replace(b"</fromPort></item>", b"</fromPort></member>")]:
        with pytest.raises(shapes.ShapeError):
            shapes.check_xml_response(op, "ec2", bad)
    sts = botocore.session.get_session().get_service_model("sts").operation_model("GetCallerIdentity")
    doc = (b"<GetCallerIdentityResponse><GetCallerIdentityResult><Account>1</Account></GetCallerIdentityResult>"
           b"<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetCallerIdentityResponse>")
    shapes.check_xml_response(sts, "query", doc)
    with pytest.raises(shapes.ShapeError):
        shapes.check_xml_response(sts, "query", doc.replace(b"<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>", b""))
