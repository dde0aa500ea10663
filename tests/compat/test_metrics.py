"""CloudWatch metrics with the real clients: PutMetricData, then
GetMetricStatistics, GetMetricData (metric math) and ListMetrics give the
numbers put, over boto3's JSON 1.0, the aws CLI, and botocore's own CBOR
and Query serializers (responses checked against botocore's model);
CloudWatch's validation errors; and a real CPU-spinning service task
whose AWS/ECS CPUUtilization the agent publishes (test knob
BERTH_TEST_METRICS_PERIOD_SECONDS shortens the publishing period)."""
import datetime
import json
import os
import tempfile
import time
import urllib.request

import botocore.exceptions
import pytest

import shapes
from conftest import BUSYBOX, NETWORK, Berth, definition, import_busybox, release_test_network
from test_protocols import cloudwatch_speaking

UTC = datetime.timezone.utc


def cloudwatch(berth):
    return shapes.install(berth.boto3_session().client("cloudwatch"))


def minute_ago(n=0):
    """The start of the minute `n` minutes before this one."""
    now = datetime.datetime.now(UTC).replace(second=0, microsecond=0)
    return now - datetime.timedelta(minutes=n)


def code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def put_sample(cw, ns):
    """Two minutes of Latency for Host=a (values 1..10 at minute -2, a statistic set at -1) and one other metric."""
    t0, t1 = minute_ago(2), minute_ago(1)
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Latency", "Dimensions": [{"Name": "Host", "Value": "a"}], "Unit": "Milliseconds",
         "Timestamp": t0 + datetime.timedelta(seconds=5), "Values": [float(v) for v in range(1, 11)]},
        {"MetricName": "Latency", "Dimensions": [{"Name": "Host", "Value": "a"}], "Unit": "Milliseconds",
         "Timestamp": t1 + datetime.timedelta(seconds=5),
         "StatisticValues": {"SampleCount": 4, "Sum": 100, "Minimum": 10, "Maximum": 40}},
        {"MetricName": "Errors", "Dimensions": [{"Name": "Host", "Value": "a"}], "Value": 3, "Unit": "Count",
         "Timestamp": t0 + datetime.timedelta(seconds=5)},
        {"MetricName": "Errors", "Dimensions": [{"Name": "Host", "Value": "a"}], "Value": 1, "Unit": "Count",
         "Timestamp": t1 + datetime.timedelta(seconds=5), "StorageResolution": 1},
    ])
    return t0, t1


