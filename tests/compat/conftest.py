"""Fixtures: a real `berth up` on a fresh data dir, and clients for it.

The aws CLI and boto3 are pointed at Berth only through the two files
Berth writes (AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE), exactly as a
user would; every other AWS_* variable is removed from their environment.
"""
import datetime
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest

import shapes

BERTH_BIN = os.environ.get("BERTH_BIN", os.path.join(os.path.dirname(__file__), "../../target/debug/berth"))
TARGET = "AmazonEC2ContainerServiceV20141113."

# The tasks' image: Debian's busybox-static, imported with `berth image import`.
BUSYBOX = "/bin/busybox"
APPLETS = ["sh", "echo", "sleep", "cat", "true", "false", "test"]
IMAGE = "compat/busybox:1"
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-default"]}}


def test_network(data_dir):
    """A subnet and nft table of this test Berth's own, kept for its data
    dir across restarts: the Rust suite's Berths use 10.200-207.x.0/24
    (crates/berth-testinfra), these 10.208.x.0/24."""
    os.makedirs(data_dir, exist_ok=True)
    remembered = os.path.join(data_dir, ".berth-test-net")
    if not os.path.exists(remembered):
        leases = "/run/berth-testinfra"
        os.makedirs(leases, exist_ok=True)
        start = os.getpid() % 256
        for i in range(256):
            slot = (start + i) % 256
            lease = os.path.join(leases, "py-net-%d" % slot)
            try:
                fd = os.open(lease, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                holder = open(lease).read()
                if holder and not os.path.exists(holder):
                    os.unlink(lease)
                    fd = os.open(lease, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                else:
                    continue
            os.write(fd, os.path.realpath(data_dir).encode())
            os.close(fd)
            with open(remembered, "w") as f:
                f.write(str(slot))
            break
        else:
            raise RuntimeError("no free test network slot in " + leases)
    slot = int(open(remembered).read())
    return ["--default-subnet", "10.208.%d.0/24" % slot, "--nft-table", "btpy%d" % slot]


def release_test_network(data_dir):
    """Removes what a stopped test Berth left in the kernel: its nft tables,
    its subnet's blackhole route and its bridge."""
    remembered = os.path.join(data_dir, ".berth-test-net")
    if not os.path.exists(remembered):
        return
    slot = int(open(remembered).read())
    for family in ("inet", "bridge"):
        subprocess.run(["nft", "delete", "table", family, "btpy%d" % slot], capture_output=True)
    subprocess.run(["ip", "route", "del", "blackhole", "10.208.%d.0/24" % slot, "metric", "4242"], capture_output=True)
    # Its bridge (Berth keeps an idle one a while): the link with the subnet's gateway.
    out = subprocess.run(["ip", "-o", "-4", "addr", "show", "to", "10.208.%d.0/24" % slot], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        link = line.split()[1]
        if link.startswith("berth"):
            subprocess.run(["ip", "link", "del", link], capture_output=True)


class Berth:
    """A `berth up` child process on a data dir."""

    def __init__(self, data_dir, extra_env=None, extra_args=()):
        self.data_dir = data_dir
        self.extra_env = extra_env or {}
        self.extra_args = list(extra_args)
        self.proc = None
        self.endpoint = None
        self.banner = ""

    def start(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BERTH_"))}
        env.update(self.extra_env)
        self.log_path = self.data_dir.rstrip("/") + ".log"
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        self.log_file = open(self.log_path, "a")
        self.proc = subprocess.Popen(
            [BERTH_BIN, "up", "--data-dir", self.data_dir, "--listen", "127.0.0.1:0", *test_network(self.data_dir),
             *self.extra_args],
            stdout=subprocess.PIPE, stderr=self.log_file, stdin=subprocess.DEVNULL, env=env, text=True)
        deadline = time.time() + 60
        lines = []
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.strip().startswith("endpoint:"):
                self.endpoint = line.split(":", 1)[1].strip()
                self.banner = "".join(lines)
                # keep draining stdout so the server never blocks on output
                threading.Thread(target=lambda p=self.proc.stdout: [None for _ in p], daemon=True).start()
                return self
        self.proc.kill()
        self.proc.wait(30)
        raise RuntimeError("berth did not come up: %s %s" % ("".join(lines), self.log()))

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def terminate(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.delete_load_balancers()
            self.proc.kill()
            self.proc.wait(30)

    def delete_load_balancers(self, timeout=15):
        """Deletes what load balancers a test left and waits (bounded) until
        their nodes' namespaces are gone: a killed Berth leaves them, like
        tasks. Best effort: a Berth that cannot answer is killed anyway."""
        try:
            elbv2 = self.boto3_session().client("elbv2")
            ids = []
            for lb in elbv2.describe_load_balancers()["LoadBalancers"]:
                elbv2.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
                ids.append(lb["LoadBalancerArn"].rsplit("/", 1)[1])
            deadline = time.time() + timeout
            while ids and time.time() < deadline:
                names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
                if not any("berth-elb-%s-" % i in names for i in ids):
                    break
                time.sleep(0.2)
        except Exception as e:  # noqa: BLE001 - cleanup must not fail the test
            print("deleting load balancers at stop:", e)

    @property
    def credentials_file(self):
        return os.path.join(self.data_dir, "credentials")

    @property
    def config_file(self):
        return os.path.join(self.data_dir, "config")

    def client_env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["AWS_SHARED_CREDENTIALS_FILE"] = self.credentials_file
        env["AWS_CONFIG_FILE"] = self.config_file
        return env

    def aws(self, *args, check=True):
        """Runs the real aws CLI with only the two env vars; returns (rc, stdout json or text, stderr)."""
        p = subprocess.run(["aws", *args], env=self.client_env(), capture_output=True, text=True, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError("aws %s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr))
        try:
            out = json.loads(p.stdout) if p.stdout.strip() else None
        except json.JSONDecodeError:
            out = p.stdout
        return p.returncode, out, p.stderr

    def credentials(self):
        creds = {}
        with open(self.credentials_file) as f:
            for line in f:
                if "=" in line:
                    k, v = line.split("=", 1)
                    creds[k.strip()] = v.strip()
        return creds["aws_access_key_id"], creds["aws_secret_access_key"]

    def boto3_session(self):
        saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("AWS_")}
        os.environ["AWS_SHARED_CREDENTIALS_FILE"] = self.credentials_file
        os.environ["AWS_CONFIG_FILE"] = self.config_file
        try:
            session = boto3.Session()
            session.client("ecs")  # resolve config now, while the env is set
            return session
        finally:
            del os.environ["AWS_SHARED_CREDENTIALS_FILE"]
            del os.environ["AWS_CONFIG_FILE"]
            os.environ.update(saved)

    def ecs(self):
        """A boto3 ECS client whose every response is checked against botocore's model."""
        return shapes.install(self.boto3_session().client("ecs"))

    def logs(self):
        """A boto3 CloudWatch Logs client, checked the same way."""
        return shapes.install(self.boto3_session().client("logs"))

    def raw(self, op, body, sign=True, secret=None, access_key=None, headers=None, region="us-east-1",
            service="ecs", target=None, clock_skew=0):
        """A hand-made POST, signed with botocore's own SigV4 signer unless sign=False."""
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        if isinstance(data, str):
            data = data.encode()
        hdrs = {"Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": target if target is not None else TARGET + op}
        hdrs.update(headers or {})
        req = botocore.awsrequest.AWSRequest(method="POST", url=self.endpoint + "/", data=data, headers=hdrs)
        if sign:
            ak, sk = self.credentials()
            creds = botocore.credentials.Credentials(access_key or ak, secret or sk)
            real_now = botocore.auth.get_current_datetime
            botocore.auth.get_current_datetime = lambda: real_now() + datetime.timedelta(seconds=clock_skew)
            try:
                botocore.auth.SigV4Auth(creds, service, region).add_auth(req)
            finally:
                botocore.auth.get_current_datetime = real_now
        prepared = req.prepare()
        r = urllib.request.Request(prepared.url, data=prepared.body, headers=dict(prepared.headers), method="POST")
        try:
            with urllib.request.urlopen(r, timeout=60) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")


def import_busybox(berth, workdir, extra=()):
    """Puts a busybox image (IMAGE) into `berth`'s cache with `berth image import`
    (with APPLETS, and the `extra` applets too)."""
    root = os.path.join(workdir, "rootfs")
    os.makedirs(os.path.join(root, "bin"))
    os.makedirs(os.path.join(root, "tmp"))
    with open(BUSYBOX, "rb") as src, open(os.path.join(root, "bin", "busybox"), "wb") as dst:
        dst.write(src.read())
    os.chmod(os.path.join(root, "bin", "busybox"), 0o755)
    for applet in [*APPLETS, *extra]:
        os.symlink("busybox", os.path.join(root, "bin", applet))
    p = subprocess.run([BERTH_BIN, "image", "import", root, "--name", IMAGE, "--output", "json",
                        "--data-dir", berth.data_dir], capture_output=True, text=True, timeout=120,
                       env={k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BERTH_"))})
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["images"][0]["source"] == "import"


def definition(family, script, image=IMAGE, **container):
    """A one-container Fargate task definition (256/512) running `script` in busybox sh."""
    c = {"name": "main", "image": image, "command": ["sh", "-c", script], "stopTimeout": 2}
    c.update(container)
    return {"family": family, "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
            "cpu": "256", "memory": "512", "containerDefinitions": [c]}


@pytest.fixture
def berth():
    with tempfile.TemporaryDirectory(prefix="berth-compat-") as d:
        b = Berth(os.path.join(d, "data")).start()
        try:
            yield b
        finally:
            b.stop()
            release_test_network(b.data_dir)


@pytest.fixture
def data_dir():
    with tempfile.TemporaryDirectory(prefix="berth-compat-") as d:
        yield os.path.join(d, "data")
        release_test_network(os.path.join(d, "data"))


SEED = {
    "family": "api-service", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
    "cpu": "512", "memory": "1024",
    "containerDefinitions": [{
        "name": "api", "image": "123456789.dkr.ecr.us-east-1.amazonaws.com/api:latest",
        "portMappings": [{"containerPort": 8080}],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": "/ecs/api-service", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "ecs"}}}],
}


@pytest.fixture
def seed_file(tmp_path):
    p = tmp_path / "seed.json"
    p.write_text(json.dumps(SEED))
    return str(p)
