"""Cloud Map (servicediscovery, AWS JSON 1.1) with the real aws CLI and
boto3, every boto3 response checked against botocore's model: private DNS
and HTTP namespaces, services with A and SRV records, instances and their
health, DiscoverInstances, operations, errors, tags and paging; and a
task that resolves a Cloud Map name through Berth's DNS server."""
import json

import botocore.exceptions
import pytest

import shapes
from test_ec2 import code
from test_tasks import NETWORK, definition, tasks_berth  # noqa: F401  (a fixture)


def sd(berth):
    client = shapes.install(berth.boto3_session().client("servicediscovery"))
    assert client.meta.service_model.resolved_protocol == "json"
    return client


def namespace_id(client, operation_id):
    op = client.get_operation(OperationId=operation_id)["Operation"]
    assert op["Status"] == "SUCCESS", op
    return op["Targets"]["NAMESPACE"]


def test_cli_namespaces_services_and_instances(berth):
    _, out, _ = berth.aws("servicediscovery", "create-private-dns-namespace", "--name", "corp.local",
                          "--vpc", "vpc-default")
    _, op, _ = berth.aws("servicediscovery", "get-operation", "--operation-id", out["OperationId"])
    assert op["Operation"]["Type"] == "CREATE_NAMESPACE" and op["Operation"]["Status"] == "SUCCESS"
    ns = op["Operation"]["Targets"]["NAMESPACE"]
    _, out, _ = berth.aws("servicediscovery", "create-service", "--name", "api", "--namespace-id", ns,
                          "--dns-config", "RoutingPolicy=MULTIVALUE,DnsRecords=[{Type=A,TTL=10},{Type=SRV,TTL=10}]",
                          "--health-check-custom-config", "FailureThreshold=1")
    srv = out["Service"]["Id"]
    assert out["Service"]["Arn"].endswith(":service/" + srv)
    berth.aws("servicediscovery", "register-instance", "--service-id", srv, "--instance-id", "t1",
              "--attributes", "AWS_INSTANCE_IPV4=10.0.0.1,AWS_INSTANCE_PORT=80")
    _, out, _ = berth.aws("servicediscovery", "list-instances", "--service-id", srv)
    assert [i["Id"] for i in out["Instances"]] == ["t1"]
    _, out, _ = berth.aws("servicediscovery", "discover-instances", "--namespace-name", "corp.local",
                          "--service-name", "api")
    assert out["Instances"][0]["Attributes"]["AWS_INSTANCE_IPV4"] == "10.0.0.1"
    _, out, _ = berth.aws("servicediscovery", "list-namespaces")
    assert [n["Name"] for n in out["Namespaces"]] == ["corp.local"]
    rc, _, err = berth.aws("servicediscovery", "delete-namespace", "--id", ns, check=False)
    assert rc != 0 and "ResourceInUse" in err
    berth.aws("servicediscovery", "deregister-instance", "--service-id", srv, "--instance-id", "t1")
    berth.aws("servicediscovery", "delete-service", "--id", srv)
    berth.aws("servicediscovery", "delete-namespace", "--id", ns)
    rc, _, err = berth.aws("servicediscovery", "get-namespace", "--id", ns, check=False)
    assert rc != 0 and "NamespaceNotFound" in err


