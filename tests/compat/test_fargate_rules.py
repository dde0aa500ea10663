"""What Fargate refuses in a task definition, what it allows working at run
time, and RunTask's clientToken, with boto3 and the aws CLI against a
real `berth up` (issue 18)."""
import copy
import json
import os
import resource
import uuid

import botocore.exceptions
import pytest

from conftest import BUSYBOX, NETWORK, SEED, definition, import_busybox

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists(BUSYBOX),
    reason="needs root and Debian's busybox-static (CI has both)")


def container(td):
    return td["containerDefinitions"][0]


def linux(td):
    return container(td).setdefault("linuxParameters", {})


# (what, mutation of SEED, text the message must contain)
REFUSED = [
    ("privileged", lambda t: container(t).update(privileged=True), "do not support privileged containers"),
    ("capability add", lambda t: linux(t).update(capabilities={"add": ["NET_ADMIN"]}),
     "only support adding the SYS_PTRACE kernel capability"),
    ("host path volume", lambda t: t.update(volumes=[{"name": "data", "host": {"sourcePath": "/etc"}}]),
     "do not support host volumes with a sourcePath"),
    ("pidMode host", lambda t: t.update(pidMode="host"), "pidMode 'host'"),
    ("ipcMode", lambda t: t.update(ipcMode="task"), "do not support ipcMode"),
    ("devices", lambda t: linux(t).update(devices=[{"hostPath": "/dev/kvm"}]), "'linuxParameters.devices'"),
    ("sysctl outside the namespaced ones", lambda t: container(t).update(
        systemControls=[{"namespace": "kernel.domainname", "value": "x"}]), "systemControls namespace 'kernel.domainname'"),
    ("hostPort differs", lambda t: container(t)["portMappings"][0].update(hostPort=80), "must match"),
]


def test_register_refuses_what_fargate_may_not_do(berth, tmp_path):
    ecs = berth.ecs()
    for what, mutate, needle in REFUSED:
        td = copy.deepcopy(SEED)
        mutate(td)
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ecs.register_task_definition(**td)
        err = e.value.response["Error"]
        assert err["Code"] == "ClientException", (what, err)
        assert needle in err["Message"], (what, err)
    assert ecs.list_task_definitions()["taskDefinitionArns"] == [], "nothing is stored"

    # The aws CLI shows the same error.
    td = copy.deepcopy(SEED)
    container(td)["privileged"] = True
    p = tmp_path / "privileged.json"
    p.write_text(json.dumps(td))
    rc, _, err = berth.aws("ecs", "register-task-definition", "--cli-input-json", "file://" + str(p), check=False)
    assert rc != 0 and "ClientException" in err and "privileged" in err, err

    # What Fargate allows registers.
    td = copy.deepcopy(SEED)
    linux(td).update(capabilities={"add": ["SYS_PTRACE"], "drop": ["ALL"]}, initProcessEnabled=True)
    td["volumes"] = [{"name": "scratch"}]
    container(td).update(mountPoints=[{"sourceVolume": "scratch", "containerPath": "/scratch"}],
                         systemControls=[{"namespace": "net.ipv4.tcp_keepalive_time", "value": "120"}],
                         ulimits=[{"name": "nofile", "softLimit": 65535, "hardLimit": 1048576}])
    out = ecs.register_task_definition(**td)["taskDefinition"]
    assert "FARGATE" in out["compatibilities"]


def can_raise_limits():
    """Whether this process holds CAP_SYS_RESOURCE (bit 24 of CapEff)."""
    with open("/proc/self/status") as f:
        eff = next(l.split()[1] for l in f if l.startswith("CapEff:"))
    return int(eff, 16) & (1 << 24) != 0


def run_to_exit(ecs, family):
    arn = ecs.run_task(taskDefinition=family, launchType="FARGATE", networkConfiguration=NETWORK)["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_stopped").wait(tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 90})
    return ecs.describe_tasks(tasks=[arn])["tasks"][0]


