"""SSM Parameter Store with the real aws CLI and boto3 (AWS JSON 1.1),
responses checked against botocore's ssm model: types, versions and
selectors, labels, paths, filters, tags, SSM's errors, and SecureString
values that appear only WithDecryption and never in the store file."""
import glob
import os

import botocore.exceptions
import pytest

import shapes


def ssm(berth):
    return shapes.install(berth.boto3_session().client("ssm"))


def code(excinfo):
    return excinfo.value.response["Error"]["Code"]


SECRET = "correct-horse-battery-staple-5521"


def test_put_get_versions_and_types(berth):
    c = ssm(berth)
    r = c.put_parameter(Name="/app/db/host", Value="db.local", Type="String")
    assert (r["Version"], r["Tier"]) == (1, "Standard")
    p = c.get_parameter(Name="/app/db/host")["Parameter"]
    assert (p["Name"], p["Type"], p["Value"], p["Version"], p["DataType"]) == ("/app/db/host", "String", "db.local", 1, "text")
    assert p["ARN"] == "arn:aws:ssm:us-east-1:%s:parameter/app/db/host" % p["ARN"].split(":")[4]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.put_parameter(Name="/app/db/host", Value="other", Type="String")
    assert code(e) == "ParameterAlreadyExists"
    assert c.put_parameter(Name="/app/db/host", Value="db2.local", Overwrite=True)["Version"] == 2
    assert c.get_parameter(Name="/app/db/host")["Parameter"]["Value"] == "db2.local"
    got = c.get_parameter(Name="/app/db/host:1")["Parameter"]
    assert (got["Value"], got["Version"], got["Selector"]) == ("db.local", 1, ":1")
    # By ARN, with a selector.
    assert c.get_parameter(Name=p["ARN"] + ":1")["Parameter"]["Value"] == "db.local"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.get_parameter(Name="/app/db/host:9")
    assert code(e) == "ParameterVersionNotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.get_parameter(Name="/app/nope")
    assert code(e) == "ParameterNotFound"
    c.put_parameter(Name="hosts", Value="a,b,c", Type="StringList", Description="the hosts")
    assert c.get_parameter(Name="hosts")["Parameter"]["Type"] == "StringList"
    # Tags and Overwrite together are refused, as SSM does.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.put_parameter(Name="hosts", Value="x", Overwrite=True, Tags=[{"Key": "a", "Value": "b"}])
    assert code(e) == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.put_parameter(Name="new-one", Value="x")
    assert code(e) == "ValidationException", "a type is required for a new parameter"
    for bad in ["/aws/x", "app/db", "has space"]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            c.put_parameter(Name=bad, Value="x", Type="String")
        assert code(e) == "ValidationException", bad
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.put_parameter(Name="/a" * 16, Value="x", Type="String")
    assert code(e) == "HierarchyLevelLimitExceededException"
    # Tiers: 4 KB for Standard, 8 KB for Advanced.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.put_parameter(Name="big", Value="x" * 5000, Type="String")
    assert code(e) == "ValidationException"
    assert c.put_parameter(Name="big", Value="x" * 5000, Type="String", Tier="Intelligent-Tiering")["Tier"] == "Advanced"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.put_parameter(Name="big", Value="y", Overwrite=True, Tier="Standard")
    assert code(e) == "ValidationException", "no downgrade from Advanced"
    # AllowedPattern.
    c.put_parameter(Name="port", Value="8080", Type="String", AllowedPattern=r"^\d+$")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.put_parameter(Name="port", Value="eighty", Overwrite=True)
    assert code(e) == "ParameterPatternMismatchException"


