"""The rollout's own events, as the ledger keeps them beside its record: its waves, bakes, alarms, halt, pauses
and abort, each with its time. With the hosts' histories they are the rollout's timeline (`updraft report`).

An event is keyed by what it is, never by when a step saw it: a retried step that records it again finds it
there, and the first record stands.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

DETAIL_LIMIT = 300


class Mark(StrEnum):
    ROLLOUT_STARTED = "rollout-started"  # planned: its waves are known
    WAVE_STARTED = "wave-started"
    WAVE_FINISHED = "wave-finished"  # its gate's verdict, bake included
    BAKE_STARTED = "bake-started"
    ALARM = "alarm"  # an alarm of the group's gate fired during the wave or its bake
    HALT = "halt"  # a gate halted the rollout: what has not started is skipped, its scope rolled back
    PAUSED = "paused"
    RESUMED = "resumed"
    ABORT_REQUESTED = "abort-requested"  # seen by the rollout: it starts nothing more
    WAITING = "waiting"  # held before a wave: kill switch, pause, maintenance window
    ROLLOUT_ENDED = "rollout-ended"


# What happens at most once in a rollout, whichever wave sees it.
ONCE = frozenset({Mark.ROLLOUT_STARTED, Mark.HALT, Mark.ABORT_REQUESTED, Mark.ROLLOUT_ENDED})


class RolloutEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: Mark
    at: str
    wave: int | None = None
    detail: str = ""

    @classmethod
    def of(cls, kind: Mark, at: str, wave: int | None = None, detail: str = "") -> RolloutEvent:
        short = detail if len(detail) <= DETAIL_LIMIT else detail[: DETAIL_LIMIT - 1] + "…"
        return cls(kind=kind, at=at, wave=wave, detail=short)


def event_key(kind: Mark, wave: int | None = None, instance: str = "") -> str:
    """What identifies an event: its kind, its wave, and for events that may happen more than once in a wave
    (a pause, a wait for another reason) what tells them apart."""
    key = str(kind) if wave is None or kind in ONCE else f"{kind}#{wave:04d}"
    if instance:
        key += "#" + hashlib.sha256(instance.encode()).hexdigest()[:12]
    return key
