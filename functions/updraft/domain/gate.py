"""The gate after each wave: continue, complete, or halt because the error budget is spent; overridden by a
withdrawn release, an alarm that fired during the wave, or an operator's abort; and the bake it may wait for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from updraft.config import ErrorBudget, GroupPolicy, allowed_failures
from updraft.domain.host_record import HostRecord
from updraft.domain.rollout_record import RolloutRecord, RolloutStatus, WaveResult


class Verdict(StrEnum):
    CONTINUE = "continue"
    COMPLETE = "complete"
    HALT = "halt"


@dataclass(frozen=True)
class GateResult:
    verdict: Verdict
    reason: str
    wave_failures: int
    total_failures: int


def gate(
    wave: int,
    wave_count: int,
    wave_hosts: list[HostRecord],
    total_failures: int,
    planned_hosts: int,
    budget: ErrorBudget,
) -> GateResult:
    """Judge a finished wave. Wave 0 is the canary and has its own budget."""
    wave_failures = sum(1 for host in wave_hosts if host.failure)
    wave_budget = budget.canary if wave == 0 else budget.per_wave
    wave_allowed = allowed_failures(wave_budget, len(wave_hosts))
    total_allowed = allowed_failures(budget.total, planned_hosts)
    name = "canary wave" if wave == 0 else f"wave {wave}"
    if wave_failures > wave_allowed:
        reason = (
            f"{name}: {wave_failures} of {len(wave_hosts)} hosts failed, budget {wave_budget} allows {wave_allowed}"
        )
        return GateResult(Verdict.HALT, reason, wave_failures, total_failures)
    if total_failures > total_allowed:
        reason = (
            f"rollout: {total_failures} hosts failed, budget {budget.total} of {planned_hosts} allows {total_allowed}"
        )
        return GateResult(Verdict.HALT, reason, wave_failures, total_failures)
    if wave + 1 >= wave_count:
        return GateResult(Verdict.COMPLETE, "every wave finished within the budget", wave_failures, total_failures)
    return GateResult(Verdict.CONTINUE, f"{name} within budget", wave_failures, total_failures)


@dataclass(frozen=True)
class WaveEnd:
    """A finished wave's gate, and what the rollout does next."""

    result: GateResult
    verdict: str  # continue, complete, halt; or abort: an operator asked, and no further wave starts
    bake: bool  # the verdict holds only once the wave has baked with its alarms OK


def wave_end(wave: int, record: RolloutRecord, hosts: list[HostRecord]) -> WaveEnd:
    """The wave's hosts are all done: spend the error budget, then bake, abort, halt or go on."""
    policy = record.policy
    earlier = sum(result.failures for index, result in record.wave_results.items() if index != wave)
    wave_failures = sum(1 for host in hosts if host.failure)
    planned = record.planned_hosts or 0
    result = overridden(
        gate(wave, len(record.wave_sizes), hosts, earlier + wave_failures, planned, policy.error_budget),
        record,
        wave,
    )
    if result.verdict is Verdict.CONTINUE and record.abort_requested:
        return WaveEnd(result, "abort", bake=False)  # the last wave simply completes: nothing is left to not start
    return WaveEnd(result, str(result.verdict), bake=result.verdict is not Verdict.HALT and bakes(policy))


def overridden(result: GateResult, record: RolloutRecord, wave: int) -> GateResult:
    """The gate's result, unless the release was pulled or an alarm fired during the wave: then a halt."""
    tripped = record.alarm_tripped
    if record.withdrawn:
        # A pulled release: stop here and take every host the rollout updated back.
        return GateResult(Verdict.HALT, "the release was withdrawn", result.wave_failures, result.total_failures)
    if tripped and tripped.wave == wave:
        reason = f"alarm {', '.join(tripped.alarms)} went to ALARM during wave {wave}"
        return GateResult(Verdict.HALT, reason, result.wave_failures, result.total_failures)
    return result


def bakes(policy: GroupPolicy) -> bool:
    return bool(policy.bake_seconds or policy.alarms)


def wave_recorded(record: RolloutRecord, wave: int, failures: int, verdict: str, reason: str) -> dict[str, Any]:
    """The record's fields that keep a wave's verdict: its result among the waves', and a halt it starts."""
    results = {**record.wave_results, wave: WaveResult(failures=failures, verdict=verdict, reason=reason)}
    fields: dict[str, Any] = {"wave_results": results}
    if verdict == Verdict.HALT:
        fields |= {"status": RolloutStatus.HALTING, "halt_reason": reason}
    return fields


def wave_seconds(record: RolloutRecord, now: datetime) -> int:
    """How long the current wave took, its bake included."""
    started = record.wave_started_at
    return int((now - datetime.fromisoformat(started)).total_seconds()) if started else 0
