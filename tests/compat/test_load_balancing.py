"""Services behind a real load balancer, with the stock clients: boto3's
elbv2, ec2 and ecs clients against one real `berth up`, its tasks running
busybox httpd. Each test builds what a user would — a security group, a
target group, an ALB and its listener, a service with loadBalancers — and
sends real HTTP through the load balancer's own address on the subnet's
bridge (reached from the host, as from another subnet). Every wait and
every load is bounded; what a test makes is deleted after it.
Needs root, like test_tasks.py.
"""
import http.client
import os
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pprint import pformat

import pytest

from conftest import BUSYBOX, Berth, import_busybox, release_test_network
from test_services import CLUSTER, delete_and_drain, describe, messages, poll

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists(BUSYBOX),
    reason="needs root and Debian's busybox-static (CI has both)")

# Each task serves its own hostname at / and a health page at /health
# (a CGI script: its exit status picks the answer; HEALTH=500 fails it).
HTTPD = r"""
mkdir -p /www/cgi-bin
cat /etc/hostname > /www/index.html
echo "revision $REVISION" > /www/revision
printf '#!/bin/sh\necho "Status: %s"\necho "Content-Type: text/plain"\necho\necho health\n' "${HEALTH:-200}" > /www/cgi-bin/health
chmod +x /www/cgi-bin/health
trap 'exit 0' TERM
httpd -f -p 80 -h /www & wait
"""

HEALTH_PATH = "/cgi-bin/health"


def register(ecs, family, revision, health=200):
    td = {
        "family": family, "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
        "cpu": "256", "memory": "512",
        "containerDefinitions": [{
            "name": "web", "image": "compat/busybox:1", "command": ["sh", "-c", HTTPD], "stopTimeout": 2,
            "portMappings": [{"containerPort": 80, "protocol": "tcp"}],
            "environment": [{"name": "REVISION", "value": str(revision)}, {"name": "HEALTH", "value": str(health)}],
        }],
    }
    return ecs.register_task_definition(**td)["taskDefinition"]["taskDefinitionArn"]


@pytest.fixture(scope="module")
def lb_berth():
    with tempfile.TemporaryDirectory(prefix="berth-compat-lb-") as d:
        b = Berth(os.path.join(d, "data")).start()
        try:
            import_busybox(b, d, extra=["httpd", "mkdir", "printf", "chmod", "wget", "nslookup", "nc", "grep", "awk"])
            yield b
        finally:
            b.stop()
            release_test_network(b.data_dir)


@pytest.fixture(scope="module")
def clients(lb_berth):
    s = lb_berth.boto3_session()
    ecs = s.client("ecs")
    ecs.create_cluster(clusterName=CLUSTER)
    return ecs, s.client("elbv2"), s.client("ec2")


@pytest.fixture(scope="module")
def network(clients):
    """A group for the load balancer (HTTP from anywhere) and one for the
    tasks (port 80 from the load balancer's group only), in Berth's subnet."""
    _, _, ec2 = clients
    subnet = ec2.describe_subnets()["Subnets"][0]
    lb_sg = ec2.create_security_group(GroupName="lb", Description="load balancer", VpcId=subnet["VpcId"])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=lb_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8090, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    task_sg = ec2.create_security_group(GroupName="web", Description="web tasks", VpcId=subnet["VpcId"])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=task_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": lb_sg}]}])
    return {"subnet": subnet["SubnetId"], "vpc": subnet["VpcId"], "lb_sg": lb_sg, "task_sg": task_sg}


def target_group(elbv2, network, name, **kw):
    args = dict(Name=name, Protocol="HTTP", Port=80, VpcId=network["vpc"], TargetType="ip",
                HealthCheckPath=HEALTH_PATH, HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                HealthyThresholdCount=2, UnhealthyThresholdCount=2)
    args.update(kw)
    tg = elbv2.create_target_group(**args)["TargetGroups"][0]["TargetGroupArn"]
    elbv2.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "3"}])
    return tg


