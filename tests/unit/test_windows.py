"""Maintenance windows: a wave starts only when it can also end inside an open window."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from updraft.config import GroupPolicy, MaintenanceWindow
from updraft.domain.windows import next_start, next_window

NIGHTLY = MaintenanceWindow(schedule="0 2 * * *", duration_minutes=120, timezone="UTC")
WAVE = timedelta(minutes=35)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_wave_starts_now_inside_the_window():
    assert next_start(NIGHTLY, at("2026-03-02T02:30"), WAVE) == at("2026-03-02T02:30")


def test_a_wave_that_would_end_after_the_window_waits_for_the_next_opening():
    assert next_start(NIGHTLY, at("2026-03-02T03:26"), WAVE) == at("2026-03-03T02:00")
    assert next_start(NIGHTLY, at("2026-03-02T03:25"), WAVE) == at("2026-03-02T03:25")  # ends exactly at 04:00


def test_before_the_window_the_wave_waits_for_it_to_open():
    assert next_start(NIGHTLY, at("2026-03-02T01:59:30"), WAVE) == at("2026-03-02T02:00")


def test_openings_follow_the_window_time_zone_across_daylight_saving_time():
    paris = MaintenanceWindow(schedule="0 2 * * 0", duration_minutes=180, timezone="Europe/Paris")
    # Sunday 2026-03-29: clocks go from 02:00 to 03:00 in Paris, so "02:00" does not exist that night and
    # the window opens at the first valid local time; a week later 02:00 CEST is 00:00 UTC.
    assert next_start(paris, at("2026-04-01T12:00"), WAVE) == at("2026-04-05T00:00")
    assert next_start(paris, at("2026-01-05T12:00"), WAVE) == at("2026-01-11T01:00")  # 02:00 CET


def test_with_overlapping_windows_a_wave_must_fit_inside_one_of_them():
    hourly = MaintenanceWindow(schedule="0 * * * *", duration_minutes=90, timezone="UTC")
    assert next_window(hourly, at("2026-03-02T05:59")).open_now
    # 05:00's window runs to 06:30: twenty minutes fit, an hour does not and waits for 06:00's.
    assert next_start(hourly, at("2026-03-02T05:59"), timedelta(minutes=20)) == at("2026-03-02T05:59")
    assert next_start(hourly, at("2026-03-02T05:59"), timedelta(minutes=60)) == at("2026-03-02T06:00")


def test_weekday_windows_skip_the_weekend():
    weekdays = MaintenanceWindow(schedule="30 22 * * 1-5", duration_minutes=60, timezone="UTC")
    friday_late = at("2026-03-06T23:10")  # Friday's window is open, but too late for a 35 minute wave
    assert next_start(weekdays, friday_late, WAVE) == at("2026-03-09T22:30")  # Monday


def test_a_wave_longer_than_the_window_is_refused():
    with pytest.raises(ValueError, match="longer than"):
        next_start(NIGHTLY, at("2026-03-02T02:00"), timedelta(hours=3))


def test_config_refuses_a_window_too_short_for_one_wave_naming_the_field():
    with pytest.raises(ValidationError, match=r"maintenance_window\.duration_minutes: 30 min cannot hold one wave"):
        GroupPolicy(
            name="g",
            variant="aws-ecs-2",
            maintenance_window={"schedule": "0 2 * * *", "duration_minutes": 30},
        )


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ({"schedule": "0 25 * * *", "duration_minutes": 60}, "not a cron expression"),
        ({"schedule": "0 2 * * *", "duration_minutes": 60, "timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"schedule": "0 2 * * *", "duration_minutes": 5}, "greater than or equal to 15"),
    ],
)
def test_config_refuses_a_malformed_window(window, message):
    with pytest.raises(ValidationError, match=message):
        MaintenanceWindow(**window)
