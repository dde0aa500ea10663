"""IAM policies enforced on every call, with boto3 and the real aws CLI:
a user limited to ecs:Describe*/ecs:List* lists but gets ECS's
AccessDeniedException with AWS's message for RunTask, and nothing is
created; an explicit Deny beats an Allow (AdministratorAccess); a
Condition on ecs:cluster limits RunTask to one cluster; iam:PassRole is
needed to hand a role to ECS (RunTask, RegisterTaskDefinition); the
other protocols refuse in theirs (EC2 UnauthorizedOperation, Query
AccessDenied); the root key keeps full access. Running tasks needs root,
as every task test does."""
import json
import os
import subprocess

import botocore.exceptions
import pytest

from conftest import NETWORK, definition
from test_iam import account, client_as, code, iam, message
from test_tasks import pytestmark, tasks_berth  # noqa: F401 (pytestmark and a fixture)

ECS_READ = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["ecs:Describe*", "ecs:List*"], "Resource": "*"}]}


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def user(berth, name, inline=None, managed=()):
    """A user with these policies and an access key: its credentials."""
    c = iam(berth)
    c.create_user(UserName=name)
    if inline is not None:
        c.put_user_policy(UserName=name, PolicyName="inline", PolicyDocument=json.dumps(inline))
    for arn in managed:
        c.attach_user_policy(UserName=name, PolicyArn=arn)
    return c.create_access_key(UserName=name)["AccessKey"]


def root_ecs(berth):
    """The root's ECS client, with the default cluster made (the fixture's
    teardown lists its tasks)."""
    ecs = berth.ecs()
    ecs.create_cluster(clusterName="default")
    return ecs


def all_tasks(ecs, cluster="default"):
    return [a for status in ("RUNNING", "STOPPED") for a in ecs.list_tasks(cluster=cluster, desiredStatus=status)["taskArns"]]