@pytest.fixture(scope="module")
def alb(clients, network):
    """An internal ALB in Berth's subnet with an HTTP listener on 8080 (its
    default action answers 404 until a test adds rules)."""
    _, elbv2, _ = clients
    lb = elbv2.create_load_balancer(Name="front", Subnets=[network["subnet"]], SecurityGroups=[network["lb_sg"]],
                                    Scheme="internal", Type="application")["LoadBalancers"][0]
    arn = lb["LoadBalancerArn"]
    poll("load balancer active", lambda: elbv2.describe_load_balancers(LoadBalancerArns=[arn])["LoadBalancers"][0],
         lambda l: l["State"]["Code"] == "active", 60)
    # An ALB's addresses are its nodes' interfaces, as EC2 lists them.
    _, _, ec2 = clients
    enis = ec2.describe_network_interfaces(Filters=[
        {"Name": "description", "Values": ["ELB app/front/" + arn.rsplit("/", 1)[1]]}])["NetworkInterfaces"]
    assert len(enis) == 1 and enis[0]["RequesterId"] == "amazon-elb", enis
    yield {"arn": arn, "address": enis[0]["PrivateIpAddress"], "dns": lb["DNSName"]}
    elbv2.delete_load_balancer(LoadBalancerArn=arn)


def get(address, port, path="/", host=None, timeout=5):
    c = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        c.request("GET", path, headers={"Host": host} if host else {})
        r = c.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        c.close()


def healthy_targets(elbv2, tg):
    return [d for d in elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
            if d["TargetHealth"]["State"] == "healthy"]


def service(ecs, network, name, td, tg, desired, **kw):
    return ecs.create_service(
        cluster=CLUSTER, serviceName=name, taskDefinition=td, desiredCount=desired, launchType="FARGATE",
        networkConfiguration={"awsvpcConfiguration": {"subnets": [network["subnet"]],
                                                      "securityGroups": [network["task_sg"]]}},
        loadBalancers=[{"targetGroupArn": tg, "containerName": "web", "containerPort": 80}],
        healthCheckGracePeriodSeconds=kw.pop("grace", 0),
        deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": 200}, **kw)["service"]


def steady(ecs, name, timeout=120):
    return poll("service %s steady" % name, lambda: describe(ecs, name),
                lambda s: len(s["deployments"]) == 1 and s["deployments"][0].get("rolloutState") == "COMPLETED"
                and s["runningCount"] == s["desiredCount"], timeout)


@pytest.fixture
def listener(clients, alb):
    """An HTTP listener on 8080 answering 404 by default; deleted after."""
    _, elbv2, _ = clients
    arn = elbv2.create_listener(LoadBalancerArn=alb["arn"], Protocol="HTTP", Port=8080, DefaultActions=[
        {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404", "ContentType": "text/plain",
                                                          "MessageBody": "no route"}}])["Listeners"][0]["ListenerArn"]
    yield arn
    elbv2.delete_listener(ListenerArn=arn)


def forward_all(elbv2, listener, tg):
    elbv2.modify_listener(ListenerArn=listener, DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])


