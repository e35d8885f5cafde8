"""The command line as an installed package: it runs without the CDK, Node or the checkout's stacks/ and sim/."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli.main
from cli.main import app

ROOT = Path(__file__).resolve().parents[2]
# What only the stack and the simulation need: `updraft plan` must load none of it.
CHECKOUT_ONLY = {"aws_cdk", "jsii", "constructs", "cdk_nag", "stacks", "sim"}

PLAN = textwrap.dedent(
    """
    import json, sys
    from moto import mock_aws

    with mock_aws():
        from cli.main import app

        try:
            app(["plan", "staging", "1.26.1", "--config", sys.argv[1], "--json"], prog_name="updraft")
        except SystemExit as done:
            code = done.code
    with open(sys.argv[2], "w") as report:
        json.dump({"exit_code": code, "modules": sorted(sys.modules)}, report)
    """
)


def test_plan_loads_neither_the_cdk_nor_stacks_nor_sim(tmp_path: Path) -> None:
    # A fresh interpreter outside the checkout, this worktree's code first; moto answers the fleet reads.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "JSII_"))}
    env |= {
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "functions")]),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-c", PLAN, str(ROOT / "cdk.json"), str(report)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    result = json.loads(report.read_text())
    assert result["exit_code"] in (0, None), done.stderr
    plan = json.loads(done.stdout)
    assert (plan["group"], plan["target_version"], plan["waves"]) == ("staging", "1.26.1", [])
    assert "cli.config" in result["modules"] and "updraft.config_file" in result["modules"]
    loaded = {name.split(".")[0] for name in result["modules"]}
    assert loaded & CHECKOUT_ONLY == set()
    assert done.stderr == ""  # no Node end-of-life banner, nothing else


def test_simulate_outside_the_checkout_says_what_it_needs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cli.main, "CHECKOUT", tmp_path)  # where an installed wheel's cli/ sits: no sim/ beside it

    result = CliRunner().invoke(app, ["simulate", "--hosts", "1"])

    assert result.exit_code == 1
    assert "updraft simulate needs the project checkout" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_simulate_in_the_checkout_runs_the_demo() -> None:
    from sim.demo import run

    assert cli.main._simulation() is run


def _pins(requirements: list[str]) -> dict[str, str]:
    """name -> version of exact pins, names normalized and extras dropped."""
    pins = {}
    for line in requirements:
        name, version = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)", line.strip()).groups()
        pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def test_the_cli_extra_is_pinned_as_requirements_lock_pins_it() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = [line for line in (ROOT / "requirements.lock").read_text().splitlines() if line and line[0] != "#"]
    installed = project["dependencies"] + project["optional-dependencies"]["cli"]

    assert {"typer", "rich"} <= set(_pins(project["optional-dependencies"]["cli"]))
    assert _pins(installed).items() <= _pins(lock).items()