@needs_root
def test_what_fargate_allows_works_at_run_time(berth, tmp_path):
    import_busybox(berth, str(tmp_path))
    ecs = berth.ecs()

    # drop ALL, add SYS_PTRACE: CapEff is bit 19 alone.
    caps = definition("caps", "while read k v; do [ \"$k\" = CapEff: ] && echo \"$v\" && "
                              "[ \"$v\" = 0000000000080000 ] && exit 0; done < /proc/self/status; exit 1")
    linux(caps)["capabilities"] = {"drop": ["ALL"], "add": ["SYS_PTRACE"]}
    ecs.register_task_definition(**caps)
    t = run_to_exit(ecs, "caps")
    assert t["containers"][0].get("exitCode") == 0, t

    # nofile up to Fargate's maximum: the task runs (no "operation not
    # permitted"), with all of it where the host may raise limits, else
    # with the host's own hard limit (berth up inherits this process's).
    want = 1048576 if can_raise_limits() else min(1048576, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    nofile = definition("nofile", "[ \"$(ulimit -n)\" = %d ] && [ \"$(ulimit -Hn)\" = %d ]" % (want, want))
    container(nofile)["ulimits"] = [{"name": "nofile", "softLimit": 1048576, "hardLimit": 1048576}]
    ecs.register_task_definition(**nofile)
    t = run_to_exit(ecs, "nofile")
    assert t["containers"][0].get("exitCode") == 0, t

    # A task volume: one container writes, the other (after it) reads.
    shared = definition("shared", "test \"$(cat /in/file)\" = written-by-writer")
    shared["volumes"] = [{"name": "scratch"}]
    reader = container(shared)
    reader.update(name="reader", mountPoints=[{"sourceVolume": "scratch", "containerPath": "/in", "readOnly": True}],
                  dependsOn=[{"containerName": "writer", "condition": "SUCCESS"}])
    shared["containerDefinitions"].append({
        "name": "writer", "image": reader["image"], "essential": False,
        "command": ["sh", "-c", "echo written-by-writer > /out/file"],
        "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/out"}]})
    ecs.register_task_definition(**shared)
    t = run_to_exit(ecs, "shared")
    codes = {c["name"]: c.get("exitCode") for c in t["containers"]}
    assert codes == {"reader": 0, "writer": 0}, t


@needs_root
def test_run_task_client_token_is_idempotent(berth, tmp_path):
    import_busybox(berth, str(tmp_path))
    ecs = berth.ecs()
    ecs.register_task_definition(**definition("once", "sleep 1000"))
    token = str(uuid.uuid4())
    first = ecs.run_task(taskDefinition="once", count=2, networkConfiguration=NETWORK, clientToken=token)
    arns = sorted(t["taskArn"] for t in first["tasks"])
    assert len(arns) == 2
    again = ecs.run_task(taskDefinition="once", count=2, networkConfiguration=NETWORK, clientToken=token)
    assert sorted(t["taskArn"] for t in again["tasks"]) == arns, "the same tasks, no second launch"
    assert sorted(ecs.list_tasks(family="once")["taskArns"]) == arns

    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.run_task(taskDefinition="once", count=1, networkConfiguration=NETWORK, clientToken=token)
    err = e.value.response
    assert err["Error"]["Code"] == "ConflictException", err
    assert sorted(err.get("resourceIds", [])) == arns, err
    assert sorted(ecs.list_tasks(family="once")["taskArns"]) == arns, "nothing more ran"

    # The aws CLI's --client-token, and a fresh token runs again.
    _, out, _ = berth.aws("ecs", "run-task", "--task-definition", "once", "--count", "2", "--client-token", token,
                          "--network-configuration", "awsvpcConfiguration={subnets=[subnet-default]}")
    assert sorted(t["taskArn"] for t in out["tasks"]) == arns
    other = ecs.run_task(taskDefinition="once", networkConfiguration=NETWORK)["tasks"]
    assert len(other) == 1 and other[0]["taskArn"] not in arns
    for arn in arns + [other[0]["taskArn"]]:
        ecs.stop_task(task=arn)
    ecs.get_waiter("tasks_stopped").wait(tasks=arns, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
