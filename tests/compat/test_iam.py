"""IAM and STS with the real aws CLI and boto3 (AWS Query), responses
checked against botocore's iam and sts models: users and their keys
(a user's own key signs as the user; an Inactive key is refused), roles
and trust policies, inline and managed policies with their versions,
IAM's DeleteConflict cases, and AssumeRole credentials that work until
they expire and not after.

Sessions shorter than STS's 900 s minimum exist only in the Berth of
`short_sessions`, started with BERTH_TEST_MIN_SESSION_SECONDS=1 (a test
knob of `berth up`, never set otherwise): botocore's own parameter
validation, which knows the 900 s minimum, is off for that one client."""
import json
import os
import subprocess
import tempfile
import time

import boto3
import botocore.config
import botocore.exceptions
import pytest

import shapes
from conftest import BERTH_BIN, Berth, release_test_network

ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"


def code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def message(excinfo):
    return excinfo.value.response["Error"]["Message"]


def iam(berth):
    return shapes.install(berth.boto3_session().client("iam"))


def sts(berth):
    return shapes.install(berth.boto3_session().client("sts"))


def account(berth):
    return sts(berth).get_caller_identity()["Account"]


def client_as(berth, service, creds, validate=True):
    """A client of `service` signing with `creds` (AccessKeyId,
    SecretAccessKey[, SessionToken]) against `berth`."""
    config = botocore.config.Config(parameter_validation=validate, retries={"max_attempts": 1})
    session = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds.get("SessionToken"), region_name="us-east-1")
    return shapes.install(session.client(service, endpoint_url=berth.endpoint, config=config))


def trust(principal, actions="sts:AssumeRole"):
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": actions}]})


ALLOW_ASSUME = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]})


