"""cdk.json's fleet configuration is validated at synth: a bad field stops `cdk synth` and is named."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from updraft.config_file import ConfigError, validate_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def context() -> dict:
    return copy.deepcopy(json.loads((ROOT / "cdk.json").read_text())["context"]["updraft"])


def run_app(context: dict, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """app.py as the CDK CLI runs it: the context comes in CDK_CONTEXT_JSON and overrides cdk.json's."""
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps({"updraft": context}),
        "CDK_OUTDIR": str(tmp_path / "cdk.out"),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_cdk_json_is_valid(config):
    assert [group.name for group in config.groups] == ["staging", "prod"]
    assert config.tag_key == "updraft:group"
    assert config.group("staging").error_budget.per_wave == "1"
    assert config.group("prod").canary_size == 2


def test_app_exits_naming_every_bad_field(context, tmp_path):
    context["groups"][0]["canary_size"] = 0
    context["groups"][1]["canary"] = 3  # not a field: canary_size was meant
    result = run_app(context, tmp_path)
    assert result.returncode == 1
    assert "updraft.groups.0.canary_size: Input should be greater than or equal to 1" in result.stderr
    assert "updraft.groups.1.canary: Extra inputs are not permitted" in result.stderr
    assert not (tmp_path / "cdk.out" / "Updraft.template.json").exists()


def test_zero_canary_is_rejected(context):
    context["groups"][0]["canary_size"] = 0
    with pytest.raises(ConfigError) as error:
        validate_config(context)
    assert error.value.problems == [
        "updraft.groups.0.canary_size: Input should be greater than or equal to 1",
    ]


def test_unknown_field_is_rejected_by_name(context):
    context["tag"] = "team"
    with pytest.raises(ConfigError) as error:
        validate_config(context)
    assert error.value.problems == ["updraft.tag: Extra inputs are not permitted"]


def test_missing_context_is_named():
    with pytest.raises(ConfigError, match="updraft: missing"):
        validate_config(None)


def test_duplicate_groups_are_rejected(context):
    context["groups"][1]["name"] = "staging"
    with pytest.raises(ConfigError, match="duplicate group names"):
        validate_config(context)


@pytest.mark.parametrize(
    ("eks", "problem"),
    [
        ({"cluster": "-prod"}, "updraft.groups.0.eks.cluster: String should match pattern"),
        (
            {"cluster": "prod", "pdb_blocked": "force"},
            "updraft.groups.0.eks.pdb_blocked: Input should be 'skip' or 'wait'",
        ),
        (
            {"cluster": "prod", "evict_concurrency": 0},
            "updraft.groups.0.eks.evict_concurrency: Input should be greater",
        ),
        (
            {"cluster": "prod", "drain_timeout_seconds": 30},
            "updraft.groups.0.eks.drain_timeout_seconds: Input should be",
        ),
        ({"cluster": "prod", "grace": 5}, "updraft.groups.0.eks.grace: Extra inputs are not permitted"),
    ],
)
def test_a_bad_eks_section_is_rejected_naming_its_field(context, eks, problem):
    context["groups"][0]["eks"] = eks
    with pytest.raises(ConfigError) as error:
        validate_config(context)
    assert [p for p in error.value.problems if p.startswith(problem)], error.value.problems


def test_a_group_cannot_be_both_ecs_and_eks(context):
    context["groups"][0] |= {"ecs": {"cluster": "blue"}, "eks": {"cluster": "prod"}}
    with pytest.raises(ConfigError, match="eks: a group's hosts run either ECS"):
        validate_config(context)


def test_eks_defaults_follow_managed_node_groups_and_the_update_operator(context):
    context["groups"][0]["eks"] = {"cluster": "prod"}
    eks = validate_config(context).group("staging").eks
    assert (eks.drain_timeout_seconds, eks.pdb_blocked, eks.evict_concurrency, eks.access_entries) == (
        900,
        "skip",
        5,
        True,
    )
