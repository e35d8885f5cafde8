"""The gate after each wave: continue, complete, or halt on a spent error budget."""

from __future__ import annotations

import pytest

from updraft.config import ErrorBudget, allowed_failures
from updraft.domain.gate import Verdict, gate
from updraft.domain.host_record import HostRecord, HostState


def hosts(count: int, failed: int = 0, wave: int = 0) -> list[HostRecord]:
    return [
        HostRecord(
            rollout_id="r-1",
            instance_id=f"i-{wave:02d}{index:04d}",
            az="us-east-1a",
            wave=wave,
            state=HostState.ROLLED_BACK if index < failed else HostState.UPDATED,
            previous_version="1.26.0",
            target_version="1.26.1",
            failure="verification failed" if index < failed else None,
        )
        for index in range(count)
    ]


BUDGET = ErrorBudget(canary="0", per_wave="1", total="10%")


def test_canary_wave_is_judged_by_the_canary_budget() -> None:
    result = gate(0, 5, hosts(1, failed=1), total_failures=1, planned_hosts=100, budget=BUDGET)
    assert result.verdict is Verdict.HALT
    assert result.reason == "canary wave: 1 of 1 hosts failed, budget 0 allows 0"
    assert (result.wave_failures, result.total_failures) == (1, 1)


def test_later_wave_is_judged_by_the_per_wave_budget() -> None:
    result = gate(1, 5, hosts(2, failed=1, wave=1), total_failures=1, planned_hosts=100, budget=BUDGET)
    assert result.verdict is Verdict.CONTINUE
    assert result.reason == "wave 1 within budget"


def test_later_wave_over_the_per_wave_budget_halts() -> None:
    result = gate(2, 5, hosts(4, failed=2, wave=2), total_failures=2, planned_hosts=100, budget=BUDGET)
    assert result.verdict is Verdict.HALT
    assert result.reason == "wave 2: 2 of 4 hosts failed, budget 1 allows 1"


def test_canary_budget_does_not_apply_to_later_waves() -> None:
    budget = ErrorBudget(canary="1", per_wave="0", total="100%")
    assert gate(0, 3, hosts(1, failed=1), 1, 10, budget).verdict is Verdict.CONTINUE
    assert gate(1, 3, hosts(2, failed=1, wave=1), 2, 10, budget).verdict is Verdict.HALT


@pytest.mark.parametrize(
    ("budget", "population", "allowed"),
    [("10%", 9, 0), ("10%", 10, 1), ("10%", 19, 1), ("25%", 7, 1), ("100%", 3, 3), ("0%", 50, 0), ("3", 1, 3)],
)
def test_allowed_failures_rounds_percentages_down(budget: str, population: int, allowed: int) -> None:
    assert allowed_failures(budget, population) == allowed


def test_percent_wave_budget_is_taken_of_the_wave_size() -> None:
    budget = ErrorBudget(canary="0", per_wave="20%", total="100%")
    assert gate(1, 3, hosts(9, failed=2, wave=1), 2, 50, budget).verdict is Verdict.HALT  # 20% of 9 is 1.8 -> 1
    assert gate(1, 3, hosts(10, failed=2, wave=1), 2, 50, budget).verdict is Verdict.CONTINUE


def test_total_budget_counts_failures_across_waves() -> None:
    # Each wave is within its own budget, but together they exceed 10% of 20 planned hosts.
    result = gate(2, 5, hosts(4, failed=1, wave=2), total_failures=3, planned_hosts=20, budget=BUDGET)
    assert result.verdict is Verdict.HALT
    assert result.reason == "rollout: 3 hosts failed, budget 10% of 20 allows 2"
    assert (result.wave_failures, result.total_failures) == (1, 3)


def test_total_budget_not_yet_spent_continues() -> None:
    result = gate(2, 5, hosts(4, failed=1, wave=2), total_failures=2, planned_hosts=20, budget=BUDGET)
    assert result.verdict is Verdict.CONTINUE


def test_last_wave_within_budget_completes() -> None:
    result = gate(4, 5, hosts(8, failed=1, wave=4), total_failures=1, planned_hosts=20, budget=BUDGET)
    assert result.verdict is Verdict.COMPLETE
    assert result.reason == "every wave finished within the budget"


def test_single_canary_only_rollout_completes_after_the_canary() -> None:
    assert gate(0, 1, hosts(1), 0, 1, ErrorBudget()).verdict is Verdict.COMPLETE


def test_last_wave_over_budget_halts_rather_than_completes() -> None:
    result = gate(4, 5, hosts(8, failed=2, wave=4), total_failures=2, planned_hosts=20, budget=BUDGET)
    assert result.verdict is Verdict.HALT


def test_only_hosts_with_a_failure_count_against_the_budget() -> None:
    # A host rolled back because its wave halted has no failure of its own.
    wave = hosts(3, failed=0, wave=1)
    wave[0] = wave[0].model_copy(update={"state": HostState.ROLLED_BACK})
    assert gate(1, 3, wave, 0, 10, ErrorBudget()).wave_failures == 0
