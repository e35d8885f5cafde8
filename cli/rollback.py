"""Which finished rollout a rollback may undo: a succeeded one of the group, inside its rollback window."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any


def refusal(rollout: dict[str, Any], group: str, window_hours: int, now: datetime) -> str | None:
    """Why `rollout` cannot be rolled back now, or None if it can."""
    rollout_id = rollout["rollout_id"]
    if rollout.get("group") != group:
        return f"rollout {rollout_id} is of group {rollout.get('group')!r}, not {group!r}"
    if rollout.get("rollback_of"):
        return f"rollout {rollout_id} is itself a rollback (of {rollout['rollback_of']})"
    if rollout.get("status") != "succeeded":
        return f"rollout {rollout_id} ended {rollout.get('status')!r}: only a succeeded rollout is rolled back"
    closes = datetime.fromisoformat(rollout["finished_at"]) + timedelta(hours=window_hours)
    if now >= closes:
        return (
            f"the rollback window of rollout {rollout_id} closed at {closes.isoformat()} "
            f"({window_hours} h after it finished, the group's rollback_window_hours)"
        )
    return None


def latest_succeeded(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest succeeded rollout to a version (not a rollback) in a newest-first history."""
    for item in history:
        if item.get("status") == "succeeded" and not item.get("rollback_of"):
            return item
    return None
