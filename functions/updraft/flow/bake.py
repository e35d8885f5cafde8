"""Bake: a wave's hosts are done; its alarms must stay OK for the bake time before its verdict holds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from updraft.domain.bake import bake_end, bake_poll, baking
from updraft.domain.rollout_events import Mark
from updraft.domain.rollout_record import Rollout, RolloutStatus
from updraft.flow import context
from updraft.flow.check import finish_wave
from updraft.settings import Settings


def bake(env: Settings, rollout: Rollout, wave: int, now: datetime) -> dict[str, Any]:
    ports = context.ports(env)
    ledger = ports.ledger
    record = context.load(ledger, rollout.rollout_id)
    policy = record.policy
    results = record.wave_results
    failures = results[wave].failures if wave in results else 0
    total = sum(result.failures for result in results.values())
    firing = ports.alarms.firing(policy.alarms) if policy.alarms else []
    if firing:
        context.mark(ledger, rollout, Mark.ALARM, now, wave, f"{', '.join(firing)} fired during the bake")
    end = bake_end(record, wave, firing, now)
    if end is None:
        until = datetime.fromisoformat(baking(record).until)
        return context.state(
            rollout, wave, verdict="bake", failures=total, next_poll_seconds=bake_poll(policy, now, until)
        )
    verdict, reason = end
    duration = finish_wave(ports, record, rollout, wave, failures, verdict, reason, now)
    if verdict != "halt":
        context.write(ledger, rollout.rollout_id, status=RolloutStatus.ROLLING_OUT)
    return context.state(rollout, wave, verdict=verdict, reason=reason, failures=total, wave_duration_seconds=duration)
