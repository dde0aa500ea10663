"""Every protocol at one endpoint, with the real clients: STS over AWS
Query, CloudWatch over all three protocols its model lists (AWS JSON 1.0
as boto3 and the aws CLI send it, Smithy RPC v2 CBOR, AWS Query — the last
two sent by botocore's own serializers, the model's protocol list narrowed
to one), EventBridge Scheduler over REST-JSON, each response checked
strictly against botocore's model."""
import datetime
import gzip
import json
import os

import botocore.exceptions
import pytest

import shapes

ACCOUNT = "000000000000"


def test_sts_get_caller_identity_with_the_cli_and_boto3(berth):
    _, out, _ = berth.aws("sts", "get-caller-identity")
    assert out == {"UserId": ACCOUNT, "Account": ACCOUNT, "Arn": "arn:aws:iam::%s:root" % ACCOUNT}
    sts = shapes.install(berth.boto3_session().client("sts"))
    assert sts.meta.service_model.resolved_protocol == "query"
    got = sts.get_caller_identity()
    assert got["Arn"] == "arn:aws:iam::%s:root" % ACCOUNT and got["Account"] == ACCOUNT
    assert got["ResponseMetadata"]["RequestId"]
    # An operation STS has that Berth does not serve.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts.get_federation_token(Name="session")
    assert e.value.response["Error"]["Code"] == "InvalidAction"
    assert "GetFederationToken" in e.value.response["Error"]["Message"]


def cloudwatch_speaking(berth, protocol, tmp_path):
    """A boto3 CloudWatch client whose model lists only `protocol`."""
    import botocore
    src = os.path.join(os.path.dirname(botocore.__file__), "data", "cloudwatch", "2010-08-01", "service-2.json.gz")
    model = json.load(gzip.open(src))
    model["metadata"]["protocols"] = [protocol]
    model["metadata"]["protocol"] = protocol
    d = tmp_path / protocol / "cloudwatch" / "2010-08-01"
    d.mkdir(parents=True)
    (d / "service-2.json").write_text(json.dumps(model))
    session = berth.boto3_session()
    session._session.get_component("data_loader").search_paths.insert(0, str(tmp_path / protocol))
    client = shapes.install(session.client("cloudwatch"))
    assert client.meta.service_model.resolved_protocol == protocol
    return client


FIXTURES = os.path.join(os.path.dirname(__file__), "../../crates/berth-wire/tests/fixtures")


def test_cbor_answers_timestamps_and_blobs_as_botocore_reads_them():
    """What Berth's CBOR encoder writes for CloudWatch answers with a
    timestamp and a blob (fixtures kept equal to the encoder's output by
    berth-wire's codec::cbor tests), read by botocore's own rpc-v2-cbor
    parser and checked strictly against the model."""
    import botocore.parsers
    import botocore.session
    model = botocore.session.get_session().get_service_model("cloudwatch")
    parser = botocore.parsers.RpcV2CBORParser()

    def parse(op, name):
        body = open(os.path.join(FIXTURES, name), "rb").read()
        shape = model.operation_model(op).output_shape
        shapes.check(shape, parser._initial_body_parse(body))
        return parser.parse({"body": body, "headers": {"smithy-protocol": "rpc-v2-cbor"}, "status_code": 200}, shape)

    [result] = parse("GetMetricData", "cbor-get-metric-data.cbor")["MetricDataResults"]
    utc = datetime.timezone.utc
    assert [t.astimezone(utc) for t in result["Timestamps"]] == [
        datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=utc), datetime.datetime(2024, 1, 2, 3, 5, 5, 500000, tzinfo=utc)]
    assert result["Values"] == [1.0, 2.0]
    image = parse("GetMetricWidgetImage", "cbor-get-metric-widget-image.cbor")["MetricWidgetImage"]
    assert image == b"\x89PNG\r\n\x1a\n"


