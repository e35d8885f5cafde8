"""One synthesized template per test session: synthesis starts a jsii/Node runtime and takes seconds."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT / "functions", ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from stacks import config_from_cdk_json, synthesize  # noqa: E402
from updraft.config import UpdraftConfig  # noqa: E402


@pytest.fixture(scope="session")
def config() -> UpdraftConfig:
    return config_from_cdk_json()


@pytest.fixture(scope="session")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cloud assembly directory (validation report, metadata) of the session's synth."""
    return tmp_path_factory.mktemp("cdk.out")


@pytest.fixture(scope="session")
def template(config: UpdraftConfig, assembly: Path) -> dict[str, Any]:
    return synthesize(config, outdir=str(assembly))


@pytest.fixture(scope="session")
def resources(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return template["Resources"]


def _of_type(resources: dict[str, dict[str, Any]], resource_type: str) -> dict[str, dict[str, Any]]:
    return {logical_id: r for logical_id, r in resources.items() if r["Type"] == resource_type}


@pytest.fixture(scope="session")
def of_type(resources: dict[str, dict[str, Any]]):
    """`of_type("AWS::Lambda::Function")` -> {logical id: resource}."""
    return lambda resource_type: _of_type(resources, resource_type)


@pytest.fixture(scope="session")
def functions(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Lambda functions by handler module name (`acquire_lock`, ...), each with its `LogicalId` added."""
    by_name = {}
    for logical_id, function in _of_type(resources, "AWS::Lambda::Function").items():
        name = function["Properties"]["Handler"].split(".")[-2]
        by_name[name] = {**function["Properties"], "LogicalId": logical_id}
    return by_name


@pytest.fixture(scope="session")
def tables(resources: dict[str, dict[str, Any]]) -> dict[str, str]:
    """{"locks": logical id, "ledger": logical id}, told apart by their partition keys."""
    by_key = {
        table["Properties"]["KeySchema"][0]["AttributeName"]: logical_id
        for logical_id, table in _of_type(resources, "AWS::DynamoDB::Table").items()
    }
    return {"locks": by_key["group"], "ledger": by_key["pk"]}


@pytest.fixture(scope="session")
def state_machine(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The state machine's properties."""
    (state_machine,) = _of_type(resources, "AWS::StepFunctions::StateMachine").values()
    return state_machine["Properties"]


def installed(tool: Path, how: str) -> Path:
    if not tool.exists():
        pytest.fail(f"{tool} is missing: run `make setup` ({how})")
    return tool


def node_tool(name: str) -> Path:
    """A linter npm installs (asl-validator, statelint)."""
    return installed(ROOT / "node_modules" / ".bin" / name, "npm ci installs it from package-lock.json")


@pytest.fixture(scope="session")
def checkov() -> Path:
    return installed(ROOT / ".venv-scan" / "bin" / "checkov", "it installs checkov from requirements-scan.lock")