def test_put_then_statistics_data_and_list_over_every_protocol(berth, tmp_path):
    clients = {"json": cloudwatch(berth)}
    for protocol in ("smithy-rpc-v2-cbor", "query"):
        clients[protocol] = cloudwatch_speaking(berth, protocol, tmp_path)
    for protocol, cw in clients.items():
        ns = "Compat/" + protocol
        t0, t1 = put_sample(cw, ns)
        host = [{"Name": "Host", "Value": "a"}]

        got = cw.get_metric_statistics(Namespace=ns, MetricName="Latency", Dimensions=host, StartTime=t0,
                                       EndTime=t1 + datetime.timedelta(minutes=1), Period=60,
                                       Statistics=["Average", "Sum", "SampleCount", "Minimum", "Maximum"])
        assert got["Label"] == "Latency"
        points = sorted(got["Datapoints"], key=lambda p: p["Timestamp"])
        assert [p["Timestamp"].astimezone(UTC) for p in points] == [t0, t1], (protocol, points)
        assert [(p["SampleCount"], p["Sum"], p["Average"], p["Minimum"], p["Maximum"]) for p in points] == [
            (10.0, 55.0, 5.5, 1.0, 10.0), (4.0, 100.0, 25.0, 10.0, 40.0)], protocol
        assert {p["Unit"] for p in points} == {"Milliseconds"}
        # Percentiles of the raw values; a statistic set has none.
        got = cw.get_metric_statistics(Namespace=ns, MetricName="Latency", Dimensions=host, StartTime=t0,
                                       EndTime=t1 + datetime.timedelta(minutes=1), Period=60,
                                       ExtendedStatistics=["p50", "p90", "p99"])
        points = sorted(got["Datapoints"], key=lambda p: p["Timestamp"])
        assert points[0]["ExtendedStatistics"] == {"p50": 5.0, "p90": 9.0, "p99": 10.0}, protocol
        assert points[1].get("ExtendedStatistics", {}) == {}
        # One period over both minutes; a unit that is not theirs finds nothing.
        got = cw.get_metric_statistics(Namespace=ns, MetricName="Latency", Dimensions=host, StartTime=t0,
                                       EndTime=t0 + datetime.timedelta(minutes=2), Period=120, Statistics=["Maximum"])
        assert [p["Maximum"] for p in got["Datapoints"]] == [40.0]
        got = cw.get_metric_statistics(Namespace=ns, MetricName="Latency", Dimensions=host, StartTime=t0,
                                       EndTime=t0 + datetime.timedelta(minutes=2), Period=60, Statistics=["Sum"],
                                       Unit="Bytes")
        assert got["Datapoints"] == []
        # The exact dimensions only.
        got = cw.get_metric_statistics(Namespace=ns, MetricName="Latency", StartTime=t0,
                                       EndTime=t0 + datetime.timedelta(minutes=2), Period=60, Statistics=["Sum"])
        assert got["Datapoints"] == []

        def stat(id, name, s):
            return {"Id": id, "MetricStat": {"Metric": {"Namespace": ns, "MetricName": name, "Dimensions": host},
                                             "Period": 60, "Stat": s}, "ReturnData": False}
        got = cw.get_metric_data(StartTime=t0, EndTime=t1 + datetime.timedelta(minutes=1), ScanBy="TimestampAscending",
                                 MetricDataQueries=[
                                     dict(stat("lat", "Latency", "Average"), ReturnData=True, Label="latency"),
                                     stat("err", "Errors", "Sum"),
                                     {"Id": "rate", "Expression": "err / lat * 100", "Label": "rate"},
                                     {"Id": "both", "Expression": "SUM([err, lat])"},
                                     {"Id": "total", "Expression": "SUM(err) + 1"},
                                 ])
        results = {r["Id"]: r for r in got["MetricDataResults"]}
        assert set(results) == {"lat", "rate", "both", "total"}, protocol
        assert results["lat"]["Label"] == "latency" and results["lat"]["StatusCode"] == "Complete"
        assert [t.astimezone(UTC) for t in results["lat"]["Timestamps"]] == [t0, t1]
        assert results["lat"]["Values"] == [5.5, 25.0]
        assert results["rate"]["Values"] == [3 / 5.5 * 100, 1 / 25.0 * 100]
        assert results["both"]["Values"] == [8.5, 26.0]
        assert results["total"]["Values"] == [5.0, 5.0]
        # Newest first by default; MaxDatapoints pages with NextToken.
        queries = [dict(stat("lat", "Latency", "Maximum"), ReturnData=True)]
        got = cw.get_metric_data(StartTime=t0, EndTime=t1 + datetime.timedelta(minutes=1), MetricDataQueries=queries,
                                 MaxDatapoints=1)
        [r] = got["MetricDataResults"]
        assert (r["Values"], r["StatusCode"]) == ([40.0], "PartialData")
        got = cw.get_metric_data(StartTime=t0, EndTime=t1 + datetime.timedelta(minutes=1), MetricDataQueries=queries,
                                 MaxDatapoints=1, NextToken=got["NextToken"])
        [r] = got["MetricDataResults"]
        assert (r["Values"], r["StatusCode"]) == ([10.0], "Complete") and "NextToken" not in got

        listed = cw.list_metrics(Namespace=ns)["Metrics"]
        assert sorted((m["MetricName"], json.dumps(m["Dimensions"])) for m in listed) == [
            ("Errors", json.dumps(host)), ("Latency", json.dumps(host))], protocol
        assert [m["MetricName"] for m in cw.list_metrics(Namespace=ns, MetricName="Errors", RecentlyActive="PT3H")["Metrics"]] == ["Errors"]
        assert cw.list_metrics(Namespace=ns, Dimensions=[{"Name": "Host", "Value": "b"}])["Metrics"] == []

    # The aws CLI (JSON 1.0), and a namespace per protocol.
    _, out, _ = berth.aws("cloudwatch", "put-metric-data", "--namespace", "Compat/cli", "--metric-name", "Jobs",
                          "--value", "7", "--unit", "Count")
    _, out, _ = berth.aws("cloudwatch", "list-metrics", "--namespace", "Compat/cli")
    assert [m["MetricName"] for m in out["Metrics"]] == ["Jobs"]
    now = datetime.datetime.now(UTC)
    _, out, _ = berth.aws("cloudwatch", "get-metric-statistics", "--namespace", "Compat/cli", "--metric-name", "Jobs",
                          "--start-time", (now - datetime.timedelta(minutes=5)).isoformat(),
                          "--end-time", (now + datetime.timedelta(minutes=1)).isoformat(),
                          "--period", "300", "--statistics", "Sum")
    assert [p["Sum"] for p in out["Datapoints"]] == [7.0]
    namespaces = {m["Namespace"] for m in clients["json"].list_metrics()["Metrics"]}
    assert namespaces == {"Compat/json", "Compat/smithy-rpc-v2-cbor", "Compat/query", "Compat/cli"}