def test_secure_string_only_with_decryption_and_never_at_rest(berth):
    c = ssm(berth)
    c.put_parameter(Name="/app/db/password", Value=SECRET, Type="SecureString")
    c.put_parameter(Name="/app/db/key2", Value=SECRET + "-k", Type="SecureString", KeyId="alias/my-key")
    plain = c.get_parameter(Name="/app/db/password")["Parameter"]
    assert plain["Type"] == "SecureString" and plain["Value"] != SECRET and SECRET not in plain["Value"]
    assert c.get_parameter(Name="/app/db/password", WithDecryption=True)["Parameter"]["Value"] == SECRET
    got = c.get_parameters(Names=["/app/db/password", "/app/db/key2", "/nope"], WithDecryption=True)
    assert sorted(p["Value"] for p in got["Parameters"]) == sorted([SECRET, SECRET + "-k"])
    assert got["InvalidParameters"] == ["/nope"]
    assert all(SECRET not in p["Value"] for p in c.get_parameters(Names=["/app/db/password"])["Parameters"])
    meta = c.describe_parameters()["Parameters"]
    assert SECRET not in str(meta)
    by_name = {m["Name"]: m for m in meta}
    assert by_name["/app/db/password"]["KeyId"] == "alias/aws/ssm"
    assert by_name["/app/db/key2"]["KeyId"] == "alias/my-key"
    hist = c.get_parameter_history(Name="/app/db/password")["Parameters"]
    assert SECRET not in str(hist)
    assert c.get_parameter_history(Name="/app/db/password", WithDecryption=True)["Parameters"][0]["Value"] == SECRET
    # The aws CLI sees the same.
    _, out, _ = berth.aws("ssm", "get-parameter", "--name", "/app/db/password", "--with-decryption")
    assert out["Parameter"]["Value"] == SECRET
    _, out, _ = berth.aws("ssm", "describe-parameters")
    assert SECRET not in str(out)
    # Not in the database file (nor its WAL), nor in Berth's log.
    files = glob.glob(os.path.join(berth.data_dir, "berth.db*"))
    assert files
    for f in files:
        assert SECRET.encode() not in open(f, "rb").read(), f
    assert SECRET not in berth.log()
    key = os.path.join(berth.data_dir, "secrets.key")
    assert os.stat(key).st_mode & 0o777 == 0o600 and os.path.getsize(key) == 32


