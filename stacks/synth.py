"""Synthesis of the Updraft app, shared by app.py, the tests and the simulation.

Reading and validating cdk.json is the config schema's business (`updraft.config_file`); the helpers here
default to this checkout's cdk.json.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import cx_api
from cdk_nag import AwsSolutionsChecks

from stacks.limits import check_template
from stacks.updraft_stack import UpdraftStack
from updraft import config_file
from updraft.config import UpdraftConfig
from updraft.config_file import CONTEXT_KEY, ConfigError, validate_config  # noqa: F401 (importable from here too)

# This checkout's cdk.json: what `cdk synth` reads, and the default of the helpers below.
CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"
STACK_NAME = "Updraft"
TEST_ENV = cdk.Environment(account="123456789012", region="us-east-1")


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """The context of a cdk.json, by default this checkout's."""
    return config_file.cdk_json_context(path)


def config_from_cdk_json(path: Path = CDK_JSON) -> UpdraftConfig:
    """The validated fleet configuration of a cdk.json, by default this checkout's."""
    return config_file.config_from_cdk_json(path)


def feature_flags(path: Path = CDK_JSON) -> dict[str, Any]:
    """cdk.json's feature flags, so a synth outside the CDK CLI builds the same template as `cdk synth`."""
    return {key: value for key, value in cdk_json_context(path).items() if key.startswith("@aws-cdk/")}


def build_app(
    config: UpdraftConfig,
    *,
    env: cdk.Environment | None = None,
    app: cdk.App | None = None,
    outdir: str | None = None,
    bundle: bool = True,
) -> cdk.App:
    """The app with the Updraft stack and cdk-nag's AwsSolutions checks, which fail synth on any finding.

    Given an `app` (app.py's, carrying the CDK CLI's context), `outdir` and `bundle` are the CLI's business.
    """
    if app is None:
        context = feature_flags() if bundle else {**feature_flags(), "aws:cdk:bundling-stacks": []}
        app = cdk.App(outdir=outdir, context=context)
    UpdraftStack(app, STACK_NAME, config=config, env=env)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def synthesize(config: UpdraftConfig, *, bundle: bool = False, outdir: str | None = None) -> Template:
    """Synthesize the stack for account 123456789012 in us-east-1 and return its CloudFormation template.

    Without `bundle` the code asset is the unbundled source (fast, offline). Pass `outdir` to keep the cloud
    assembly (assets included); otherwise it goes to a directory deleted afterwards.
    """
    if outdir is not None:
        return _synthesize_into(config, bundle=bundle, outdir=outdir)
    with tempfile.TemporaryDirectory(prefix="updraft-cdk-") as scratch:
        return _synthesize_into(config, bundle=bundle, outdir=scratch)


class Template(dict):
    """A synthesized CloudFormation template, with the bytes of its file assets by S3 object key (what
    `cdk deploy` uploads to the bootstrap bucket before it creates the stack)."""

    def __init__(self, template: dict[str, Any], file_assets: dict[str, bytes]) -> None:
        super().__init__(template)
        self.file_assets = file_assets


def _synthesize_into(config: UpdraftConfig, *, bundle: bool, outdir: str) -> Template:
    app = build_app(config, env=TEST_ENV, outdir=outdir, bundle=bundle)
    assembly = synth_within_limits(app)
    return Template(assembly.get_stack_by_name(STACK_NAME).template, _file_assets(Path(assembly.directory)))


def synth_within_limits(app: cdk.App) -> cx_api.CloudAssembly:
    """Synthesize `app`; raise LimitExceeded if a service would refuse a value of the template at deploy time."""
    assembly = app.synth()
    check_template(assembly.get_stack_by_name(STACK_NAME).template)
    return assembly


def _file_assets(assembly: Path) -> dict[str, bytes]:
    """The single-file assets of the cloud assembly's asset manifest, by destination object key."""
    found: dict[str, bytes] = {}
    manifest = json.loads((assembly / f"{STACK_NAME}.assets.json").read_text())
    for asset in manifest.get("files", {}).values():
        source = assembly / asset["source"]["path"]
        if asset["source"].get("packaging", "file") == "file" and source.is_file():
            for destination in asset["destinations"].values():
                found[destination["objectKey"]] = source.read_bytes()
    return found
