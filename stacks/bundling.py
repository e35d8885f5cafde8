"""The one Lambda code asset: the `updraft` package and its pinned wheels, built without Docker."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"
PACKAGE = "updraft"
# Files that must never reach the asset (nor its hash): caches and local build leftovers.
EXCLUDE = ["**/__pycache__", "**/*.pyc", "**/.pytest_cache", "*.egg-info"]


@jsii.implements(ILocalBundling)
class PipLocalBundling:
    """Installs cross-platform wheels with pip, so the asset builds on any machine with Python and no Docker.

    `--only-binary` with an explicit platform makes pip pick the Lambda target's wheels (compiled ones such as
    pydantic_core included) whatever Python or CPU synthesizes the app. `--require-hashes` installs only the
    wheels requirements.txt names by hash, the whole tree listed: any other file, or a missing hash, fails
    the synth (https://pip.pypa.io/en/stable/topics/secure-installs/).
    """

    def __init__(self, source: Path, python_version: str, platform: str) -> None:
        self.source = source
        self.python_version = python_version
        self.platform = platform

    def try_bundle(self, output_dir: str, _options: object = None) -> bool:
        self._install_requirements(Path(output_dir))
        shutil.copytree(
            self.source / PACKAGE,
            Path(output_dir) / PACKAGE,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            dirs_exist_ok=True,
        )
        return True

    def _install_requirements(self, output_dir: Path) -> None:
        command = [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
            "-r", str(self.source / "requirements.txt"),
            "-t", str(output_dir),
            "--platform", self.platform,
            "--implementation", "cp",
            "--python-version", self.python_version,
            "--only-binary=:all:",
            "--require-hashes",
        ]  # fmt: skip
        subprocess.run(command, check=True)


def function_code(python_version: str, platform: str) -> lambda_.Code:
    """The asset shared by every function. Its hash comes from the source, requirements.txt included,
    which pins every wheel by hash: the asset's hash names exactly the files it installs."""
    return lambda_.Code.from_asset(
        str(FUNCTIONS_DIR),
        exclude=EXCLUDE,
        asset_hash_type=AssetHashType.SOURCE,
        bundling=BundlingOptions(
            # Never pulled: CDK requires an image for a Docker fallback that local bundling never leaves to.
            image=DockerImage.from_registry(f"public.ecr.aws/sam/build-python{python_version}"),
            local=PipLocalBundling(FUNCTIONS_DIR, python_version, platform),
        ),
    )
