"""The deployed template on moto, a simulated fleet, and helpers to read what a rollout recorded."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sim.update_repository import UpdateRepository
from sim.world import World
from stacks import synthesize
from updraft.config import UpdraftConfig
from updraft.domain.host_record import FINAL
from updraft.domain.waves import Candidate, plan_waves


def detection_config(repository: UpdateRepository, trust_dir: Path) -> dict[str, Any]:
    """A `detection` section trusting the local repository's root, written to `trust_dir` with its SHA-512."""
    root = trust_dir / "root.json"
    root.write_bytes(repository.trusted_root)
    return {
        "metadata_base_url": repository.metadata_base_url,
        "targets_base_url": repository.targets_base_url,
        "trusted_root_file": str(root),
        "trusted_root_sha512": hashlib.sha512(root.read_bytes()).hexdigest(),
    }


CONFIG = UpdraftConfig.model_validate(
    {
        "groups": [
            {
                "name": "web",
                "variant": "aws-ecs-2",
                "canary_size": 1,
                "error_budget": {"canary": "0", "per_wave": "1", "total": "25%"},
                "rollback_scope": "wave",
            },
            {
                "name": "batch",
                "variant": "aws-ecs-2",
                "canary_size": 1,
                "error_budget": {"canary": "0", "per_wave": "0", "total": "0"},
                "rollback_scope": "rollout",
            },
        ]
    }
)


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return synthesize(CONFIG)


@pytest.fixture(scope="module")
def deployment(template: dict[str, Any]) -> Iterator[World]:
    """One deployment of the template per module: deploying costs more than most scenarios."""
    with World(template) as deployed:
        yield deployed


@pytest.fixture
def world(deployment: World) -> World:
    """The module's deployment, as new for each test (World.reset)."""
    deployment.reset()
    return deployment


def waves_of(world: World, ids: list[str], group: str = "web", config: UpdraftConfig = CONFIG) -> list[list[str]]:
    """The waves the planner will make of these hosts (the same pure function the pipeline runs)."""
    policy = config.group(group)
    hosts = [Candidate(world.fleet.hosts[i].az, i) for i in ids]
    return [
        [c.instance_id for c in wave]
        for wave in plan_waves(hosts, policy.canary_size, policy.wave_growth, policy.max_wave_size)
    ]


def once(predicate: Any, action: Any) -> Any:
    """A step hook that acts the first time the step's input and result satisfy `predicate`."""
    done: list[bool] = []

    def hook(step_input: dict[str, Any], result: dict[str, Any]) -> None:
        if not done and predicate(step_input, result):
            done.append(True)
            action(step_input, result)

    return hook


def assert_all_final(records: dict[str, dict[str, Any]]) -> None:
    unfinished = {i: r["state"] for i, r in records.items() if r["state"] not in FINAL}
    assert not unfinished, f"hosts left in a non-final state: {unfinished}"


def states(records: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {i: r["state"] for i, r in records.items()}


def granted_actions(template: dict, function_logical_id: str) -> set[str]:
    """Every action the function's role is granted in the template."""
    resources = template["Resources"]
    role = resources[function_logical_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    actions: set[str] = set()
    for resource in resources.values():
        roles = resource.get("Properties", {}).get("Roles", [])
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in roles:
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                listed = statement["Action"]
                actions.update([listed] if isinstance(listed, str) else listed)
    return actions


def assert_calls_granted(world: World, template: dict[str, Any]) -> None:
    """Every AWS call a function made in the simulation is allowed by its role in the template."""
    stack = world.cloudformation.describe_stack_resources(StackName="Updraft")["StackResources"]
    logical = {
        r["PhysicalResourceId"]: r["LogicalResourceId"] for r in stack if r["ResourceType"] == "AWS::Lambda::Function"
    }
    for function, used in world.calls_by_function.items():
        missing = used - granted_actions(template, logical[function])
        assert not missing, f"{logical[function]} calls {sorted(missing)} without a grant"
