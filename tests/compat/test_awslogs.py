"""The awslogs log driver, read back with the stock clients: a busybox
task whose container logs with `awslogs`, its lines fetched with
`aws logs get-log-events` from the stream ECS names
`PREFIX/CONTAINER/TASK-ID`, and with boto3 (responses checked against
botocore's model). Needs root, as every task test does.
"""
import json

from test_tasks import NETWORK, definition, pytestmark, tasks_berth  # noqa: F401 (pytestmark and a fixture)

GROUP = "/compat/awslogs"
OPTIONS = {"awslogs-group": GROUP, "awslogs-region": "us-east-1", "awslogs-stream-prefix": "prefix",
           "awslogs-create-group": "true"}


def test_aws_logs_get_log_events_returns_a_tasks_lines(tasks_berth, tmp_path):
    b = tasks_berth
    # 120 lines, one on stderr, and a last one without its newline, written
    # as the container exits.
    script = ("i=1; while [ $i -le 120 ]; do echo \"line $i\"; i=$((i+1)); done; "
              "echo oops >&2; printf 'the end'; exit 0")
    td = tmp_path / "td.json"
    td.write_text(json.dumps(definition("awslogs", script,
                                        logConfiguration={"logDriver": "awslogs", "options": OPTIONS})))
    b.aws("ecs", "register-task-definition", "--cli-input-json", "file://" + str(td))
    _, out, _ = b.aws("ecs", "run-task", "--task-definition", "awslogs", "--launch-type", "FARGATE",
                      "--network-configuration", "awsvpcConfiguration={subnets=[subnet-default]}")
    arn = out["tasks"][0]["taskArn"]
    task_id = arn.rsplit("/", 1)[1]
    b.aws("ecs", "wait", "tasks-stopped", "--tasks", arn)
    _, out, _ = b.aws("ecs", "describe-tasks", "--tasks", arn, "--query", "tasks[0].[stopCode,containers[0].exitCode]")
    assert out == ["EssentialContainerExited", 0]

    stream = "prefix/main/" + task_id
    _, out, _ = b.aws("logs", "get-log-events", "--log-group-name", GROUP, "--log-stream-name", stream,
                      "--start-from-head")
    messages = [e["message"] for e in out["events"]]
    stdout = [m for m in messages if m != "oops"]
    assert stdout == ["line %d" % i for i in range(1, 121)] + ["the end"]
    assert messages.count("oops") == 1
    stamps = [e["timestamp"] for e in out["events"]]
    assert stamps == sorted(stamps)

    # The same through boto3: the stream is listed, and FilterLogEvents finds lines.
    logs = b.logs()
    streams = logs.describe_log_streams(logGroupName=GROUP)["logStreams"]
    assert [s["logStreamName"] for s in streams] == [stream]
    assert streams[0]["lastEventTimestamp"] == stamps[-1]
    found = logs.filter_log_events(logGroupName=GROUP, filterPattern='"line 10"')["events"]
    assert [e["message"] for e in found] == ["line 10", "line 100", "line 101", "line 102", "line 103",
                                             "line 104", "line 105", "line 106", "line 107", "line 108",
                                             "line 109"]
    assert all(e["logStreamName"] == stream for e in found)

    # A group that is missing, without awslogs-create-group: the task fails to start, as on ECS.
    ecs = b.ecs()
    missing = dict(OPTIONS, **{"awslogs-group": "/compat/absent"})
    del missing["awslogs-create-group"]
    ecs.register_task_definition(**definition("nogroup", "echo hi",
                                              logConfiguration={"logDriver": "awslogs", "options": missing}))
    arn = ecs.run_task(taskDefinition="nogroup", networkConfiguration=NETWORK)["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_stopped").wait(tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    t = ecs.describe_tasks(tasks=[arn])["tasks"][0]
    assert t["stopCode"] == "TaskFailedToStart"
    assert t["stoppedReason"].startswith("ResourceInitializationError: failed to validate logger args: ")
    assert "The specified log group does not exist." in t["stoppedReason"]


def test_a_flood_is_shipped_within_the_budget_and_its_drop_told_in_the_stream(tasks_berth):
    """`yes` into awslogs: 20 MiB at once, far past the default 1 MiB/s a
    task ships; what is over is dropped, counted in a notice line."""
    b = tasks_berth
    ecs, logs = b.ecs(), b.logs()
    total = 20 * 1024 * 1024 // 11  # lines of "0123456789\n"
    ecs.register_task_definition(**definition(
        "flood", "yes 0123456789 | head -c %d; sleep 1" % (total * 11),
        logConfiguration={"logDriver": "awslogs", "options": OPTIONS}))
    arn = ecs.run_task(taskDefinition="flood", networkConfiguration=NETWORK)["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_stopped").wait(tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    stream = "prefix/main/" + arn.rsplit("/", 1)[1]
    messages, token = [], None
    while True:
        kw = {"nextToken": token} if token else {"startFromHead": True}
        page = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, **kw)
        messages += [e["message"] for e in page["events"]]
        if page["nextForwardToken"] == token:
            break
        token = page["nextForwardToken"]
    notices = [m for m in messages if m.startswith("[berth] dropped ")]
    shipped = len(messages) - len(notices)
    assert notices, "the drop is told in the stream"
    assert all(m.endswith(" over the shipping limit of 1048576 bytes/s") for m in notices)
    dropped = sum(int(m.split()[2]) for m in notices)
    assert shipped + dropped == total
    assert shipped * (10 + 26) < 30 * 1048576, "at most the budget per second the task lived, and a second's burst"
