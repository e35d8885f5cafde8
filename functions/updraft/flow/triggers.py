"""Outside the flow, events that change it: a release was pulled (withdraw), or a group's alarm fired after its
rollout finished (rollback_on_alarm)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from updraft.adapters import executions
from updraft.domain import provenance, rollback
from updraft.domain.rollout_record import RolloutRecord
from updraft.flow import context
from updraft.settings import Settings


def withdraw(env: Settings, variant: str, arch: str, version: str, now: datetime) -> dict[str, Any]:
    """A release was pulled: flag the running rollouts to it (`halting`); each halts at its next gate. A
    withdrawal the detector did not make (its release record says nothing of it) flags nothing (`forged`)."""
    ports, flagged = context.ports(env), []
    forged = provenance.unverified_withdrawal(ports.releases.release(variant, arch, version), version)
    if forged:
        return {"halting": [], "forged": forged}
    groups = {g.name for g in env.config.groups if (g.variant, g.arch) == (variant, arch)}
    ledger = ports.ledger
    for lock in ports.locks.held():
        if lock["group"] in groups and lock.get("target_version") == version:
            context.write(ledger, lock["rollout_id"], withdrawn=True, withdrawn_at=now.isoformat())
            flagged.append(lock["rollout_id"])
    return {"halting": flagged}


def rollback_on_alarm(env: Settings, alarm_name: str, now: datetime) -> list[str]:
    """Roll back the latest rollout of each group that watches `alarm_name`, if it succeeded within the
    group's rollback window and no rollout of the group runs now. Returns the rollouts rolled back."""
    ports, started = context.ports(env), []
    ledger = ports.ledger
    held = {lock["group"] for lock in ports.locks.held()}
    for policy in env.config.groups:
        if not rollback.undone_by_alarm(policy, alarm_name, held):
            continue
        item = next(iter(ledger.group_rollouts(policy.name, newest=1)), None)
        latest = RolloutRecord.from_item(item) if item else None
        if not latest or not rollback.within_window(latest, policy, now):
            continue
        request = {"group": policy.name, "rollback_of": latest.rollout_id, "requested_by": f"alarm {alarm_name}"}
        if executions.start(env.state_machine_arn, f"rollback-{latest.rollout_id}"[:80], request):
            started.append(latest.rollout_id)
    return started
