"""Rollout duration estimates and the next maintenance window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from updraft.config import GroupPolicy, MaintenanceWindow
from updraft.domain.estimate import TYPICAL_HOST_UPDATE_SECONDS, estimate
from updraft.domain.windows import next_window


def policy(**fields: object) -> GroupPolicy:
    return GroupPolicy.model_validate({"name": "web", "variant": "aws-ecs-2", **fields})


def test_each_wave_costs_one_host_update_whatever_its_size() -> None:
    plain = policy(poll_interval_seconds=30, apply_timeout_seconds=1200, verify_timeout_seconds=900)

    result = estimate(plain, [1, 2, 4, 50])

    assert [wave.hosts for wave in result.waves] == [1, 2, 4, 50]
    assert {wave.typical_seconds for wave in result.waves} == {TYPICAL_HOST_UPDATE_SECONDS + 30}
    assert result.typical_seconds == 4 * (TYPICAL_HOST_UPDATE_SECONDS + 30)
    assert result.worst_seconds == 4 * (1200 + 900)


def test_gates_add_their_time_to_every_wave() -> None:
    gated = policy(
        poll_interval_seconds=60,
        apply_timeout_seconds=1800,
        verify_timeout_seconds=600,
        bake_seconds=900,
        health_check={"command": "true", "timeout_seconds": 300},
        ecs={"cluster": "web", "drain_timeout_seconds": 1200},
    )

    result = estimate(gated, [1, 2])

    assert result.waves[0].typical_seconds == TYPICAL_HOST_UPDATE_SECONDS + 60 + 300 + 900
    assert result.waves[0].worst_seconds == 1800 + 600 + 900 + 300 + 1200
    assert result.worst_seconds == 2 * (1800 + 600 + 900 + 300 + 1200)


def test_no_waves_take_no_time() -> None:
    result = estimate(policy(), [])

    assert (result.typical_seconds, result.worst_seconds) == (0, 0)


NIGHTLY = MaintenanceWindow(schedule="0 2 * * *", duration_minutes=120, timezone="Europe/Paris")


@pytest.mark.parametrize(
    ("now", "opens", "open_now"),
    [
        # 09:00 UTC is 10:00 in Paris (winter): the next window opens tomorrow at 02:00 local.
        (datetime(2026, 1, 5, 9, 0, tzinfo=UTC), datetime(2026, 1, 6, 1, 0, tzinfo=UTC), False),
        # 01:30 UTC is 02:30 in Paris: inside today's window, which opened at 02:00 local.
        (datetime(2026, 1, 5, 1, 30, tzinfo=UTC), datetime(2026, 1, 5, 1, 0, tzinfo=UTC), True),
        # The very minute it opens counts as open.
        (datetime(2026, 1, 5, 1, 0, tzinfo=UTC), datetime(2026, 1, 5, 1, 0, tzinfo=UTC), True),
        # The minute it closes does not.
        (datetime(2026, 1, 5, 3, 0, tzinfo=UTC), datetime(2026, 1, 6, 1, 0, tzinfo=UTC), False),
    ],
)
def test_next_window_in_the_windows_time_zone(now: datetime, opens: datetime, open_now: bool) -> None:
    window = next_window(NIGHTLY, now)

    assert window.opens_at == opens
    assert window.open_now is open_now
    assert window.closes_at - window.opens_at == timedelta(minutes=120)
    assert window.opens_at.tzname() == "CET"  # reported in the window's own zone
