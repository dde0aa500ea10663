"""What a task sees of IAM and secrets, with boto3 against a real `berth up`
running busybox tasks:

- a task with a task role finds `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`
  and reads its role's credentials from http://169.254.170.2 inside the
  container (with busybox `nc`: busybox-static's wget crashes in a task),
  only its own; those credentials, used by boto3, act as the role;
- container `secrets` (an SSM SecureString, a Secrets Manager secret's JSON
  key) arrive in the container's environment, read with the execution
  role, and appear nowhere else in the clear; a denied or a missing secret
  fails the task as ECS does;
- a private image is pulled from a registry that wants basic auth, with
  `repositoryCredentials` from Secrets Manager.

Needs root, busybox-static, docker-registry, skopeo and htpasswd
(apache2-utils), as CI has.
"""
import calendar
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request

import boto3
import botocore.exceptions
import pytest

from conftest import BUSYBOX, IMAGE, Berth, import_busybox, release_test_network

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists(BUSYBOX),
    reason="needs root and Debian's busybox-static (CI has both)")

ACCOUNT = "000000000000"
TRUST = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
GROUP = "/compat/task-iam"
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-default"]}}
PREFIX = "ResourceInitializationError: unable to pull secrets or registry auth: "


@pytest.fixture(scope="module")
def berth():
    with tempfile.TemporaryDirectory(prefix="berth-compat-iam-") as d:
        b = Berth(os.path.join(d, "data")).start()
        try:
            import_busybox(b, d, extra=["nc", "printf", "head", "sed", "env"])
            yield b
        finally:
            stop_all(b)
            b.stop()
            release_test_network(b.data_dir)


