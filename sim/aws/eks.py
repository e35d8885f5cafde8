"""EKS: moto 5.2.5 keeps clusters (CreateCluster, DescribeCluster) but has no access entries and no
Kubernetes API; the simulated clusters' API servers are the world's (sim/kubernetes_api.py), and this module
is what joins them to moto.

- DescribeCluster of a cluster the world serves answers its simulated endpoint (`https://127.0.0.1:<port>`)
  and `certificateAuthority.data` (base64 of its CA's PEM), as `attach` records them on moto's cluster;
- DescribeCluster is authorised against the caller's policies (sim/aws/iam.py: a function's role, a user's or
  role session's keys; the harness's administrator is allowed), on the cluster's ARN
  `arn:aws:eks:<region>:<account>:cluster/<name>`; refused: AccessDeniedException (HTTP 403);
- access entries (`create_access_entry`, which the CloudFormation resource AWS::EKS::AccessEntry calls) are
  kept here, where the simulated API server's authenticator finds them (`entries`), refused as EKS refuses
  them: a cluster that does not exist (ResourceNotFoundException, moto's message), a Kubernetes group
  starting with `system:` (InvalidParameterException, worded as EKS words it), a username starting with
  one of the prefixes the EKS user guide reserves, a principal with an entry already (ResourceInUseException);
- `signers` resolves an access key as STS would for the authenticator's GetCallerIdentity: the role
  session (moto's STS backend) or IAM user it belongs to, and its secret.
"""

from __future__ import annotations

import base64
from typing import Any
from unittest import mock

from moto.core.exceptions import JsonRESTError
from moto.eks.exceptions import InvalidParameterException, ResourceInUseException, ResourceNotFoundException
from moto.eks.models import CLUSTER_NOT_FOUND_MSG, eks_backends
from moto.eks.responses import EKSResponse
from moto.iam.models import iam_backends
from moto.sts.models import sts_backends

from sim.aws import iam
from sim.kubernetes_api import AccessEntry, Endpoint, Signer

# The EKS user guide's reserved username prefixes ("Create access entries").
RESERVED_USERNAME_PREFIXES = ("system:", "eks:", "aws:", "amazon:", "iam:")

# (account, region, cluster) -> principal ARN -> its access entry
ACCESS_ENTRIES: dict[tuple[str, str, str], dict[str, AccessEntry]] = {}


class AccessDeniedException(JsonRESTError):
    """EKS's refusal of a request IAM does not allow (HTTP 403, its type in the body, as a check before the
    action answers it)."""

    code = 403

    def __init__(self, message: str) -> None:
        super().__init__("AccessDeniedException", message)


def patches() -> list[Any]:
    ACCESS_ENTRIES.clear()  # a new wiring is a new account: its clusters have no entries yet
    original = EKSResponse._authenticate_and_authorize_normal_action

    def authorize(self: EKSResponse, resource: str = "*") -> None:
        original(self, resource)
        if self._get_action() != "DescribeCluster":
            return
        principal = iam.caller(self.access_key, self.headers, self.current_account, self.region)
        arn = f"arn:aws:eks:{self.region}:{self.current_account}:cluster/{self._get_param('name')}"
        try:
            iam.authorize(principal, iam.Request("eks:DescribeCluster", arn))
        except iam.AccessDenied as denied:
            raise AccessDeniedException(str(denied)) from None

    return [mock.patch.object(EKSResponse, "_authenticate_and_authorize_normal_action", authorize)]


def attach(account: str, region: str, endpoint: Endpoint) -> None:
    """DescribeCluster of the endpoint's cluster answers the endpoint and its CA from now on."""
    cluster = eks_backends[account][region].describe_cluster(endpoint.cluster.name)
    cluster.endpoint = endpoint.url
    cluster.certificate_authority = {"data": base64.b64encode(endpoint.ca_pem).decode()}


def create_access_entry(
    account: str,
    region: str,
    cluster: str,
    principal_arn: str,
    kubernetes_groups: list[str] | None = None,
    username: str | None = None,
    type: str = "STANDARD",
) -> AccessEntry:
    """CreateAccessEntry, as EKS refuses or records it."""
    if cluster not in eks_backends[account][region].clusters:
        raise ResourceNotFoundException(
            clusterName=cluster,
            nodegroupName=None,
            fargateProfileName=None,
            addonName=None,
            message=CLUSTER_NOT_FOUND_MSG.format(clusterName=cluster),
        )
    groups = tuple(kubernetes_groups or ())
    for group in groups:
        if group.startswith("system:"):
            # terraform-aws-modules/terraform-aws-eks#2915 quotes EKS's answer.
            raise InvalidParameterException(
                message=f"The kubernetes group name {group} is invalid, it cannot start with system:"
            )
    reserved = next((p for p in RESERVED_USERNAME_PREFIXES if username and username.startswith(p)), None)
    if reserved is not None:
        raise InvalidParameterException(message=f"The username {username} is invalid, it cannot start with {reserved}")
    entries = ACCESS_ENTRIES.setdefault((account, region, cluster), {})
    if principal_arn in entries:
        raise ResourceInUseException(
            clusterName=cluster,
            nodegroupName=None,
            fargateProfileName=None,
            addonName=None,
            message="The specified access entry resource is already in use on this cluster.",
        )
    entry = AccessEntry(principal_arn, groups, username, type)
    entries[principal_arn] = entry
    return entry


def access_entry_arn(account: str, region: str, cluster: str, principal_arn: str) -> str:
    """An access entry's ARN: `access-entry/<cluster>/<role|user>/<account>/<name>/<id>`."""
    kind, _, name = principal_arn.split(":", 5)[5].partition("/")
    return f"arn:aws:eks:{region}:{account}:access-entry/{cluster}/{kind}/{account}/{name.rsplit('/', 1)[-1]}/sim"


def entries(account: str, region: str, cluster: str) -> Any:
    """The cluster's access entries, by principal ARN, as its authenticator looks them up."""
    return lambda principal_arn: ACCESS_ENTRIES.get((account, region, cluster), {}).get(principal_arn)


def forget_entries(account: str, region: str, cluster: str) -> None:
    ACCESS_ENTRIES.pop((account, region, cluster), None)


def signers(account: str) -> Any:
    """What STS knows of an access key of the account: the newest role session issued it (a world restores
    moto's random state between tests, so an earlier session may hold the same key), or the IAM user."""

    def resolve(access_key: str) -> Signer | None:
        for session in reversed(sts_backends[account]["aws"].assumed_roles):
            if session.access_key_id == access_key:
                return Signer(
                    access_key,
                    session.secret_access_key,
                    session.session_token,
                    session.arn,
                    session.role_arn,
                    account,
                    session.session_name,
                )
        for user in iam_backends[account]["aws"].users.values():
            for key in user.access_keys:
                if key.access_key_id == access_key and key.status == "Active":
                    return Signer(access_key, key.secret_access_key, None, user.arn, user.arn, account)
        return None

    return resolve
