"""Stop: a halt (a gate, an alarm, a withdrawn release) skips what has not started and rolls back its scope;
an abort (an operator's request) only starts nothing more."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from updraft.adapters import ssm
from updraft.domain import rollback
from updraft.domain.holds import abort_reason
from updraft.domain.host_actions import Observation
from updraft.domain.host_record import HostState
from updraft.domain.host_transitions import begin_rollback
from updraft.domain.rollout_events import Mark
from updraft.domain.rollout_record import Rollout, RolloutStatus
from updraft.flow import context
from updraft.flow.effects import carry_out, resume_sends
from updraft.settings import Settings


def halt(env: Settings, rollout: Rollout, wave: int, now: datetime) -> dict[str, Any]:
    """Start no more waves: skip the hosts not yet started; roll back the rollback scope."""
    ports = context.ports(env)
    ledger = ports.ledger
    record = context.load(ledger, rollout.rollout_id)
    policy = record.policy
    context.mark(ledger, rollout, Mark.HALT, now, wave, record.halt_reason or "")  # kept from the gate if it told
    hosts = resume_sends(env, ledger, ledger.all_hosts(rollout.rollout_id), policy)
    skipped = [
        host.move(HostState.SKIPPED, "not started: the rollout halted", now)
        for host in hosts
        if host.state is HostState.PENDING
    ]
    ledger.put_hosts(skipped)
    scope = rollback.halt_scope(record)
    in_scope = [host for host in rollback.updated(hosts) if rollback.in_scope(host, scope, wave)]
    connected = ssm.online([host.instance_id for host in in_scope])
    note = f"rolling back with the halted rollout ({scope} scope)"
    steps = [
        begin_rollback(host, note, Observation(online=host.instance_id in connected), now, policy) for host in in_scope
    ]
    started = carry_out(env, ledger, steps, policy, now)
    context.write(ledger, rollout.rollout_id, status=RolloutStatus.HALTED_ROLLING_BACK)
    # Counted from the records, not from this attempt's steps: a retry finds its rollbacks already started.
    current = {host.instance_id: host for host in hosts} | {host.instance_id: host for host in started}
    rolling_back = sum(1 for host in current.values() if host.state is HostState.ROLLING_BACK)
    progress = {"done": not rolling_back, "next_poll_seconds": policy.poll_interval_seconds}
    progress["rolling_back"] = rolling_back
    return {"rollout": rollout.as_state(), "wave": wave, "progress": progress}


def abort(env: Settings, rollout: Rollout, wave: int, now: datetime) -> dict[str, Any]:
    """Start no more waves; hosts already done stay as they are (in-flight ones finished before this)."""
    ports = context.ports(env)
    ledger = ports.ledger
    reason = abort_reason(context.load(ledger, rollout.rollout_id))
    context.mark(ledger, rollout, Mark.ABORT_REQUESTED, now, wave, reason)
    hosts = ledger.all_hosts(rollout.rollout_id)
    not_started = [
        host.move(HostState.SKIPPED, f"not started: {reason}", now) for host in hosts if host.state is HostState.PENDING
    ]
    ledger.put_hosts(not_started)
    context.write(ledger, rollout.rollout_id, status=RolloutStatus.ABORTING, halt_reason=reason)
    return context.state(rollout, wave, done=True, skipped=len(not_started))
