#!/usr/bin/env python3
"""CDK entry point: validate the fleet configuration in cdk.json's context, then build the Updraft stack."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
# The Lambda package (and the config schema it shares with the stack) lives in functions/.
sys.path[:0] = [str(ROOT), str(ROOT / "functions")]

import aws_cdk as cdk  # noqa: E402

from stacks.limits import LimitExceeded  # noqa: E402
from stacks.synth import CDK_JSON, build_app, synth_within_limits  # noqa: E402
from updraft.config_file import CONTEXT_KEY, ConfigError, cdk_json_context, validate_config  # noqa: E402


def updraft_context(app: cdk.App) -> Any:
    value = app.node.try_get_context(CONTEXT_KEY)
    # `cdk synth -c updraft='{...}'` passes the value as a JSON string.
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def main() -> int:
    # cdk.json's context as the base, so `python app.py` alone matches `cdk synth`; the CLI's context wins.
    app = cdk.App(context=cdk_json_context(CDK_JSON))
    try:
        config = validate_config(updraft_context(app))
    except ConfigError as error:
        print("Invalid Updraft configuration (cdk.json context):", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    env = cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION"))
    build_app(config, env=env, app=app)
    try:
        synth_within_limits(app)
    except LimitExceeded as error:
        print("The Updraft stack would exceed a service limit at deploy time:", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
