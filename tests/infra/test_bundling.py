"""Local bundling, without the network: the pip command it runs and the package it copies."""

from __future__ import annotations

import subprocess
from pathlib import Path

from stacks.bundling import FUNCTIONS_DIR, PipLocalBundling
from stacks.functions import PYTHON_VERSION, RUNTIME

ROOT = Path(__file__).resolve().parents[2]


def test_requirements_are_exact_pins_matching_the_project():
    # boto3 comes with the runtime and Powertools with its layer; pins keep the source-hashed asset honest.
    pins = (FUNCTIONS_DIR / "requirements.txt").read_text().split()
    assert pins == [
        "pydantic==2.14.4",
        "tuf==7.0.1",
        "securesystemslib[crypto]==1.6.0",
        "cronsim==2.8",
        "tzdata==2026.6",
    ]
    project = (ROOT / "pyproject.toml").read_text()
    assert all(f'"{pin}"' in project for pin in pins)


def test_runtime_and_wheels_agree():
    assert RUNTIME.name == f"python{PYTHON_VERSION}"


def test_bundling_installs_target_wheels_and_copies_the_package(tmp_path, monkeypatch):
    source = tmp_path / "functions"
    (source / "updraft" / "__pycache__").mkdir(parents=True)
    (source / "updraft" / "__init__.py").write_text("")
    (source / "updraft" / "__pycache__" / "stale.pyc").write_bytes(b"")
    (source / "requirements.txt").write_text("pydantic==2.14.4\n")
    commands = []
    monkeypatch.setattr(subprocess, "run", lambda command, check: commands.append(command))
    out = tmp_path / "out"
    out.mkdir()

    assert PipLocalBundling(source, "3.14", "manylinux2014_aarch64").try_bundle(str(out), None) is True

    (command,) = commands
    assert command[1:4] == ["-m", "pip", "install"]
    for flag, value in [
        ("--platform", "manylinux2014_aarch64"),
        ("--python-version", "3.14"),
        ("--implementation", "cp"),
        ("-t", str(out)),
        ("-r", str(source / "requirements.txt")),
    ]:
        assert command[command.index(flag) + 1] == value
    assert "--only-binary=:all:" in command
    assert (out / "updraft" / "__init__.py").exists()
    assert not (out / "updraft" / "__pycache__").exists()