def test_a_service_of_three_behind_an_alb_answers_from_all_three_and_deploys_without_a_failed_request(
        clients, network, alb, listener):
    ecs, elbv2, _ = clients
    assert alb["address"], "the load balancer's address in its subnet"
    tg = target_group(elbv2, network, "web-tg")
    forward_all(elbv2, listener, tg)
    td1 = register(ecs, "lbweb", 1)
    try:
        service(ecs, network, "lbweb", td1, tg, 3)
        steady(ecs, "lbweb")
        poll("three healthy targets", lambda: healthy_targets(elbv2, tg), lambda h: len(h) == 3, 60)
        s = describe(ecs, "lbweb")
        assert any("registered" in m and "targets in (target-group %s)" % tg in m for m in messages(s)), messages(s)

        # Spread over all three tasks (round robin), each answering its hostname.
        seen = Counter(get(alb["address"], 8080)[1].strip() for _ in range(30))
        assert len(seen) == 3 and all(n >= 5 for n in seen.values()), seen

        # A new revision under a bounded load: 50 requests/s for up to 40 s,
        # half on one keep-alive connection, half on new connections each.
        failures, done, stop = [], Counter(), threading.Event()

        def keepalive():
            c = http.client.HTTPConnection(alb["address"], 8080, timeout=10)
            while not stop.is_set():
                try:
                    c.request("GET", "/revision")
                    r = c.getresponse()
                    body = r.read().decode()
                    if r.status != 200:
                        failures.append(("keep-alive", r.status, body))
                    done[body.strip()] += 1
                except Exception as e:  # noqa: BLE001 - every failure is counted
                    failures.append(("keep-alive", repr(e)))
                    c.close()
                    c = http.client.HTTPConnection(alb["address"], 8080, timeout=10)
                time.sleep(0.04)
            c.close()

        def fresh():
            while not stop.is_set():
                try:
                    status, body = get(alb["address"], 8080, "/revision", timeout=10)
                    if status != 200:
                        failures.append(("new", status, body))
                    done[body.strip()] += 1
                except Exception as e:  # noqa: BLE001
                    failures.append(("new", repr(e)))
                time.sleep(0.04)

        threads = [threading.Thread(target=keepalive), threading.Thread(target=fresh)]
        for t in threads:
            t.start()
        try:
            td2 = register(ecs, "lbweb", 2)
            ecs.update_service(cluster=CLUSTER, service="lbweb", taskDefinition=td2)
            poll("deployment of revision 2 completed",
                 lambda: describe(ecs, "lbweb"),
                 lambda s: s["deployments"][0]["taskDefinition"] == td2 and len(s["deployments"]) == 1
                 and s["deployments"][0].get("rolloutState") == "COMPLETED", 40)
            time.sleep(2)
        finally:
            stop.set()
            for t in threads:
                t.join(20)
        assert failures == [], pformat(failures[:20])
        assert done["revision 2"] > 0 and sum(done.values()) > 200, done
        s = describe(ecs, "lbweb")
        said = messages(s)
        assert any("has begun draining connections on" in m for m in said), said
        assert any("deregistered" in m and "(target-group %s)" % tg in m for m in said), said
        assert get(alb["address"], 8080, "/revision")[1].strip() == "revision 2"

        # No target at all: ALB's 503.
        ecs.update_service(cluster=CLUSTER, service="lbweb", desiredCount=0)
        poll("no targets left", lambda: elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"],
             lambda d: d == [], 60)
        status, _ = get(alb["address"], 8080)
        assert status == 503
    finally:
        delete_and_drain(ecs, "lbweb")
        forward_none(elbv2, listener)
        elbv2.delete_target_group(TargetGroupArn=tg)


def forward_none(elbv2, listener):
    elbv2.modify_listener(ListenerArn=listener, DefaultActions=[
        {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}])


def test_a_target_failing_its_health_check_gets_no_traffic_and_ecs_replaces_its_task(
        clients, network, alb, listener):
    """A healthy service and a sick one (its health page answers 500) in
    one target group: the sick target turns unhealthy with ALB's reason and
    gets no request; once its grace period is over ECS replaces the task.
    (The grace period keeps it visibly unhealthy for a while: without one
    ECS takes it out the moment it turns.)"""
    ecs, elbv2, _ = clients
    tg = target_group(elbv2, network, "sick-tg")
    forward_all(elbv2, listener, tg)
    try:
        service(ecs, network, "good", register(ecs, "good", 5), tg, 1)
        poll("the good target healthy", lambda: healthy_targets(elbv2, tg), lambda h: len(h) == 1, 60)
        service(ecs, network, "sick", register(ecs, "sick", 6, health=500), tg, 1, grace=25)
        found = poll("the sick target unhealthy with ALB's reason",
                     lambda: elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"],
                     lambda d: any(x["TargetHealth"]["State"] == "unhealthy" for x in d), 60)
        sick = [x for x in found if x["TargetHealth"]["State"] == "unhealthy"][0]["TargetHealth"]
        assert sick["Reason"] == "Target.ResponseCodeMismatch", sick
        assert "500" in sick["Description"], sick
        answers = Counter(get(alb["address"], 8080, "/revision")[1].strip() for _ in range(20))
        assert answers == Counter({"revision 5": 20}), answers
        poll("ECS replaces the sick task", lambda: stopped_reasons(ecs, "sick"),
             lambda reasons: "Task failed ELB health checks in (target-group %s)" % tg in reasons, 90)
        assert describe(ecs, "sick")["status"] == "ACTIVE"
    finally:
        for name in ("good", "sick"):
            delete_and_drain(ecs, name)
        forward_none(elbv2, listener)
        elbv2.delete_target_group(TargetGroupArn=tg)


def stopped_reasons(ecs, name):
    arns = ecs.list_tasks(cluster=CLUSTER, desiredStatus="STOPPED")["taskArns"]
    if not arns:
        return []
    tasks = ecs.describe_tasks(cluster=CLUSTER, tasks=arns[:100])["tasks"]
    return [t.get("stoppedReason", "") for t in tasks if t.get("group") == "service:" + name]


