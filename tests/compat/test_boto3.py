"""ECS through boto3, and the protocol's error cases with hand-made requests."""
import concurrent.futures
import copy
import json

import botocore.exceptions
import pytest

import shapes
from conftest import SEED

ACCOUNT_ARN = "arn:aws:ecs:us-east-1:000000000000"


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def test_cluster_lifecycle_with_pagination_include_and_tags(berth):
    ecs = berth.ecs()
    for i in range(7):
        ecs.create_cluster(clusterName="c%d" % i, tags=[{"key": "n", "value": str(i)}],
                           settings=[{"name": "containerInsights", "value": "enabled"}])
    pages = list(ecs.get_paginator("list_clusters").paginate(PaginationConfig={"PageSize": 3}))
    assert [len(p["clusterArns"]) for p in pages] == [3, 3, 1]
    arns = [a for p in pages for a in p["clusterArns"]]
    assert len(set(arns)) == 7

    plain = ecs.describe_clusters(clusters=["c1"])["clusters"][0]
    assert "tags" not in plain or plain["tags"] == []
    full = ecs.describe_clusters(clusters=["c1", ACCOUNT_ARN + ":cluster/c2", "nope"],
                                 include=["TAGS", "SETTINGS", "STATISTICS"])
    assert [c["clusterName"] for c in full["clusters"]] == ["c1", "c2"]
    assert full["clusters"][0]["tags"] == [{"key": "n", "value": "1"}]
    assert full["clusters"][0]["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    stats = {s["name"]: s["value"] for s in full["clusters"][0]["statistics"]}
    assert stats["runningFargateTasksCount"] == "0"
    assert full["failures"] == [{"arn": ACCOUNT_ARN + ":cluster/nope", "reason": "MISSING"}]

    # idempotent create returns the existing cluster
    again = ecs.create_cluster(clusterName="c1")["cluster"]
    assert again["clusterArn"] == ACCOUNT_ARN + ":cluster/c1"

    updated = ecs.update_cluster(cluster="c1", settings=[{"name": "containerInsights", "value": "disabled"}])
    assert updated["cluster"]["settings"] == [{"name": "containerInsights", "value": "disabled"}]

    arn = ACCOUNT_ARN + ":cluster/c1"
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "team", "value": "core"}])
    ecs.untag_resource(resourceArn=arn, tagKeys=["n"])
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "team", "value": "core"}]

    deleted = ecs.delete_cluster(cluster="c1")["cluster"]
    assert deleted["status"] == "INACTIVE"
    assert arn not in ecs.list_clusters()["clusterArns"]
    assert ecs.describe_clusters(clusters=["c1"])["clusters"][0]["status"] == "INACTIVE"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.update_cluster(cluster="c1", settings=[])
    assert error_code(e) == "ClusterNotFoundException"
    with pytest.raises(ecs.exceptions.ClusterNotFoundException):
        ecs.delete_cluster(cluster="never-was")


def test_default_cluster_is_created_on_first_use(berth):
    ecs = berth.ecs()
    assert ecs.list_clusters()["clusterArns"] == []
    out = ecs.describe_clusters()
    assert [c["clusterName"] for c in out["clusters"]] == ["default"]
    assert ecs.list_clusters()["clusterArns"] == [ACCOUNT_ARN + ":cluster/default"]
    assert ecs.create_cluster()["cluster"]["clusterName"] == "default"


