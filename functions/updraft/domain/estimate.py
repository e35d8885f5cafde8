"""How long a rollout of a group may take: a typical and a worst-case duration, from its policy and waves.

The hosts of a wave update in parallel, so a wave costs about one host update whatever its size; waves
run one after the other. Time spent waiting for a maintenance window is not counted (see `next_window`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from cronsim import CronSim

from updraft.config import GroupPolicy, MaintenanceWindow

# A typical Bottlerocket host update: download and write the image (~2-3 min), reboot into it (~1-2 min),
# then the verify document and the EC2 status checks (~1 min).
TYPICAL_HOST_UPDATE_SECONDS = 6 * 60


@dataclass(frozen=True)
class WaveEstimate:
    hosts: int
    typical_seconds: int
    worst_seconds: int


@dataclass(frozen=True)
class Estimate:
    waves: list[WaveEstimate]

    @property
    def typical_seconds(self) -> int:
        return sum(wave.typical_seconds for wave in self.waves)

    @property
    def worst_seconds(self) -> int:
        return sum(wave.worst_seconds for wave in self.waves)


def _health_seconds(policy: GroupPolicy) -> int:
    return policy.health_check.timeout_seconds if policy.health_check else 0


def typical_wave_seconds(policy: GroupPolicy) -> int:
    """A host update, one poll interval before the rollout sees it done, the health check and the bake."""
    return TYPICAL_HOST_UPDATE_SECONDS + policy.poll_interval_seconds + _health_seconds(policy) + policy.bake_seconds


def worst_wave_seconds(policy: GroupPolicy) -> int:
    """Every timeout of a wave spent in full: the drain, the apply, the verify, the health check, the bake."""
    drain = policy.ecs.drain_timeout_seconds if policy.ecs else 0
    timeouts = policy.apply_timeout_seconds + policy.verify_timeout_seconds + _health_seconds(policy)
    return drain + timeouts + policy.bake_seconds


def estimate(policy: GroupPolicy, wave_sizes: list[int]) -> Estimate:
    typical, worst = typical_wave_seconds(policy), worst_wave_seconds(policy)
    return Estimate([WaveEstimate(size, typical, worst) for size in wave_sizes])


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
