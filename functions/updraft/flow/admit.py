"""Admit: whether an announced release may start the group's rollout (check_release), then the group's lock and
the rollout's record (acquire); a rollback's refusal or its targets included."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from updraft.config import GroupPolicy, RolloutRequest
from updraft.domain import provenance, rollback
from updraft.domain.eligibility import Verdict, admit, wait_seconds
from updraft.domain.host_record import HostRecord
from updraft.domain.rollout_record import Rollout, RolloutRecord, RolloutStatus
from updraft.errors import InvalidRolloutRequest, RollbackRefused, RolloutNotFound
from updraft.flow import context
from updraft.ports import RolloutLedger
from updraft.settings import Settings

# The verdict on an announcement no release record of the detector vouches for: nothing starts.
FORGED = "forged"


def check_release(env: Settings, request: Any, execution_id: str, now: datetime) -> dict[str, Any]:
    """May this announced release start the group's rollout now, later, or never? Only a release the detector
    recorded may: an announcement it did not make is `forged`, and takes no claim."""
    valid, policy = _validated(env, request)
    ports = context.ports(env)
    ledger = ports.ledger
    version = valid.target_version
    record = ports.releases.release(policy.variant, policy.arch, version)
    forged = provenance.unverified_release(record, version, valid.released_at)
    if forged:
        return {"request": request, "verdict": FORGED, "reason": forged}
    leader = ledger.group_outcome(policy.follows, version) if policy.follows else None
    withdrawn = ports.releases.withdrawn(policy.variant, policy.arch, version)
    released_at = provenance.verified_release_time(record)
    decision = admit(policy, version, released_at, now, leader, withdrawn)
    result: dict[str, Any] = {"request": request, "verdict": str(decision.verdict), "reason": decision.reason}
    if decision.verdict is Verdict.WAIT:
        result["wait_seconds"] = wait_seconds(decision, now)
    elif decision.verdict is Verdict.START and not ledger.claim_automatic(
        valid.group, version, execution_id, now.isoformat()
    ):
        result |= {"verdict": "duplicate", "reason": "another execution already took this release for the group"}
    return result


def acquire(env: Settings, request: Any, execution_id: str, rollout_id: str, now: datetime) -> dict[str, Any]:
    """Take the group's lock and, with it, record the rollout and the policy it runs under."""
    valid, policy = _validated(env, request)
    ports = context.ports(env)
    ledger = ports.ledger
    undoing = _undoable(ledger, valid.group, valid.rollback_of, policy, now) if valid.rollback_of else None
    target = valid.target_version or rollback.common_previous_version(undoing or [])
    rollout = Rollout(rollout_id, valid.group, target)
    if undoing:
        policy = rollback.urgent(policy)
    lock = ports.locks.acquire(
        valid.group,
        execution_id,
        {"rollout_id": rollout_id, "target_version": valid.target_version, "acquired_at": now.isoformat()},
    )
    if lock.acquired:
        record = RolloutRecord(
            **rollout.as_state(),
            requested_by=valid.requested_by,
            execution_id=execution_id,
            status=RolloutStatus.PLANNING,
            started_at=now.isoformat(),
            tag_key=env.config.tag_key,
            policy=policy,
            **({"rollback_of": valid.rollback_of} if valid.rollback_of else {}),
        )
        ledger.create_rollout(record.item())
        if valid.rollback_of:
            context.write(ledger, valid.rollback_of, rolled_back_by=rollout_id)
    return {"acquired": lock.acquired, "holder": lock.holder, "rollout": rollout.as_state()}


def _validated(env: Settings, request: Any) -> tuple[RolloutRequest, GroupPolicy]:
    try:
        valid = RolloutRequest.model_validate(request)
        return valid, env.config.group(valid.group)
    except ValidationError as error:
        fields = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in error.errors())
        raise InvalidRolloutRequest(fields) from None
    except KeyError:
        known = ", ".join(group.name for group in env.config.groups)
        raise InvalidRolloutRequest(f"group: {valid.group!r} is not configured (configured: {known})") from None


def _undoable(
    ledger: RolloutLedger, group: str, rollout_id: str, policy: GroupPolicy, now: datetime
) -> list[HostRecord]:
    """The hosts a finished rollout updated, if it may still be rolled back; else a named refusal."""
    try:
        undone = context.load(ledger, rollout_id)
    except RolloutNotFound:
        raise RollbackRefused(f"rollback_of: no rollout {rollout_id!r}") from None
    refusal = rollback.refusal(undone, group, policy, now)
    if refusal:
        raise RollbackRefused(refusal)
    updated = rollback.updated(ledger.all_hosts(rollout_id))
    if not updated:
        raise RollbackRefused(f"rollback_of: {rollout_id} left no host updated")
    return updated
