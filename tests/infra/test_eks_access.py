"""EKS: the functions that reach nodes may describe only the configured clusters, and are mapped into each one
by an access entry to the Kubernetes group the shipped RBAC manifest binds, which grants only what a drain needs."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from stacks import synthesize
from stacks.eks_access import RBAC_MANIFEST, kubernetes_group
from stacks.functions import FUNCTIONS
from updraft.config import UpdraftConfig

REACHING = sorted(spec.name for spec in FUNCTIONS if spec.reaches_nodes)
CONFIG = UpdraftConfig.model_validate(
    {
        "groups": [
            {"name": "nodes", "variant": "aws-k8s-1.31", "eks": {"cluster": "prod-eks"}},
            {"name": "gpu", "variant": "aws-k8s-1.31-nvidia", "eks": {"cluster": "ml", "access_entries": False}},
            {"name": "web", "variant": "aws-ecs-2"},
        ]
    }
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return synthesize(CONFIG, outdir=str(tmp_path_factory.mktemp("eks") / "cdk.out"))


def roles_of(template: dict[str, Any]) -> dict[str, str]:
    """Function name -> its role's logical id."""
    return {
        r["Properties"]["Handler"].split(".")[-2]: r["Properties"]["Role"]["Fn::GetAtt"][0]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and "updraft.handlers." in r["Properties"].get("Handler", "")
    }


def test_the_reaching_functions_are_the_ones_that_drain_check_halt_and_settle_hosts():
    assert REACHING == ["apply_wave", "check_hosts", "finish", "halt", "on_execution_end"]


def test_each_reaching_role_gets_an_access_entry_in_each_stack_managed_cluster(template):
    entries = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::EKS::AccessEntry"]
    roles = roles_of(template)
    mapped = sorted((e["ClusterName"], e["PrincipalArn"]["Fn::GetAtt"][0]) for e in entries)
    assert mapped == sorted(("prod-eks", roles[name]) for name in REACHING)  # none for ml: its owner maps them
    for entry in entries:
        assert entry["KubernetesGroups"] == [kubernetes_group()] and entry["Type"] == "STANDARD"
        assert "AccessPolicies" not in entry  # the cluster's RBAC grants, nothing EKS-wide


def test_describe_cluster_is_granted_on_the_configured_clusters_only_to_the_reaching_roles(template):
    roles = roles_of(template)
    granted: dict[str, list[Any]] = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if any(action.startswith("eks:") for action in actions):
                assert actions == ["eks:DescribeCluster"]
                (role,) = (r["Ref"] for r in resource["Properties"]["Roles"])
                granted[role] = (
                    statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                )
    assert sorted(granted) == sorted(roles[name] for name in REACHING)
    for resources in granted.values():
        clusters = sorted(json.dumps(r).split("cluster/")[1].split('"')[0] for r in resources)
        assert clusters == ["ml", "prod-eks"]


def test_the_rbac_manifest_grants_only_what_a_drain_needs():
    role = next(doc for doc in yaml.safe_load_all(RBAC_MANIFEST.read_text()) if doc["kind"] == "ClusterRole")
    rules = {
        (g, r): sorted(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
    }
    assert rules == {
        ("", "nodes"): ["list", "patch"],
        ("", "pods"): ["list"],
        ("", "pods/eviction"): ["create"],
    }
    assert kubernetes_group() == "updraft-node-updaters"  # no system:, eks:, aws:, amazon: or iam: prefix