def test_path_and_host_rules_route_to_two_services(clients, network, alb, listener):
    ecs, elbv2, _ = clients
    api_tg, www_tg = target_group(elbv2, network, "api-tg"), target_group(elbv2, network, "www-tg")
    try:
        elbv2.create_rule(ListenerArn=listener, Priority=10,
                          Conditions=[{"Field": "path-pattern", "Values": ["/revision*"]}],
                          Actions=[{"Type": "forward", "TargetGroupArn": api_tg}])
        elbv2.create_rule(ListenerArn=listener, Priority=20,
                          Conditions=[{"Field": "host-header", "Values": ["www.example.test"]}],
                          Actions=[{"Type": "forward", "TargetGroupArn": www_tg}])
        service(ecs, network, "api", register(ecs, "api", 7), api_tg, 1)
        service(ecs, network, "www", register(ecs, "www", 8), www_tg, 1)
        for tg in (api_tg, www_tg):
            poll("a healthy target", lambda tg=tg: healthy_targets(elbv2, tg), lambda h: len(h) == 1, 60)
        assert get(alb["address"], 8080, "/revision") == (200, "revision 7\n")
        assert get(alb["address"], 8080, "/revision", host="www.example.test") == (200, "revision 7\n"), \
            "the path rule has the higher priority"
        status, body = get(alb["address"], 8080, "/", host="www.example.test")
        assert status == 200 and body.strip(), body
        assert get(alb["address"], 8080, "/", host="other.test") == (404, "no route")
    finally:
        for name in ("api", "www"):
            delete_and_drain(ecs, name)
        for r in elbv2.describe_rules(ListenerArn=listener)["Rules"]:
            if not r["IsDefault"]:
                elbv2.delete_rule(RuleArn=r["RuleArn"])
        for tg in (api_tg, www_tg):
            elbv2.delete_target_group(TargetGroupArn=tg)


def test_an_https_listener_serves_an_acm_certificate_that_curl_verifies_by_sni(lb_berth, clients, alb, tmp_path):
    _, elbv2, _ = clients
    acm = lb_berth.boto3_session().client("acm")
    key, crt = tmp_path / "key.pem", tmp_path / "crt.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(crt), "-days", "2", "-subj", "/CN=secure.example.test",
                    "-addext", "subjectAltName=DNS:secure.example.test"], check=True, capture_output=True)
    cert = acm.import_certificate(Certificate=crt.read_bytes(), PrivateKey=key.read_bytes())["CertificateArn"]
    listener = elbv2.create_listener(
        LoadBalancerArn=alb["arn"], Protocol="HTTPS", Port=8088, Certificates=[{"CertificateArn": cert}],
        DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {
            "StatusCode": "200", "ContentType": "text/plain", "MessageBody": "over tls"}}])["Listeners"][0]["ListenerArn"]
    try:
        def curl():
            return subprocess.run(
                ["curl", "-sS", "--max-time", "5", "--cacert", str(crt),
                 "--resolve", "secure.example.test:8088:%s" % alb["address"], "https://secure.example.test:8088/"],
                capture_output=True, text=True)
        out = poll("the HTTPS listener answers", curl, lambda p: p.returncode == 0, 30)
        assert out.stdout == "over tls", out
        # The name is checked: another name is refused by curl's verification.
        wrong = subprocess.run(["curl", "-sS", "--max-time", "5", "--cacert", str(crt),
                                "--resolve", "other.example.test:8088:%s" % alb["address"],
                                "https://other.example.test:8088/"], capture_output=True, text=True)
        assert wrong.returncode != 0, wrong
    finally:
        elbv2.delete_listener(ListenerArn=listener)
        acm.delete_certificate(CertificateArn=cert)


