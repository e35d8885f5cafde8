"""The simulation's two halves: the model imports nothing of moto, every moto patch lives in sim/aws/, the
modules import one another without a cycle, and no moto attribute is patched twice."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from sim import aws
from sim.clock import VirtualClock

ROOT = Path(__file__).resolve().parents[2]
SIM = ROOT / "sim"
MODEL = [
    "sim.apiclient_cli",
    "sim.bottlerocket",
    "sim.clock",
    "sim.compliance",
    "sim.control_container",
    "sim.ecs",
    "sim.faults",
    "sim.fleet",
    "sim.kubernetes",
    "sim.kubernetes_api",
    "sim.service_limits",
    "sim.update_repository",
]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module the file imports, anywhere in it (`from a import b` counts a and a.b)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


SOURCES = {module_name(path): imports(path) for path in SIM.rglob("*.py")}


def test_the_model_half_imports_no_moto():
    code = f"import sys; import {', '.join(MODEL)}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'moto'))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_only_sim_aws_imports_moto():
    importing = sorted(name for name, found in SOURCES.items() if any(m.split(".")[0] == "moto" for m in found))
    assert [name for name in importing if not name.startswith("sim.aws")] == []


def test_the_simulation_has_no_import_cycle():
    graph = {name: {m for m in found if m in SOURCES and m != name} for name, found in SOURCES.items()}
    for name in graph:  # a submodule's package is imported before it, but is not its import
        graph[name] -= {p for p in graph[name] if name.startswith(p + ".")}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError(" -> ".join([*path[path.index(name) :], name]))
        if name in done:
            return
        for imported in sorted(graph[name]):
            visit(imported, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_two_patches_of_one_attribute_are_refused():
    class Target:
        method = None

    twice = [mock.patch.object(Target, "method", 1), mock.patch.object(Target, "method", 2)]
    with pytest.raises(RuntimeError, match="patched twice"):
        aws._one_patch_each(twice)


def test_every_patch_of_the_scheduler_is_of_its_own_attribute():
    aws._one_patch_each(aws._scheduler(VirtualClock()))
