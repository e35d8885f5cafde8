"""EKS access entries: each function that reaches the groups' nodes is mapped, as its IAM role, into every EKS
cluster the groups name (those that leave access to the stack), to the Kubernetes group that eks/rbac.yaml binds.

An access entry grants nothing by itself (no access policy is associated): the cluster's RBAC does, once the
manifest is applied. The group's name is read from the manifest, so the two cannot drift apart.
https://docs.aws.amazon.com/eks/latest/userguide/access-entries.html
"""

from __future__ import annotations

from pathlib import Path

import yaml
from aws_cdk import aws_eks as eks
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from updraft.config import UpdraftConfig

RBAC_MANIFEST = Path(__file__).resolve().parents[1] / "eks" / "rbac.yaml"


def kubernetes_group(manifest: Path = RBAC_MANIFEST) -> str:
    """The one Group subject the manifest's ClusterRoleBinding grants its role to."""
    bindings = [doc for doc in yaml.safe_load_all(manifest.read_text()) if doc and doc["kind"] == "ClusterRoleBinding"]
    groups = [s["name"] for binding in bindings for s in binding.get("subjects", []) if s["kind"] == "Group"]
    if len(groups) != 1:
        raise ValueError(f"{manifest} must bind exactly one Kubernetes group, found {groups}")
    return groups[0]


class ClusterAccess(Construct):
    """An access entry per (cluster, function role)."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: UpdraftConfig, functions: dict[str, lambda_.Function]
    ) -> None:
        super().__init__(scope, construct_id)
        group = kubernetes_group()
        clusters = sorted({g.eks.cluster for g in config.groups if g.eks and g.eks.access_entries})
        self.entries: list[eks.CfnAccessEntry] = []
        for cluster in clusters:
            for name, function in sorted(functions.items()):
                entry = eks.CfnAccessEntry(
                    self,
                    f"{_construct_part(cluster)}{_construct_part(name)}",
                    cluster_name=cluster,
                    principal_arn=function.role.role_arn,  # type: ignore[union-attr]
                    kubernetes_groups=[group],
                    type="STANDARD",
                )
                self.entries.append(entry)


def _construct_part(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))
