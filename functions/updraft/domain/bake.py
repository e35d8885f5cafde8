"""The bake: a wave's hosts are done, and its alarms must stay OK for a while before the next wave starts."""

from __future__ import annotations

from datetime import datetime

from updraft.config import GroupPolicy
from updraft.domain.rollout_record import Bake, RolloutRecord

# While alarms are watched, they are looked at this often at most.
MIN_ALARM_POLL_SECONDS = 60


def bake_poll(policy: GroupPolicy, now: datetime, until: datetime) -> int:
    remaining = max(int((until - now).total_seconds()), 1)
    if not policy.alarms:
        return remaining  # nothing to watch: one wait
    return max(min(remaining, max(policy.poll_interval_seconds, MIN_ALARM_POLL_SECONDS)), 1)


def baking(record: RolloutRecord) -> Bake:
    assert record.bake is not None, "a wave's gate records its bake before the bake runs"
    return record.bake


def bake_end(record: RolloutRecord, wave: int, firing: list[str], now: datetime) -> tuple[str, str] | None:
    """How the bake of `wave` ends (its verdict and why), given the alarms firing now; None while it goes on."""
    bake = baking(record)
    if firing:
        return "halt", f"alarm {', '.join(firing)} went to ALARM while wave {wave} baked"
    if record.abort_requested:
        return "abort", "aborted while the wave baked"
    if now >= datetime.fromisoformat(bake.until):
        return bake.then, f"wave {wave} baked {record.policy.bake_seconds} s with its alarms OK"
    return None
