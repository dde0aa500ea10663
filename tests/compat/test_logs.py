"""CloudWatch Logs through the real boto3 and aws CLI against a real `berth up`.

Every boto3 response is checked strictly against botocore's logs model
(shapes.py), as for ECS.
"""
import re
import time

import botocore.exceptions
import pytest

import shapes

GROUP_ARN = "arn:aws:logs:us-east-1:000000000000:log-group:"
TOKEN = re.compile(r"^[fb]/\d+$")


def now_ms():
    return int(time.time() * 1000)


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def put(logs, group, stream, messages, start=None, step=1):
    start = now_ms() - 60_000 if start is None else start
    events = [{"timestamp": start + i * step, "message": m} for i, m in enumerate(messages)]
    return logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


def test_logs_groups_streams_and_events_with_boto3(berth):
    logs = berth.logs()
    logs.create_log_group(logGroupName="/ecs/api-service")
    logs.create_log_stream(logGroupName="/ecs/api-service", logStreamName="ecs/api/task-1")
    with pytest.raises(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName="/ecs/api-service")
    with pytest.raises(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName="/ecs/api-service", logStreamName="ecs/api/task-1")
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.create_log_stream(logGroupName="/nope", logStreamName="x")
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.create_log_group(logGroupName="has spaces")

    out = put(logs, "/ecs/api-service", "ecs/api/task-1", ["starting", "listening on :8080", "ready"])
    assert "rejectedLogEventsInfo" not in out
    got = logs.get_log_events(logGroupName="/ecs/api-service", logStreamName="ecs/api/task-1")
    assert [e["message"] for e in got["events"]] == ["starting", "listening on :8080", "ready"]
    assert TOKEN.match(got["nextForwardToken"]) and TOKEN.match(got["nextBackwardToken"])
    assert got["nextForwardToken"].startswith("f/") and got["nextBackwardToken"].startswith("b/")

    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.get_log_events(logGroupName="/ecs/api-service", logStreamName="missing")
    with pytest.raises(logs.exceptions.InvalidParameterException) as e:
        put(logs, "/ecs/api-service", "ecs/api/task-1", ["b", "a"], step=-1)
    assert "chronological" in str(e.value)

    group = logs.describe_log_groups(logGroupNamePrefix="/ecs/")["logGroups"][0]
    assert group["logGroupName"] == "/ecs/api-service"
    assert group["arn"] == GROUP_ARN + "/ecs/api-service:*"
    assert group["storedBytes"] == len("starting") + len("listening on :8080") + len("ready")
    stream = logs.describe_log_streams(logGroupName="/ecs/api-service")["logStreams"][0]
    assert stream["logStreamName"] == "ecs/api/task-1"
    assert stream["arn"] == GROUP_ARN + "/ecs/api-service:log-stream:ecs/api/task-1"
    assert stream["lastEventTimestamp"] - stream["firstEventTimestamp"] == 2

    logs.delete_log_stream(logGroupName="/ecs/api-service", logStreamName="ecs/api/task-1")
    logs.delete_log_group(logGroupName="/ecs/api-service")
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.delete_log_group(logGroupName="/ecs/api-service")