def test_boto3_discovery_health_and_operations(berth):
    c = sd(berth)
    ns = namespace_id(c, c.create_private_dns_namespace(Name="corp.local", Vpc="vpc-default")["OperationId"])
    got = c.get_namespace(Id=ns)["Namespace"]
    assert got["Type"] == "DNS_PRIVATE" and got["Properties"]["DnsProperties"]["HostedZoneId"].startswith("Z")
    http_ns = namespace_id(c, c.create_http_namespace(Name="web")["OperationId"])
    svc = c.create_service(Name="api", NamespaceId=ns, HealthCheckCustomConfig={"FailureThreshold": 1},
                           DnsConfig={"RoutingPolicy": "MULTIVALUE", "DnsRecords": [{"Type": "A", "TTL": 10}]})["Service"]
    for i, stage in [("t1", "blue"), ("t2", "blue"), ("t3", "green")]:
        op = c.register_instance(ServiceId=svc["Id"], InstanceId=i,
                                 Attributes={"AWS_INSTANCE_IPV4": "10.0.0.%s" % i[1], "stage": stage})
        assert c.get_operation(OperationId=op["OperationId"])["Operation"]["Targets"]["INSTANCE"] == i
    c.update_instance_custom_health_status(ServiceId=svc["Id"], InstanceId="t2", Status="UNHEALTHY")
    assert c.get_instances_health_status(ServiceId=svc["Id"])["Status"] == \
        {"t1": "HEALTHY", "t2": "UNHEALTHY", "t3": "HEALTHY"}

    def discover(**kw):
        return [i["InstanceId"] for i in c.discover_instances(NamespaceName="corp.local", ServiceName="api", **kw)["Instances"]]

    assert discover() == ["t1", "t3"]
    assert discover(HealthStatus="ALL") == ["t1", "t2", "t3"]
    assert discover(HealthStatus="UNHEALTHY") == ["t2"]
    assert discover(HealthStatus="ALL", QueryParameters={"stage": "blue"}) == ["t1", "t2"]
    assert discover(HealthStatus="HEALTHY_OR_ELSE_ALL", QueryParameters={"stage": "blue"},
                    OptionalParameters={"AWS_INSTANCE_IPV4": "10.0.0.2"}) == ["t2"]
    before = c.discover_instances_revision(NamespaceName="corp.local", ServiceName="api")["InstancesRevision"]
    c.deregister_instance(ServiceId=svc["Id"], InstanceId="t3")
    assert c.discover_instances_revision(NamespaceName="corp.local", ServiceName="api")["InstancesRevision"] > before

    ops = c.list_operations(Filters=[{"Name": "TYPE", "Values": ["REGISTER_INSTANCE"]}])["Operations"]
    assert len(ops) == 3 and all(o["Status"] == "SUCCESS" for o in ops)
    ops = c.list_operations(Filters=[{"Name": "NAMESPACE_ID", "Values": [http_ns]}])["Operations"]
    assert len(ops) == 1
    assert [s["Id"] for s in c.list_services(Filters=[{"Name": "NAMESPACE_ID", "Values": [ns]}])["Services"]] == [svc["Id"]]
    assert [n["Id"] for n in c.list_namespaces(Filters=[{"Name": "TYPE", "Values": ["HTTP"]}])["Namespaces"]] == [http_ns]

    # Paging with boto3's paginator.
    pages = list(c.get_paginator("list_instances").paginate(ServiceId=svc["Id"], PaginationConfig={"PageSize": 1}))
    assert [i["Id"] for p in pages for i in p["Instances"]] == ["t1", "t2"]
    assert len(pages) == 2


