"""Services for real with the stock clients: boto3 (every response checked
against botocore's model) and the aws CLI (its `services-stable` waiter,
with only the two files Berth writes) against one real `berth up` running
busybox tasks, shared by the file's tests.

The tests follow one service, `web`, through its life — three tasks kept
running, one killed from the host and replaced, a rolling deployment of a
new revision (sampled throughout: never fewer than 2 healthy nor more
than 6 alive), its deployment and revision records, 3 → 0 → 2, deletion —
and give the circuit breaker, the launch throttle and the errors services
of their own. Each test waits for what it needs instead of trusting the
one before, bounds every wait, and deletes what it made even when it
fails. Needs root, like test_tasks.py.
"""
import datetime
import os
import re
import signal
import tempfile
import time
from pprint import pformat

import botocore.exceptions
import pytest

from conftest import BUSYBOX, NETWORK, Berth, definition, import_busybox, release_test_network

CLUSTER = "default"
# Each revision says which it is; TERM ends it at once (stopTimeout 2 s anyway).
SLEEPER = "trap 'exit 0' TERM; echo revision $REVISION; sleep 1000 & wait"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists(BUSYBOX),
    reason="needs root and Debian's busybox-static (CI has both)")


# ---------------------------------------------------------------- helpers

def poll(what, get, ok, timeout, interval=0.3):
    """Calls `get` until `ok(value)`, at most `timeout` seconds; returns the value."""
    deadline = time.monotonic() + timeout
    while True:
        value = get()
        if ok(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("%s: not so within %d s; last seen:\n%s" % (what, timeout, pformat(value)))
        time.sleep(interval)


def register(ecs, family, revision, script=SLEEPER, **container):
    """Registers a revision of `family` (256 CPU, 512 MiB, busybox); returns its ARN."""
    td = definition(family, script, environment=[{"name": "REVISION", "value": str(revision)}], **container)
    return ecs.register_task_definition(**td)["taskDefinition"]["taskDefinitionArn"]


def describe(ecs, name, **kw):
    out = ecs.describe_services(cluster=CLUSTER, services=[name], **kw)
    assert out["failures"] == [], out
    assert len(out["services"]) == 1, out
    return out["services"][0]


def steady(s):
    """What `services-stable` and a person mean: one deployment, COMPLETED, all running."""
    return (s["status"] == "ACTIVE" and len(s["deployments"]) == 1 and s["deployments"][0]["status"] == "PRIMARY"
            and s["deployments"][0].get("rolloutState") == "COMPLETED"
            and s["runningCount"] == s["desiredCount"] and s["pendingCount"] == 0)


def wait_steady(ecs, name, timeout=90):
    return poll("service %s steady" % name, lambda: describe(ecs, name), steady, timeout)


def service_tasks(ecs, name):
    """Every task the service started (group service:NAME), as DescribeTasks shows it.

    Found among all the cluster's tasks rather than with ListTasks
    serviceName, which test (a) checks on its own: this also works once the
    service is INACTIVE."""
    arns = []
    for desired in ("RUNNING", "STOPPED"):
        for page in ecs.get_paginator("list_tasks").paginate(cluster=CLUSTER, desiredStatus=desired):
            arns += [a for a in page["taskArns"] if a not in arns]
    tasks = []
    for i in range(0, len(arns), 100):
        out = ecs.describe_tasks(cluster=CLUSTER, tasks=arns[i:i + 100])
        assert out["failures"] == [], out
        tasks += out["tasks"]
    return [t for t in tasks if t.get("group") == "service:" + name]


def alive(tasks):
    return [t for t in tasks if t["lastStatus"] != "STOPPED"]


def healthy(tasks, checked=()):
    """RUNNING, wanted RUNNING, and HEALTHY if its task definition (one of `checked`) has health checks."""
    return [t for t in tasks if t["lastStatus"] == "RUNNING" and t["desiredStatus"] == "RUNNING"
            and (t["taskDefinitionArn"] not in checked or t.get("healthStatus") == "HEALTHY")]


def running(tasks):
    return [t for t in tasks if t["lastStatus"] == "RUNNING" and t["desiredStatus"] == "RUNNING"]


def clock():
    """Now, comparable with the timestamps boto3 parses (a little early, for rounding)."""
    return datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=0.5)


