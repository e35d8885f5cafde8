"""Finish: the rollout's outcome, recorded once and told (finish); and the settlement of an execution that
ended outside its own error handling, stopped or timed out (settle)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from updraft.domain.host_record import count_states
from updraft.domain.lifecycle import OUTCOME_EVENTS
from updraft.domain.rollout_events import Mark
from updraft.domain.rollout_record import (
    ROLLED_BACK,
    Rollout,
    RolloutRecord,
    RolloutStatus,
    outcome_of,
    settled_outcome,
)
from updraft.flow import context
from updraft.flow.effects import put_abandoned
from updraft.ports import RolloutLedger
from updraft.settings import Settings

# How often a settlement reads again the hosts a step still running wrote meanwhile, before it gives up.
CLOSE_ROUNDS = 5


def finish(env: Settings, rollout: Rollout, now: datetime, error: dict[str, Any] | None) -> dict[str, Any]:
    ports = context.ports(env)
    ledger = ports.ledger
    record = context.load(ledger, rollout.rollout_id)
    if record.ended:
        return _recorded_end(rollout, record)  # a replay, or the execution's end was settled first
    hosts = ledger.all_hosts(rollout.rollout_id)
    if error:
        cause = f"{error.get('Error', 'Error')}: {str(error.get('Cause', ''))[:300]}"
        put_abandoned(ledger, [host for host in hosts if not host.final], cause, now)
        hosts = ledger.all_hosts(rollout.rollout_id)
    ended = outcome_of(record, failed=bool(error))
    outcome = ended.value
    summary = count_states(hosts)
    summary["skipped_at_plan"] = record.skipped_hosts
    fields: dict[str, Any] = {"status": ended, "finished_at": now.isoformat(), "summary": summary}
    if error:
        fields["error"] = cause
    if not ledger.close_rollout(rollout.rollout_id, **RolloutRecord.item_fields(**fields)):
        return _recorded_end(rollout, context.load(ledger, rollout.rollout_id))
    _record_group_outcome(ledger, record, rollout, outcome, now)
    reason = fields.get("error") or record.halt_reason or ""
    context.tell(ports, OUTCOME_EVENTS[ended], rollout, now, outcome=outcome, summary=summary, reason=reason)
    context.mark(ledger, rollout, Mark.ROLLOUT_ENDED, now, detail=f"{outcome}: {reason}" if reason else outcome)
    return {"rollout": rollout.as_state(), "outcome": outcome, "summary": summary}


def settle(env: Settings, rollout: Rollout, execution_id: str, status: str, now: datetime) -> dict[str, Any]:
    """An execution ended outside its own error handling (stopped, timed out): record every host it
    left in flight and release the group's lock if the execution still holds it. The rollout is closed
    first: a step of the execution still running can then write no host (nor send to one) after this."""
    ports = context.ports(env)
    ledger = ports.ledger
    record = context.load(ledger, rollout.rollout_id)
    cause = f"the execution ended {status}"
    ended = settled_outcome(status)
    outcome = ended.value
    fields = RolloutRecord.item_fields(status=ended, finished_at=now.isoformat(), error=cause)
    closed = ledger.close_rollout(rollout.rollout_id, **fields)
    if closed:
        _close_hosts(ledger, rollout, cause, now)
        _record_group_outcome(ledger, record, rollout, outcome, now)
        summary = count_states(ledger.all_hosts(rollout.rollout_id))
        context.tell(ports, OUTCOME_EVENTS[ended], rollout, now, outcome=outcome, summary=summary, reason=cause)
        context.mark(ledger, rollout, Mark.ROLLOUT_ENDED, now, detail=f"{outcome}: {cause}")
    released = ports.locks.release(rollout.group, execution_id)
    return {"rollout": rollout.as_state(), "already_recorded": not closed, "lock_released": released}


def _recorded_end(rollout: Rollout, record: RolloutRecord) -> dict[str, Any]:
    summary = dict(record.summary or {})
    return {"rollout": rollout.as_state(), "outcome": record.status.value, "summary": summary}


def _record_group_outcome(
    ledger: RolloutLedger, record: RolloutRecord, rollout: Rollout, outcome: str, now: datetime
) -> None:
    """What a group that follows this one waits for. A rollback that went through marks the version it
    undid as rolled back, so that followers skip it."""
    undone = record.rollback_of
    if not undone:
        ledger.record_group_outcome(rollout.group, rollout.target_version, outcome, rollout.rollout_id, now.isoformat())
    elif outcome == RolloutStatus.SUCCEEDED:
        version = context.load(ledger, undone).target_version
        ledger.record_group_outcome(rollout.group, version, ROLLED_BACK, rollout.rollout_id, now.isoformat())


def _close_hosts(ledger: RolloutLedger, rollout: Rollout, cause: str, now: datetime) -> None:
    """Write every host a last time, marked closed, those in flight abandoned. A host a running step wrote
    meanwhile is read again and closed on the next round; once closed, no step writes it."""
    hosts = ledger.all_hosts(rollout.rollout_id)
    for _ in range(CLOSE_ROUNDS):
        written = {host.instance_id for host in put_abandoned(ledger, hosts, cause, now, now.isoformat())}
        changed = [host for host in hosts if host.instance_id not in written]
        if not changed:
            return
        hosts = [found for host in changed if (found := ledger.host(host.rollout_id, host.wave, host.instance_id))]