def test_cloudwatch_validation_errors(berth):
    cw = cloudwatch(berth)
    now = datetime.datetime.now(UTC)

    def fails(expected, call, **kw):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call(**kw)
        assert code(e) == expected, e.value.response
        return e.value.response["Error"]["Message"]

    put = cw.put_metric_data
    fails("InvalidParameterValue", put, Namespace="AWS/ECS", MetricData=[{"MetricName": "m", "Value": 1}])
    fails("InvalidParameterCombination", put, Namespace="N",
          MetricData=[{"MetricName": "m", "Value": 1, "StatisticValues": {"SampleCount": 1, "Sum": 1, "Minimum": 1, "Maximum": 1}}])
    fails("MissingParameter", put, Namespace="N", MetricData=[{"MetricName": "m"}])
    fails("InvalidParameterValue", put, Namespace="N", MetricData=[{"MetricName": "m", "Value": 1, "StorageResolution": 10}])
    msg = fails("InvalidParameterValue", put, Namespace="N",
                MetricData=[{"MetricName": "m", "Value": 1, "Timestamp": now - datetime.timedelta(days=15)}])
    assert "two weeks" in msg
    fails("InvalidParameterValue", put, Namespace="N",
          MetricData=[{"MetricName": "m", "Value": 1, "Timestamp": now + datetime.timedelta(hours=3)}])
    fails("InvalidParameterValue", put, Namespace="N", MetricData=[{"MetricName": "m", "Values": [1, 2], "Counts": [1]}])
    dims = [{"Name": "d%d" % i, "Value": "v"} for i in range(31)]
    fails("InvalidParameterValue", put, Namespace="N", MetricData=[{"MetricName": "m", "Value": 1, "Dimensions": dims}])
    fails("InvalidParameterValue", put, Namespace="N", MetricData=[{"MetricName": "m", "Value": 1}] * 1001)
    fails("InvalidParameterValue", put, Namespace="N", MetricData=[
        {"MetricName": "m", "Value": 1, "Dimensions": [{"Name": "a", "Value": "1"}, {"Name": "a", "Value": "2"}]}])
    # Nothing of a failed call was kept.
    assert cw.list_metrics(Namespace="N")["Metrics"] == []

    gms = cw.get_metric_statistics
    base = dict(Namespace="N", MetricName="m", StartTime=now - datetime.timedelta(hours=1), EndTime=now)
    fails("InvalidParameterValue", gms, Period=61, Statistics=["Sum"], **base)
    fails("MissingParameter", gms, Period=60, **base)
    fails("InvalidParameterCombination", gms, Period=60, Statistics=["Sum"], ExtendedStatistics=["p99"], **base)
    fails("InvalidParameterValue", gms, Period=60, ExtendedStatistics=["p101"], **base)
    msg = fails("InvalidParameterCombination", gms, Namespace="N", MetricName="m", Period=1, Statistics=["Sum"],
                StartTime=now - datetime.timedelta(hours=1), EndTime=now)
    assert "1,440" in msg or "1440" in msg
    fails("InvalidParameterValue", gms, Namespace="N", MetricName="m", Period=60, Statistics=["Sum"],
          StartTime=now, EndTime=now - datetime.timedelta(hours=1))

    gmd = cw.get_metric_data
    window = dict(StartTime=now - datetime.timedelta(hours=1), EndTime=now)
    stat = {"Metric": {"Namespace": "N", "MetricName": "m"}, "Period": 60, "Stat": "Sum"}
    fails("InvalidParameterValue", gmd, MetricDataQueries=[{"Id": "Upper", "MetricStat": stat}], **window)
    fails("InvalidParameterValue", gmd, MetricDataQueries=[{"Id": "a", "MetricStat": stat}, {"Id": "a", "MetricStat": stat}], **window)
    fails("InvalidParameterCombination", gmd, MetricDataQueries=[{"Id": "a", "MetricStat": stat, "Expression": "1"}], **window)
    fails("ValidationError", gmd, MetricDataQueries=[{"Id": "e", "Expression": "m1 +"}], **window)
    fails("ValidationError", gmd, MetricDataQueries=[{"Id": "e", "Expression": "x * 2"}], **window)
    fails("ValidationError", gmd, MetricDataQueries=[{"Id": "e", "Expression": "f * 2"}, {"Id": "f", "Expression": "e * 2"}], **window)
    fails("InvalidParameterValue", gmd, MetricDataQueries=[{"Id": "a", "MetricStat": stat, "ReturnData": False}], **window)
    fails("InvalidNextToken", gmd, MetricDataQueries=[{"Id": "a", "MetricStat": stat}], NextToken="nope", **window)