def test_cloudwatch_list_metrics_over_its_three_protocols(berth, tmp_path):
    _, out, _ = berth.aws("cloudwatch", "list-metrics", "--namespace", "AWS/ECS")
    assert out == {"Metrics": []}
    default = shapes.install(berth.boto3_session().client("cloudwatch"))
    assert default.meta.service_model.resolved_protocol == "json"
    clients = {"json": default}
    for protocol in ("smithy-rpc-v2-cbor", "query"):
        clients[protocol] = cloudwatch_speaking(berth, protocol, tmp_path)
    for protocol, cw in clients.items():
        got = cw.list_metrics(Namespace="AWS/ECS", Dimensions=[{"Name": "ClusterName", "Value": "default"}])
        assert got["Metrics"] == [], (protocol, got)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 200
        pages = list(cw.get_paginator("list_metrics").paginate())
        assert [p["Metrics"] for p in pages] == [[]], protocol
        # A rule broken gets the same code in every protocol.
        with pytest.raises(botocore.exceptions.ClientError) as e:
            cw.list_metrics(NextToken="not-ours")
        assert e.value.response["Error"]["Code"] == "InvalidNextToken", (protocol, e.value.response)
        # An operation Berth does not serve yet is named.
        with pytest.raises(botocore.exceptions.ClientError) as e:
            cw.describe_alarms()
        assert "DescribeAlarms" in e.value.response["Error"]["Message"], (protocol, e.value.response)


def test_scheduler_over_rest_json_with_boto3_and_the_cli(berth):
    _, out, _ = berth.aws("scheduler", "list-schedules")
    assert out == {"Schedules": []}
    _, out, _ = berth.aws("scheduler", "list-schedules", "--state", "ENABLED", "--name-prefix", "nightly", "--max-results", "5")
    assert out == {"Schedules": []}
    _, out, _ = berth.aws("scheduler", "list-schedule-groups")
    assert [g["Name"] for g in out["ScheduleGroups"]] == ["default"]
    rc, _, err = berth.aws("scheduler", "get-schedule", "--name", "nightly", check=False)
    assert rc != 0 and "ResourceNotFoundException" in err and "default/nightly" in err, err

    session = berth.boto3_session()
    sch = shapes.install(session.client("scheduler"))
    assert sch.meta.service_model.resolved_protocol == "rest-json"
    got = sch.list_schedules(MaxResults=10, State="DISABLED", NamePrefix="x", GroupName="default")
    assert got["Schedules"] == [] and got["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert [p["Schedules"] for p in sch.get_paginator("list_schedules").paginate()] == [[]]
    [group] = sch.list_schedule_groups()["ScheduleGroups"]
    assert group["Name"] == "default" and group["State"] == "ACTIVE"
    assert group["Arn"] == "arn:aws:scheduler:%s:%s:schedule-group/default" % (session.region_name, ACCOUNT)
    # Timestamps as botocore parses them: aware datetimes, from when Berth made its key.
    now = datetime.datetime.now(datetime.timezone.utc)
    assert isinstance(group["CreationDate"], datetime.datetime) and group["CreationDate"].tzinfo is not None
    assert now - datetime.timedelta(hours=1) < group["CreationDate"] <= now
    assert group["LastModificationDate"] == group["CreationDate"]
    assert sch.list_schedule_groups(NamePrefix="prod")["ScheduleGroups"] == []

    # A modeled error: its status, code and member, caught as botocore's exception class.
    with pytest.raises(sch.exceptions.ResourceNotFoundException) as e:
        sch.get_schedule(Name="nightly", GroupName="ops")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert "ops/nightly" in e.value.response["Error"]["Message"]
    with pytest.raises(sch.exceptions.ValidationException) as e:
        sch.list_schedules(State="PAUSED")  # botocore does not check enums; Berth does
    assert "State" in e.value.response["Error"]["Message"]
    # An operation Berth does not serve yet is named.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sch.create_schedule(Name="n", ScheduleExpression="rate(1 hour)", FlexibleTimeWindow={"Mode": "OFF"},
                            Target={"Arn": "arn:aws:ecs:us-east-1:%s:cluster/default" % ACCOUNT,
                                    "RoleArn": "arn:aws:iam::%s:role/r" % ACCOUNT})
    assert "CreateSchedule" in e.value.response["Error"]["Message"], e.value.response
