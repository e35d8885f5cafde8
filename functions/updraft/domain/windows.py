"""Maintenance windows: when a wave may start so that it also ends inside the window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim

from updraft.config import MaintenanceWindow

MAX_OPENINGS = 10_000


def next_start(window: MaintenanceWindow, now: datetime, needed: timedelta) -> datetime:
    """`now` if a wave needing `needed` can start now and end inside an open window, else the next opening.

    Openings are read in the window's time zone (so "02:00" stays 02:00 across daylight saving time).
    """
    local = now.astimezone(ZoneInfo(window.timezone))
    length = timedelta(minutes=window.duration_minutes)
    if needed > length:
        raise ValueError(f"a wave needs {needed}, longer than the {length} window")
    # Windows may overlap (a duration longer than the gap between openings): the wave must fit in one.
    for opened in CronSim(window.schedule, local + timedelta(seconds=1), reverse=True):
        if opened + length <= local:
            break
        if local + needed <= opened + length:
            return now
    for count, opening in enumerate(CronSim(window.schedule, local)):
        if count >= MAX_OPENINGS:
            break
        if opening > local:
            return opening.astimezone(now.tzinfo)
    raise ValueError(f"the window {window.schedule!r} never opens")


@dataclass(frozen=True)
class WindowOpening:
    opens_at: datetime
    closes_at: datetime
    open_now: bool


def next_window(window: MaintenanceWindow, now: datetime) -> WindowOpening:
    """The window open at `now` (aware), or else the next one to open; times in the window's zone."""
    local = now.astimezone(ZoneInfo(window.timezone))
    length = timedelta(minutes=window.duration_minutes)
    # The latest opening at or before now (cron has minute resolution; CronSim starts after its argument).
    last = next(CronSim(window.schedule, local.replace(second=0, microsecond=0) + timedelta(minutes=1), reverse=True))
    if last <= local < last + length:
        return WindowOpening(last, last + length, open_now=True)
    upcoming = next(CronSim(window.schedule, local))
    return WindowOpening(upcoming, upcoming + length, open_now=False)