# ------------------------------------------------- real usage from a service

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists(BUSYBOX),
    reason="needs root and Debian's busybox-static (CI has both)")

# Publishing every 5 s (a test knob; the default is each minute).
PERIOD = 5


@pytest.fixture(scope="module")
def usage_berth():
    with tempfile.TemporaryDirectory(prefix="berth-compat-metrics-") as d:
        b = Berth(os.path.join(d, "data"), extra_env={"BERTH_TEST_METRICS_PERIOD_SECONDS": str(PERIOD)}).start()
        try:
            import_busybox(b, d)
            yield b
        finally:
            try:
                drain(b.ecs())
            finally:
                b.stop()
                release_test_network(b.data_dir)


def drain(ecs, timeout=60):
    """Deletes every service (force), stops every task, and waits until all are STOPPED."""
    for arn in ecs.list_services(cluster="default")["serviceArns"]:
        ecs.delete_service(cluster="default", service=arn, force=True)
    deadline = time.monotonic() + timeout
    while True:
        arns = ecs.list_tasks(cluster="default", desiredStatus="RUNNING")["taskArns"]
        for arn in arns:
            ecs.stop_task(cluster="default", task=arn, reason="teardown")
        stopped = ecs.list_tasks(cluster="default", desiredStatus="STOPPED")["taskArns"]
        tasks = ecs.describe_tasks(cluster="default", tasks=stopped)["tasks"] if stopped else []
        if not arns and all(t["lastStatus"] == "STOPPED" for t in tasks):
            return
        assert time.monotonic() < deadline, "tasks not STOPPED within %d s: %s" % (timeout, [t["lastStatus"] for t in tasks])
        time.sleep(0.5)


