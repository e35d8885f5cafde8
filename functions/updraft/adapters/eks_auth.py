"""How a function reaches an EKS cluster's Kubernetes API as its own IAM role, the way `aws eks get-token` and
the cluster's authenticator agree on: the endpoint and CA from DescribeCluster, and a bearer token that is an
STS GetCallerIdentity request presigned with the cluster's name in the signed `x-k8s-aws-id` header.

The API server (aws-iam-authenticator) replays the presigned request to STS to learn who signed it and accepts
the token for 15 minutes from its X-Amz-Date, whatever its X-Amz-Expires says (STS ignores it for this call;
60 s is what the CLI writes, and the authenticator refuses more than 900).
https://docs.aws.amazon.com/eks/latest/userguide/cluster-auth.html
https://docs.aws.amazon.com/cli/latest/reference/eks/get-token.html
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from updraft.adapters.aws import RETRIES, PerSession, client

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_HEADER = "x-k8s-aws-id"
PRESIGNED_SECONDS = 60
# The API server accepts a token for 15 minutes: one is used for at most 10, so no request meets its expiry.
TOKEN_USE = timedelta(minutes=10)


@dataclass(frozen=True)
class ClusterAccess:
    """What a Kubernetes client needs: where the API is, the CA that signs its certificate, the bearer token."""

    endpoint: str
    certificate_authority: bytes  # PEM
    token: str
    issued_at: datetime

    def fresh(self, now: datetime) -> bool:
        """Made at most TOKEN_USE before `now` (and not after it: a clock set back makes a new one)."""
        return timedelta(0) <= now - self.issued_at < TOKEN_USE


def _signing_client(session: Any, region: str) -> Any:
    """An STS client of its own for presigning, at the regional endpoint (a token signed there is checked
    there), whose GetCallerIdentity carries the cluster name as a signed header."""
    sts = session.client("sts", region_name=region, endpoint_url=f"https://sts.{region}.amazonaws.com", config=RETRIES)

    def keep_cluster(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if CLUSTER_HEADER in params:
            context[CLUSTER_HEADER] = params.pop(CLUSTER_HEADER)

    def sign_cluster(request: Any, **_: Any) -> None:
        if CLUSTER_HEADER in request.context:
            request.headers[CLUSTER_HEADER] = request.context[CLUSTER_HEADER]

    sts.meta.events.register("provide-client-params.sts.GetCallerIdentity", keep_cluster)
    sts.meta.events.register("before-sign.sts.GetCallerIdentity", sign_cluster)
    return sts


_signers = PerSession(_signing_client)


def token(cluster: str, region: str) -> str:
    """A bearer token for `cluster`: the presigned GetCallerIdentity URL, base64url without padding."""
    url = _signers(region).generate_presigned_url(
        "get_caller_identity", Params={CLUSTER_HEADER: cluster}, ExpiresIn=PRESIGNED_SECONDS, HttpMethod="GET"
    )
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


# The access last made for each cluster, reused by a warm runtime while its token is fresh. A token is the
# identity of the role that signed it: it is kept under the function's name, never lent to another.
_access: dict[tuple[str, str], ClusterAccess] = {}


def _key(cluster: str) -> tuple[str, str]:
    return os.environ.get("AWS_LAMBDA_FUNCTION_NAME", ""), cluster


def cluster_access(cluster: str, region: str, now: datetime) -> ClusterAccess:
    """The cluster's endpoint, CA and a token fresh at `now` (a new one once the last is TOKEN_USE old)."""
    cached = _access.get(_key(cluster))
    if cached is not None and cached.fresh(now):
        return cached
    described = client("eks").describe_cluster(name=cluster)["cluster"]
    access = ClusterAccess(
        endpoint=described["endpoint"],
        certificate_authority=base64.b64decode(described["certificateAuthority"]["data"]),
        token=token(cluster, region),
        issued_at=now,
    )
    _access[_key(cluster)] = access
    return access


def forget(cluster: str) -> None:
    """The API server refused the token: the next access makes a new one."""
    _access.pop(_key(cluster), None)
