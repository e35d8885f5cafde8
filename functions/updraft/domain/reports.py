"""The JSON reports the SSM documents print, parsed strictly.

Each document prints exactly one JSON object on its last line of output. Anything else is a
MalformedCommandOutput naming the document and what was wrong, never a guess.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from updraft.errors import MalformedCommandOutput

Version = Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$")]
BootId = Annotated[str, Field(min_length=8, max_length=64)]
UpdateState = Literal["Idle", "Available", "Staged", "Ready"]


class Report(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorReport(Report):
    doc: str
    result: Literal["error"]
    stage: str
    error: str
    previous_version: str | None = None


class InventoryReport(Report):
    doc: Literal["inventory"]
    result: Literal["ok"]
    version: Version
    variant: str
    arch: str
    boot_id: BootId
    update_state: UpdateState
    available: list[str]
    activated: Version | None = None  # the version an activated (Ready) update boots next


class ApplyReport(Report):
    doc: Literal["apply"]
    result: Literal["rebooting", "already-current"]
    previous_version: Version
    target_version: Version
    boot_id: BootId


class VerifyReport(Report):
    doc: Literal["verify"]
    result: Literal["ok", "mismatch"]
    version: Version
    expected_version: Version
    boot_id: BootId
    update_state: UpdateState
    active_version: Version | None
    version_lock: str


class RollbackReport(Report):
    doc: Literal["rollback"]
    result: Literal["restored", "rebooting"]
    previous_version: Version
    boot_id: BootId
    from_version: Version | None = None


class HealthReport(Report):
    """The group's health command, run by the health document: its exit code and the tail of its output."""

    doc: Literal["health"]
    result: Literal["healthy", "unhealthy", "timed-out"]
    exit_code: Annotated[int, Field(ge=0, le=255, strict=True)]
    timeout_seconds: Annotated[int, Field(ge=1)]
    output: Annotated[str, Field(max_length=1024)] = ""


_PARSERS = {
    "inventory": TypeAdapter(InventoryReport | ErrorReport),
    "apply": TypeAdapter(ApplyReport | ErrorReport),
    "verify": TypeAdapter(VerifyReport | ErrorReport),
    "rollback": TypeAdapter(RollbackReport | ErrorReport),
    "health": TypeAdapter(HealthReport | ErrorReport),
}


def parse_report(doc: str, stdout: str) -> Report:
    """The report of document kind `doc` from a command's standard output."""
    # Only "\n" ends a line: jq prints other Unicode line breaks unescaped inside strings.
    lines = [line for line in (stdout or "").split("\n") if line.strip()]
    if not lines:
        raise MalformedCommandOutput(f"{doc}: the command printed no report")
    try:
        data = json.loads(lines[-1])
    except (ValueError, RecursionError) as error:  # also too deep a nesting, or an integer of over 4300 digits
        problem = error.msg if isinstance(error, json.JSONDecodeError) else str(error)[:100]
        raise MalformedCommandOutput(f"{doc}: the report is not JSON ({problem}): {lines[-1][:200]!r}") from None
    if not isinstance(data, dict) or data.get("doc") != doc:
        raise MalformedCommandOutput(f"{doc}: expected a report of document {doc!r}, got {str(data)[:200]!r}")
    try:
        return _PARSERS[doc].validate_python(data)
    except ValidationError as error:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in error.errors()
        )
        raise MalformedCommandOutput(f"{doc}: {fields}") from None