def task_id(arn):
    return arn.rsplit("/", 1)[1]


def messages(s, since=None):
    """The service's event messages, newest first (those at or after `since`, a datetime)."""
    return [e["message"] for e in s["events"] if since is None or e["createdAt"] >= since]


def started_ids(s, name):
    """Task ids the service's 'has started N tasks' events name."""
    ids = set()
    for m in messages(s):
        hit = re.fullmatch(r"\(service %s\) has started (\d+) tasks: ((?:\(task \w+\) ?)+)\." % re.escape(name), m)
        if hit:
            named = re.findall(r"\(task (\w+)\)", hit.group(2))
            assert len(named) == int(hit.group(1)), m
            ids.update(named)
    return ids


def create(ecs, name, task_definition, desired, **kw):
    """CreateService in the default cluster (not named: Berth makes it on first use, as for RunTask)."""
    return ecs.create_service(serviceName=name, taskDefinition=task_definition, desiredCount=desired,
                              launchType="FARGATE", networkConfiguration=NETWORK, **kw)["service"]


def delete_and_drain(ecs, name, timeout=60):
    """DeleteService (force) and waits until the service is INACTIVE and its tasks STOPPED; quiet if it is gone."""
    try:
        ecs.delete_service(cluster=CLUSTER, service=name, force=True)
    except (ecs.exceptions.ServiceNotFoundException, ecs.exceptions.ServiceNotActiveException):
        pass
    poll("service %s INACTIVE and its tasks STOPPED" % name,
         lambda: (describe(ecs, name)["status"], [t["lastStatus"] for t in alive(service_tasks(ecs, name))]),
         lambda v: v == ("INACTIVE", []), timeout)


@pytest.fixture(scope="module")
def services_berth():
    """One `berth up` for the file's tests, with the busybox image imported."""
    with tempfile.TemporaryDirectory(prefix="berth-compat-services-") as d:
        b = Berth(os.path.join(d, "data")).start()
        try:
            import_busybox(b, d)
            yield b
            # Whatever a failed test left: its services deleted, its tasks stopped.
            ecs = b.ecs()
            for arn in ecs.list_services(cluster=CLUSTER)["serviceArns"]:
                try:
                    delete_and_drain(ecs, arn.rsplit("/", 1)[1])
                except AssertionError as e:
                    print("teardown:", e)
            for arn in ecs.list_tasks(cluster=CLUSTER, desiredStatus="RUNNING")["taskArns"]:
                ecs.stop_task(cluster=CLUSTER, task=arn, reason="teardown")
        finally:
            b.stop()
            release_test_network(b.data_dir)


@pytest.fixture
def ecs(services_berth):
    return services_berth.ecs()


@pytest.fixture
def own_service(ecs):
    """Names of services a test makes; each deleted (force) and drained after it, pass or fail."""
    names = []
    yield names
    for name in names:
        delete_and_drain(ecs, name)


@pytest.fixture(scope="module")
def web(services_berth):
    """The service `web` (3 tasks of web:1), created once for the tests that follow it through its life."""
    ecs = services_berth.ecs()
    td = register(ecs, "web", 1)
    created = create(ecs, "web", "web", 3, enableECSManagedTags=True, propagateTags="SERVICE",
                     tags=[{"key": "app", "value": "web"}])
    yield {"created": created, "td1": td}
    delete_and_drain(ecs, "web")


# ------------------------------------------------------ web, through its life