def test_logs_rejected_events_are_reported_by_index(berth):
    logs = berth.logs()
    logs.create_log_group(logGroupName="g")
    logs.create_log_stream(logGroupName="g", logStreamName="s")
    now = now_ms()
    events = [
        {"timestamp": now - 15 * 86_400_000, "message": "too old"},
        {"timestamp": now, "message": "fine"},
        {"timestamp": now + 3 * 3_600_000, "message": "too new"},
    ]
    out = logs.put_log_events(logGroupName="g", logStreamName="s", logEvents=events)
    assert out["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 1, "tooNewLogEventStartIndex": 2}
    got = logs.get_log_events(logGroupName="g", logStreamName="s", startFromHead=True)
    assert [e["message"] for e in got["events"]] == ["fine"]


def stream_of(logs, n):
    """A stream of n events, several per millisecond."""
    logs.create_log_group(logGroupName="/paged")
    logs.create_log_stream(logGroupName="/paged", logStreamName="s")
    messages = ["line %03d" % i for i in range(n)]
    start = now_ms() - 3_600_000
    for i in range(0, n, 100):
        events = [{"timestamp": start + j // 4, "message": messages[j]} for j in range(i, min(n, i + 100))]
        logs.put_log_events(logGroupName="/paged", logStreamName="s", logEvents=events)
    return messages


def test_logs_get_log_events_pages_forward_until_the_token_repeats(berth):
    logs = berth.logs()
    messages = stream_of(logs, 250)
    # The loop every CloudWatch reader writes: follow nextForwardToken
    # until it comes back unchanged.
    seen, kwargs, calls = [], {"startFromHead": True, "limit": 40}, 0
    while True:
        calls += 1
        page = logs.get_log_events(logGroupName="/paged", logStreamName="s", **kwargs)
        seen += [e["message"] for e in page["events"]]
        if page["nextForwardToken"] == kwargs.get("nextToken"):
            assert page["events"] == []
            break
        kwargs["nextToken"] = page["nextForwardToken"]
    assert seen == messages
    assert calls == 8  # 6 full pages, one of 10, then the repeat


def test_logs_get_log_events_pages_backward_from_the_tail(berth):
    logs = berth.logs()
    messages = stream_of(logs, 250)
    page = logs.get_log_events(logGroupName="/paged", logStreamName="s", limit=60)
    assert [e["message"] for e in page["events"]] == messages[-60:], "the default starts at the tail"
    pages = [[e["message"] for e in page["events"]]]
    token = page["nextBackwardToken"]
    while True:
        page = logs.get_log_events(logGroupName="/paged", logStreamName="s", limit=60, nextToken=token)
        if page["nextBackwardToken"] == token:
            assert page["events"] == []
            break
        pages.append([e["message"] for e in page["events"]])
        token = page["nextBackwardToken"]
    assert [m for p in reversed(pages) for m in p] == messages


def test_logs_filter_log_events_paginator(berth):
    logs = berth.logs()
    logs.create_log_group(logGroupName="/svc")
    start = now_ms() - 600_000
    for k, stream in enumerate(["web/1", "web/2", "worker/1"]):
        logs.create_log_stream(logGroupName="/svc", logStreamName=stream)
        events = [{"timestamp": start + 3 * i + k,
                   "message": "%s request %d from %s" % ("ERROR" if i % 4 == 0 else "INFO", i, stream)}
                  for i in range(40)]
        logs.put_log_events(logGroupName="/svc", logStreamName=stream, logEvents=events)

    paginator = logs.get_paginator("filter_log_events")
    pages = list(paginator.paginate(logGroupName="/svc", filterPattern="ERROR", PaginationConfig={"PageSize": 7}))
    assert len(pages) > 1
    assert all(len(p["events"]) <= 7 for p in pages)
    events = [e for p in pages for e in p["events"]]
    assert len(events) == 30
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events), "interleaved by time"
    assert len({e["eventId"] for e in events}) == 30
    full = paginator.paginate(logGroupName="/svc", filterPattern="ERROR").build_full_result()
    assert len(full["events"]) == 30 and full["searchedLogStreams"] == []

    def count(**kwargs):
        result = paginator.paginate(logGroupName="/svc", **kwargs).build_full_result()
        return len(result["events"])

    assert count(filterPattern="ERROR -web") == 10
    assert count(filterPattern='"request 8 from"') == 3
    assert count(filterPattern="?worker/1 ?web/2") == 80
    assert count(logStreamNamePrefix="web/") == 80
    assert count(logStreamNames=["worker/1"], filterPattern="ERROR") == 10
    assert count(startTime=start, endTime=start + 2) == 3, "both ends inclusive"
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.filter_log_events(logGroupName="/svc", logStreamNames=["web/1"], logStreamNamePrefix="web")
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.filter_log_events(logGroupName="/nope")


def test_logs_describe_streams_and_groups_paginators(berth):
    logs = berth.logs()
    for g in ["/a/1", "/a/2", "/a/3", "/b/1"]:
        logs.create_log_group(logGroupName=g)
    groups = logs.get_paginator("describe_log_groups").paginate(
        logGroupNamePrefix="/a/", PaginationConfig={"PageSize": 2}).build_full_result()
    assert [g["logGroupName"] for g in groups["logGroups"]] == ["/a/1", "/a/2", "/a/3"]

    now = now_ms()
    for i, name in enumerate(["s-%02d" % i for i in range(12)]):
        logs.create_log_stream(logGroupName="/a/1", logStreamName=name)
        if i % 3:
            put(logs, "/a/1", name, ["x"], start=now - 100_000 + (i * 7919) % 1000)
    pages = list(logs.get_paginator("describe_log_streams").paginate(
        logGroupName="/a/1", PaginationConfig={"PageSize": 5}))
    assert [len(p["logStreams"]) for p in pages] == [5, 5, 2]
    assert [s["logStreamName"] for p in pages for s in p["logStreams"]] == ["s-%02d" % i for i in range(12)]
    by_time = logs.get_paginator("describe_log_streams").paginate(
        logGroupName="/a/1", orderBy="LastEventTime", descending=True,
        PaginationConfig={"PageSize": 3}).build_full_result()["logStreams"]
    times = [s.get("lastEventTimestamp", -1) for s in by_time]
    assert times == sorted(times, reverse=True) and len(by_time) == 12
    assert "lastEventTimestamp" not in by_time[-1]
    with pytest.raises(logs.exceptions.InvalidParameterException):
        logs.describe_log_streams(logGroupName="/a/1", orderBy="LastEventTime", logStreamNamePrefix="s-")


def test_logs_retention(berth):
    logs = berth.logs()
    logs.create_log_group(logGroupName="kept")
    logs.put_retention_policy(logGroupName="kept", retentionInDays=30)
    assert logs.describe_log_groups(logGroupNamePrefix="kept")["logGroups"][0]["retentionInDays"] == 30
    with pytest.raises(logs.exceptions.InvalidParameterException) as e:
        logs.put_retention_policy(logGroupName="kept", retentionInDays=31)
    assert "3653" in str(e.value)
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.put_retention_policy(logGroupName="ghost", retentionInDays=1)
    logs.delete_retention_policy(logGroupName="kept")
    assert "retentionInDays" not in logs.describe_log_groups(logGroupNamePrefix="kept")["logGroups"][0]


def test_logs_with_the_aws_cli(berth):
    berth.aws("logs", "create-log-group", "--log-group-name", "/ecs/cli")
    berth.aws("logs", "create-log-stream", "--log-group-name", "/ecs/cli", "--log-stream-name", "c/1")
    t = now_ms() - 1000
    _, out, _ = berth.aws("logs", "put-log-events", "--log-group-name", "/ecs/cli", "--log-stream-name", "c/1",
                          "--log-events", "timestamp=%d,message=hello" % t, "timestamp=%d,message=ERROR boom" % (t + 1))
    assert len(out["nextSequenceToken"]) == 56

    _, out, _ = berth.aws("logs", "get-log-events", "--log-group-name", "/ecs/cli", "--log-stream-name", "c/1")
    assert [e["message"] for e in out["events"]] == ["hello", "ERROR boom"]
    assert out["nextForwardToken"].startswith("f/") and out["nextBackwardToken"].startswith("b/")
    _, again, _ = berth.aws("logs", "get-log-events", "--log-group-name", "/ecs/cli", "--log-stream-name", "c/1",
                            "--next-token", out["nextForwardToken"])
    assert again["events"] == [] and again["nextForwardToken"] == out["nextForwardToken"], "the end repeats its token"
    _, head, _ = berth.aws("logs", "get-log-events", "--log-group-name", "/ecs/cli", "--log-stream-name", "c/1",
                           "--start-from-head", "--limit", "1")
    assert [e["message"] for e in head["events"]] == ["hello"]

    _, out, _ = berth.aws("logs", "filter-log-events", "--log-group-name", "/ecs/cli", "--filter-pattern", "ERROR")
    assert [(e["logStreamName"], e["message"]) for e in out["events"]] == [("c/1", "ERROR boom")]
    _, out, _ = berth.aws("logs", "describe-log-streams", "--log-group-name", "/ecs/cli",
                          "--order-by", "LastEventTime", "--descending")
    assert out["logStreams"][0]["lastEventTimestamp"] == t + 1
    berth.aws("logs", "put-retention-policy", "--log-group-name", "/ecs/cli", "--retention-in-days", "7")
    _, out, _ = berth.aws("logs", "describe-log-groups", "--log-group-name-prefix", "/ecs/")
    assert out["logGroups"][0]["retentionInDays"] == 7

    rc, _, err = berth.aws("logs", "get-log-events", "--log-group-name", "/ecs/cli", "--log-stream-name", "nope",
                           check=False)
    assert rc != 0 and "ResourceNotFoundException" in err and "log stream does not exist" in err, err


def test_logs_error_shape_and_signing_on_the_wire(berth):
    status, body = berth.raw(None, {"logGroupName": "ghost"}, service="logs",
                             target="Logs_20140328.DeleteLogGroup")
    assert status == 400
    assert body == {"__type": "ResourceNotFoundException", "message": "The specified log group does not exist."}
    # Signed for ECS but sent to Logs: refused before anything runs.
    status, body = berth.raw(None, {"logGroupName": "x"}, service="ecs", target="Logs_20140328.CreateLogGroup")
    assert body["__type"] == "InvalidSignatureException", body
    status, body = berth.raw(None, {"logGroupIdentifiers": ["g"]}, service="logs",
                             target="Logs_20140328.StartLiveTail")
    assert body["__type"] == "UnknownOperationException", body


def test_logs_shape_checker_knows_the_logs_model(berth):
    model = berth.logs().meta.service_model
    shape = model.operation_model("GetLogEvents").output_shape
    shapes.check(shape, {"events": [{"timestamp": 1, "message": "m", "ingestionTime": 2}],
                         "nextForwardToken": "f/1", "nextBackwardToken": "b/1"})
    with pytest.raises(shapes.ShapeError):
        shapes.check(shape, {"events": [{"timestamp": "1"}]})
    with pytest.raises(shapes.ShapeError):
        shapes.check(shape, {"events": [], "nextToken": "x"})