def test_a_network_load_balancer_forwards_tcp_to_a_service(clients, network):
    ecs, elbv2, _ = clients
    nlb = elbv2.create_load_balancer(Name="tcpfront", Subnets=[network["subnet"]], SecurityGroups=[network["lb_sg"]],
                                     Scheme="internal", Type="network")["LoadBalancers"][0]
    tg = elbv2.create_target_group(Name="tcp-tg", Protocol="TCP", Port=80, VpcId=network["vpc"], TargetType="ip",
                                   HealthCheckProtocol="TCP", HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                                   HealthyThresholdCount=2, UnhealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
    elbv2.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": "3"}])
    listener = elbv2.create_listener(LoadBalancerArn=nlb["LoadBalancerArn"], Protocol="TCP", Port=8089,
                                     DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]["ListenerArn"]
    try:
        address = nlb["AvailabilityZones"][0]["LoadBalancerAddresses"][0]["PrivateIPv4Address"]
        service(ecs, network, "tcpweb", register(ecs, "tcpweb", 3), tg, 1)
        poll("a healthy TCP target", lambda: healthy_targets(elbv2, tg), lambda h: len(h) == 1, 60)

        def raw():
            with socket.create_connection((address, 8089), timeout=5) as s:
                s.sendall(b"GET /revision HTTP/1.0\r\nHost: x\r\n\r\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
                return data.decode(errors="replace")
        reply = raw()
        assert reply.startswith("HTTP/1.") and reply.endswith("revision 3\n"), reply
        assert "X-Forwarded-For" not in reply, "bytes passed through, not proxied as HTTP"
    finally:
        delete_and_drain(ecs, "tcpweb")
        elbv2.delete_listener(ListenerArn=listener)
        elbv2.delete_target_group(TargetGroupArn=tg)
        elbv2.delete_load_balancer(LoadBalancerArn=nlb["LoadBalancerArn"])


def test_a_task_reaches_another_service_by_its_cloud_map_name_which_follows_its_tasks(lb_berth, clients, network):
    ecs, _, ec2 = clients
    sd = lb_berth.boto3_session().client("servicediscovery")
    apps = ec2.create_security_group(GroupName="apps", Description="apps", VpcId=network["vpc"])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=apps, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": apps}]}])
    sd.create_private_dns_namespace(Name="corp.test", Vpc=network["vpc"])
    ns = [n for n in sd.list_namespaces()["Namespaces"] if n["Name"] == "corp.test"][0]["Id"]
    registry = sd.create_service(Name="b", NamespaceId=ns, DnsConfig={
        "RoutingPolicy": "MULTIVALUE", "DnsRecords": [{"Type": "A", "TTL": 1}]})["Service"]
    net = {"awsvpcConfiguration": {"subnets": [network["subnet"]], "securityGroups": [apps]}}
    ecs.create_service(cluster=CLUSTER, serviceName="b", taskDefinition=register(ecs, "b", 1), desiredCount=1,
                       launchType="FARGATE", networkConfiguration=net,
                       serviceRegistries=[{"registryArn": registry["Arn"]}])
    client_td = ecs.register_task_definition(
        family="a", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[{"name": "a", "image": "compat/busybox:1", "command": [
            # The name through Berth's DNS with nslookup, then HTTP with nc to
            # the address it gave (busybox-static's wget crashes in a task).
            # Which step failed is the exit code: 11 no name, 12 no answer,
            # 13 another task answered.
            "sh", "-c", 'ip=$(nslookup b.corp.test | awk \'/^Address/ {a=$NF} END {print a}\') && [ -n "$ip" ] || exit 11; '
                        'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 5 "$ip" 80 > /tmp/page || exit 12; '
                        'grep -q "$WANT" /tmp/page || exit 13']}])
    client_td = client_td["taskDefinition"]["taskDefinitionArn"]

    def b_host():
        """The private DNS name (what its index.html says) of b's one RUNNING task, and the task."""
        tasks = [t for t in ecs.describe_tasks(cluster=CLUSTER, tasks=ecs.list_tasks(
            cluster=CLUSTER, serviceName="b", desiredStatus="RUNNING")["taskArns"] or ["none"])["tasks"]
            if t["lastStatus"] == "RUNNING"]
        if len(tasks) != 1:
            return None
        ip = [d["value"] for d in tasks[0]["attachments"][0]["details"] if d["name"] == "privateIPv4Address"][0]
        return "ip-" + ip.replace(".", "-"), tasks[0]["taskArn"]

    def a_reaches(want):
        arn = ecs.run_task(cluster=CLUSTER, taskDefinition=client_td, launchType="FARGATE", networkConfiguration=net,
                           overrides={"containerOverrides": [{"name": "a", "environment": [
                               {"name": "WANT", "value": want}]}]})["tasks"][0]["taskArn"]
        t = poll("the client task stopped", lambda: ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0],
                 lambda t: t["lastStatus"] == "STOPPED", 60)
        return t["containers"][0].get("exitCode")

    try:
        first, first_arn = poll("b running and registered", b_host, lambda h: h is not None, 60)
        poll("b's instance in Cloud Map", lambda: sd.list_instances(ServiceId=registry["Id"])["Instances"],
             lambda i: len(i) == 1, 30)
        assert poll("a reaches b by name", lambda: a_reaches(first), lambda code: code == 0, 60) == 0
        # B's task replaced: the name follows it.
        ecs.stop_task(cluster=CLUSTER, task=first_arn, reason="replace b")
        second, _ = poll("b replaced", b_host, lambda h: h is not None and h[0] != first, 90)
        assert poll("a reaches the new b by name", lambda: a_reaches(second), lambda code: code == 0, 60) == 0
        instances = sd.list_instances(ServiceId=registry["Id"])["Instances"]
        assert [i["Attributes"]["AWS_INSTANCE_IPV4"] for i in instances] == [second[3:].replace("-", ".")], instances
    finally:
        delete_and_drain(ecs, "b")


def test_create_service_checks_its_target_groups_as_ecs_does(clients, network, alb, listener):
    ecs, elbv2, _ = clients
    tg = target_group(elbv2, network, "lonely-tg")
    td = register(ecs, "checked", 1)
    try:
        def refused(**lb):
            with pytest.raises(ecs.exceptions.InvalidParameterException) as e:
                service(ecs, network, "checked", td, tg, 1, **lb) if not lb else ecs.create_service(
                    cluster=CLUSTER, serviceName="checked", taskDefinition=td, desiredCount=1, launchType="FARGATE",
                    networkConfiguration={"awsvpcConfiguration": {"subnets": [network["subnet"]]}},
                    loadBalancers=[lb])
            return e.value.response["Error"]["Message"]
        assert refused() == "The target group with targetGroupArn %s does not have an associated load balancer." % tg
        forward_all(elbv2, listener, tg)
        assert refused(targetGroupArn=tg, containerName="web", containerPort=8080) == \
            "The container web did not have a container port 8080 defined."
        missing = tg.replace("lonely-tg", "gone-tg")
        assert "does not exist" in refused(targetGroupArn=missing, containerName="web", containerPort=80)
        assert ecs.list_services(cluster=CLUSTER)["serviceArns"] == [] or all(
            not a.endswith("/checked") for a in ecs.list_services(cluster=CLUSTER)["serviceArns"]), "nothing was made"
    finally:
        forward_none(elbv2, listener)
        elbv2.delete_target_group(TargetGroupArn=tg)


def test_an_internet_facing_load_balancer_is_published_on_the_public_address(tmp_path):
    """With --public-address, an internet-facing load balancer's listeners
    are also reached there (an internal one's are not). The "public"
    address is one the test puts on a dummy bridge of its own."""
    link, addr = "btpub%d" % (os.getpid() % 10000), "10.254.%d.1" % (os.getpid() % 250)
    subprocess.run(["ip", "link", "del", link], capture_output=True)
    subprocess.run(["ip", "link", "add", link, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", addr + "/32", "dev", link], check=True)
        subprocess.run(["ip", "link", "set", link, "up"], check=True)
        b = Berth(str(tmp_path / "data"), extra_args=["--public-address", addr]).start()
        try:
            s = b.boto3_session()
            elbv2, ec2 = s.client("elbv2"), s.client("ec2")
            subnet = ec2.describe_subnets()["Subnets"][0]
            sg = ec2.create_security_group(GroupName="pub", Description="pub", VpcId=subnet["VpcId"])["GroupId"]
            ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8081, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
            for name, scheme, port in (("outside", "internet-facing", 8080), ("inside", "internal", 8081)):
                lb = elbv2.create_load_balancer(Name=name, Subnets=[subnet["SubnetId"]], SecurityGroups=[sg],
                                                Scheme=scheme, Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
                elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=port, DefaultActions=[
                    {"Type": "fixed-response", "FixedResponseConfig": {
                        "StatusCode": "200", "ContentType": "text/plain", "MessageBody": name}}])

            def fetch(port):
                try:
                    return get(addr, port, timeout=2)
                except OSError as e:
                    return repr(e)
            assert poll("the internet-facing listener on the public address", lambda: fetch(8080),
                        lambda r: r == (200, "outside"), 30) == (200, "outside")
            assert not isinstance(fetch(8081), tuple), "an internal load balancer is not published"
        finally:
            b.stop()
            release_test_network(b.data_dir)
    finally:
        subprocess.run(["ip", "link", "del", link], capture_output=True)