def wait_stopped(ecs, arn, cluster="default"):
    ecs.get_waiter("tasks_stopped").wait(cluster=cluster, tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def test_read_only_user_lists_but_cannot_run(tasks_berth):
    b = tasks_berth
    acct = account(b)
    root = root_ecs(b)
    root.register_task_definition(**definition("enforced", "true"))
    key = user(b, "reader", inline=ECS_READ)
    ecs = client_as(b, "ecs", key)
    assert ecs.list_clusters()["clusterArns"] == ["arn:aws:ecs:us-east-1:%s:cluster/default" % acct]
    assert ecs.describe_task_definition(taskDefinition="enforced")["taskDefinition"]["revision"] == 1
    assert ecs.list_tasks()["taskArns"] == []

    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.run_task(taskDefinition="enforced", networkConfiguration=NETWORK)
    assert code(e) == "AccessDeniedException"
    assert message(e) == (
        "User: arn:aws:iam::%s:user/reader is not authorized to perform: ecs:RunTask on resource: "
        "arn:aws:ecs:us-east-1:%s:task-definition/enforced:1 because no identity-based policy allows the "
        "ecs:RunTask action" % (acct, acct))
    assert all_tasks(root) == [], "a refused RunTask starts nothing"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.create_cluster(clusterName="mine")
    assert code(e) == "AccessDeniedException" and "ecs:CreateCluster on resource: *" in message(e)
    assert len(root.list_clusters()["clusterArns"]) == 1, "a refused CreateCluster creates nothing"

    # The aws CLI shows the same error.
    env = {k: v for k, v in b.client_env().items() if k != "AWS_SHARED_CREDENTIALS_FILE"}
    env.update(AWS_ACCESS_KEY_ID=key["AccessKeyId"], AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"],
               AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    p = subprocess.run(["aws", "ecs", "run-task", "--task-definition", "enforced", "--network-configuration",
                        "awsvpcConfiguration={subnets=[subnet-default]}"], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode != 0
    assert "(AccessDeniedException) when calling the RunTask operation: User: arn:aws:iam::%s:user/reader" % acct in p.stderr
    p = subprocess.run(["aws", "ecs", "list-clusters"], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert all_tasks(root) == []

    # Other protocols refuse in their own words.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client_as(b, "ec2", key).describe_vpcs()
    assert code(e) == "UnauthorizedOperation"
    assert message(e).startswith("You are not authorized to perform this operation. User: arn:aws:iam::%s:user/reader "
                                 "is not authorized to perform: ec2:DescribeVpcs on resource: *" % acct)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client_as(b, "elbv2", key).describe_load_balancers()
    assert code(e) == "AccessDenied" and e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client_as(b, "logs", key).describe_log_groups()
    assert code(e) == "AccessDeniedException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client_as(b, "iam", key).list_users()
    assert code(e) == "AccessDenied"
    # GetCallerIdentity needs no permission.
    assert client_as(b, "sts", key).get_caller_identity()["Arn"] == "arn:aws:iam::%s:user/reader" % acct


def test_an_explicit_deny_beats_an_allow(tasks_berth):
    b = tasks_berth
    acct = account(b)
    root_ecs(b).register_task_definition(**definition("denied", "true"))
    deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "ecs:RunTask", "Resource": "*"}]}
    key = user(b, "admin-but", inline=deny, managed=["arn:aws:iam::aws:policy/AdministratorAccess"])
    ecs = client_as(b, "ecs", key)
    created = ecs.create_cluster(clusterName="admins")["cluster"]["clusterArn"]
    assert created == "arn:aws:ecs:us-east-1:%s:cluster/admins" % acct
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.run_task(cluster="admins", taskDefinition="denied", networkConfiguration=NETWORK)
    assert code(e) == "AccessDeniedException"
    assert message(e) == (
        "User: arn:aws:iam::%s:user/admin-but is not authorized to perform: ecs:RunTask on resource: "
        "arn:aws:ecs:us-east-1:%s:task-definition/denied:1 with an explicit deny in an identity-based policy"
        % (acct, acct))
    assert all_tasks(b.ecs(), "admins") == []
    # Without the Deny the same call runs.
    iam(b).delete_user_policy(UserName="admin-but", PolicyName="inline")
    arn = ecs.run_task(cluster="admins", taskDefinition="denied", networkConfiguration=NETWORK)["tasks"][0]["taskArn"]
    wait_stopped(ecs, arn, "admins")


def test_a_condition_on_ecs_cluster_limits_run_task_to_one_cluster(tasks_berth):
    b = tasks_berth
    acct = account(b)
    root = root_ecs(b)
    for name in ("team-a", "team-b"):
        root.create_cluster(clusterName=name)
    root.register_task_definition(**definition("scoped", "true"))
    key = user(b, "team-a-deployer", inline={"Version": "2012-10-17", "Statement": [
        ECS_READ["Statement"][0],
        {"Effect": "Allow", "Action": "ecs:RunTask", "Resource": "arn:aws:ecs:*:*:task-definition/scoped:*",
         "Condition": {"ArnEquals": {"ecs:cluster": "arn:aws:ecs:us-east-1:%s:cluster/team-a" % acct}}}]})
    ecs = client_as(b, "ecs", key)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.run_task(cluster="team-b", taskDefinition="scoped", networkConfiguration=NETWORK)
    assert code(e) == "AccessDeniedException" and "ecs:RunTask" in message(e)
    assert all_tasks(root, "team-b") == []
    arn = ecs.run_task(cluster="team-a", taskDefinition="scoped", networkConfiguration=NETWORK)["tasks"][0]["taskArn"]
    assert arn.startswith("arn:aws:ecs:us-east-1:%s:task/team-a/" % acct)
    wait_stopped(ecs, arn, "team-a")
    # The same cluster by ARN is the same cluster.
    arn = ecs.run_task(cluster="arn:aws:ecs:us-east-1:%s:cluster/team-a" % acct, taskDefinition="scoped",
                       networkConfiguration=NETWORK)["tasks"][0]["taskArn"]
    wait_stopped(ecs, arn, "team-a")
    # Stopping needs its own permission.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.stop_task(cluster="team-a", task=arn)
    assert code(e) == "AccessDeniedException"
    assert "ecs:StopTask on resource: %s" % arn in message(e)


def test_pass_role_is_needed_to_hand_a_role_to_ecs(tasks_berth):
    b = tasks_berth
    acct = account(b)
    c = iam(b)
    trust = policy({"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"})
    role = c.create_role(RoleName="app-task", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    root = root_ecs(b)
    root.register_task_definition(taskRoleArn=role, **definition("with-role", "true"))
    run_and_register = {"Effect": "Allow", "Action": ["ecs:RunTask", "ecs:RegisterTaskDefinition", "ecs:Describe*",
                                                      "ecs:List*"], "Resource": "*"}
    key = user(b, "runner", inline={"Version": "2012-10-17", "Statement": [run_and_register]})
    ecs = client_as(b, "ecs", key)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.run_task(taskDefinition="with-role", networkConfiguration=NETWORK)
    assert code(e) == "AccessDeniedException"
    assert message(e) == (
        "User: arn:aws:iam::%s:user/runner is not authorized to perform: iam:PassRole on resource: %s because no "
        "identity-based policy allows the iam:PassRole action" % (acct, role))
    assert all_tasks(root) == []
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.register_task_definition(executionRoleArn=role, **definition("mine", "true"))
    assert code(e) == "AccessDeniedException" and "iam:PassRole" in message(e)
    assert root.list_task_definition_families(familyPrefix="mine")["families"] == []
    # A definition without roles needs no PassRole.
    ecs.register_task_definition(**definition("mine", "true"))

    # With iam:PassRole on that role (for ECS tasks), the task runs.
    c.put_user_policy(UserName="runner", PolicyName="inline", PolicyDocument=policy(run_and_register, {
        "Effect": "Allow", "Action": "iam:PassRole", "Resource": role,
        "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}}))
    arn = ecs.run_task(taskDefinition="with-role", networkConfiguration=NETWORK)["tasks"][0]["taskArn"]
    wait_stopped(ecs, arn)
    # An override names another role: PassRole on that one is needed too.
    other = c.create_role(RoleName="other-task", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.run_task(taskDefinition="with-role", networkConfiguration=NETWORK, overrides={"taskRoleArn": other})
    assert code(e) == "AccessDeniedException" and "iam:PassRole on resource: %s" % other in message(e)


def test_the_root_key_keeps_full_access(tasks_berth):
    b = tasks_berth
    c = iam(b)
    # Policies on users change nothing for root.
    user(b, "nobody", inline={"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": "*", "Resource": "*"}]})
    root = root_ecs(b)
    root.create_cluster(clusterName="root-only")
    root.register_task_definition(**definition("rooted", "true"))
    arn = root.run_task(cluster="root-only", taskDefinition="rooted", networkConfiguration=NETWORK)["tasks"][0]["taskArn"]
    wait_stopped(root, arn, "root-only")
    assert b.boto3_session().client("ec2").describe_vpcs()["Vpcs"]
    assert [u["UserName"] for u in c.list_users()["Users"]] == ["nobody"]
    _, out, _ = b.aws("ecs", "list-clusters")
    assert len(out["clusterArns"]) == 2