def stop_all(b):
    try:
        ecs = b.ecs()
        for arn in ecs.list_tasks(desiredStatus="RUNNING")["taskArns"]:
            ecs.stop_task(task=arn, reason="teardown")
        arns = ecs.list_tasks(desiredStatus="STOPPED")["taskArns"]
        if arns:
            ecs.get_waiter("tasks_stopped").wait(tasks=arns[:100], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    except Exception as e:  # noqa: BLE001 - cleanup must not fail the test
        print("stopping tasks at teardown:", e)


@pytest.fixture(scope="module")
def session(berth):
    return berth.boto3_session()


def role(iam, name, statements):
    """A role ECS tasks may assume, with one inline policy of `statements`."""
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    if statements:
        iam.put_role_policy(RoleName=name, PolicyName="p",
                            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    return arn


def task_definition(family, script, image=IMAGE, task=None, **container):
    c = {"name": "main", "image": image, "command": ["sh", "-c", script], "stopTimeout": 2}
    c.update(container)
    td = {"family": family, "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
          "cpu": "256", "memory": "512", "containerDefinitions": [c]}
    td.update(task or {})
    return td


def awslogs(family):
    return {"logDriver": "awslogs", "options": {"awslogs-group": GROUP, "awslogs-region": "us-east-1",
                                                "awslogs-stream-prefix": family, "awslogs-create-group": "true"}}


def run(ecs, family, **kw):
    out = ecs.run_task(taskDefinition=family, networkConfiguration=NETWORK, **kw)
    assert out["failures"] == [], out["failures"]
    return out["tasks"][0]["taskArn"]


def stopped(ecs, arn):
    ecs.get_waiter("tasks_stopped").wait(tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 90})
    return ecs.describe_tasks(tasks=[arn])["tasks"][0]


def lines(logs, family, arn, until, timeout=60):
    """The task's awslogs lines, once `until(lines)` holds."""
    stream = "%s/main/%s" % (family, arn.rsplit("/", 1)[1])
    deadline = time.time() + timeout
    got = []
    while time.time() < deadline:
        try:
            events = logs.get_log_events(logGroupName=GROUP, logStreamName=stream, startFromHead=True)["events"]
            got = [e["message"].rstrip("\r") for e in events]
        except botocore.exceptions.ClientError:
            got = []
        if until(got):
            return got
        time.sleep(0.5)
    raise AssertionError("the task's log never had what was waited for: %r" % got)


# A container that prints its credentials URI, then GETs a path (its own
# credentials, or $FETCH) from 169.254.170.2:80 and prints the answer's
# lines prefixed with "resp: ", then waits to be stopped.
FETCH = ('echo "uri=$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"; '
         'p="${FETCH:-$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI}"; '
         # stdin stays open a while: busybox nc ends at its EOF, maybe before the answer.
         '(printf "GET %s HTTP/1.0\\r\\nHost: 169.254.170.2\\r\\n\\r\\n" "$p"; sleep 3) | nc -w 5 169.254.170.2 80 > /tmp/r; '
         'while read -r l || [ -n "$l" ]; do echo "resp: $l"; done < /tmp/r; echo done; '
         "trap 'exit 0' TERM; sleep 600 & wait")


def answer(got):
    """(status line, JSON body or None) of the printed response."""
    resp = [l[len("resp: "):].strip() for l in got if l.startswith("resp: ")]
    body = None
    for l in resp:
        if l.startswith("{"):
            body = json.loads(l)
    return (resp[0] if resp else ""), body


def test_a_task_reads_its_roles_credentials_at_169_254_170_2_and_only_its_own(berth, session):
    iam, ecs, logs = session.client("iam"), berth.ecs(), berth.logs()
    role_arn = role(iam, "compat-app", [{"Effect": "Allow", "Action": ["ecs:ListClusters"], "Resource": "*"}])
    ecs.register_task_definition(**task_definition("creds", FETCH, task={"taskRoleArn": role_arn},
                                                   logConfiguration=awslogs("creds")))
    a = run(ecs, "creds")
    got = lines(logs, "creds", a, lambda ls: "done" in ls)
    uri = next(l for l in got if l.startswith("uri="))[4:]
    assert re.fullmatch(r"/v2/credentials/[0-9a-f]{32}", uri), uri
    status, creds = answer(got)
    assert " 200 " in status, got
    assert set(creds) == {"AccessKeyId", "SecretAccessKey", "Token", "Expiration", "RoleArn"}
    assert creds["RoleArn"] == role_arn
    assert creds["AccessKeyId"].startswith("ASIA")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", creds["Expiration"]), creds["Expiration"]
    expires = calendar.timegm(time.strptime(creds["Expiration"], "%Y-%m-%dT%H:%M:%SZ"))
    assert 5 * 3600 < expires - time.time() <= 6 * 3600 + 60, "six-hour task role sessions"
    assert creds["SecretAccessKey"] not in berth.log() and creds["Token"] not in berth.log()
    assert uri.rsplit("/", 1)[1] not in berth.log(), "the id is never logged"

    # Another task of the same role, asking for the first one's id: refused.
    b = run(ecs, "creds", overrides={"containerOverrides": [{"name": "main", "environment": [
        {"name": "FETCH", "value": uri}]}]})
    got_b = lines(logs, "creds", b, lambda ls: "done" in ls)
    status_b, body_b = answer(got_b)
    assert " 404 " in status_b and body_b is None, got_b
    own_b = next(l for l in got_b if l.startswith("uri="))[4:]
    assert own_b != uri

    # A task without a role has no variable, and the first task's id gets it nothing.
    ecs.register_task_definition(**task_definition("norole", FETCH, logConfiguration=awslogs("norole")))
    c = run(ecs, "norole", overrides={"containerOverrides": [{"name": "main", "environment": [
        {"name": "FETCH", "value": uri}]}]})
    got_c = lines(logs, "norole", c, lambda ls: "done" in ls)
    assert "uri=" in got_c
    assert " 404 " in answer(got_c)[0], got_c

    # Nor does the host itself, at the gateway's port.
    ip = ecs.describe_tasks(tasks=[a])["tasks"][0]["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]
    gateway = ip.rsplit(".", 1)[0] + ".1"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen("http://%s:51679%s" % (gateway, uri), timeout=10)
    assert e.value.code == 404

    # The credentials sign as the role's session, and do what it allows and nothing more.
    as_role = boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                            aws_session_token=creds["Token"], region_name="us-east-1")
    who = as_role.client("sts", endpoint_url=berth.endpoint).get_caller_identity()
    assert who["Arn"] == "arn:aws:sts::%s:assumed-role/compat-app/%s" % (ACCOUNT, a.rsplit("/", 1)[1])
    role_ecs = as_role.client("ecs", endpoint_url=berth.endpoint)
    role_ecs.list_clusters()
    with pytest.raises(botocore.exceptions.ClientError) as e:
        role_ecs.create_cluster(clusterName="not-allowed")
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "is not authorized to perform: ecs:CreateCluster" in e.value.response["Error"]["Message"]
    assert "not-allowed" not in [c.rsplit("/", 1)[1] for c in ecs.list_clusters()["clusterArns"]]
    # Nor may the role read parameters or secrets its policies do not name.
    for client, call in ((as_role.client("ssm", endpoint_url=berth.endpoint), lambda c: c.get_parameter(Name="/compat/any")),
                         (as_role.client("secretsmanager", endpoint_url=berth.endpoint),
                          lambda c: c.get_secret_value(SecretId="compat/any"))):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call(client)
        assert e.value.response["Error"]["Code"] == "AccessDeniedException", e.value.response
    for arn in (a, b, c):
        ecs.stop_task(task=arn)


def environ_of(marker):
    """The environment of the process whose environment has MARKER=marker."""
    found = process_with(marker)
    return found[1] if found else None


def process_with(marker):
    """(pid, environment) of the process whose environment has MARKER=marker."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if ("MARKER=" + marker).encode() in env:
            return pid, dict(e.decode().split("=", 1) for e in env if b"=" in e)
    return None


def files_holding(root, needle):
    """Files under `root` whose bytes contain `needle`."""
    found = []
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            try:
                if os.path.islink(p) or not os.path.isfile(p) or os.path.getsize(p) > 64 << 20:
                    continue
                with open(p, "rb") as f:
                    if needle.encode() in f.read():
                        found.append(p)
            except OSError:
                continue
    return found


def test_secrets_reach_the_environment_and_nowhere_else(berth, session):
    iam, ssm, sm, ecs = session.client("iam"), session.client("ssm"), session.client("secretsmanager"), berth.ecs()
    db_value, api_value = "ssm-value-%s" % os.urandom(6).hex(), "sm-value-%s" % os.urandom(6).hex()
    ssm.put_parameter(Name="/compat/db-password", Type="SecureString", Value=db_value)
    param_arn = "arn:aws:ssm:us-east-1:%s:parameter/compat/db-password" % ACCOUNT
    secret_arn = sm.create_secret(Name="compat/api", SecretString=json.dumps({"key": api_value, "other": "x"}))["ARN"]
    exec_arn = role(iam, "compat-exec", [
        {"Effect": "Allow", "Action": "ssm:GetParameters", "Resource": param_arn},
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret_arn},
    ])
    marker = os.urandom(8).hex()
    secrets = [{"name": "DB_PASSWORD", "valueFrom": param_arn}, {"name": "API_KEY", "valueFrom": secret_arn + ":key::"}]
    ecs.register_task_definition(**task_definition(
        "secrets", "trap 'exit 0' TERM; sleep 600 & wait", task={"executionRoleArn": exec_arn},
        secrets=secrets, environment=[{"name": "MARKER", "value": marker}]))
    arn = run(ecs, "secrets")
    ecs.get_waiter("tasks_running").wait(tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    env = None
    deadline = time.time() + 30
    while env is None and time.time() < deadline:
        env = environ_of(marker)
        time.sleep(0.2)
    assert env is not None, "the container's process"
    assert env["DB_PASSWORD"] == db_value
    assert env["API_KEY"] == api_value

    # Nowhere else in the clear: the API, Berth's log, the database.
    shown = json.dumps(ecs.describe_tasks(tasks=[arn])["tasks"], default=str)
    shown += json.dumps(ecs.describe_task_definition(taskDefinition="secrets"), default=str)
    for value in (db_value, api_value):
        assert value not in shown
        assert value not in berth.log()
        # The runtime's own files for the task (its manifest and OCI
        # config) hold the environment, readable by root alone; nothing
        # else in the data dir does, the database least of all.
        holding = files_holding(berth.data_dir, value)
        assert all(not p.startswith(os.path.join(berth.data_dir, "berth.db")) for p in holding), holding
        for p in holding:
            assert os.stat(p).st_mode & 0o077 == 0, "%s is readable by others" % p
            assert p.endswith(("task.json", "config.json")), holding
    ecs.stop_task(task=arn)
    assert stopped(ecs, arn)["stopCode"] == "UserInitiated"


def test_a_denied_or_missing_secret_fails_the_task_as_ecs_does(berth, session):
    iam, ssm, ecs = session.client("iam"), session.client("ssm"), berth.ecs()
    ssm.put_parameter(Name="/compat/guarded", Type="SecureString", Value="guarded-value")
    guarded = "arn:aws:ssm:us-east-1:%s:parameter/compat/guarded" % ACCOUNT
    nobody = role(iam, "compat-exec-none", [{"Effect": "Allow", "Action": "ssm:GetParameters",
                                             "Resource": "arn:aws:ssm:us-east-1:%s:parameter/elsewhere" % ACCOUNT}])
    anything = role(iam, "compat-exec-all", [{"Effect": "Allow", "Action": "ssm:GetParameters", "Resource": "*"}])
    for family, exec_arn, value_from, says in [
        ("denied", nobody, guarded, "AccessDeniedException"),
        ("missing", anything, "arn:aws:ssm:us-east-1:%s:parameter/compat/absent" % ACCOUNT, "compat/absent"),
    ]:
        ecs.register_task_definition(**task_definition(family, "echo should-not-run", task={"executionRoleArn": exec_arn},
                                                       secrets=[{"name": "S", "valueFrom": value_from}]))
        t = stopped(ecs, run(ecs, family))
        assert t["stopCode"] == "TaskFailedToStart", t
        assert t["stoppedReason"].startswith(PREFIX), t["stoppedReason"]
        assert says in t["stoppedReason"], t["stoppedReason"]
        assert "startedAt" not in t, "no container started"
    # Without an execution role, ECS refuses the definition itself.
    with pytest.raises(ecs.exceptions.ClientException) as e:
        ecs.register_task_definition(**task_definition("norole-secret", "true",
                                                       secrets=[{"name": "S", "valueFrom": guarded}]))
    assert "executionRoleArn" in str(e.value)


# ---- a registry that wants basic auth -------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def blob(layout, data, media_type):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}


def busybox_layout(layout, tag):
    """An OCI layout with one image: busybox and its sh, echo, true."""
    os.makedirs(os.path.join(layout, "blobs", "sha256"))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        d = tarfile.TarInfo("bin")
        d.type, d.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(d)
        busybox = open(BUSYBOX, "rb").read()
        f = tarfile.TarInfo("bin/busybox")
        f.size, f.mode = len(busybox), 0o755
        tar.addfile(f, io.BytesIO(busybox))
        for applet in ("sh", "echo", "true"):
            link = tarfile.TarInfo("bin/" + applet)
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    layer = raw.getvalue()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}})
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": blob(layout, config.encode(), "application/vnd.oci.image.config.v1+json"),
        "layers": [blob(layout, gzip.compress(layer), "application/vnd.oci.image.layer.v1.tar+gzip")]})
    m = blob(layout, manifest.encode(), "application/vnd.oci.image.manifest.v1+json")
    m["annotations"] = {"org.opencontainers.image.ref.name": tag}
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [m]}, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')


@pytest.fixture
def private_registry(tmp_path):
    """Debian's docker-registry on a loopback port, wanting basic auth
    (htpasswd, bcrypt) as ci/PASSWORD, with a busybox image pushed by
    skopeo; yields (reference, user, password)."""
    for tool in ("/usr/bin/docker-registry", "/usr/bin/skopeo", "/usr/bin/htpasswd"):
        if not os.path.exists(tool):
            assert os.environ.get("CI") != "true", "%s missing in CI" % tool
            pytest.skip("needs %s (docker-registry, skopeo, apache2-utils)" % tool)
    user, password = "ci", "pw-%s" % os.urandom(6).hex()
    line = subprocess.run(["htpasswd", "-nbB", user, password], capture_output=True, text=True, check=True).stdout
    (tmp_path / "htpasswd").write_text(line.strip() + "\n")
    port = free_port()
    (tmp_path / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: %s\n"
        "http:\n  addr: 127.0.0.1:%d\nauth:\n  htpasswd:\n    realm: berth-compat\n    path: %s\n"
        % (tmp_path / "storage", port, tmp_path / "htpasswd"))
    log = open(tmp_path / "registry.log", "w")
    proc = subprocess.Popen(["/usr/bin/docker-registry", "serve", str(tmp_path / "config.yml")],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/v2/" % port, timeout=2)
                raise AssertionError("the registry answered without credentials")
            except urllib.error.HTTPError as e:
                assert e.code == 401
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None and time.time() < deadline, open(tmp_path / "registry.log").read()
                time.sleep(0.1)
        layout = str(tmp_path / "layout")
        busybox_layout(layout, "1")
        reference = "127.0.0.1:%d/private/busybox:1" % port
        subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false",
                        "--dest-creds", "%s:%s" % (user, password), "oci:%s:1" % layout, "docker://" + reference],
                       check=True, capture_output=True, env=dict(os.environ, HOME=str(tmp_path)), timeout=120)
        yield reference, user, password
    finally:
        proc.kill()
        proc.wait(10)
        shutil.rmtree(tmp_path / "storage", ignore_errors=True)


def test_a_private_image_is_pulled_with_repository_credentials(berth, session, private_registry):
    reference, user, password = private_registry
    iam, sm, ecs = session.client("iam"), session.client("secretsmanager"), berth.ecs()
    login_arn = sm.create_secret(Name="compat/registry",
                                 SecretString=json.dumps({"username": user, "password": password}))["ARN"]
    puller = role(iam, "compat-puller", [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                          "Resource": login_arn}])
    blind = role(iam, "compat-blind", [])
    private = {"credentialsParameter": login_arn}

    ecs.register_task_definition(**task_definition("private", "echo pulled; exit 0", image=reference,
                                                   task={"executionRoleArn": puller}, repositoryCredentials=private))
    t = stopped(ecs, run(ecs, "private"))
    assert (t["stopCode"], t["containers"][0].get("exitCode")) == ("EssentialContainerExited", 0), t
    assert password not in json.dumps(ecs.describe_task_definition(taskDefinition="private"), default=str)
    assert password not in berth.log()

    # Without the credentials the registry refuses the pull.
    ecs.register_task_definition(**task_definition("anonymous", "exit 0", image=reference))
    t = stopped(ecs, run(ecs, "anonymous"))
    assert t["stopCode"] == "TaskFailedToStart" and t["stoppedReason"].startswith("CannotPullContainerError: "), t

    # An execution role that may not read the secret: ECS's reason.
    ecs.register_task_definition(**task_definition("blind", "exit 0", image=reference,
                                                   task={"executionRoleArn": blind}, repositoryCredentials=private))
    t = stopped(ecs, run(ecs, "blind"))
    assert t["stopCode"] == "TaskFailedToStart", t
    assert t["stoppedReason"].startswith(PREFIX) and "AccessDeniedException" in t["stoppedReason"], t["stoppedReason"]

    # A login secret that does not exist: Secrets Manager's answer, in ECS's reason.
    absent = login_arn.rsplit(":", 1)[0] + ":compat/absent-AbCdEf"
    reader = role(iam, "compat-reader", [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}])
    ecs.register_task_definition(**task_definition("absent", "exit 0", image=reference, task={"executionRoleArn": reader},
                                                   repositoryCredentials={"credentialsParameter": absent}))
    t = stopped(ecs, run(ecs, "absent"))
    assert t["stopCode"] == "TaskFailedToStart", t
    assert t["stoppedReason"].startswith(PREFIX) and "ResourceNotFoundException" in t["stoppedReason"], t["stoppedReason"]


# A container that prints AWS_ENDPOINT_URL and its role's credentials, then
# waits for the test to drop a raw HTTP request at /tmp/req (through
# /proc/PID/root) and sends it to that endpoint, printing the answer.
RELAY = ('echo "endpoint=$AWS_ENDPOINT_URL"; '
         '(printf "GET %s HTTP/1.0\\r\\nHost: 169.254.170.2\\r\\n\\r\\n" "$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"; sleep 3) '
         '| nc -w 5 169.254.170.2 80 > /tmp/r; '
         'while read -r l || [ -n "$l" ]; do echo "resp: $l"; done < /tmp/r; echo done; '
         'while [ ! -f /tmp/req ]; do sleep 0.2; done; '
         'hp="${AWS_ENDPOINT_URL#http://}"; '
         '(cat /tmp/req; sleep 3) | nc -w 5 "${hp%:*}" "${hp##*:}" > /tmp/api; '
         'while read -r l || [ -n "$l" ]; do echo "api: $l"; done < /tmp/api; echo relayed; '
         "trap 'exit 0' TERM; sleep 600 & wait")


def test_an_sdk_in_the_task_reaches_berth_at_aws_endpoint_url_as_its_role(berth, session):
    """What an SDK inside the task does: AWS_ENDPOINT_URL (Berth's API on the
    task's gateway) and the role's credentials from 169.254.170.2; the call,
    signed with them (by botocore, outside: busybox cannot sign) and sent from
    inside the task, is answered for the role's session."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    iam, ecs, logs = session.client("iam"), berth.ecs(), berth.logs()
    role_arn = role(iam, "compat-sdk", [{"Effect": "Allow", "Action": ["ecs:ListClusters"], "Resource": "*"}])
    marker = "sdk-%d" % os.getpid()
    ecs.register_task_definition(**task_definition(
        "sdk", RELAY, task={"taskRoleArn": role_arn}, logConfiguration=awslogs("sdk"),
        environment=[{"name": "MARKER", "value": marker}]))
    arn = run(ecs, "sdk")
    got = lines(logs, "sdk", arn, lambda ls: "done" in ls)
    endpoint = next(l for l in got if l.startswith("endpoint="))[len("endpoint="):]
    ip = ecs.describe_tasks(tasks=[arn])["tasks"][0]["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]
    assert endpoint == "http://%s.1:51679" % ip.rsplit(".", 1)[0], endpoint
    _, creds = answer(got)

    body = "Action=GetCallerIdentity&Version=2011-06-15"
    req = AWSRequest(method="POST", url=endpoint + "/", data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["Token"]), "sts", "us-east-1").add_auth(req)
    head = "".join("%s: %s\r\n" % (k, v) for k, v in req.headers.items())
    raw = "POST / HTTP/1.0\r\nHost: %s\r\n%sContent-Length: %d\r\n\r\n%s" % (
        endpoint[len("http://"):], head, len(body), body)
    found = process_with(marker)
    assert found is not None, "the container's process"
    pid, env = found
    assert env["AWS_ENDPOINT_URL"] == endpoint
    root = "/proc/%s/root/tmp" % pid
    with open(root + "/req.part", "w") as f:
        f.write(raw)
    os.rename(root + "/req.part", root + "/req")
    got = lines(logs, "sdk", arn, lambda ls: "relayed" in ls)
    answered = "\n".join(l for l in got if l.startswith("api: "))
    assert " 200 " in answered.splitlines()[0], answered
    assert "arn:aws:sts::%s:assumed-role/compat-sdk/%s" % (ACCOUNT, arn.rsplit("/", 1)[1]) in answered, answered
    ecs.stop_task(task=arn)



def test_awslogs_is_written_as_the_execution_role(berth, session):
    """With an execution role, Berth writes awslogs as that role: without
    logs permissions the task fails as ECS fails it; with AWS's
    AmazonECSTaskExecutionRolePolicy its output arrives."""
    iam, ecs, logs = session.client("iam"), berth.ecs(), berth.logs()
    mute = role(iam, "compat-exec-mute", [{"Effect": "Allow", "Action": "ssm:GetParameters", "Resource": "*"}])
    ecs.register_task_definition(**task_definition("mute", "echo written-as-role", task={"executionRoleArn": mute},
                                                   logConfiguration=awslogs("mute")))
    t = stopped(ecs, run(ecs, "mute"))
    assert t["stopCode"] == "TaskFailedToStart", t
    reason = t["stoppedReason"]
    assert reason.startswith("ResourceInitializationError: failed to validate logger args: "), reason
    assert "AccessDeniedException: User: arn:aws:sts::%s:assumed-role/compat-exec-mute/%s is not authorized to perform: " \
           "logs:CreateLogGroup on resource: arn:aws:logs:us-east-1:%s:log-group:%s:log-stream:" % (
               ACCOUNT, t["taskArn"].rsplit("/", 1)[1], ACCOUNT, GROUP) in reason, reason
    assert "containers" not in t or all(c.get("lastStatus") != "RUNNING" and "exitCode" not in c for c in t["containers"])

    # AWS's policy allows streams and events, not groups (awslogs-create-group needs its own statement).
    writer = role(iam, "compat-exec-logs", [{"Effect": "Allow", "Action": "logs:CreateLogGroup", "Resource": "*"}])
    iam.attach_role_policy(RoleName="compat-exec-logs",
                           PolicyArn="arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy")
    ecs.register_task_definition(**task_definition("writer", "echo written-as-role", task={"executionRoleArn": writer},
                                                   logConfiguration=awslogs("writer")))
    arn = run(ecs, "writer")
    assert "written-as-role" in lines(logs, "writer", arn, lambda ls: "written-as-role" in ls)
    assert stopped(ecs, arn)["containers"][0]["exitCode"] == 0
