"""Fargate Spot, capacity providers and the bill, with the stock clients
and real busybox tasks on one `berth up --spot-share 0.5`:

- DescribeCapacityProviders, clusters' providers, PutClusterCapacityProviders
  and ECS's strategy errors;
- a service with strategy FARGATE base 1 + FARGATE_SPOT weight 3 runs
  1 + 3 of its 4 tasks; `berth spot interrupt` gives a Spot task its
  two-minute warning (the container's TERM trap writes to its awslogs
  stream), the task ends with stopCode SpotInterruption and the service is
  steady again, 1 + 3;
- a 0.25 vCPU / 0.5 GB task running ~90 s is billed its seconds, one
  running 10 s a minute, at the price table's prices (`berth cost`), and
  Cost Explorer's GetCostAndUsage grouped by the tasks' tag says the same.

Needs root, like every test with tasks.
"""
import json
import math
import os
import subprocess
import tempfile
import time

import pytest

from conftest import BERTH_BIN, BUSYBOX, NETWORK, Berth, definition, import_busybox, release_test_network
from test_services import poll

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists(BUSYBOX),
    reason="needs root and Debian's busybox-static (CI has both)")

CLUSTER = "default"
GROUP = "/compat/spot"
LOGS = {"logDriver": "awslogs", "options": {
    "awslogs-group": GROUP, "awslogs-region": "us-east-1", "awslogs-stream-prefix": "spot",
    "awslogs-create-group": "true"}}
# Says when TERM comes, then takes a moment to shut down (stopTimeout 10 s).
TRAPPER = "trap 'echo got SIGTERM; sleep 2; echo bye; exit 0' TERM; echo started; sleep 1000 & wait"
STRATEGY = [{"capacityProvider": "FARGATE", "base": 1, "weight": 0},
            {"capacityProvider": "FARGATE_SPOT", "weight": 3}]
# us-east-1 on-demand Linux/x86 prices (the default price table).
VCPU_HOUR, GB_HOUR = 0.04048, 0.004445


