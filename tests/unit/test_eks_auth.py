"""The EKS bearer token is what the cluster's authenticator accepts: a presigned STS GetCallerIdentity with the
cluster's name among the signed headers; access is described once and reused while its token is fresh."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
from moto import mock_aws

from updraft.adapters import eks_auth

T0 = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(eks_auth, "_access", {})
    with mock_aws():
        eks = boto3.client("eks")
        eks.create_cluster(
            name="prod-eks",
            roleArn="arn:aws:iam::123456789012:role/eks",
            resourcesVpcConfig={"subnetIds": ["subnet-1"]},
        )
        yield "prod-eks"


def presigned(token: str) -> tuple[str, dict[str, list[str]]]:
    assert token.startswith("k8s-aws-v1.")
    body = token.removeprefix("k8s-aws-v1.")
    assert "=" not in body  # base64url without padding
    url = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    parsed = urlparse(url)
    return parsed.netloc, parse_qs(parsed.query)


def test_the_token_is_a_presigned_get_caller_identity_signed_with_the_cluster_name(cluster):
    host, query = presigned(eks_auth.token(cluster, "us-east-1"))

    assert host == "sts.us-east-1.amazonaws.com"
    assert query["Action"] == ["GetCallerIdentity"]
    assert query["X-Amz-Expires"] == ["60"]
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"][0].split(";")
    assert query["X-Amz-Credential"][0].endswith("/us-east-1/sts/aws4_request")  # signed for STS, in the region
    assert "x-k8s-aws-id" not in query  # a header, not a parameter


def test_access_is_described_once_and_its_token_renewed_before_it_expires(cluster, monkeypatch):
    described = []
    real = eks_auth.client("eks").describe_cluster
    monkeypatch.setattr(eks_auth.client("eks"), "describe_cluster", lambda **kw: described.append(kw) or real(**kw))

    first = eks_auth.cluster_access(cluster, "us-east-1", T0)
    again = eks_auth.cluster_access(cluster, "us-east-1", T0 + timedelta(minutes=9, seconds=59))
    renewed = eks_auth.cluster_access(cluster, "us-east-1", T0 + timedelta(minutes=10))

    assert again is first and renewed is not first
    assert renewed.issued_at == T0 + timedelta(minutes=10)
    assert len(described) == 2
    assert first.endpoint.startswith("https://")
    assert first.certificate_authority  # the cluster's CA, decoded from DescribeCluster's base64
