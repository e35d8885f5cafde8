"""Local bundling, without the network: the pip command it runs, the hashes it requires, the package it copies."""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

from stacks.bundling import FUNCTIONS_DIR, PipLocalBundling
from stacks.functions import PYTHON_VERSION, RUNTIME

ROOT = Path(__file__).resolve().parents[2]


def _hashed(path: Path) -> dict[str, list[str]]:
    """requirements.txt's requirements (continuation lines joined), each with its --hash options."""
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = [line.split() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return {words[0]: [w for w in words[1:] if w.startswith("--hash=sha256:")] for words in lines}


def _pins(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def _lock() -> set[str]:
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    return {_normal(line) for line in lines if line and not line.startswith("#")}


def _normal(pin: str) -> str:
    name, version = re.sub(r"\[.*\]", "", pin).split("==")
    return f"{re.sub(r'[-_.]+', '-', name).lower()}=={version}"


def test_requirements_are_exact_pins_matching_the_project():
    # boto3 comes with the runtime and Powertools with its layer; pins keep the source-hashed asset honest.
    pins = _pins(FUNCTIONS_DIR / "requirements.in")
    assert pins == [
        "pydantic==2.14.4",
        "tuf==7.0.1",
        "securesystemslib[crypto]==1.6.0",
        "cronsim==2.8",
        "tzdata==2026.6",
        "kubernetes==35.0.0",
        "python-dateutil==2.9.0.post0",
    ]
    project = (ROOT / "pyproject.toml").read_text()
    assert all(f'"{pin}"' in project for pin in pins)


def test_the_bundle_installs_the_whole_tree_by_hash_as_the_lock_pins_it():
    hashed = _hashed(FUNCTIONS_DIR / "requirements.txt")
    assert set(_pins(FUNCTIONS_DIR / "requirements.in")) <= set(hashed)
    assert all(hashes for hashes in hashed.values()), "every requirement needs its wheel's hash"
    # The wheels the functions run are the versions the tests ran, transitive ones included.
    assert {_normal(pin) for pin in hashed} <= _lock()


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
    assert "--require-hashes" in command
    assert (out / "updraft" / "__init__.py").exists()
    assert not (out / "updraft" / "__pycache__").exists()


def _wheel(directory: Path) -> Path:
    """A minimal pure-Python wheel (PEP 427), so that pip runs for real without an index."""
    path = directory / "tinydep-1.0-py3-none-any.whl"
    files = {
        "tinydep/__init__.py": b"",
        "tinydep-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinydep\nVersion: 1.0\n",
        "tinydep-1.0.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = [
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
        for name, data in files.items()
    ]
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("tinydep-1.0.dist-info/RECORD", "\n".join([*record, "tinydep-1.0.dist-info/RECORD,,"]))
    return path


@pytest.mark.parametrize("with_hash", [True, False])
def test_a_requirement_without_its_hash_is_refused(tmp_path, monkeypatch, with_hash):
    links = tmp_path / "links"
    links.mkdir()
    digest = hashlib.sha256(_wheel(links).read_bytes()).hexdigest()
    source = tmp_path / "functions"
    (source / "updraft").mkdir(parents=True)
    (source / "updraft" / "__init__.py").write_text("")
    (source / "requirements.txt").write_text("tinydep==1.0" + (f" --hash=sha256:{digest}" if with_hash else "") + "\n")
    # pip reads its options from the environment too: only the local wheel, no index.
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    out = tmp_path / "out"
    out.mkdir()
    bundling = PipLocalBundling(source, "3.14", "manylinux2014_aarch64")

    if with_hash:
        bundling.try_bundle(str(out), None)
        assert (out / "tinydep" / "__init__.py").exists()
    else:
        with pytest.raises(subprocess.CalledProcessError):
            bundling.try_bundle(str(out), None)
        assert not (out / "tinydep").exists()