def test_paths_filters_paging_and_history(berth):
    c = ssm(berth)
    for name in ["/svc/a", "/svc/b", "/svc/deep/c", "/svc/deep/er/d", "/other/x"]:
        c.put_parameter(Name=name, Value="v" + name, Type="String")
    c.put_parameter(Name="/svc/s", Value="hidden", Type="SecureString")
    one = c.get_parameters_by_path(Path="/svc")["Parameters"]
    assert sorted(p["Name"] for p in one) == ["/svc/a", "/svc/b", "/svc/s"]
    assert [p["Value"] for p in one if p["Name"] == "/svc/s"] != ["hidden"]
    every = c.get_parameters_by_path(Path="/svc/", Recursive=True, WithDecryption=True)["Parameters"]
    assert sorted(p["Name"] for p in every) == ["/svc/a", "/svc/b", "/svc/deep/c", "/svc/deep/er/d", "/svc/s"]
    assert [p["Value"] for p in every if p["Name"] == "/svc/s"] == ["hidden"]
    typed = c.get_parameters_by_path(Path="/svc", Recursive=True,
                                     ParameterFilters=[{"Key": "Type", "Values": ["SecureString"]}])["Parameters"]
    assert [p["Name"] for p in typed] == ["/svc/s"]
    # Pages of at most 10, resumed by NextToken.
    page = c.get_parameters_by_path(Path="/svc", Recursive=True, MaxResults=2)
    names = [p["Name"] for p in page["Parameters"]]
    while "NextToken" in page:
        page = c.get_parameters_by_path(Path="/svc", Recursive=True, MaxResults=2, NextToken=page["NextToken"])
        names += [p["Name"] for p in page["Parameters"]]
    assert names == sorted(names) and len(names) == 5
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.get_parameters_by_path(Path="/svc", MaxResults=11)
    assert code(e) == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.get_parameters_by_path(Path="svc")
    assert code(e) == "ValidationException"
    # DescribeParameters filters.
    def described(**kw):
        return sorted(p["Name"] for p in c.describe_parameters(**kw)["Parameters"])
    assert described(ParameterFilters=[{"Key": "Path", "Values": ["/svc/deep"]}]) == ["/svc/deep/c"]
    assert described(ParameterFilters=[{"Key": "Path", "Option": "Recursive", "Values": ["/svc/deep"]}]) == [
        "/svc/deep/c", "/svc/deep/er/d"]
    assert described(ParameterFilters=[{"Key": "Name", "Option": "BeginsWith", "Values": ["/other"]}]) == ["/other/x"]
    assert described(ParameterFilters=[{"Key": "Name", "Values": ["/svc/a"]}]) == ["/svc/a"]
    assert described(ParameterFilters=[{"Key": "Type", "Values": ["SecureString"]}]) == ["/svc/s"]
    assert described(ParameterFilters=[{"Key": "KeyId", "Values": ["alias/aws/ssm"]}]) == ["/svc/s"]
    assert described(Filters=[{"Key": "Name", "Values": ["/svc/deep"]}]) == ["/svc/deep/c", "/svc/deep/er/d"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.describe_parameters(ParameterFilters=[{"Key": "Bogus", "Values": ["x"]}])
    assert code(e) == "InvalidFilterKey"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.describe_parameters(ParameterFilters=[{"Key": "Path", "Option": "Equals", "Values": ["/svc"]}])
    assert code(e) == "InvalidFilterOption"
    page = c.describe_parameters(MaxResults=4)
    assert len(page["Parameters"]) == 4 and "NextToken" in page
    rest = c.describe_parameters(MaxResults=4, NextToken=page["NextToken"])["Parameters"]
    assert len(rest) == 2
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.describe_parameters(NextToken="garbage")
    assert code(e) == "InvalidNextToken"
    # History: every version, oldest first, paged.
    for i in range(2, 5):
        c.put_parameter(Name="/svc/a", Value="v%d" % i, Overwrite=True)
    hist = c.get_parameter_history(Name="/svc/a")["Parameters"]
    assert [h["Version"] for h in hist] == [1, 2, 3, 4] and hist[-1]["Value"] == "v4"
    page = c.get_parameter_history(Name="/svc/a", MaxResults=3)
    assert len(page["Parameters"]) == 3
    assert [h["Version"] for h in c.get_parameter_history(Name="/svc/a", NextToken=page["NextToken"])["Parameters"]] == [4]
    # Deletes.
    c.delete_parameter(Name="/other/x")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.delete_parameter(Name="/other/x")
    assert code(e) == "ParameterNotFound"
    out = c.delete_parameters(Names=["/svc/b", "/gone"])
    assert out["DeletedParameters"] == ["/svc/b"] and out["InvalidParameters"] == ["/gone"]


def test_labels(berth):
    c = ssm(berth)
    for v in ["one", "two", "three"]:
        c.put_parameter(Name="/l/p", Value=v, Type="String", Overwrite=True)
    out = c.label_parameter_version(Name="/l/p", ParameterVersion=1, Labels=["prod", "1bad", "awsx"])
    assert out["ParameterVersion"] == 1 and sorted(out["InvalidLabels"]) == ["1bad", "awsx"]
    assert c.get_parameter(Name="/l/p:prod")["Parameter"]["Value"] == "one"
    # Moving a label to another version.
    c.label_parameter_version(Name="/l/p", ParameterVersion=3, Labels=["prod"])
    assert c.get_parameter(Name="/l/p:prod")["Parameter"]["Value"] == "three"
    hist = {h["Version"]: h["Labels"] for h in c.get_parameter_history(Name="/l/p")["Parameters"]}
    assert hist == {1: [], 2: [], 3: ["prod"]}
    # Without a version: the latest.
    assert c.label_parameter_version(Name="/l/p", Labels=["latest"])["ParameterVersion"] == 3
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.label_parameter_version(Name="/l/p", ParameterVersion=2, Labels=["l%d" % i for i in range(11)])
    assert code(e) == "ValidationException", "at most 10 labels in a call"
    c.label_parameter_version(Name="/l/p", ParameterVersion=2, Labels=["l%d" % i for i in range(10)])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.label_parameter_version(Name="/l/p", ParameterVersion=2, Labels=["extra"])
    assert code(e) == "ParameterVersionLabelLimitExceeded"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.label_parameter_version(Name="/l/p", ParameterVersion=9, Labels=["x"])
    assert code(e) == "ParameterVersionNotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.label_parameter_version(Name="/l/none", Labels=["x"])
    assert code(e) == "ParameterNotFound"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.get_parameter(Name="/l/p:nolabel")
    assert code(e) == "ParameterVersionNotFound"
    # The label filter of DescribeParameters.
    names = [p["Name"] for p in c.describe_parameters(ParameterFilters=[{"Key": "Label", "Values": ["prod"]}])["Parameters"]]
    assert names == ["/l/p"]


def test_version_limit(berth):
    c = ssm(berth)
    c.put_parameter(Name="many", Value="0", Type="String")
    c.label_parameter_version(Name="many", ParameterVersion=1, Labels=["keep"])
    for i in range(2, 101):
        c.put_parameter(Name="many", Value=str(i), Overwrite=True)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.put_parameter(Name="many", Value="101", Overwrite=True)
    assert code(e) == "ParameterMaxVersionLimitExceeded"
    # With the label moved, the oldest version goes and numbering goes on.
    c.label_parameter_version(Name="many", ParameterVersion=100, Labels=["keep"])
    assert c.put_parameter(Name="many", Value="101", Overwrite=True)["Version"] == 101
    versions = [h["Version"] for h in c.get_parameter_history(Name="many", MaxResults=50)["Parameters"]]
    assert versions[0] == 2


def test_tags(berth):
    c = ssm(berth)
    c.put_parameter(Name="/t/p", Value="v", Type="String", Tags=[{"Key": "team", "Value": "a"}])
    c.add_tags_to_resource(ResourceType="Parameter", ResourceId="/t/p", Tags=[{"Key": "env", "Value": "prod"}])
    tags = c.list_tags_for_resource(ResourceType="Parameter", ResourceId="/t/p")["TagList"]
    assert tags == [{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "a"}]
    names = [p["Name"] for p in c.describe_parameters(ParameterFilters=[{"Key": "tag:env", "Values": ["prod"]}])["Parameters"]]
    assert names == ["/t/p"]
    c.remove_tags_from_resource(ResourceType="Parameter", ResourceId="/t/p", TagKeys=["team"])
    assert c.list_tags_for_resource(ResourceType="Parameter", ResourceId="/t/p")["TagList"] == [{"Key": "env", "Value": "prod"}]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.list_tags_for_resource(ResourceType="Parameter", ResourceId="/t/none")
    assert code(e) == "InvalidResourceId"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.list_tags_for_resource(ResourceType="Document", ResourceId="/t/p")
    assert code(e) == "InvalidResourceType"
    # The CLI.
    berth.aws("ssm", "put-parameter", "--name", "/cli/p", "--value", "from-cli", "--type", "String")
    _, out, _ = berth.aws("ssm", "get-parameters-by-path", "--path", "/cli")
    assert [p["Value"] for p in out["Parameters"]] == ["from-cli"]
    rc, _, err = berth.aws("ssm", "get-parameter", "--name", "/cli/none", check=False)
    assert rc != 0 and "ParameterNotFound" in err


def test_bad_input_is_a_client_error(berth):
    def call(op, body, service="ssm", prefix="AmazonSSM."):
        return berth.raw(op, body, service=service, target=prefix + op)
    s, v = call("PutParameter", {"Name": "x", "Value": "v", "Type": "Bogus"})
    assert (s, v["__type"]) == (400, "ValidationException"), v
    s, v = call("PutParameter", {"Value": "v", "Type": "String"})
    assert (s, v["__type"]) == (400, "ValidationException"), v
    s, v = call("GetParameter", b"{not json")
    assert (s, v["__type"]) == (400, "SerializationException"), v
    s, v = call("SendCommand", {})
    assert s == 400 and "SendCommand" in v["message"], v
    s, v = call("GetSecretValue", {}, service="secretsmanager", prefix="secretsmanager.")
    assert (s, v["__type"]) == (400, "InvalidParameterException"), v
    s, v = call("ListSecrets", {"MaxResults": "many"}, service="secretsmanager", prefix="secretsmanager.")
    assert (s, v["__type"]) == (400, "SerializationException"), v