def test_user_and_access_key_lifecycle(berth):
    c = iam(berth)
    acct = account(berth)
    u = c.create_user(UserName="ci-bot", Path="/ci/", Tags=[{"Key": "team", "Value": "build"}])["User"]
    assert u["Arn"] == "arn:aws:iam::%s:user/ci/ci-bot" % acct
    assert u["UserId"].startswith("AIDA") and len(u["UserId"]) == 21
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_user(UserName="CI-BOT")
    assert code(e) == "EntityAlreadyExists"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_user(UserName="bad name")
    assert code(e) == "ValidationError"
    assert c.get_user(UserName="ci-bot")["User"]["Tags"] == [{"Key": "team", "Value": "build"}]
    assert [x["UserName"] for x in c.list_users(PathPrefix="/ci/")["Users"]] == ["ci-bot"]

    key = c.create_access_key(UserName="ci-bot")["AccessKey"]
    assert key["AccessKeyId"].startswith("AKIA") and len(key["AccessKeyId"]) == 20
    assert len(key["SecretAccessKey"]) == 40 and key["Status"] == "Active"
    listed = c.list_access_keys(UserName="ci-bot")["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in listed] == [key["AccessKeyId"]]
    assert "SecretAccessKey" not in listed[0], "the secret is shown only at creation"

    # The user's own key signs requests, as the user.
    me = client_as(berth, "sts", key).get_caller_identity()
    assert me == {"UserId": u["UserId"], "Account": acct, "Arn": u["Arn"], "ResponseMetadata": me["ResponseMetadata"]}

    # An inactive key is refused at signing, as AWS refuses it; active again, it signs.
    c.update_access_key(UserName="ci-bot", AccessKeyId=key["AccessKeyId"], Status="Inactive")
    assert c.list_access_keys(UserName="ci-bot")["AccessKeyMetadata"][0]["Status"] == "Inactive"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client_as(berth, "sts", key).get_caller_identity()
    assert code(e) == "InvalidClientTokenId"
    c.update_access_key(UserName="ci-bot", AccessKeyId=key["AccessKeyId"], Status="Active")
    assert client_as(berth, "sts", key).get_caller_identity()["Arn"] == u["Arn"]

    c.create_access_key(UserName="ci-bot")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_access_key(UserName="ci-bot")
    assert code(e) == "LimitExceeded"

    # DeleteUser is refused while keys or policies remain.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.delete_user(UserName="ci-bot")
    assert code(e) == "DeleteConflict" and "access keys" in message(e)
    for k in c.list_access_keys(UserName="ci-bot")["AccessKeyMetadata"]:
        c.delete_access_key(UserName="ci-bot", AccessKeyId=k["AccessKeyId"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client_as(berth, "sts", key).get_caller_identity()
    assert code(e) == "InvalidClientTokenId", "a deleted key signs nothing"
    c.put_user_policy(UserName="ci-bot", PolicyName="assume", PolicyDocument=ALLOW_ASSUME)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.delete_user(UserName="ci-bot")
    assert code(e) == "DeleteConflict" and message(e) == "Cannot delete entity, must delete policies first."
    c.delete_user_policy(UserName="ci-bot", PolicyName="assume")
    c.delete_user(UserName="ci-bot")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.get_user(UserName="ci-bot")
    assert code(e) == "NoSuchEntity" and message(e) == "The user with name ci-bot cannot be found."


def test_roles_inline_and_managed_policies(berth):
    c = iam(berth)
    acct = account(berth)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_role(RoleName="app", AssumeRolePolicyDocument='{"Version": "2012-10-17", "Statement": [')
    assert code(e) == "MalformedPolicyDocument" and message(e)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_role(RoleName="app", AssumeRolePolicyDocument=trust(acct), MaxSessionDuration=50000)
    assert code(e) == "ValidationError"
    role = c.create_role(RoleName="app", Path="/svc/", AssumeRolePolicyDocument=trust(acct),
                         Description="the app", MaxSessionDuration=7200, Tags=[{"Key": "env", "Value": "test"}])["Role"]
    assert role["Arn"] == "arn:aws:iam::%s:role/svc/app" % acct
    assert role["RoleId"].startswith("AROA") and len(role["RoleId"]) == 21
    got = c.get_role(RoleName="app")["Role"]
    assert got["AssumeRolePolicyDocument"] == json.loads(trust(acct)), "botocore decodes the URL-encoded document"
    assert got["MaxSessionDuration"] == 7200 and got["Description"] == "the app"
    c.update_role(RoleName="app", MaxSessionDuration=3600)
    assert c.get_role(RoleName="app")["Role"]["MaxSessionDuration"] == 3600
    c.tag_role(RoleName="app", Tags=[{"Key": "team", "Value": "web"}])
    assert c.list_role_tags(RoleName="app")["Tags"] == [{"Key": "env", "Value": "test"}, {"Key": "team", "Value": "web"}]
    c.untag_role(RoleName="app", TagKeys=["env"])
    assert c.list_role_tags(RoleName="app")["Tags"] == [{"Key": "team", "Value": "web"}]

    # An inline policy: kept as given, answered URL-encoded (botocore decodes it).
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:*", "Resource": "*"}]}
    c.put_role_policy(RoleName="app", PolicyName="logs", PolicyDocument=json.dumps(doc))
    assert c.get_role_policy(RoleName="app", PolicyName="logs")["PolicyDocument"] == doc
    assert c.list_role_policies(RoleName="app")["PolicyNames"] == ["logs"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.put_role_policy(RoleName="app", PolicyName="bad", PolicyDocument=json.dumps({"Statement": [{"Effect": "Maybe"}]}))
    assert code(e) == "MalformedPolicyDocument" and message(e)

    # An AWS managed policy attaches by ARN and is listed with Scope=AWS.
    c.attach_role_policy(RoleName="app", PolicyArn=ADMIN)
    assert c.list_attached_role_policies(RoleName="app")["AttachedPolicies"] == [
        {"PolicyName": "AdministratorAccess", "PolicyArn": ADMIN}]
    aws = c.list_policies(Scope="AWS")["Policies"]
    assert ADMIN in [p["Arn"] for p in aws]
    assert c.list_policies(Scope="Local")["Policies"] == []
    assert [p["Arn"] for p in c.list_policies(OnlyAttached=True)["Policies"]] == [ADMIN]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.attach_role_policy(RoleName="app", PolicyArn="arn:aws:iam::aws:policy/NoSuchPolicy")
    assert code(e) == "NoSuchEntity"

    # DeleteRole is refused while policies are attached, then while inline ones exist.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.delete_role(RoleName="app")
    assert code(e) == "DeleteConflict" and message(e) == "Cannot delete entity, must detach all policies first."
    c.detach_role_policy(RoleName="app", PolicyArn=ADMIN)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.delete_role(RoleName="app")
    assert code(e) == "DeleteConflict" and message(e) == "Cannot delete entity, must delete policies first."
    c.delete_role_policy(RoleName="app", PolicyName="logs")
    c.delete_role(RoleName="app")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.get_role(RoleName="app")
    assert code(e) == "NoSuchEntity" and message(e) == "The role with name app cannot be found."


def test_managed_policy_versions_and_conflicts(berth):
    c = iam(berth)
    acct = account(berth)
    v1 = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecs:List*", "Resource": "*"}]}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_policy(PolicyName="ecs-read", PolicyDocument="not json")
    assert code(e) == "MalformedPolicyDocument" and message(e)
    p = c.create_policy(PolicyName="ecs-read", PolicyDocument=json.dumps(v1), Description="read ECS")["Policy"]
    arn = p["Arn"]
    assert arn == "arn:aws:iam::%s:policy/ecs-read" % acct
    assert p["PolicyId"].startswith("ANPA") and len(p["PolicyId"]) == 21 and p["DefaultVersionId"] == "v1"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_policy(PolicyName="ecs-read", PolicyDocument=json.dumps(v1))
    assert code(e) == "EntityAlreadyExists"
    for i in range(2, 6):
        doc = dict(v1, Statement=[dict(v1["Statement"][0], Action="ecs:Describe*")])
        made = c.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(doc), SetAsDefault=(i == 3))
        assert made["PolicyVersion"]["VersionId"] == "v%d" % i
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(v1))
    assert code(e) == "LimitExceeded"
    versions = c.list_policy_versions(PolicyArn=arn)["Versions"]
    assert [(v["VersionId"], v["IsDefaultVersion"]) for v in versions] == [
        ("v5", False), ("v4", False), ("v3", True), ("v2", False), ("v1", False)]
    assert c.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v3"
    assert c.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]["Document"] == v1
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.delete_policy_version(PolicyArn=arn, VersionId="v3")
    assert code(e) == "DeleteConflict"
    c.set_default_policy_version(PolicyArn=arn, VersionId="v1")

    c.create_user(UserName="reader")
    c.attach_user_policy(UserName="reader", PolicyArn=arn)
    assert c.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 1
    assert c.list_attached_user_policies(UserName="reader")["AttachedPolicies"] == [{"PolicyName": "ecs-read", "PolicyArn": arn}]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.delete_policy(PolicyArn=arn)
    assert code(e) == "DeleteConflict"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.delete_user(UserName="reader")
    assert code(e) == "DeleteConflict" and message(e) == "Cannot delete entity, must detach all policies first."
    c.detach_user_policy(UserName="reader", PolicyArn=arn)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.delete_policy(PolicyArn=arn)
    assert code(e) == "DeleteConflict" and "versions" in message(e)
    for v in ("v2", "v3", "v4", "v5"):
        c.delete_policy_version(PolicyArn=arn, VersionId=v)
    c.delete_policy(PolicyArn=arn)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.get_policy(PolicyArn=arn)
    assert code(e) == "NoSuchEntity"
    c.delete_user(UserName="reader")


def test_paging_with_marker(berth):
    c = iam(berth)
    for i in range(5):
        c.create_user(UserName="u%d" % i)
    first = c.list_users(MaxItems=2)
    assert [u["UserName"] for u in first["Users"]] == ["u0", "u1"] and first["IsTruncated"]
    second = c.list_users(MaxItems=2, Marker=first["Marker"])
    assert [u["UserName"] for u in second["Users"]] == ["u2", "u3"]
    names = [u["UserName"] for page in c.get_paginator("list_users").paginate(PaginationConfig={"PageSize": 2}) for u in page["Users"]]
    assert names == ["u0", "u1", "u2", "u3", "u4"]


def test_assume_role_and_trust_policies(berth):
    c = iam(berth)
    acct = account(berth)
    role = c.create_role(RoleName="deployer", AssumeRolePolicyDocument=trust(acct))["Role"]
    # Session tags need sts:TagSession in the trust policy.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts(berth).assume_role(RoleArn=role["Arn"], RoleSessionName="tagged", Tags=[{"Key": "run", "Value": "1"}])
    assert code(e) == "AccessDenied" and "sts:TagSession" in message(e)
    c.update_assume_role_policy(RoleName="deployer", PolicyDocument=trust(acct, ["sts:AssumeRole", "sts:TagSession"]))
    c.put_role_policy(RoleName="deployer", PolicyName="ecs", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecs:*", "Resource": "*"}]}))

    # The root of the account is allowed by a trust policy naming the account.
    out = sts(berth).assume_role(RoleArn=role["Arn"], RoleSessionName="deploy-1",
                                 Tags=[{"Key": "run", "Value": "42"}])
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and len(creds["AccessKeyId"]) == 20
    assert out["AssumedRoleUser"] == {"AssumedRoleId": role["RoleId"] + ":deploy-1",
                                      "Arn": "arn:aws:sts::%s:assumed-role/deployer/deploy-1" % acct}
    me = client_as(berth, "sts", creds).get_caller_identity()
    assert me["Arn"] == out["AssumedRoleUser"]["Arn"] and me["UserId"] == role["RoleId"] + ":deploy-1"
    # Without its token, or with another, the temporary key signs nothing.
    for token in (None, creds["SessionToken"][:-4] + "AAAA"):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            client_as(berth, "sts", dict(creds, SessionToken=token)).get_caller_identity()
        assert code(e) == "InvalidClientTokenId", token

    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts(berth).assume_role(RoleArn=role["Arn"], RoleSessionName="bad/name")
    assert code(e) == "ValidationError"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts(berth).assume_role(RoleArn=role["Arn"], RoleSessionName="long", DurationSeconds=7200)
    assert code(e) == "ValidationError" and "MaxSessionDuration" in message(e)
    missing = "arn:aws:iam::%s:role/nope" % acct
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts(berth).assume_role(RoleArn=missing, RoleSessionName="s1")
    assert code(e) == "AccessDenied"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sts(berth).assume_role(RoleArn=role["Arn"], RoleSessionName="s2", Policy='{"Statement": 3}')
    assert code(e) == "MalformedPolicyDocument"

    # A user: refused by a trust policy that names someone else, allowed by one that names it.
    c.create_user(UserName="dev")
    c.put_user_policy(UserName="dev", PolicyName="assume", PolicyDocument=ALLOW_ASSUME)
    key = c.create_access_key(UserName="dev")["AccessKey"]
    dev = client_as(berth, "sts", key)
    other = c.create_role(RoleName="other", AssumeRolePolicyDocument=trust("arn:aws:iam::%s:user/someone" % acct))["Role"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        dev.assume_role(RoleArn=other["Arn"], RoleSessionName="s3")
    assert code(e) == "AccessDenied"
    assert message(e) == "User: arn:aws:iam::%s:user/dev is not authorized to perform: sts:AssumeRole on resource: %s" % (
        acct, other["Arn"])
    c.update_assume_role_policy(RoleName="other", PolicyDocument=trust("arn:aws:iam::%s:user/dev" % acct))
    session = dev.assume_role(RoleArn=other["Arn"], RoleSessionName="s4")["Credentials"]
    assert client_as(berth, "sts", session).get_caller_identity()["Arn"] == "arn:aws:sts::%s:assumed-role/other/s4" % acct

    # GetSessionToken: the user's session is the user.
    st = dev.get_session_token()["Credentials"]
    assert client_as(berth, "sts", st).get_caller_identity()["Arn"] == "arn:aws:iam::%s:user/dev" % acct
    with pytest.raises(botocore.exceptions.ClientError) as e:
        client_as(berth, "sts", st).get_session_token()
    assert code(e) == "AccessDenied"


@pytest.fixture
def short_sessions():
    with tempfile.TemporaryDirectory(prefix="berth-compat-") as d:
        b = Berth(os.path.join(d, "data"), extra_env={"BERTH_TEST_MIN_SESSION_SECONDS": "1"}).start()
        try:
            yield b
        finally:
            b.stop()
            release_test_network(b.data_dir)


def test_assumed_role_credentials_work_until_they_expire(short_sessions):
    berth = short_sessions
    acct = account(berth)
    role = iam(berth).create_role(RoleName="brief", AssumeRolePolicyDocument=trust(acct))["Role"]
    ak, sk = berth.credentials()
    root = client_as(berth, "sts", {"AccessKeyId": ak, "SecretAccessKey": sk}, validate=False)
    creds = root.assume_role(RoleArn=role["Arn"], RoleSessionName="short", DurationSeconds=3)["Credentials"]
    session = client_as(berth, "sts", creds)
    assert session.get_caller_identity()["Arn"].endswith(":assumed-role/brief/short")
    time.sleep(max(0, creds["Expiration"].timestamp() - time.time()) + 1)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        session.get_caller_identity()
    assert code(e) == "ExpiredToken"
    assert message(e) == "The security token included in the request is expired"


def test_aws_cli_and_berth_whoami(berth):
    _, out, _ = berth.aws("iam", "create-user", "--user-name", "cli-user")
    assert out["User"]["UserName"] == "cli-user"
    _, out, _ = berth.aws("iam", "list-users")
    assert [u["UserName"] for u in out["Users"]] == ["cli-user"]
    _, key, _ = berth.aws("iam", "create-access-key", "--user-name", "cli-user")
    _, me, _ = berth.aws("sts", "get-caller-identity")
    assert me["Arn"].endswith(":root")

    whoami = [BERTH_BIN, "iam", "whoami", "--data-dir", berth.data_dir, "--output", "json"]
    root = json.loads(subprocess.run(whoami, check=True, capture_output=True, text=True, timeout=60).stdout)
    assert root == {"Arn": me["Arn"], "UserId": me["Account"], "Account": me["Account"]}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BERTH_"))}
    env.update(AWS_ACCESS_KEY_ID=key["AccessKey"]["AccessKeyId"], AWS_SECRET_ACCESS_KEY=key["AccessKey"]["SecretAccessKey"])
    user = json.loads(subprocess.run(whoami, check=True, capture_output=True, text=True, timeout=60, env=env).stdout)
    assert user["Arn"] == "arn:aws:iam::%s:user/cli-user" % me["Account"] and user["UserId"].startswith("AIDA")
    table = subprocess.run(whoami[:-2], check=True, capture_output=True, text=True, timeout=60, env=env).stdout
    assert "cli-user" in table and "ARN" in table


def test_groups_give_their_members_policies(berth):
    c = iam(berth)
    acct = account(berth)
    g = c.create_group(GroupName="devs", Path="/eng/")["Group"]
    assert g["Arn"] == "arn:aws:iam::%s:group/eng/devs" % acct and g["GroupId"].startswith("AGPA")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_group(GroupName="DEVS")
    assert code(e) == "EntityAlreadyExists"
    c.create_user(UserName="ann")
    key = c.create_access_key(UserName="ann")["AccessKey"]
    ecs = client_as(berth, "ecs", key)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ecs.list_clusters()
    assert code(e) == "AccessDeniedException", "no policy yet"

    list_ecs = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecs:List*", "Resource": "*"}]}
    c.put_group_policy(GroupName="devs", PolicyName="list", PolicyDocument=json.dumps(list_ecs))
    assert c.get_group_policy(GroupName="devs", PolicyName="list")["PolicyDocument"] == list_ecs
    c.add_user_to_group(GroupName="devs", UserName="ann")
    assert [x["GroupName"] for x in c.list_groups_for_user(UserName="ann")["Groups"]] == ["devs"]
    assert [u["UserName"] for u in c.get_group(GroupName="devs")["Users"]] == ["ann"]
    assert ecs.list_clusters()["clusterArns"] == [], "the group's policy applies to its member"
    c.attach_group_policy(GroupName="devs", PolicyArn=ADMIN)
    assert c.list_attached_group_policies(GroupName="devs")["AttachedPolicies"] == [
        {"PolicyName": "AdministratorAccess", "PolicyArn": ADMIN}]

    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.delete_group(GroupName="devs")
    assert code(e) == "DeleteConflict" and message(e) == "Cannot delete entity, must remove users from group first."
    for k in c.list_access_keys(UserName="ann")["AccessKeyMetadata"]:
        c.delete_access_key(UserName="ann", AccessKeyId=k["AccessKeyId"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.delete_user(UserName="ann")
    assert code(e) == "DeleteConflict" and "groups" in message(e)
    c.remove_user_from_group(GroupName="devs", UserName="ann")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.delete_group(GroupName="devs")
    assert code(e) == "DeleteConflict" and message(e) == "Cannot delete entity, must detach all policies first."
    c.detach_group_policy(GroupName="devs", PolicyArn=ADMIN)
    c.delete_group_policy(GroupName="devs", PolicyName="list")
    c.delete_group(GroupName="devs")
    assert c.list_groups()["Groups"] == []
    c.delete_user(UserName="ann")


def test_source_ip_is_the_tcp_peer(berth):
    """aws:SourceIp is the connection's peer (the edge keeps it for every
    request): allowed from loopback, denied when only 10.0.0.0/8 may call."""
    c = iam(berth)
    for name, cidr in (("from-loopback", "127.0.0.0/8"), ("from-ten", "10.0.0.0/8")):
        c.create_user(UserName=name)
        c.put_user_policy(UserName=name, PolicyName="ip", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecs:ListClusters", "Resource": "*",
                                                    "Condition": {"IpAddress": {"aws:SourceIp": cidr}}}]}))
    loopback = client_as(berth, "ecs", c.create_access_key(UserName="from-loopback")["AccessKey"])
    assert loopback.list_clusters()["clusterArns"] == []
    ten = client_as(berth, "ecs", c.create_access_key(UserName="from-ten")["AccessKey"])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ten.list_clusters()
    assert code(e) == "AccessDeniedException"