def test_a_service_of_three_reaches_a_steady_state_and_the_cli_waiter_returns(services_berth, ecs, web):
    c = web["created"]
    assert c["serviceName"] == "web" and c["status"] == "ACTIVE" and c["desiredCount"] == 3
    assert c["serviceArn"] == "arn:aws:ecs:us-east-1:000000000000:service/default/web"
    assert c["taskDefinition"] == web["td1"]
    assert c["launchType"] == "FARGATE" and c["schedulingStrategy"] == "REPLICA"
    assert c["deploymentController"] == {"type": "ECS"}
    assert c["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == ["subnet-default"]
    [d] = c["deployments"]
    assert d["status"] == "PRIMARY" and re.fullmatch(r"ecs-svc/\d+", d["id"]), d
    assert d["taskDefinition"] == web["td1"] and d["desiredCount"] == 3
    assert d["rolloutState"] == "IN_PROGRESS"
    assert d["rolloutStateReason"] == "ECS deployment %s in progress." % d["id"]

    s = wait_steady(ecs, "web")
    assert (s["desiredCount"], s["runningCount"], s["pendingCount"]) == (3, 3, 0)
    [p] = s["deployments"]
    assert p["id"] == d["id"] and (p["runningCount"], p["pendingCount"], p["failedTasks"]) == (3, 0, 0)
    assert p["rolloutStateReason"] == "ECS deployment %s completed." % p["id"]
    assert "(service web) has reached a steady state." in messages(s)
    assert "(service web) (deployment %s) deployment completed." % p["id"] in messages(s)
    stamps = [e["createdAt"] for e in s["events"]]
    assert stamps == sorted(stamps, reverse=True), "events are newest first"

    tasks = running(service_tasks(ecs, "web"))
    assert len(tasks) == 3, pformat(tasks)
    listed = ecs.list_tasks(cluster=CLUSTER, serviceName="web")["taskArns"]
    assert sorted(listed) == sorted(t["taskArn"] for t in tasks), "ListTasks serviceName lists the service's tasks"
    for t in tasks:
        assert t["group"] == "service:web" and t["startedBy"] == p["id"], t
        assert t["taskDefinitionArn"] == web["td1"] and t["launchType"] == "FARGATE"
    assert {task_id(t["taskArn"]) for t in tasks} <= started_ids(s, "web"), "each start was said in an event"
    tagged = ecs.describe_tasks(cluster=CLUSTER, tasks=[t["taskArn"] for t in tasks], include=["TAGS"])["tasks"]
    for t in tagged:
        assert {"key": "app", "value": "web"} in t.get("tags", []), "propagateTags SERVICE: %s" % t.get("tags")

    # The stock CLI's waiter, reading only Berth's config and credentials files.
    rc, _, err = services_berth.aws("ecs", "wait", "services-stable", "--cluster", CLUSTER, "--services", "web",
                                    check=False)
    assert rc == 0, err


def test_a_task_killed_from_the_host_is_replaced(ecs, web):
    wait_steady(ecs, "web")
    before = running(service_tasks(ecs, "web"))
    assert len(before) == 3
    victim = before[0]
    vid = task_id(victim["taskArn"])
    # runtimeId is NAME-PID: the host pid of the container's first process.
    name, pid = victim["containers"][0]["runtimeId"].rsplit("-", 1)
    assert name == "main"
    pid = int(pid)
    with open("/proc/%d/cgroup" % pid) as f:
        assert vid in f.read(), "pid %d is that task's process (its cgroup names the task)" % pid
    killed_at = time.time()
    os.kill(pid, signal.SIGKILL)

    t = poll("the killed task STOPPED", lambda: ecs.describe_tasks(cluster=CLUSTER, tasks=[victim["taskArn"]])["tasks"][0],
             lambda t: t["lastStatus"] == "STOPPED", 30)
    assert t["stopCode"] == "EssentialContainerExited" and t["containers"][0]["exitCode"] == 137, t

    def replaced():
        s = describe(ecs, "web")
        tasks = service_tasks(ecs, "web")
        new = [x for x in running(tasks) if x["taskArn"] not in {b["taskArn"] for b in before}]
        return s, tasks, new
    s, tasks, new = poll("a replacement RUNNING and the service steady again", replaced,
                         lambda v: steady(v[0]) and len(v[2]) == 1, 60)
    assert s["runningCount"] == 3
    now_running = {x["taskArn"] for x in running(tasks)}
    assert now_running == {b["taskArn"] for b in before[1:]} | {new[0]["taskArn"]}, "only the killed one was replaced"
    assert new[0]["startedBy"] == s["deployments"][0]["id"] and new[0]["group"] == "service:web"
    assert new[0]["createdAt"].timestamp() >= killed_at - 1
    nid = task_id(new[0]["taskArn"])
    assert "(service web) has started 1 tasks: (task %s)." % nid in messages(s), messages(s)


def test_a_rolling_deployment_keeps_two_healthy_and_at_most_six_alive(ecs, web):
    s = wait_steady(ecs, "web")
    old_deployment = s["deployments"][0]["id"]
    old_tasks = {t["taskArn"] for t in running(service_tasks(ecs, "web"))}
    assert len(old_tasks) == 3
    # The new revision has a health check: its tasks count as healthy only
    # once it passes (after its first 5 s interval), so the rollout has a middle.
    td2 = register(ecs, "web", 2, healthCheck={"command": ["CMD-SHELL", "test -d /proc/self"], "interval": 5,
                                               "retries": 2})
    since = clock()
    updated = ecs.update_service(cluster=CLUSTER, service="web", taskDefinition="web:2",
                                 deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": 200})["service"]
    assert updated["taskDefinition"] == td2
    assert updated["deploymentConfiguration"]["minimumHealthyPercent"] == 50
    assert updated["deploymentConfiguration"]["maximumPercent"] == 200
    primary = updated["deployments"][0]
    assert primary["status"] == "PRIMARY" and primary["taskDefinition"] == td2 and primary["id"] != old_deployment
    assert primary["rolloutState"] == "IN_PROGRESS"
    assert primary["rolloutStateReason"] == "ECS deployment %s in progress." % primary["id"]
    assert [(d["id"], d["status"]) for d in updated["deployments"][1:]] == [(old_deployment, "ACTIVE")]

    # Sample the service's tasks until the rollout is done.
    samples, fewest_healthy, most_alive = 0, 3, 0
    deadline = time.monotonic() + 120
    while True:
        tasks = service_tasks(ecs, "web")
        s = describe(ecs, "web")
        samples += 1
        h, a = len(healthy(tasks, checked={td2})), len(alive(tasks))
        assert h >= 2, "only %d healthy (minimumHealthyPercent 50 of 3 is 2):\n%s" % (h, pformat(tasks))
        assert a <= 6, "%d alive (maximumPercent 200 of 3 is 6):\n%s" % (a, pformat(tasks))
        fewest_healthy, most_alive = min(fewest_healthy, h), max(most_alive, a)
        old_left = [t for t in tasks if t["taskArn"] in old_tasks and t["lastStatus"] != "STOPPED"]
        if steady(s) and s["deployments"][0]["id"] == primary["id"] and not old_left:
            break
        assert time.monotonic() < deadline, "rollout not done in 120 s:\n%s\n%s" % (pformat(s), pformat(tasks))
        time.sleep(0.2)
    print("rollout: %d samples, fewest healthy %d, most alive %d" % (samples, fewest_healthy, most_alive))
    assert samples >= 10, "the rollout was sampled throughout"
    assert most_alive > 3, "new tasks started before old ones stopped (maximumPercent 200)"

    [p] = s["deployments"]
    assert (p["id"], p["taskDefinition"], p["rolloutState"]) == (primary["id"], td2, "COMPLETED")
    assert p["rolloutStateReason"] == "ECS deployment %s completed." % p["id"]
    assert s["taskDefinition"] == td2
    now = running(tasks)
    assert len(now) == 3 and {t["taskDefinitionArn"] for t in now} == {td2}, pformat(now)
    assert {t["healthStatus"] for t in now} == {"HEALTHY"}, pformat(now)
    assert {t["startedBy"] for t in now} == {p["id"]}
    for t in tasks:
        if t["taskArn"] in old_tasks:
            assert t["lastStatus"] == "STOPPED", t
            assert t["stopCode"] == "ServiceSchedulerInitiated", t
            assert t["stoppedReason"] == "Scaling activity initiated by (deployment %s)" % old_deployment, t
    said = messages(s, since)
    assert "(service web) (deployment %s) deployment completed." % p["id"] in said, said
    assert "(service web) has reached a steady state." in said, said
    stopped = set()
    for m in said:
        hit = re.fullmatch(r"\(service web\) has stopped \d+ running tasks: (.*)\.", m)
        if hit:
            stopped.update(re.findall(r"\(task (\w+)\)", hit.group(1)))
    assert {task_id(a) for a in old_tasks} <= stopped, "each stop was said in an event: %s" % said


def test_deployments_and_revisions_link_as_the_terraform_provider_expects(ecs, web):
    s = wait_steady(ecs, "web")
    [p] = s["deployments"]
    number = p["id"].split("/", 1)[1]
    # As terraform-provider-aws finds the deployment it waits for: created after the
    # operation, its target revision's ARN holding the number of the PRIMARY's id.
    listed = ecs.list_service_deployments(cluster=CLUSTER, service="web")["serviceDeployments"]
    mine = [d for d in listed if d["targetServiceRevisionArn"].endswith("/" + number)]
    assert len(mine) == 1, pformat(listed)
    d = mine[0]
    assert d["targetServiceRevisionArn"] == \
        "arn:aws:ecs:us-east-1:000000000000:service-revision/default/web/" + number
    assert d["serviceArn"] == s["serviceArn"] and d["clusterArn"] == s["clusterArn"]
    assert d["status"] == "SUCCESSFUL", d
    after = ecs.list_service_deployments(cluster=CLUSTER, service="web",
                                         createdAt={"after": p["createdAt"].timestamp() - 1})["serviceDeployments"]
    assert d["serviceDeploymentArn"] in [x["serviceDeploymentArn"] for x in after], pformat(after)
    assert len(listed) >= 2, "the first deployment is listed too: %s" % pformat(listed)

    out = ecs.describe_service_deployments(serviceDeploymentArns=[d["serviceDeploymentArn"]])
    assert out["failures"] == [], out
    [full] = out["serviceDeployments"]
    assert full["status"] == "SUCCESSFUL" and full["serviceArn"] == s["serviceArn"]
    assert full["targetServiceRevision"]["arn"] == d["targetServiceRevisionArn"]
    sources = [r["arn"] for r in full["sourceServiceRevisions"]]
    assert len(sources) == 1 and re.fullmatch(r"arn:aws:ecs:us-east-1:000000000000:service-revision/default/web/\d+",
                                              sources[0]), full

    out = ecs.describe_service_revisions(serviceRevisionArns=[d["targetServiceRevisionArn"], sources[0]])
    assert out["failures"] == [], out
    by_arn = {r["serviceRevisionArn"]: r for r in out["serviceRevisions"]}
    assert by_arn[d["targetServiceRevisionArn"]]["taskDefinition"] == p["taskDefinition"]
    assert by_arn[sources[0]]["taskDefinition"] == web["td1"], "the revision it replaced ran web:1"
    assert by_arn[d["targetServiceRevisionArn"]]["serviceArn"] == s["serviceArn"]


def test_three_to_zero_to_two(ecs, web):
    wait_steady(ecs, "web")
    three = {t["taskArn"] for t in running(service_tasks(ecs, "web"))}
    assert len(three) == 3
    since = clock()
    asked = ecs.update_service(cluster=CLUSTER, service="web", desiredCount=0)["service"]
    assert asked["desiredCount"] == 0
    s = poll("web at 0", lambda: (describe(ecs, "web"), alive(service_tasks(ecs, "web"))),
             lambda v: steady(v[0]) and v[1] == [], 60)[0]
    assert (s["desiredCount"], s["runningCount"], s["pendingCount"]) == (0, 0, 0)
    said = messages(s, since)
    ids = sorted(task_id(a) for a in three)
    stop_events = [m for m in said if m.startswith("(service web) has stopped 3 running tasks: ")]
    assert len(stop_events) == 1, said
    assert sorted(re.findall(r"\(task (\w+)\)", stop_events[0])) == ids, stop_events
    for t in ecs.describe_tasks(cluster=CLUSTER, tasks=list(three))["tasks"]:
        assert t["lastStatus"] == "STOPPED" and t["stopCode"] == "ServiceSchedulerInitiated", t
        assert t["stoppedReason"].startswith("Scaling activity initiated by (deployment ecs-svc/"), t

    ecs.update_service(cluster=CLUSTER, service="web", desiredCount=2)
    s = wait_steady(ecs, "web", 60)
    assert (s["desiredCount"], s["runningCount"]) == (2, 2)
    two = running(service_tasks(ecs, "web"))
    assert len(two) == 2 and not {t["taskArn"] for t in two} & three


def test_delete_service_refuses_while_scaled_up_and_with_force_drains_it(services_berth, ecs, web):
    wait_steady(ecs, "web")
    live = {t["taskArn"] for t in alive(service_tasks(ecs, "web"))}
    assert live
    with pytest.raises(ecs.exceptions.InvalidParameterException) as e:
        ecs.delete_service(cluster=CLUSTER, service="web")
    assert e.value.response["Error"]["Message"] == "The service cannot be stopped while it is scaled above 0."

    deleted = ecs.delete_service(cluster=CLUSTER, service="web", force=True)["service"]
    assert deleted["status"] == "DRAINING", deleted["status"]
    assert s_arn("web") not in ecs.list_services(cluster=CLUSTER)["serviceArns"], "DRAINING is not listed"
    s = poll("web INACTIVE", lambda: describe(ecs, "web"), lambda s: s["status"] == "INACTIVE", 60)
    tasks = service_tasks(ecs, "web")
    assert alive(tasks) == []
    for t in tasks:
        if t["taskArn"] in live:
            assert t["stopCode"] == "ServiceSchedulerInitiated", t
    assert s_arn("web") not in ecs.list_services(cluster=CLUSTER)["serviceArns"]
    rc, _, err = services_berth.aws("ecs", "wait", "services-inactive", "--cluster", CLUSTER, "--services", "web",
                                    check=False)
    assert rc == 0, err
    with pytest.raises(ecs.exceptions.ServiceNotActiveException) as e:
        ecs.update_service(cluster=CLUSTER, service="web", desiredCount=1)
    assert e.value.response["Error"]["Message"] == "Service was not ACTIVE."


def s_arn(name):
    return "arn:aws:ecs:us-east-1:000000000000:service/default/" + name


# ------------------------------------------------ failing revisions

def test_the_circuit_breaker_fails_a_bad_revision_and_rolls_back(services_berth, ecs, own_service):
    good = register(ecs, "canary", 1)
    own_service.append("canary")
    create(ecs, "canary", "canary", 2,
           deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}})
    s = wait_steady(ecs, "canary")
    assert s["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    good_deployment = s["deployments"][0]["id"]

    bad = register(ecs, "canary", 2, script="exit 1")
    since = clock()
    updated = ecs.update_service(cluster=CLUSTER, service="canary", taskDefinition=bad)["service"]
    bad_deployment = updated["deployments"][0]["id"]
    assert bad_deployment != good_deployment

    seen_failed, seen = [], []

    def look():
        s = describe(ecs, "canary")
        states = [(d["id"], d["status"], d.get("rolloutState"), d["runningCount"], d["failedTasks"])
                  for d in s["deployments"]]
        if not seen or seen[-1] != states:
            seen.append(states)
        for d in s["deployments"]:
            if d["id"] == bad_deployment and d.get("rolloutState") == "FAILED":
                seen_failed.append(d)
        return s
    s = poll("canary rolled back and steady", look,
             lambda s: steady(s) and s["deployments"][0]["id"] == good_deployment, 120)
    assert s["taskDefinition"] == good and s["deployments"][0]["taskDefinition"] == good
    said = messages(s, since)
    assert "(service canary) (deployment %s) deployment failed: tasks failed to start." % bad_deployment in said, said
    assert "(service canary) rolling back to deployment %s." % good_deployment in said, said
    tasks = service_tasks(ecs, "canary")
    bad_tasks = [t for t in tasks if t["taskDefinitionArn"] == bad]
    assert 3 <= len(bad_tasks) <= 6, "threshold 3 (half of 2, at least 3): %d launched" % len(bad_tasks)
    assert all(t["lastStatus"] == "STOPPED" for t in bad_tasks)
    now = running(tasks)
    assert len(now) == 2 and {t["taskDefinitionArn"] for t in now} == {good}, pformat(now)
    assert {t["startedBy"] for t in now} == {good_deployment}
    rc, _, err = services_berth.aws("ecs", "wait", "services-stable", "--cluster", CLUSTER, "--services", "canary",
                                    check=False)
    assert rc == 0, err
    # The deployment a deploy tool waited for says how it ended.
    listed = ecs.list_service_deployments(cluster=CLUSTER, service="canary")["serviceDeployments"]
    failed = [d for d in listed if d["targetServiceRevisionArn"].endswith("/" + bad_deployment.split("/")[1])]
    assert len(failed) == 1 and failed[0]["status"] == "ROLLBACK_SUCCESSFUL", pformat(listed)
    # While the rollback ran, the failed deployment showed as ECS shows it.
    assert seen_failed, "the bad deployment was never seen with rolloutState FAILED; deployments seen:\n%s\n%s" % (
        pformat(seen), pformat(messages(s, since)))
    assert seen_failed[0]["rolloutStateReason"] == "ECS deployment circuit breaker: tasks failed to start."
    assert seen_failed[0]["failedTasks"] >= 3, seen_failed[0]


def test_without_a_breaker_a_revision_that_fails_to_start_is_throttled(ecs, own_service):
    bad = register(ecs, "crashy", 1, script="exit 1")
    own_service.append("crashy")
    t0 = time.time()
    create(ecs, "crashy", bad, 1)
    time.sleep(65)
    tasks = service_tasks(ecs, "crashy")
    starts = sorted(t["createdAt"].timestamp() - t0 for t in tasks)
    print("crashy launches at", ["%.1f" % x for x in starts])
    # ECS's throttle: the first failure retries at once, then 10 s, 20 s, 40 s...:
    # about 4 launches in 65 s, where relaunching at once would make dozens.
    assert 3 <= len(tasks) <= 7, "launches at %s" % starts
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert all(g >= 8 for g in gaps[1:]), "after the first retry, launches wait 10 s and more: %s" % gaps
    s = describe(ecs, "crashy")
    assert "(service crashy) is unable to consistently start tasks successfully." in messages(s), messages(s)
    assert s["runningCount"] == 0 and s["deployments"][0]["rolloutState"] == "IN_PROGRESS"

    # A new task definition ends the throttle at once.
    good = register(ecs, "crashy", 2)
    ecs.update_service(cluster=CLUSTER, service="crashy", taskDefinition=good)
    s = wait_steady(ecs, "crashy", 30)
    assert s["taskDefinition"] == good


# ------------------------------------------------ errors, listing, tags

def test_errors_as_ecs_gives_them(ecs, own_service):
    out = ecs.describe_services(cluster=CLUSTER, services=["nope"])
    assert out["services"] == []
    assert out["failures"] == [{"arn": s_arn("nope"), "reason": "MISSING"}]
    with pytest.raises(ecs.exceptions.ServiceNotFoundException):
        ecs.update_service(cluster=CLUSTER, service="nope", desiredCount=1)
    with pytest.raises(ecs.exceptions.ServiceNotFoundException):
        ecs.delete_service(cluster=CLUSTER, service="nope", force=True)

    td = register(ecs, "idle", 1)
    own_service.append("idle")
    create(ecs, "idle", td, 0)
    with pytest.raises(ecs.exceptions.InvalidParameterException) as e:
        create(ecs, "idle", td, 0)
    assert e.value.response["Error"]["Message"] == "Creation of service was not idempotent."
    with pytest.raises(ecs.exceptions.InvalidParameterException) as e:
        create(ecs, "negative", td, -1)
    assert "desiredCount" in e.value.response["Error"]["Message"], e.value.response["Error"]
    with pytest.raises(ecs.exceptions.ClusterNotFoundException):
        ecs.create_service(cluster="no-such-cluster", serviceName="x", taskDefinition=td, desiredCount=1,
                           networkConfiguration=NETWORK)
    with pytest.raises(ecs.exceptions.ClusterNotFoundException):
        ecs.describe_services(cluster="no-such-cluster", services=["idle"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.create_service(cluster=CLUSTER, serviceName="ghost", taskDefinition="no-such-family", desiredCount=1,
                           networkConfiguration=NETWORK)
    assert e.value.response["Error"]["Code"] in ("ClientException", "InvalidParameterException"), e.value.response
    # A service of desiredCount 0 is deleted without force, at once INACTIVE-bound.
    assert ecs.delete_service(cluster=CLUSTER, service="idle")["service"]["status"] in ("DRAINING", "INACTIVE")


def test_list_tasks_of_a_missing_service_is_service_not_found(ecs):
    # ECS's ListTasks names ServiceNotFoundException for a serviceName it does not know.
    with pytest.raises(ecs.exceptions.ServiceNotFoundException):
        ecs.list_tasks(cluster=CLUSTER, serviceName="nope")


def test_list_services_pages_filters_and_tags(ecs, own_service):
    td = register(ecs, "lister", 1)
    names = ["list-a", "list-b", "list-c"]
    for n in names:
        own_service.append(n)
        create(ecs, n, td, 0, tags=[{"key": "name", "value": n}])
    pages = list(ecs.get_paginator("list_services").paginate(cluster=CLUSTER, PaginationConfig={"PageSize": 1}))
    listed = [a for p in pages for a in p["serviceArns"]]
    assert sorted(a for a in listed if a.rsplit("/", 1)[1].startswith("list-")) == [s_arn(n) for n in names]
    assert len(listed) == len(set(listed)), "no service on two pages"
    assert len(pages) >= 3
    fargate = ecs.list_services(cluster=CLUSTER, launchType="FARGATE")["serviceArns"]
    assert set(s_arn(n) for n in names) <= set(fargate)
    assert ecs.list_services(cluster=CLUSTER, launchType="EC2")["serviceArns"] == []
    assert set(s_arn(n) for n in names) <= set(
        ecs.list_services(cluster=CLUSTER, schedulingStrategy="REPLICA")["serviceArns"])
    assert ecs.list_services(cluster=CLUSTER, schedulingStrategy="DAEMON")["serviceArns"] == []
    out = ecs.describe_services(cluster=CLUSTER, services=names, include=["TAGS"])
    assert [s["tags"] for s in out["services"]] == [[{"key": "name", "value": n}] for n in names]
    assert "tags" not in ecs.describe_services(cluster=CLUSTER, services=["list-a"])["services"][0]
    tags = ecs.list_tags_for_resource(resourceArn=s_arn("list-a"))["tags"]
    assert tags == [{"key": "name", "value": "list-a"}]


def test_fargate_capacity_providers_for_capacity_provider_strategies(ecs):
    cps = ecs.describe_capacity_providers()["capacityProviders"]
    assert [(c["name"], c["status"]) for c in cps] == [("FARGATE", "ACTIVE"), ("FARGATE_SPOT", "ACTIVE")]
