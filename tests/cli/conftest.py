"""The command line against a simulated deployment: the synthesized stack in moto, a simulated fleet."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from sim.world import World
from stacks import synthesize
from updraft.config import UpdraftConfig

CONFIG = UpdraftConfig.model_validate(
    {
        "groups": [
            {"name": "web", "variant": "aws-ecs-2", "canary_size": 1, "wave_growth": 2.0, "bake_seconds": 300},
            {"name": "batch", "variant": "aws-ecs-2", "rollback_window_hours": 6},
            {
                "name": "nightly",
                "variant": "aws-ecs-2",
                "canary_size": 2,
                "maintenance_window": {"schedule": "0 2 * * *", "duration_minutes": 120, "timezone": "UTC"},
            },
        ]
    }
)


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return synthesize(CONFIG)


@pytest.fixture(scope="session")
def cdk_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cdk.json holding the configuration the stack was synthesized from."""
    path = tmp_path_factory.mktemp("config") / "cdk.json"
    path.write_text(json.dumps({"context": {"updraft": CONFIG.model_dump(mode="json", exclude_defaults=True)}}))
    return path


@pytest.fixture(scope="module")
def deployment(template: dict[str, Any]) -> Iterator[World]:
    # Quiet Lambdas: they run in this process, and --json must own standard output.
    with World(template, lambda_log_level="ERROR") as deployed:
        yield deployed


@pytest.fixture
def world(deployment: World) -> World:
    """The module's deployment, as new for each test (World.reset)."""
    deployment.reset()
    return deployment


class Cli:
    """Runs `updraft` in-process, as an operator would from a shell."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Any:
        return self.runner.invoke(app, list(args), env={"UPDRAFT_STACK": "Updraft"})

    def json(self, *args: str) -> Any:
        """Run with --json; it must succeed, print JSON only on stdout and nothing on stderr."""
        result = self(*args, "--json")
        assert result.exit_code == 0, f"{args}: exit {result.exit_code}: {result.stderr}{result.exception!r}"
        assert result.stderr == ""
        return json.loads(result.stdout)


@pytest.fixture
def cli(cdk_json: Path) -> Cli:
    return Cli(cdk_json)
