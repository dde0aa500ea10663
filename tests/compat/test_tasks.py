"""Tasks for real with the stock clients: the aws CLI and boto3 (with its
waiters and paginators) against a real `berth up` running busybox tasks.

The image is Debian's busybox-static, made into an image with
`berth image import` (the registry path is covered by the Rust suite,
which pushes with skopeo into a real docker-registry). Needs root: the
node agent mounts, makes cgroups and runs runc.
"""
import json
import os

import botocore.exceptions
import pytest

from conftest import BUSYBOX, NETWORK, definition, import_busybox

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists(BUSYBOX),
    reason="needs root and Debian's busybox-static (CI has both)")


@pytest.fixture
def tasks_berth(berth, tmp_path):
    """A berth with a busybox image in its cache, imported with the CLI."""
    import_busybox(berth, str(tmp_path))
    yield berth
    # Stop whatever a failed test left running.
    ecs = berth.ecs()
    for arn in ecs.list_tasks(desiredStatus="RUNNING")["taskArns"]:
        ecs.stop_task(task=arn, reason="teardown")
    arns = ecs.list_tasks(desiredStatus="STOPPED")["taskArns"]
    if arns:
        ecs.get_waiter("tasks_stopped").wait(tasks=arns, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def test_cli_task_exits_with_its_code(tasks_berth, tmp_path):
    b = tasks_berth
    td = tmp_path / "td.json"
    td.write_text(json.dumps(definition("exit3", "echo hi; exit 3")))
    b.aws("ecs", "register-task-definition", "--cli-input-json", "file://" + str(td))
    _, out, _ = b.aws("ecs", "run-task", "--task-definition", "exit3", "--launch-type", "FARGATE",
                      "--network-configuration", "awsvpcConfiguration={subnets=[subnet-default],assignPublicIp=DISABLED}")
    assert out["failures"] == []
    arn = out["tasks"][0]["taskArn"]
    assert arn.startswith("arn:aws:ecs:us-east-1:000000000000:task/default/")
    b.aws("ecs", "wait", "tasks-stopped", "--tasks", arn)
    _, out, _ = b.aws("ecs", "describe-tasks", "--tasks", arn)
    t = out["tasks"][0]
    assert t["lastStatus"] == "STOPPED"
    assert t["stopCode"] == "EssentialContainerExited"
    assert t["stoppedReason"] == "Essential container in task exited"
    assert t["containers"][0]["exitCode"] == 3
    _, out, _ = b.aws("ecs", "describe-tasks", "--tasks", arn, "--query",
                      "tasks[0].[lastStatus,stopCode,containers[0].exitCode]")
    assert out == ["STOPPED", "EssentialContainerExited", 3]


def test_boto3_run_wait_stop_with_waiters_tags_and_filters(tasks_berth):
    ecs = tasks_berth.ecs()
    ecs.register_task_definition(**definition("sleeper", "trap 'exit 0' TERM; sleep 1000 & wait"))
    run = ecs.run_task(taskDefinition="sleeper", count=2, launchType="FARGATE", networkConfiguration=NETWORK,
                       startedBy="compat", group="family:sleeper", enableExecuteCommand=False,
                       tags=[{"key": "suite", "value": "compat"}])
    assert run["failures"] == []
    arns = [t["taskArn"] for t in run["tasks"]]
    assert len(arns) == 2
    ecs.get_waiter("tasks_running").wait(tasks=arns, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    tasks = ecs.describe_tasks(tasks=arns, include=["TAGS"])["tasks"]
    assert {t["lastStatus"] for t in tasks} == {"RUNNING"}
    assert all(t["tags"] == [{"key": "suite", "value": "compat"}] for t in tasks)
    assert all(t["startedBy"] == "compat" and t["launchType"] == "FARGATE" for t in tasks)
    assert all(t["cpu"] == "256" and t["memory"] == "512" for t in tasks)

    listed = ecs.list_tasks(family="sleeper", desiredStatus="RUNNING")["taskArns"]
    assert sorted(listed) == sorted(arns)
    assert ecs.list_tasks(startedBy="someone-else")["taskArns"] == []
    pages = list(ecs.get_paginator("list_tasks").paginate(family="sleeper", PaginationConfig={"PageSize": 1}))
    assert sorted(a for p in pages for a in p["taskArns"]) == sorted(arns)

    stopped = ecs.stop_task(task=arns[0], reason="compat says stop")["task"]
    assert stopped["desiredStatus"] == "STOPPED"
    ecs.get_waiter("tasks_stopped").wait(tasks=[arns[0]], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    t = ecs.describe_tasks(tasks=[arns[0]])["tasks"][0]
    assert t["stopCode"] == "UserInitiated"
    assert t["stoppedReason"] == "compat says stop"
    assert t["containers"][0]["exitCode"] == 0, "the trap ran on SIGTERM"
    for ts in ("createdAt", "pullStartedAt", "pullStoppedAt", "startedAt", "stoppingAt", "executionStoppedAt",
               "stoppedAt"):
        assert ts in t, ts
    assert ecs.list_tasks(family="sleeper", desiredStatus="RUNNING")["taskArns"] == [arns[1]]


def test_boto3_missing_image_and_start_task(tasks_berth):
    ecs = tasks_berth.ecs()
    ecs.register_task_definition(**definition("ghost", "true", image="127.0.0.1:9/ghost:latest"))
    arn = ecs.run_task(taskDefinition="ghost", networkConfiguration=NETWORK)["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_stopped").wait(tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    t = ecs.describe_tasks(tasks=[arn])["tasks"][0]
    assert t["stopCode"] == "TaskFailedToStart"
    assert t["stoppedReason"].startswith("CannotPullContainerError: "), t["stoppedReason"]

    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.start_task(taskDefinition="ghost", containerInstances=["arn:aws:ecs:us-east-1:000000000000:container-instance/x"])
    assert e.value.response["Error"]["Code"] in ("InvalidParameterException", "ClientException")
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.run_task(taskDefinition="ghost", count=11, networkConfiguration=NETWORK)


def cgroup_cpu_ns(task_id):
    """CPU time of the task's cgroup (v1 cpuacct, else v2), or None."""
    v1 = "/sys/fs/cgroup/cpuacct/berth/%s/cpuacct.usage" % task_id
    if os.path.exists(v1):
        return int(open(v1).read())
    for root in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        p = "%s/berth/%s/cpu.stat" % (root, task_id)
        if os.path.exists(p):
            for line in open(p):
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) * 1000
    return None


def test_boto3_cpu_is_held_to_a_quarter_core_and_memory_is_a_hard_limit(tasks_berth):
    import time
    ecs = tasks_berth.ecs()
    ecs.register_task_definition(**definition("spin", "while :; do :; done"))
    arn = ecs.run_task(taskDefinition="spin", networkConfiguration=NETWORK)["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_running").wait(tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    task_id = arn.rsplit("/", 1)[1]
    time.sleep(0.5)
    t0, u0 = time.monotonic(), cgroup_cpu_ns(task_id)
    time.sleep(3)
    t1, u1 = time.monotonic(), cgroup_cpu_ns(task_id)
    cores = (u1 - u0) / ((t1 - t0) * 1e9)
    assert 0.15 <= cores <= 0.35, "256 CPU units hold the task to a quarter core, measured %.3f" % cores
    ecs.stop_task(task=arn)

    # 512 MiB task allocating without bound: the kernel's OOM killer ends it, reported as ECS does.
    ecs.register_task_definition(**definition("hog", "x=0123456789abcdef; while :; do x=$x$x; done"))
    arn = ecs.run_task(taskDefinition="hog", networkConfiguration=NETWORK)["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_stopped").wait(tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 90})
    t = ecs.describe_tasks(tasks=[arn])["tasks"][0]
    assert t["containers"][0]["reason"] == "OutOfMemoryError: Container killed due to memory usage"
    assert t["containers"][0]["exitCode"] == 137
    assert t["stopCode"] == "EssentialContainerExited"


def test_boto3_a_task_outlives_sigkill_of_berth(tasks_berth):
    ecs = tasks_berth.ecs()
    ecs.register_task_definition(**definition("survivor", "sleep 5; exit 7"))
    arn = ecs.run_task(taskDefinition="survivor", networkConfiguration=NETWORK)["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_running").wait(tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    tasks_berth.kill9()
    tasks_berth.start()
    ecs = tasks_berth.ecs()
    assert ecs.describe_tasks(tasks=[arn])["tasks"][0]["lastStatus"] == "RUNNING", "the task outlived berth"
    ecs.get_waiter("tasks_stopped").wait(tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    t = ecs.describe_tasks(tasks=[arn])["tasks"][0]
    assert t["containers"][0]["exitCode"] == 7, "the real exit code, seen after the restart"
    assert t["stopCode"] == "EssentialContainerExited"
