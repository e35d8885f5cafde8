"""What every step shares: its ports, the rollout's record read once and written field by field, the events it
tells, and the shape of its result."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from updraft.adapters.aws_ports import aws_ports
from updraft.domain.lifecycle import Kind, detail
from updraft.domain.rollout_events import Mark, RolloutEvent, event_key
from updraft.domain.rollout_record import Rollout, RolloutRecord
from updraft.ports import Ports, RolloutLedger
from updraft.settings import Settings


def ports(env: Settings) -> Ports:
    return env.ports or aws_ports(env.ledger_table, env.lock_table)


def load(ledger: RolloutLedger, rollout_id: str) -> RolloutRecord:
    """The rollout's record (RolloutNotFound if there is none)."""
    return RolloutRecord.from_item(ledger.rollout(rollout_id))


def write(ledger: RolloutLedger, rollout_id: str, **fields: Any) -> None:
    """Record `fields` (typed values) of the rollout."""
    ledger.update_rollout(rollout_id, **RolloutRecord.item_fields(**fields))


def tell(ports: Ports, kind: Kind, rollout: Rollout, now: datetime, **data: Any) -> None:
    ports.events.publish([detail(kind, rollout.as_state(), now.isoformat(), **data)])


def mark(
    ledger: RolloutLedger,
    rollout: Rollout,
    kind: Mark,
    now: datetime,
    wave: int | None = None,
    detail: str = "",
    instance: str = "",
) -> None:
    """Keep one of the rollout's own events for its timeline; recorded again by a retry, the first stands."""
    event = RolloutEvent.of(kind, now.isoformat(), wave, detail)
    ledger.record_event(rollout.rollout_id, event_key(kind, wave, instance), event.model_dump(mode="json"))


def state(rollout: Rollout, wave: int, **progress: Any) -> dict[str, Any]:
    """A step's result: the rollout, the wave, and the step's progress."""
    return {"rollout": rollout.as_state(), "wave": wave, "progress": progress}
