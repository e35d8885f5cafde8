"""The fleet configuration as a deployment keeps it: the `updraft` value of a cdk.json's context.

app.py and stacks/ read it at synth time, the operator's command line before every request it checks; both
validate it against the schema in `updraft.config`. Plain JSON and pydantic: no CDK needed to read it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from updraft.config import UpdraftConfig

CONTEXT_KEY = "updraft"


class ConfigError(ValueError):
    """The `updraft` context is invalid; `problems` has one line per bad field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def validate_config(context: Any) -> UpdraftConfig:
    """Validate the `updraft` context value, naming every bad field as `updraft.<path>: <message>`."""
    if context is None:
        raise ConfigError([f"{CONTEXT_KEY}: missing from the CDK context (cdk.json)"])
    try:
        return UpdraftConfig.model_validate(context)
    except ValidationError as error:
        raise ConfigError([_describe(problem) for problem in error.errors()]) from error


def _describe(problem: Any) -> str:
    path = ".".join(str(part) for part in (CONTEXT_KEY, *problem["loc"]))
    return f"{path}: {problem['msg']}"


def cdk_json_context(path: Path) -> dict[str, Any]:
    """The whole `context` of the cdk.json at `path` (empty if it has none)."""
    return json.loads(Path(path).read_text()).get("context", {})


def config_from_cdk_json(path: Path) -> UpdraftConfig:
    """The validated fleet configuration of the cdk.json at `path`.

    Raises FileNotFoundError, json.JSONDecodeError, or ConfigError naming every bad field.
    """
    return validate_config(cdk_json_context(path).get(CONTEXT_KEY))