def berth_cli(b, *args):
    p = subprocess.run([BERTH_BIN, *args, "--data-dir", b.data_dir], capture_output=True, text=True, timeout=60,
                       env={k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BERTH_"))})
    assert p.returncode == 0, "berth %s: %s" % (" ".join(args), p.stderr)
    return p.stdout


@pytest.fixture(scope="module")
def spot_berth():
    with tempfile.TemporaryDirectory(prefix="berth-compat-spot-") as d:
        b = Berth(os.path.join(d, "data"),
                  extra_args=["--spot-share", "0.5", "--node-cpu", "4096", "--node-memory", "8192"]).start()
        try:
            import_busybox(b, d)
            b.ecs().create_cluster(clusterName=CLUSTER)
            yield b
            ecs = b.ecs()
            for arn in ecs.list_services(cluster=CLUSTER)["serviceArns"]:
                ecs.delete_service(cluster=CLUSTER, service=arn, force=True)
            for arn in ecs.list_tasks(cluster=CLUSTER, desiredStatus="RUNNING")["taskArns"]:
                ecs.stop_task(cluster=CLUSTER, task=arn, reason="teardown")
            poll("every task stopped", lambda: ecs.list_tasks(cluster=CLUSTER, desiredStatus="RUNNING")["taskArns"],
                 lambda v: v == [], 60)
        finally:
            b.stop()
            release_test_network(b.data_dir)


def test_capacity_providers_as_ecs_shows_them(spot_berth):
    b = spot_berth
    _, out, _ = b.aws("ecs", "describe-capacity-providers")
    names = {p["name"]: p for p in out["capacityProviders"]}
    assert set(names) == {"FARGATE", "FARGATE_SPOT"}
    assert names["FARGATE_SPOT"]["status"] == "ACTIVE"
    assert names["FARGATE_SPOT"]["capacityProviderArn"].endswith(":capacity-provider/FARGATE_SPOT")

    _, out, _ = b.aws("ecs", "create-cluster", "--cluster-name", "cp")
    assert sorted(out["cluster"]["capacityProviders"]) == ["FARGATE", "FARGATE_SPOT"], "on every cluster"
    _, out, _ = b.aws("ecs", "put-cluster-capacity-providers", "--cluster", "cp",
                      "--capacity-providers", "FARGATE", "FARGATE_SPOT",
                      "--default-capacity-provider-strategy",
                      "capacityProvider=FARGATE_SPOT,weight=1", "capacityProvider=FARGATE,base=1,weight=0")
    strategy = out["cluster"]["defaultCapacityProviderStrategy"]
    assert {s["capacityProvider"]: (s.get("base", 0), s.get("weight", 0)) for s in strategy} == {
        "FARGATE_SPOT": (0, 1), "FARGATE": (1, 0)}
    _, out, _ = b.aws("ecs", "describe-clusters", "--clusters", "cp")
    assert out["clusters"][0]["defaultCapacityProviderStrategy"] == strategy

    ecs = b.ecs()
    with pytest.raises(ecs.exceptions.InvalidParameterException, match="base"):
        ecs.put_cluster_capacity_providers(cluster="cp", capacityProviders=["FARGATE", "FARGATE_SPOT"],
                                           defaultCapacityProviderStrategy=[
                                               {"capacityProvider": "FARGATE", "base": 1, "weight": 1},
                                               {"capacityProvider": "FARGATE_SPOT", "base": 1, "weight": 1}])
    with pytest.raises(ecs.exceptions.InvalidParameterException, match="not associated"):
        ecs.put_cluster_capacity_providers(cluster="cp", capacityProviders=["FARGATE"],
                                           defaultCapacityProviderStrategy=[
                                               {"capacityProvider": "FARGATE_SPOT", "weight": 1}])
    ecs.register_task_definition(**definition("cp-probe", "true"))
    with pytest.raises(ecs.exceptions.InvalidParameterException, match="both a launchType"):
        ecs.run_task(cluster="cp", taskDefinition="cp-probe", launchType="FARGATE",
                     capacityProviderStrategy=[{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
                     networkConfiguration=NETWORK)
    # RunTask of 4 with the cluster's default strategy: base 1 on FARGATE, the rest by weight on Spot.
    out = ecs.run_task(cluster="cp", taskDefinition="cp-probe", count=4, networkConfiguration=NETWORK)
    assert out["failures"] == [], out
    assert sorted(t["capacityProviderName"] for t in out["tasks"]) == ["FARGATE", "FARGATE_SPOT", "FARGATE_SPOT",
                                                                        "FARGATE_SPOT"]
    arns = [t["taskArn"] for t in out["tasks"]]
    b.aws("ecs", "wait", "tasks-stopped", "--cluster", "cp", "--tasks", *arns)


def service_tasks(ecs, name):
    arns = ecs.list_tasks(cluster=CLUSTER, serviceName=name, desiredStatus="RUNNING")["taskArns"]
    return ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []


def steady_split(ecs, name):
    """(runningCount, sorted providers of its RUNNING tasks) once steady."""
    s = ecs.describe_services(cluster=CLUSTER, services=[name])["services"][0]
    tasks = [t for t in service_tasks(ecs, name) if t["lastStatus"] == "RUNNING"]
    return s["runningCount"], len(s["deployments"]), sorted(t.get("capacityProviderName") for t in tasks)


def test_a_spot_service_places_1_plus_3_and_survives_an_interruption(spot_berth):
    b = spot_berth
    ecs = b.ecs()
    td = definition("spotweb", TRAPPER, logConfiguration=LOGS, stopTimeout=10)
    ecs.register_task_definition(**td)
    created = ecs.create_service(cluster=CLUSTER, serviceName="spotweb", taskDefinition="spotweb", desiredCount=4,
                                 capacityProviderStrategy=STRATEGY, networkConfiguration=NETWORK)["service"]
    assert "launchType" not in created
    assert {s["capacityProvider"] for s in created["capacityProviderStrategy"]} == {"FARGATE", "FARGATE_SPOT"}
    want = (4, 1, ["FARGATE", "FARGATE_SPOT", "FARGATE_SPOT", "FARGATE_SPOT"])
    poll("1 + 3 running", lambda: steady_split(ecs, "spotweb"), lambda v: v == want, 90)

    victim = next(t for t in service_tasks(ecs, "spotweb") if t["capacityProviderName"] == "FARGATE_SPOT")
    arn = victim["taskArn"]
    out = json.loads(berth_cli(b, "spot", "interrupt", "--task", arn, "--output", "json"))
    assert out["taskArns"] == [arn]
    warned = out["tasks"][0]
    # The two-minute warning, as written: still RUNNING, wanted STOPPED.
    assert (warned["lastStatus"], warned["desiredStatus"], warned["stopCode"], warned["stoppedReason"]) == (
        "RUNNING", "STOPPED", "TerminationNotice", "Your Spot Task was interrupted.")

    stopped = poll("the interrupted task STOPPED",
                   lambda: ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0],
                   lambda t: t["lastStatus"] == "STOPPED", 60)
    assert (stopped["stopCode"], stopped["stoppedReason"]) == ("SpotInterruption", "Your Spot Task was interrupted.")
    assert stopped["containers"][0]["exitCode"] == 0, "its TERM trap ended it, before any SIGKILL"
    stream = "spot/main/" + arn.rsplit("/", 1)[1]
    lines = poll("the trap's lines shipped",
                 lambda: [e["message"] for e in b.logs().get_log_events(
                     logGroupName=GROUP, logStreamName=stream, startFromHead=True)["events"]],
                 lambda v: "bye" in v, 30)
    assert lines == ["started", "got SIGTERM", "bye"]

    # Replaced on Spot: steady again with 1 + 3, the victim not among them.
    poll("steady again, 1 + 3", lambda: steady_split(ecs, "spotweb"), lambda v: v == want, 90)
    assert arn not in [t["taskArn"] for t in service_tasks(ecs, "spotweb")]
    s = ecs.describe_services(cluster=CLUSTER, services=["spotweb"])["services"][0]
    assert s["deployments"][0]["failedTasks"] == 0, "an interruption is not a failure"

    # --count interrupts running Spot tasks; none left to interrupt is not an error.
    out = json.loads(berth_cli(b, "spot", "interrupt", "--count", "2", "--output", "json"))
    assert len(out["taskArns"]) == 2
    poll("steady again after two", lambda: steady_split(ecs, "spotweb"), lambda v: v == want, 120)
    ecs.delete_service(cluster=CLUSTER, service="spotweb", force=True)
    poll("spotweb drained", lambda: service_tasks(ecs, "spotweb"), lambda v: v == [], 60)
    out = json.loads(berth_cli(b, "spot", "interrupt", "--output", "json"))
    assert out["taskArns"] == []


def billed(task):
    """What Fargate bills for a stopped task, from its own times: pull start to stop, rounded up, at least 60 s."""
    ran = (task["stoppedAt"] - task["pullStartedAt"]).total_seconds()
    return max(60, math.ceil(ran - 1e-6))


def test_tasks_are_billed_per_second_with_a_minute_minimum(spot_berth):
    b = spot_berth
    ecs = b.ecs()
    ecs.register_task_definition(**definition("billed", "sleep $SECONDS_TO_RUN"))
    arns = {}
    for label, seconds in (("long", 90), ("short", 10)):
        out = ecs.run_task(taskDefinition="billed", launchType="FARGATE", networkConfiguration=NETWORK,
                           tags=[{"key": "bill", "value": label}],
                           overrides={"containerOverrides": [{"name": "main", "environment": [
                               {"name": "SECONDS_TO_RUN", "value": str(seconds)}]}]})
        arns[label] = out["tasks"][0]["taskArn"]
    done = poll("both tasks STOPPED", lambda: ecs.describe_tasks(tasks=list(arns.values()))["tasks"],
                lambda ts: all(t["lastStatus"] == "STOPPED" for t in ts), 150, interval=2)
    by_arn = {t["taskArn"]: t for t in done}
    long_task, short_task = by_arn[arns["long"]], by_arn[arns["short"]]
    assert long_task["stopCode"] == "EssentialContainerExited"
    want_long = billed(long_task)
    assert 90 <= want_long <= 95, "a 90 s sleep is billed about 90 s: %d" % want_long
    assert billed(short_task) == 60

    def rows():
        out = json.loads(berth_cli(b, "cost", "--by", "tag:bill", "--since", "1d", "--output", "json"))
        got = {}
        for r in out["rows"]:
            got.setdefault(r["key"], []).append(r)
        return got

    got = poll("the meter closed both", rows,
               lambda g: sum(r["seconds"] for r in g.get("short", [])) == 60
               and sum(r["seconds"] for r in g.get("long", [])) >= 90, 30)
    seconds = {k: sum(r["seconds"] for r in v) for k, v in got.items()}
    assert abs(seconds["long"] - want_long) <= 1, (seconds, want_long)
    assert seconds["short"] == 60
    for label in ("long", "short"):
        s = seconds[label]
        cost = sum(r["cost"] for r in got[label])
        assert abs(cost - (0.25 * s / 3600 * VCPU_HOUR + 0.5 * s / 3600 * GB_HOUR)) < 1e-9, (label, cost)
        assert abs(sum(r["vcpuHours"] for r in got[label]) - 0.25 * s / 3600) < 1e-9

    # The same bill through Cost Explorer, grouped by the tasks' tag (a cost allocation tag).
    today = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400))
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    _, out, _ = b.aws("ce", "get-cost-and-usage", "--time-period", "Start=%s,End=%s" % (today, tomorrow),
                      "--granularity", "DAILY", "--metrics", "UnblendedCost", "UsageQuantity",
                      "--group-by", "Type=TAG,Key=bill",
                      "--filter", json.dumps({"Dimensions": {"Key": "SERVICE",
                                                             "Values": ["Amazon Elastic Container Service"]}}))
    ce = {}
    for day in out["ResultsByTime"]:
        for g in day["Groups"]:
            ce[g["Keys"][0]] = ce.get(g["Keys"][0], 0.0) + float(g["Metrics"]["UnblendedCost"]["Amount"])
            assert g["Metrics"]["UnblendedCost"]["Unit"] == "USD"
    for label in ("long", "short"):
        assert abs(ce["bill$" + label] - sum(r["cost"] for r in got[label])) < 1e-8, (label, ce)

    # By usage type, through boto3: Fargate's own usage types.
    client = b.boto3_session().client("ce")
    out = client.get_cost_and_usage(TimePeriod={"Start": today, "End": tomorrow}, Granularity="DAILY",
                                    Metrics=["UsageQuantity"],
                                    GroupBy=[{"Type": "DIMENSION", "Key": "USAGE_TYPE"}],
                                    Filter={"Tags": {"Key": "bill", "Values": ["short"]}})
    types = {g["Keys"][0]: float(g["Metrics"]["UsageQuantity"]["Amount"])
             for day in out["ResultsByTime"] for g in day["Groups"]}
    assert set(types) == {"USE1-Fargate-vCPU-Hours:perCPU", "USE1-Fargate-GB-Hours"}
    assert abs(types["USE1-Fargate-vCPU-Hours:perCPU"] - 0.25 * 60 / 3600) < 1e-9
    assert abs(types["USE1-Fargate-GB-Hours"] - 0.5 * 60 / 3600) < 1e-9
    with pytest.raises(client.exceptions.ClientError, match="ValidationException"):
        client.get_cost_and_usage(TimePeriod={"Start": tomorrow, "End": today}, Granularity="DAILY",
                                  Metrics=["UnblendedCost"])

    # The table and CSV forms of the same report.
    csv = berth_cli(b, "cost", "--by", "tag:bill", "--since", "1d", "--output", "csv").splitlines()
    assert csv[0].startswith("start,end,key,seconds,")
    assert any(",short,60," in line for line in csv[1:]), csv
    table = berth_cli(b, "cost", "--by", "capacity-provider", "--since", "1d")
    assert "FARGATE" in table and "total: $" in table
