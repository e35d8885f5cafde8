"""What holds the next wave back: an abort, a kill switch, a pause, the maintenance window."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from updraft.domain.lifecycle import Kind
from updraft.domain.rollout_record import Request, RolloutRecord
from updraft.domain.windows import next_start
from updraft.ledger_schema import GLOBAL, SK

# How soon a wave held by an operator (kill switch, pause) looks again.
CONTROL_RECHECK_SECONDS = 60


def abort_reason(record: RolloutRecord) -> str:
    request = record.abort_requested or Request()
    return f"aborted by {request.by}: {request.reason}"


def hold(switch: dict[str, Any] | None, record: RolloutRecord, now: datetime) -> tuple[str, int] | None:
    """Why the next wave may not start yet, and when to look again; None if it may start now. `switch`: the
    engaged kill switch that holds the group, if one does."""
    if switch:
        scope = "global" if switch[SK] == GLOBAL else "group"
        return f"{scope} kill switch engaged by {switch.get('by')}: {switch.get('reason')}", CONTROL_RECHECK_SECONDS
    if record.paused:
        pause = record.pause or Request()
        return f"paused by {pause.by}: {pause.reason}", CONTROL_RECHECK_SECONDS
    policy = record.policy
    window = policy.maintenance_window
    if window:
        opens = next_start(window, now, timedelta(seconds=policy.wave_budget_seconds))
        if opens > now:
            seconds = max(1, math.ceil((opens - now).total_seconds()))
            return f"outside the maintenance window: next wave at {opens.isoformat()}", seconds
    return None


def pause_news(record: RolloutRecord) -> tuple[Kind, Request] | None:
    """A pause or a resume not yet told (told once each), and the request that made it; None if none."""
    if record.paused == record.pause_announced:
        return None
    if record.paused:
        return Kind.ROLLOUT_PAUSED, record.pause or Request()
    return Kind.ROLLOUT_RESUMED, record.resumed or Request()
