"""The gate after each wave: continue, complete, or halt because the error budget is spent."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from updraft.config import ErrorBudget, allowed_failures
from updraft.domain.host_record import HostRecord


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