def test_boto3_errors_duplicates_and_tags(berth):
    c = sd(berth)
    first = c.create_private_dns_namespace(Name="a.local", Vpc="vpc-default", CreatorRequestId="r1")
    again = c.create_private_dns_namespace(Name="a.local", Vpc="vpc-default", CreatorRequestId="r1")
    assert again["OperationId"] == first["OperationId"]
    cases = [
        (lambda: c.create_private_dns_namespace(Name="b.local", Vpc="vpc-default", CreatorRequestId="r1"), "DuplicateRequest"),
        (lambda: c.create_private_dns_namespace(Name="A.local", Vpc="vpc-default"), "NamespaceAlreadyExists"),
        (lambda: c.create_private_dns_namespace(Name="c.local", Vpc="vpc-0abc"), "InvalidInput"),
        (lambda: c.create_public_dns_namespace(Name="example.com"), "InvalidInput"),
        (lambda: c.get_namespace(Id="ns-nope"), "NamespaceNotFound"),
        (lambda: c.get_service(Id="srv-nope"), "ServiceNotFound"),
        (lambda: c.get_operation(OperationId="nope"), "OperationNotFound"),
        (lambda: c.discover_instances(NamespaceName="a.local", ServiceName="nope"), "ServiceNotFound"),
    ]
    for call, want in cases:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert code(e) == want
    ns = namespace_id(c, first["OperationId"])
    svc = c.create_service(Name="api", NamespaceId=ns, DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 5}]},
                           Tags=[{"Key": "team", "Value": "a"}])["Service"]
    with pytest.raises(c.exceptions.ServiceAlreadyExists):
        c.create_service(Name="API", NamespaceId=ns)
    with pytest.raises(c.exceptions.InvalidInput):
        c.register_instance(ServiceId=svc["Id"], InstanceId="t1", Attributes={"color": "red"})
    c.register_instance(ServiceId=svc["Id"], InstanceId="t1", Attributes={"AWS_INSTANCE_IPV4": "10.0.0.1"})
    with pytest.raises(c.exceptions.CustomHealthNotFound):
        c.update_instance_custom_health_status(ServiceId=svc["Id"], InstanceId="t1", Status="UNHEALTHY")
    with pytest.raises(c.exceptions.ResourceInUse):
        c.delete_service(Id=svc["Id"])
    with pytest.raises(c.exceptions.InstanceNotFound):
        c.deregister_instance(ServiceId=svc["Id"], InstanceId="t9")

    assert c.list_tags_for_resource(ResourceARN=svc["Arn"])["Tags"] == [{"Key": "team", "Value": "a"}]
    c.tag_resource(ResourceARN=svc["Arn"], Tags=[{"Key": "env", "Value": "dev"}])
    c.untag_resource(ResourceARN=svc["Arn"], TagKeys=["team"])
    assert c.list_tags_for_resource(ResourceARN=svc["Arn"])["Tags"] == [{"Key": "env", "Value": "dev"}]
    with pytest.raises(c.exceptions.ResourceNotFoundException):
        c.list_tags_for_resource(ResourceARN=svc["Arn"].replace(svc["Id"], "srv-nope"))


def test_a_task_resolves_a_cloud_map_name_through_berth_dns(tasks_berth):
    """A private DNS namespace's service answers `api.corp.local` from
    inside a task (busybox nslookup, the task's resolv.conf naming its
    gateway), and the answer follows the registrations."""
    b = tasks_berth
    c = sd(b)
    ns = namespace_id(c, c.create_private_dns_namespace(Name="corp.local", Vpc="vpc-default")["OperationId"])
    svc = c.create_service(Name="api", NamespaceId=ns,
                           DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 1}, {"Type": "SRV", "TTL": 1}]})["Service"]
    c.register_instance(ServiceId=svc["Id"], InstanceId="t1",
                        Attributes={"AWS_INSTANCE_IPV4": "192.0.2.10", "AWS_INSTANCE_PORT": "8080"})
    script = ("for i in $(seq 100); do busybox nslookup api.corp.local > /tmp/a 2>&1; "
              "grep -qw 192.0.2.10 /tmp/a && break; sleep 0.2; done; grep -qw 192.0.2.10 /tmp/a || exit 4; "
              "busybox nslookup example.invalid > /tmp/b 2>&1 && exit 5; "
              "cat /tmp/a")
    ecs = b.ecs()
    ecs.register_task_definition(**definition("dns-probe", script))
    arn = ecs.run_task(taskDefinition="dns-probe", launchType="FARGATE", networkConfiguration=NETWORK)["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_stopped").wait(tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 90})
    t = ecs.describe_tasks(tasks=[arn])["tasks"][0]
    assert t["containers"][0]["exitCode"] == 0, json.dumps(t, default=str)
