"""Maintenance windows: when a wave may start so that it also ends inside the window."""

from __future__ import annotations

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
    # Windows may overlap (a duration longer than the gap between openings): any open one will do.
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


def is_open(window: MaintenanceWindow, now: datetime) -> bool:
    return next_start(window, now, timedelta(0)) == now
