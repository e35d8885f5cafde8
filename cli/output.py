"""Writing results: JSON on stdout for machines, rich renderings for people, errors on stderr."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from typing import Any

from rich.console import Console


def _plain(value: Any) -> Any:
    # DynamoDB numbers arrive as Decimal, string sets as set.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set):
        return sorted(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def as_json(data: Any) -> str:
    return json.dumps(data, default=_plain, indent=2, sort_keys=True)


def plain(data: Any) -> Any:
    """DynamoDB's values as JSON would give them: ints, floats, lists."""
    return json.loads(json.dumps(data, default=_plain))


def emit_json(data: Any) -> None:
    sys.stdout.write(as_json(data) + "\n")


def emit_json_line(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=_plain, sort_keys=True) + "\n")
    sys.stdout.flush()


def console() -> Console:
    # Created per call: the test runner swaps sys.stdout between invocations.
    return Console(file=sys.stdout, highlight=False)


def error(message: str) -> None:
    Console(file=sys.stderr, highlight=False, soft_wrap=True).print(f"[bold red]error:[/] {message}", markup=True)


def note(message: str) -> None:
    Console(file=sys.stderr, highlight=False, soft_wrap=True).print(message, markup=False)
