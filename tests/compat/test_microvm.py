"""Micro-VM isolation (`berth up --isolation microvm`) through the stock
clients: every task is a guest with its own kernel (QEMU's microvm
machine; KVM where it works, TCG here), with ECS's task semantics. Kept
small: each guest boot costs seconds under TCG.

Needs root, qemu-system-x86, the guest kernel (scripts/microvm-kernel.sh,
dir in BERTH_GUEST_KERNEL or /var/lib/berth/microvm/kernel) and the
berth-guest binary beside berth (cargo build --workspace --bins).
"""
import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import BERTH_BIN, BUSYBOX, IMAGE, NETWORK, Berth, definition, release_test_network

KERNEL = os.environ.get("BERTH_GUEST_KERNEL", "/var/lib/berth/microvm/kernel")
GROUP = "/compat/microvm"
LOGS = {"logDriver": "awslogs", "options": {"awslogs-group": GROUP, "awslogs-region": "us-east-1",
                                            "awslogs-stream-prefix": "vm", "awslogs-create-group": "true"}}

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists(BUSYBOX) or shutil.which("qemu-system-x86_64") is None
    or not os.path.exists(os.path.join(KERNEL, "vmlinux")),
    reason="needs root, busybox-static, qemu-system-x86 and a guest kernel (scripts/microvm-kernel.sh)")


@pytest.fixture
def vm_berth(tmp_path):
    with tempfile.TemporaryDirectory(prefix="berth-compat-") as d:
        b = Berth(os.path.join(d, "data"), extra_env={"BERTH_ISOLATION": "microvm", "BERTH_GUEST_KERNEL": KERNEL})
        b.start()
        try:
            root = tmp_path / "rootfs"
            (root / "bin").mkdir(parents=True)
            (root / "bin" / "busybox").write_bytes(open(BUSYBOX, "rb").read())
            os.chmod(root / "bin" / "busybox", 0o755)
            for applet in ["sh", "echo", "sleep", "cat", "uname", "test", "wget"]:
                os.symlink("busybox", root / "bin" / applet)
            p = subprocess.run([BERTH_BIN, "image", "import", str(root), "--name", IMAGE, "--data-dir", b.data_dir],
                               capture_output=True, text=True, timeout=120,
                               env={k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BERTH_"))})
            assert p.returncode == 0, p.stderr
            yield b
        finally:
            b.stop()
            release_test_network(b.data_dir)


def test_each_task_is_a_guest_with_its_own_kernel(vm_berth):
    b = vm_berth
    assert "isolation:    microvm" in b.banner, b.banner
    ecs, logs = b.ecs(), b.logs()
    script = ("uname -r; cat /proc/sys/kernel/random/boot_id; "
              "i=1; while [ $i -le 50 ]; do echo line $i; i=$((i+1)); done; exit 4")
    ecs.register_task_definition(**definition("vm", script, logConfiguration=LOGS))
    arns = [ecs.run_task(taskDefinition="vm", networkConfiguration=NETWORK)["tasks"][0]["taskArn"] for _ in range(2)]
    ecs.get_waiter("tasks_stopped").wait(tasks=arns, WaiterConfig={"Delay": 1, "MaxAttempts": 180})
    host = os.uname().release
    release = open(os.path.join(KERNEL, "release")).read().strip()
    boot_ids = set()
    for t in ecs.describe_tasks(tasks=arns)["tasks"]:
        assert (t["stopCode"], t["containers"][0]["exitCode"]) == ("EssentialContainerExited", 4), t
        attributes = {a["name"]: a.get("value") for a in t["attributes"]}
        assert attributes["berth.isolation"] == "microvm"
        assert attributes["berth.accelerator"] in ("kvm", "tcg")
        stream = "vm/main/" + t["taskArn"].rsplit("/", 1)[1]
        events = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, startFromHead=True)["events"]
        lines = [e["message"] for e in events]
        assert lines[0] == release != host, lines[:2]
        boot_ids.add(lines[1])
        assert lines[2:] == ["line %d" % i for i in range(1, 51)], "no line lost at exit"
    assert len(boot_ids) == 2, "two tasks, two kernels"


def test_stop_task_sends_sigterm_then_sigkill_after_stop_timeout(vm_berth):
    """Also: the task metadata endpoint answers the guest, through its TAP."""
    ecs, logs = vm_berth.ecs(), vm_berth.logs()
    script = ("trap '' TERM; wget -q -O- \"$ECS_CONTAINER_METADATA_URI_V4/task\"; echo; echo up; "
              "while :; do sleep 1; done")
    ecs.register_task_definition(**definition("vmstop", script, logConfiguration=LOGS))
    arn = ecs.run_task(taskDefinition="vmstop", networkConfiguration=NETWORK)["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_running").wait(tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 180})
    stream = "vm/main/" + arn.rsplit("/", 1)[1]
    deadline = time.time() + 60
    lines = []
    while "up" not in lines and time.time() < deadline:
        time.sleep(0.5)
        try:
            events = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, startFromHead=True)["events"]
        except logs.exceptions.ResourceNotFoundException:
            continue
        lines = [e["message"] for e in events]
    assert "up" in lines, lines
    metadata = json.loads(lines[0])
    assert metadata["TaskARN"] == arn, metadata
    ecs.stop_task(task=arn, reason="enough")
    ecs.get_waiter("tasks_stopped").wait(tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    t = ecs.describe_tasks(tasks=[arn])["tasks"][0]
    assert (t["stopCode"], t["stoppedReason"]) == ("UserInitiated", "enough")
    assert t["containers"][0]["exitCode"] == 137, "SIGKILL after the 2 s stopTimeout"


def test_a_micro_vm_task_outlives_berth(vm_berth):
    """kill -9 of berth leaves the guest running; the restarted agent
    re-attaches and sees the exit that came while it was away."""
    ecs = vm_berth.ecs()
    ecs.register_task_definition(**definition("vmsurvivor", "sleep 6; exit 7"))
    arn = ecs.run_task(taskDefinition="vmsurvivor", networkConfiguration=NETWORK)["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_running").wait(tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 180})
    task_id = arn.rsplit("/", 1)[1]
    vmm = os.path.join(vm_berth.data_dir, "microvm", "tasks", task_id, "qemu.pid")
    pid = int(open(vmm).read().split()[0])
    vm_berth.kill9()
    os.kill(pid, 0)  # the guest's VMM is still there
    vm_berth.start()
    ecs = vm_berth.ecs()
    assert ecs.describe_tasks(tasks=[arn])["tasks"][0]["lastStatus"] == "RUNNING", "the task outlived berth"
    ecs.get_waiter("tasks_stopped").wait(tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    t = ecs.describe_tasks(tasks=[arn])["tasks"][0]
    assert (t["stopCode"], t["containers"][0]["exitCode"]) == ("EssentialContainerExited", 7)
    assert not os.path.exists(os.path.dirname(vmm)), "the task's state went with it"
