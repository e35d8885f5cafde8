"""The lifecycle events Updraft publishes on the account's default EventBridge bus: their schema.

Every event has source `updraft`, one of the detail types below, and a detail that starts with the
same five fields, so that one rule or one consumer can follow a rollout from start to end. The
schema is versioned: fields are only ever added within a version.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from updraft.domain.rollout_record import RolloutStatus

SOURCE = "updraft"
SCHEMA_VERSION = "1"


class Kind(StrEnum):
    ROLLOUT_STARTED = "Rollout Started"
    WAVE_STARTED = "Wave Started"
    WAVE_FINISHED = "Wave Finished"
    HOST_ROLLED_BACK = "Host Rolled Back"
    ROLLOUT_PAUSED = "Rollout Paused"
    ROLLOUT_RESUMED = "Rollout Resumed"
    ROLLOUT_SUCCEEDED = "Rollout Succeeded"
    ROLLOUT_HALTED = "Rollout Halted"
    ROLLOUT_FAILED = "Rollout Failed"
    ROLLOUT_ABORTED = "Rollout Aborted"


# How a rollout ended -> the event that says so.
OUTCOME_EVENTS = {
    RolloutStatus.SUCCEEDED: Kind.ROLLOUT_SUCCEEDED,
    RolloutStatus.NOTHING_TO_DO: Kind.ROLLOUT_SUCCEEDED,
    RolloutStatus.HALTED: Kind.ROLLOUT_HALTED,
    RolloutStatus.FAILED: Kind.ROLLOUT_FAILED,
    RolloutStatus.TIMED_OUT: Kind.ROLLOUT_FAILED,
    RolloutStatus.ABORTED: Kind.ROLLOUT_ABORTED,
}


class LifecycleDetail(BaseModel):
    """The detail of every lifecycle event. `data` holds what the detail type adds (see the README)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: str = SCHEMA_VERSION
    rollout_id: str
    group: str
    target_version: str
    kind: Kind
    time: str  # when it happened, in the rollout's (virtual or real) clock, ISO 8601
    data: dict[str, Any] = {}


def detail(kind: Kind, rollout: dict[str, str], now: str, **data: Any) -> LifecycleDetail:
    return LifecycleDetail(
        rollout_id=rollout["rollout_id"],
        group=rollout["group"],
        target_version=rollout["target_version"],
        kind=kind,
        time=now,
        data=data,
    )
