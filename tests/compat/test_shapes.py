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
