"""Secrets Manager with the real aws CLI and boto3 (AWS JSON 1.1),
responses checked against botocore's secretsmanager model: ARNs with the
random suffix, versions and staging labels, partial ARNs, updates, list
filters and paging, deletion with a recovery window and restore, tags,
Secrets Manager's errors, and values that appear only in GetSecretValue
(never in DescribeSecret, ListSecrets, the store file or the log)."""
import glob
import os
import re

import botocore.exceptions
import pytest

import shapes


def sm(berth):
    return shapes.install(berth.boto3_session().client("secretsmanager"))


def code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def message(excinfo):
    return excinfo.value.response["Error"]["Message"]


SECRET = "tr0ub4dor-and-3-9917"


def test_create_get_versions_and_stages(berth):
    c = sm(berth)
    token = "a" * 32
    out = c.create_secret(Name="prod/db", SecretString='{"username":"admin","password":"%s"}' % SECRET,
                          Description="the database", KmsKeyId="alias/mine", ClientRequestToken=token,
                          Tags=[{"Key": "team", "Value": "payments"}])
    arn = out["ARN"]
    assert re.fullmatch(r"arn:aws:secretsmanager:us-east-1:\d{12}:secret:prod/db-[A-Za-z0-9]{6}", arn), arn
    assert out["VersionId"] == token and out["Name"] == "prod/db"
    v = c.get_secret_value(SecretId="prod/db")
    assert v["SecretString"].endswith('"%s"}' % SECRET) and v["VersionStages"] == ["AWSCURRENT"] and v["VersionId"] == token
    # By full ARN and by the ARN without its random suffix.
    assert c.get_secret_value(SecretId=arn)["ARN"] == arn
    assert c.get_secret_value(SecretId=arn[:-7])["ARN"] == arn
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_secret(Name="prod/db", SecretString="x")
    assert code(e) == "ResourceExistsException"
    # A new value: the stages move.
    v2 = c.put_secret_value(SecretId=arn, SecretString="second")
    assert v2["VersionStages"] == ["AWSCURRENT"]
    assert c.get_secret_value(SecretId=arn)["SecretString"] == "second"
    prev = c.get_secret_value(SecretId=arn, VersionStage="AWSPREVIOUS")
    assert prev["VersionId"] == token and SECRET in prev["SecretString"]
    assert c.get_secret_value(SecretId=arn, VersionId=token)["VersionStages"] == ["AWSPREVIOUS"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSCURRENT")
    assert code(e) == "InvalidParameterException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.get_secret_value(SecretId=arn, VersionStage="NOPE")
    assert code(e) == "ResourceNotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.get_secret_value(SecretId=arn, VersionId="b" * 32)
    assert code(e) == "ResourceNotFoundException"
    # A custom label, given with the new version, moves to it without AWSCURRENT moving.
    c.put_secret_value(SecretId=arn, SecretString="staged", VersionStages=["PENDING"])
    assert c.get_secret_value(SecretId=arn)["SecretString"] == "second"
    assert c.get_secret_value(SecretId=arn, VersionStage="PENDING")["SecretString"] == "staged"
    # The same token with the same value is a retry; with another value, refused.
    t3 = "c" * 32
    c.put_secret_value(SecretId=arn, SecretString="third", ClientRequestToken=t3)
    assert c.put_secret_value(SecretId=arn, SecretString="third", ClientRequestToken=t3)["VersionId"] == t3
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.put_secret_value(SecretId=arn, SecretString="other", ClientRequestToken=t3)
    assert code(e) == "ResourceExistsException"
    stages = c.describe_secret(SecretId=arn)["VersionIdsToStages"]
    assert stages[t3] == ["AWSCURRENT"] and stages[v2["VersionId"]] == ["AWSPREVIOUS"] and token not in stages
    ids = c.list_secret_version_ids(SecretId=arn)["Versions"]
    assert {v["VersionId"] for v in ids} == set(stages)
    with_old = c.list_secret_version_ids(SecretId=arn, IncludeDeprecated=True)["Versions"]
    assert token in {v["VersionId"] for v in with_old}
    # Binary secrets.
    c.create_secret(Name="bin", SecretBinary=b"\x00\x01binary\xff")
    assert c.get_secret_value(SecretId="bin")["SecretBinary"] == b"\x00\x01binary\xff"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_secret(Name="both", SecretString="a", SecretBinary=b"b")
    assert code(e) == "InvalidParameterException"
    # Not found.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.get_secret_value(SecretId="nope")
    assert code(e) == "ResourceNotFoundException" and message(e) == "Secrets Manager can't find the specified secret."


def test_update_and_describe_never_show_values(berth):
    c = sm(berth)
    arn = c.create_secret(Name="app/key", SecretString=SECRET)["ARN"]
    out = c.update_secret(SecretId="app/key", Description="new words", KmsKeyId="alias/other")
    assert "VersionId" not in out
    d = c.describe_secret(SecretId=arn)
    assert (d["Description"], d["KmsKeyId"], d["Name"], d["ARN"]) == ("new words", "alias/other", "app/key", arn)
    assert d["CreatedDate"] and d["LastChangedDate"] and len(d["VersionIdsToStages"]) == 1
    out = c.update_secret(SecretId=arn, SecretString=SECRET + "-2")
    assert out["VersionId"] and c.get_secret_value(SecretId=arn)["SecretString"] == SECRET + "-2"
    assert len(c.describe_secret(SecretId=arn)["VersionIdsToStages"]) == 2
    assert SECRET not in str(c.describe_secret(SecretId=arn))
    assert SECRET not in str(c.list_secrets())
    assert SECRET not in str(c.list_secret_version_ids(SecretId=arn))
    _, out, _ = berth.aws("secretsmanager", "get-secret-value", "--secret-id", "app/key")
    assert out["SecretString"] == SECRET + "-2"
    _, out, _ = berth.aws("secretsmanager", "describe-secret", "--secret-id", "app/key")
    assert SECRET not in str(out)
    for f in glob.glob(os.path.join(berth.data_dir, "berth.db*")):
        assert SECRET.encode() not in open(f, "rb").read(), f
    assert SECRET not in berth.log()


def test_list_filters_and_paging(berth):
    c = sm(berth)
    c.create_secret(Name="prod/api", SecretString="1", Description="API key", Tags=[{"Key": "env", "Value": "prod"}])
    c.create_secret(Name="prod/db", SecretString="2", Tags=[{"Key": "env", "Value": "prod"}, {"Key": "tier", "Value": "data"}])
    c.create_secret(Name="dev/db", SecretString="3", Description="dev database")
    def names(**kw):
        return sorted(s["Name"] for s in c.list_secrets(**kw)["SecretList"])
    assert names() == ["dev/db", "prod/api", "prod/db"]
    assert names(Filters=[{"Key": "name", "Values": ["prod/"]}]) == ["prod/api", "prod/db"]
    assert names(Filters=[{"Key": "description", "Values": ["dev"]}]) == ["dev/db"]
    assert names(Filters=[{"Key": "tag-key", "Values": ["tier"]}]) == ["prod/db"]
    assert names(Filters=[{"Key": "tag-value", "Values": ["prod"]}]) == ["prod/api", "prod/db"]
    assert names(Filters=[{"Key": "all", "Values": ["data"]}]) == ["prod/db"]
    assert names(Filters=[{"Key": "name", "Values": ["!prod"]}]) == ["dev/db"]
    entry = [s for s in c.list_secrets()["SecretList"] if s["Name"] == "prod/api"][0]
    assert entry["Tags"] == [{"Key": "env", "Value": "prod"}] and len(entry["SecretVersionsToStages"]) == 1
    page = c.list_secrets(MaxResults=2)
    assert len(page["SecretList"]) == 2 and "NextToken" in page
    rest = c.list_secrets(MaxResults=2, NextToken=page["NextToken"])
    assert len(rest["SecretList"]) == 1 and "NextToken" not in rest
    seen = [s["Name"] for s in page["SecretList"] + rest["SecretList"]]
    assert sorted(seen) == ["dev/db", "prod/api", "prod/db"]
    _, out, _ = berth.aws("secretsmanager", "list-secrets")
    assert len(out["SecretList"]) == 3


def test_delete_restore_and_tags(berth):
    c = sm(berth)
    arn = c.create_secret(Name="gone/soon", SecretString=SECRET)["ARN"]
    for bad in [{"RecoveryWindowInDays": 6}, {"RecoveryWindowInDays": 31},
                {"RecoveryWindowInDays": 7, "ForceDeleteWithoutRecovery": True}]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            c.delete_secret(SecretId=arn, **bad)
        assert code(e) == "InvalidParameterException", bad
    out = c.delete_secret(SecretId=arn)
    assert out["ARN"] == arn and out["DeletionDate"]
    d = c.describe_secret(SecretId=arn)
    assert (d["DeletedDate"] - d["CreatedDate"]).days in (29, 30)
    marked = "You can't perform this operation on the secret because it was marked for deletion."
    for call in [lambda: c.get_secret_value(SecretId=arn), lambda: c.put_secret_value(SecretId=arn, SecretString="x"),
                 lambda: c.update_secret(SecretId=arn, Description="x"),
                 lambda: c.tag_resource(SecretId=arn, Tags=[{"Key": "a", "Value": "b"}])]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            call()
        assert code(e) == "InvalidRequestException" and message(e) == marked
    assert [s["Name"] for s in c.list_secrets()["SecretList"]] == []
    assert [s["Name"] for s in c.list_secrets(IncludePlannedDeletion=True)["SecretList"]] == ["gone/soon"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.create_secret(Name="gone/soon", SecretString="again")
    assert code(e) == "InvalidRequestException"
    assert c.restore_secret(SecretId=arn)["ARN"] == arn
    assert c.get_secret_value(SecretId=arn)["SecretString"] == SECRET
    assert "DeletedDate" not in c.describe_secret(SecretId=arn)
    # Tags.
    c.tag_resource(SecretId=arn, Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    c.tag_resource(SecretId=arn, Tags=[{"Key": "a", "Value": "3"}])
    c.untag_resource(SecretId=arn, TagKeys=["b"])
    assert c.describe_secret(SecretId=arn)["Tags"] == [{"Key": "a", "Value": "3"}]
    # Forced: gone at once, and the name is free again.
    c.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.describe_secret(SecretId=arn)
    assert code(e) == "ResourceNotFoundException"
    c.create_secret(Name="gone/soon", SecretString="again")
    rc, _, err = berth.aws("secretsmanager", "get-secret-value", "--secret-id", "never", check=False)
    assert rc != 0 and "ResourceNotFoundException" in err