def test_task_definition_lifecycle(berth):
    ecs = berth.ecs()
    td = dict(SEED, cpu="1 vCPU", memory="2 GB", tags=[{"key": "app", "value": "api"}])
    out = ecs.register_task_definition(**td)
    assert out["taskDefinition"]["cpu"] == "1024" and out["taskDefinition"]["memory"] == "2048"
    assert out["tags"] == [{"key": "app", "value": "api"}]
    for _ in range(4):
        ecs.register_task_definition(**SEED)
    other = dict(SEED, family="worker")
    ecs.register_task_definition(**other)

    d = ecs.describe_task_definition(taskDefinition="api-service:1", include=["TAGS"])
    assert d["tags"] == [{"key": "app", "value": "api"}]
    assert d["taskDefinition"]["registeredBy"].startswith("arn:aws:iam::000000000000:")
    assert "tags" not in ecs.describe_task_definition(taskDefinition="api-service:1") or \
        ecs.describe_task_definition(taskDefinition="api-service:1")["tags"] == []

    pages = list(ecs.get_paginator("list_task_definitions").paginate(
        familyPrefix="api-service", sort="DESC", PaginationConfig={"PageSize": 2}))
    revs = [int(a.rsplit(":", 1)[1]) for p in pages for a in p["taskDefinitionArns"]]
    assert revs == [5, 4, 3, 2, 1]
    fams = ecs.list_task_definition_families(familyPrefix="api")["families"]
    assert fams == ["api-service"]

    ecs.deregister_task_definition(taskDefinition=ACCOUNT_ARN + ":task-definition/worker:1")
    assert ecs.list_task_definition_families(status="ACTIVE")["families"] == ["api-service"]
    assert ecs.list_task_definition_families(status="INACTIVE")["families"] == ["worker"]
    assert sorted(ecs.list_task_definition_families()["families"]) == ["api-service", "worker"]

    # deleting an ACTIVE revision fails per item; an INACTIVE one goes to DELETE_IN_PROGRESS
    ecs.deregister_task_definition(taskDefinition="api-service:1")
    out = ecs.delete_task_definitions(taskDefinitions=["api-service:1", "api-service:2"])
    assert [t["status"] for t in out["taskDefinitions"]] == ["DELETE_IN_PROGRESS"]
    assert out["failures"][0]["arn"] == "api-service:2"
    # revisions are never reused
    assert ecs.register_task_definition(**SEED)["taskDefinition"]["revision"] == 6

    with pytest.raises(ecs.exceptions.ClientException):
        ecs.describe_task_definition(taskDefinition="no-such-family")
    with pytest.raises(ecs.exceptions.ClientException):
        ecs.deregister_task_definition(taskDefinition="api-service")  # no revision


@pytest.mark.parametrize("mutate,code,needle", [
    (lambda t: t.update(cpu="256", memory="4096"), "ClientException", "512"),
    (lambda t: t.update(networkMode="bridge"), "ClientException", "awsvpc"),
    (lambda t: t["containerDefinitions"][0].update(essential=False), "ClientException", "essential"),
    (lambda t: t["containerDefinitions"].append(copy.deepcopy(t["containerDefinitions"][0])), "ClientException", "api"),
    (lambda t: t["containerDefinitions"][0]["portMappings"][0].update(hostPort=80), "ClientException", "hostPort"),
    (lambda t: t["containerDefinitions"][0].update(memory=4096), "ClientException", "memory"),
    (lambda t: t.update(family="bad family!"), "ClientException", "amily"),
])
def test_task_definition_rules(berth, mutate, code, needle):
    td = copy.deepcopy(SEED)
    mutate(td)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        berth.ecs().register_task_definition(**td)
    assert e.value.response["Error"]["Code"] in (code, "InvalidParameterException"), e.value.response
    assert needle.lower() in e.value.response["Error"]["Message"].lower(), e.value.response
    assert berth.ecs().list_task_definitions()["taskDefinitionArns"] == [], "nothing is stored"


def test_fifty_concurrent_registrations_get_revisions_1_to_50(berth):
    session = berth.boto3_session()

    def register(_):
        ecs = shapes.install(session.client("ecs"))
        return ecs.register_task_definition(**SEED)["taskDefinition"]["revision"]

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        revs = list(pool.map(register, range(50)))
    assert sorted(revs) == list(range(1, 51))


