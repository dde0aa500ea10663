"""One Berth serves one region: a stock client configured for another
region gets AWS's InvalidSignatureException with the region Berth serves
named, in every protocol (JSON, Query); IAM, global, takes any region."""
import botocore.exceptions
import pytest


@pytest.mark.parametrize("service,call", [
    ("ecs", lambda c: c.list_clusters()),
    ("logs", lambda c: c.describe_log_groups()),
    ("ec2", lambda c: c.describe_vpcs()),
])
def test_a_request_signed_for_another_region_names_the_region_served(berth, service, call):
    client = berth.boto3_session().client(service, region_name="eu-west-1")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(client)
    err = e.value.response["Error"]
    assert err["Code"] in ("InvalidSignatureException", "AuthFailure", "SignatureDoesNotMatch"), err
    assert "not 'eu-west-1'" in err["Message"], err
    assert "This Berth serves region 'us-east-1' only" in err["Message"], err
    # The same client in Berth's region works.
    call(berth.boto3_session().client(service, region_name="us-east-1"))


def test_iam_is_global(berth):
    iam = berth.boto3_session().client("iam", region_name="eu-west-1")
    assert "Users" in iam.list_users()
