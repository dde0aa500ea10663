"""ACM's import subset with the real aws CLI and boto3 (AWS JSON 1.1),
responses checked against botocore's acm model, and an HTTPS listener
that uses an imported certificate. Certificates are made in the test with
the openssl CLI."""
import os
import subprocess

import botocore.exceptions
import pytest

import shapes


def acm(berth):
    return shapes.install(berth.boto3_session().client("acm"))


def make_cert(d, name, cn, key="rsa:2048"):
    """A self-signed certificate for `cn` (and www.cn): (cert PEM, key PEM)."""
    crt, key_path = os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")
    args = ["openssl", "req", "-x509", "-nodes", "-days", "30", "-subj", "/CN=" + cn,
            "-addext", "subjectAltName=DNS:%s,DNS:www.%s" % (cn, cn), "-keyout", key_path, "-out", crt]
    if key.startswith("ec:"):
        args[3:3] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:" + key[3:]]
    else:
        args[3:3] = ["-newkey", key]
    subprocess.run(args, check=True, capture_output=True, timeout=60)
    return open(crt, "rb").read(), open(key_path, "rb").read()


def code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def test_import_describe_list_get_and_delete(berth, tmp_path):
    c = acm(berth)
    cert, key = make_cert(str(tmp_path), "web", "web.example")
    arn = c.import_certificate(Certificate=cert, PrivateKey=key, Tags=[{"Key": "team", "Value": "web"}])["CertificateArn"]
    assert arn.startswith("arn:aws:acm:us-east-1:") and ":certificate/" in arn
    d = c.describe_certificate(CertificateArn=arn)["Certificate"]
    assert d["DomainName"] == "web.example"
    assert d["SubjectAlternativeNames"] == ["web.example", "www.web.example"]
    assert d["KeyAlgorithm"] == "RSA_2048" and d["Type"] == "IMPORTED" and d["Status"] == "ISSUED"
    assert d["Subject"] == "CN=web.example" and d["Serial"].count(":") > 5
    assert d["NotAfter"] > d["NotBefore"] and d["InUseBy"] == []
    got = c.get_certificate(CertificateArn=arn)
    assert got["Certificate"].strip() == cert.decode().strip()
    assert "PRIVATE KEY" not in str(got), "the key is never returned"
    assert [s["CertificateArn"] for s in c.list_certificates()["CertificateSummaryList"]] == [arn]
    assert c.list_tags_for_certificate(CertificateArn=arn)["Tags"] == [{"Key": "team", "Value": "web"}]
    # An EC certificate is listed only when its key type is asked for, as ACM does.
    ec_cert, ec_key = make_cert(str(tmp_path), "ec", "ec.example", key="ec:prime256v1")
    ec_arn = c.import_certificate(Certificate=ec_cert, PrivateKey=ec_key)["CertificateArn"]
    assert [s["CertificateArn"] for s in c.list_certificates()["CertificateSummaryList"]] == [arn]
    listed = c.list_certificates(Includes={"keyTypes": ["EC_prime256v1"]})["CertificateSummaryList"]
    assert [(s["CertificateArn"], s["KeyAlgorithm"]) for s in listed] == [(ec_arn, "EC_prime256v1")]
    # A key that is not the certificate's.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.import_certificate(Certificate=cert, PrivateKey=ec_key)
    assert code(e) == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.import_certificate(Certificate=b"not a certificate", PrivateKey=key)
    assert code(e) == "ValidationException"
    c.delete_certificate(CertificateArn=ec_arn)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.describe_certificate(CertificateArn=ec_arn)
    assert code(e) == "ResourceNotFoundException"


def test_cli_imports_and_an_https_listener_uses_the_certificate(berth, tmp_path):
    cert, key = make_cert(str(tmp_path), "site", "site.example")
    _, out, _ = berth.aws("acm", "import-certificate", "--certificate", "fileb://%s/site.crt" % tmp_path,
                          "--private-key", "fileb://%s/site.key" % tmp_path)
    arn = out["CertificateArn"]
    _, out, _ = berth.aws("acm", "describe-certificate", "--certificate-arn", arn)
    assert out["Certificate"]["DomainName"] == "site.example"
    elb = shapes.install(berth.boto3_session().client("elbv2"))
    lb = elb.create_load_balancer(Name="site", Subnets=["subnet-default"])["LoadBalancers"][0]["LoadBalancerArn"]
    tg = elb.create_target_group(Name="site", Protocol="HTTP", Port=80, VpcId="vpc-default", TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    action = [{"Type": "forward", "TargetGroupArn": tg}]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        elb.create_listener(LoadBalancerArn=lb, Protocol="HTTPS", Port=443, DefaultActions=action)
    assert code(e) == "ValidationError", "HTTPS needs a certificate"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        elb.create_listener(LoadBalancerArn=lb, Protocol="HTTPS", Port=443, DefaultActions=action,
                            Certificates=[{"CertificateArn": arn[:-4] + "0000"}])
    assert code(e) == "CertificateNotFound"
    listener = elb.create_listener(LoadBalancerArn=lb, Protocol="HTTPS", Port=443, DefaultActions=action,
                                   Certificates=[{"CertificateArn": arn}])["Listeners"][0]
    assert listener["Certificates"] == [{"CertificateArn": arn}]
    assert listener["SslPolicy"] == "ELBSecurityPolicy-2016-08"
    c = acm(berth)
    assert c.describe_certificate(CertificateArn=arn)["Certificate"]["InUseBy"] == [lb]
    assert c.list_certificates()["CertificateSummaryList"][0]["InUse"] is True
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.delete_certificate(CertificateArn=arn)
    assert code(e) == "ResourceInUseException"
    elb.delete_load_balancer(LoadBalancerArn=lb)
    c.delete_certificate(CertificateArn=arn)