@needs_root
def test_a_cpu_spinning_service_shows_its_cpu_utilization(usage_berth):
    ecs = usage_berth.ecs()
    cw = cloudwatch(usage_berth)
    td = definition("spin", "while :; do :; done")
    arn = ecs.register_task_definition(**td)["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(serviceName="spin", taskDefinition=arn, desiredCount=1, launchType="FARGATE",
                       networkConfiguration=NETWORK)
    dims = [{"Name": "ClusterName", "Value": "default"}, {"Name": "ServiceName", "Value": "spin"}]
    deadline = time.monotonic() + 120
    last = None
    while time.monotonic() < deadline:
        now = datetime.datetime.now(UTC)
        got = cw.get_metric_statistics(Namespace="AWS/ECS", MetricName="CPUUtilization", Dimensions=dims,
                                       StartTime=now - datetime.timedelta(minutes=5),
                                       EndTime=now + datetime.timedelta(minutes=1), Period=5,
                                       Statistics=["Average", "Maximum"])
        last = sorted(got["Datapoints"], key=lambda p: p["Timestamp"])
        # The first window may hold the task's start; any later one is all spinning.
        if len(last) >= 2 and last[-1]["Average"] >= 80:
            break
        time.sleep(2)
    else:
        raise AssertionError("CPUUtilization of the spinning service never reached 80%%: %s\n%s" % (last, usage_berth.log()[-3000:]))
    assert last[-1]["Unit"] == "Percent"
    assert last[-1]["Maximum"] <= 130, last  # a quota of 0.25 cores: not much over its reservation

    now = datetime.datetime.now(UTC)
    got = cw.get_metric_data(StartTime=now - datetime.timedelta(minutes=5), EndTime=now + datetime.timedelta(minutes=1),
                             MetricDataQueries=[
                                 {"Id": "cpu", "MetricStat": {"Metric": {"Namespace": "AWS/ECS", "MetricName": "CPUUtilization",
                                                                         "Dimensions": dims}, "Period": 60, "Stat": "Maximum"}},
                                 {"Id": "used", "MetricStat": {"Metric": {"Namespace": "ECS/ContainerInsights", "MetricName": "CpuUtilized",
                                                                          "Dimensions": dims}, "Period": 60, "Stat": "Maximum"}, "ReturnData": False},
                                 {"Id": "reserved", "MetricStat": {"Metric": {"Namespace": "ECS/ContainerInsights", "MetricName": "CpuReserved",
                                                                              "Dimensions": dims}, "Period": 60, "Stat": "Maximum"}, "ReturnData": False},
                                 {"Id": "ratio", "Expression": "used / reserved * 100"},
                             ])
    results = {r["Id"]: r for r in got["MetricDataResults"]}
    assert max(results["cpu"]["Values"]) >= 80, results
    assert max(results["ratio"]["Values"]) >= 80, results
    # The metrics are listed with AWS's dimensions, the cluster alone too.
    listed = cw.list_metrics(Namespace="AWS/ECS", MetricName="CPUUtilization")["Metrics"]
    assert {json.dumps(m["Dimensions"]) for m in listed} >= {
        json.dumps(dims), json.dumps([{"Name": "ClusterName", "Value": "default"}])}
    insights = cw.list_metrics(Namespace="ECS/ContainerInsights",
                               Dimensions=[{"Name": "TaskDefinitionFamily", "Value": "spin"}])["Metrics"]
    assert {m["MetricName"] for m in insights} >= {"CpuUtilized", "CpuReserved", "MemoryUtilized", "MemoryReserved", "RunningTaskCount"}

    # Prometheus gauges at /metrics, beside the request counters.
    text = urllib.request.urlopen(usage_berth.endpoint + "/metrics", timeout=10).read().decode()
    assert "berth_api_requests_total{" in text
    gauges = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            gauges[name] = float(value)
    assert gauges['berth_service_cpu_utilization_percent{cluster="default",service="spin"}'] >= 80, text
    assert gauges['berth_service_running_tasks{cluster="default",service="spin"}'] == 1
    task = [k for k in gauges if k.startswith('berth_task_cpu_used_units{cluster="default",service="spin",task="')]
    assert any(k.endswith('container="main"}') for k in task) and any(k.endswith('container=""}') for k in task), task
    assert [v for k, v in gauges.items() if k.startswith("berth_task_cpu_reserved_units") and 'service="spin"' in k] == [256.0]
    drain(ecs)
