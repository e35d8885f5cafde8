r"""A rollout as the steps know it: the reference the state machine carries, and the record the ledger keeps.

    planning -> inventory -> rolling-out -> ... -> succeeded
                         \-> nothing-to-do
    before a wave:  rolling-out -> waiting -> rolling-out         kill switch, pause, maintenance window
    after a wave:   rolling-out -> baking -> rolling-out          its alarms stayed OK through the bake
    halted:         -> halting -> halted-rolling-back -> halted   a gate, an alarm, a withdrawn release
    aborted:        -> aborting -> aborted                        an operator's request
    failed:         a step failed; failed, aborted or timed-out: its execution ended outside its own handling

The record's fields are the attributes of the ledger's rollout item, stored as they always were: the policy
and the wave results as JSON strings, everything else as plain values (`item_fields` gives them so).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, field_serializer, field_validator

from updraft.config import GroupPolicy


@dataclass(frozen=True)
class Rollout:
    """What the state machine carries between steps: small and constant in size."""

    rollout_id: str
    group: str
    target_version: str

    def as_state(self) -> dict[str, str]:
        return {"rollout_id": self.rollout_id, "group": self.group, "target_version": self.target_version}


class RolloutStatus(StrEnum):
    PLANNING = "planning"  # the lock is taken, the record written
    INVENTORY = "inventory"  # the inventory document runs
    NOTHING_TO_DO = "nothing-to-do"  # planned, and no host needs the update
    ROLLING_OUT = "rolling-out"
    WAITING = "waiting"  # held before a wave: kill switch, pause, maintenance window
    BAKING = "baking"  # a wave's hosts are done; its alarms must stay OK a while
    HALTING = "halting"  # a gate halted the rollout
    HALTED_ROLLING_BACK = "halted-rolling-back"
    ABORTING = "aborting"  # an operator asked it to stop
    # How a rollout ends.
    SUCCEEDED = "succeeded"
    HALTED = "halted"
    FAILED = "failed"
    ABORTED = "aborted"
    TIMED_OUT = "timed-out"


# A rollout's end, once recorded (an operator's request then finds no running rollout).
ENDED = (
    RolloutStatus.SUCCEEDED,
    RolloutStatus.HALTED,
    RolloutStatus.FAILED,
    RolloutStatus.NOTHING_TO_DO,
    RolloutStatus.ABORTED,
    RolloutStatus.TIMED_OUT,
)
# What a group that follows another waits for: how the leader's rollout to a version ended, or this, when a
# rollback undid that version.
ROLLED_BACK = "rolled-back"


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Request(_Part):
    """An operator's pause, resume or abort request, as the controls write it."""

    by: str | None = None
    reason: str | None = None
    at: str | None = None


class InventoryRun(_Part):
    commands: list[str]
    deadline: str


class AlarmTrip(_Part):
    """An alarm fired while a wave ran: the wave fails at its gate."""

    wave: int
    alarms: list[str]
    at: str


class Bake(_Part):
    wave: int
    until: str
    then: str  # the gate's verdict, given once the bake is over


class WaveResult(_Part):
    failures: int
    verdict: str
    reason: str


class RolloutRecord(BaseModel):
    """The ledger's record of one rollout (numbers come back from DynamoDB as Decimal: read as int)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    rollout_id: str
    group: str
    target_version: str
    status: RolloutStatus
    requested_by: str = "operator"
    execution_id: str = ""
    started_at: str = ""
    tag_key: str = ""
    policy: GroupPolicy  # the policy it started with: a config change never alters a rollout in flight
    rollback_of: str | None = None  # the rollout this one undoes
    rolled_back_by: str | None = None  # the rollout that undid this one
    inventory: InventoryRun | None = None
    # The plan: set once it is recorded.
    wave_sizes: list[int] = []
    planned_hosts: int | None = None
    skipped_hosts: int = 0
    # The waves.
    current_wave: int | None = None
    wave_started_at: str | None = None
    waiting_reason: str | None = None
    alarm_tripped: AlarmTrip | None = None
    bake: Bake | None = None
    bake_until: str | None = None
    wave_results: dict[int, WaveResult] = {}
    halt_reason: str | None = None
    # Operator requests and a withdrawn release: written by others while the rollout runs.
    paused: bool = False
    pause: Request | None = None
    resumed: Request | None = None
    pause_announced: bool = False
    abort_requested: Request | None = None
    withdrawn: bool = False
    withdrawn_at: str | None = None
    # The end.
    finished_at: str | None = None
    summary: dict[str, int] | None = None
    error: str | None = None

    @field_validator("policy", mode="before")
    @classmethod
    def _policy_json(cls, value: Any) -> Any:
        return GroupPolicy.model_validate_json(value) if isinstance(value, str) else value

    @field_validator("wave_results", mode="before")
    @classmethod
    def _results_json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @field_serializer("policy")
    def _store_policy(self, policy: GroupPolicy) -> str:
        return policy.model_dump_json()

    @field_serializer("wave_results")
    def _store_results(self, results: dict[int, WaveResult]) -> str:
        return json.dumps({wave: result.model_dump() for wave, result in results.items()}, sort_keys=True)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> RolloutRecord:
        return cls.model_validate(item)

    @property
    def reference(self) -> Rollout:
        return Rollout(self.rollout_id, self.group, self.target_version)

    @property
    def planned(self) -> bool:
        return self.planned_hosts is not None

    @property
    def ended(self) -> bool:
        return self.finished_at is not None

    def changed(self, **fields: Any) -> RolloutRecord:
        """The record with `fields` changed (typed values: a status, a Bake, ...)."""
        _known(fields)
        return self.model_copy(update=fields)

    def item(self) -> dict[str, Any]:
        """Every field set (given when the record was made), as the ledger item keeps them."""
        return self.model_dump(mode="json", exclude_unset=True)

    @classmethod
    def item_fields(cls, **fields: Any) -> dict[str, Any]:
        """`fields` (typed values) as the ledger item keeps them: what a step writes of the record."""
        _known(fields)
        return cls.model_construct(**fields).model_dump(mode="json", include=set(fields))


def _known(fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(RolloutRecord.model_fields)
    if unknown:
        raise TypeError(f"no such field of a rollout record: {', '.join(sorted(unknown))}")


def outcome_of(record: RolloutRecord, failed: bool) -> RolloutStatus:
    """How a rollout ends when its execution reaches its end (`failed`: through its error handling)."""
    if failed:
        return RolloutStatus.FAILED
    if record.status in (RolloutStatus.HALTING, RolloutStatus.HALTED_ROLLING_BACK):
        return RolloutStatus.HALTED
    if record.status is RolloutStatus.ABORTING:
        return RolloutStatus.ABORTED
    if record.status is RolloutStatus.NOTHING_TO_DO:
        return RolloutStatus.NOTHING_TO_DO
    return RolloutStatus.SUCCEEDED


def settled_outcome(execution_status: str) -> RolloutStatus:
    """How a rollout ends when its execution ended outside its own error handling (stopped, timed out)."""
    return {"ABORTED": RolloutStatus.ABORTED, "TIMED_OUT": RolloutStatus.TIMED_OUT}.get(
        execution_status, RolloutStatus.FAILED
    )