def test_unsigned_and_badly_signed_requests_are_refused_and_change_nothing(berth):
    body = {"clusterName": "sneaky"}
    status, out = berth.raw("CreateCluster", body, sign=False)
    assert status in (400, 403) and out["__type"] == "MissingAuthenticationTokenException", out
    status, out = berth.raw("CreateCluster", body, secret="not-the-secret")
    assert status in (400, 403) and out["__type"] == "InvalidSignatureException", out
    status, out = berth.raw("CreateCluster", body, access_key="AKIAUNKNOWNKEY000000")
    assert status in (400, 403) and out["__type"] == "UnrecognizedClientException", out
    status, out = berth.raw("CreateCluster", body, region="eu-west-1")
    assert status in (400, 403) and out["__type"] == "InvalidSignatureException", out
    for skew in (-16 * 60, 16 * 60):
        status, out = berth.raw("CreateCluster", body, clock_skew=skew)
        assert status in (400, 403) and out["__type"] == "InvalidSignatureException", out
        assert "Signature" in out["message"], out
    assert berth.ecs().list_clusters()["clusterArns"] == []


def test_malformed_requests_get_aws_errors_not_500s(berth):
    status, out = berth.raw("CreateCluster", b"{not json")
    assert status == 400 and out["__type"] == "SerializationException", out
    status, out = berth.raw("FlyToTheMoon", {})
    assert status == 400 and out["__type"] == "UnknownOperationException", out
    status, out = berth.raw("", {}, target="SomeOtherService_20200101.Thing")
    assert status == 400 and out["__type"] == "UnknownOperationException", out
    status, out = berth.raw("CreateCluster", {"clusterName": 42})
    assert status == 400 and out["__type"] == "SerializationException", out
    status, out = berth.raw("CreateCluster", {"clusterName": "x", "tags": "not-a-list"})
    assert status == 400 and out["__type"] == "SerializationException", out
    status, out = berth.raw("RegisterTaskDefinition", {"containerDefinitions": []})
    assert status == 400 and out["__type"] in ("InvalidParameterException", "ClientException"), out
    assert "family" in out["message"]
    status, out = berth.raw("ListTaskDefinitions", {"status": "SLEEPING"})
    assert status == 400 and out["__type"] == "InvalidParameterException", out
    status, out = berth.raw("ListClusters", {"maxResults": 1000})
    assert status == 400 and out["__type"] == "InvalidParameterException", out
    status, out = berth.raw("ListClusters", {"nextToken": "forged"})
    assert status == 400 and out["__type"] == "InvalidParameterException", out
    # a body over the request limit
    status, out = berth.raw("CreateCluster", b'{"clusterName": "' + b"x" * (2 * 1024 * 1024) + b'"}')
    assert status in (400, 413) and "__type" in out, out
    # a task definition over 64 KiB
    big = copy.deepcopy(SEED)
    big["containerDefinitions"][0]["environment"] = [{"name": "V%d" % i, "value": "x" * 100} for i in range(700)]
    status, out = berth.raw("RegisterTaskDefinition", big)
    assert status == 400 and out["__type"] == "ClientException", out
    # the server is still fine
    assert berth.ecs().list_clusters()["clusterArns"] == []


def test_unknown_fields_from_newer_sdks_are_ignored(berth):
    td = copy.deepcopy(SEED)
    td["someFutureTopLevelField"] = {"x": 1}
    td["containerDefinitions"][0]["someFutureContainerField"] = True
    status, out = berth.raw("RegisterTaskDefinition", td)
    assert status == 200, out
    assert "someFutureTopLevelField" not in json.dumps(out)
    assert out["taskDefinition"]["revision"] == 1


def test_secret_is_never_printed(data_dir):
    from conftest import Berth
    b = Berth(data_dir).start()
    try:
        _, secret = b.credentials()
        b.ecs().list_clusters()
        b.raw("ListClusters", {}, secret="wrong")
    finally:
        b.stop()
    assert secret not in b.banner
    log = b.log()
    assert "list" in log.lower() or "ListClusters" in log, "the log has the calls: " + log[:500]
    assert secret not in log
