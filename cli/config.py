"""The fleet configuration the command line checks requests against: cdk.json's `updraft` context."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from cli.errors import UsageProblem
from updraft.config import GroupPolicy, RolloutRequest, UpdraftConfig
from updraft.config_file import ConfigError, config_from_cdk_json


def load(path: Path) -> UpdraftConfig:
    try:
        return config_from_cdk_json(path)
    except FileNotFoundError:
        raise UsageProblem(f"{path}: no such file (--config points at the cdk.json of the deployment)") from None
    except json.JSONDecodeError as error:
        raise UsageProblem(f"{path}: not JSON: {error}") from None
    except ConfigError as error:
        raise UsageProblem(f"{path}: {'; '.join(error.problems)}") from None


def group_policy(config: UpdraftConfig, group: str) -> GroupPolicy:
    try:
        return config.group(group)
    except KeyError:
        known = ", ".join(g.name for g in config.groups)
        raise UsageProblem(f"group {group!r} is not configured (configured: {known})") from None


def rollout_request(**fields: object) -> RolloutRequest:
    """The execution input, validated by the schema the state machine validates it with."""
    try:
        return RolloutRequest.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'request'}: {e['msg']}" for e in error.errors())
        raise UsageProblem(problems) from None


def now() -> datetime:
    return datetime.now(UTC)
