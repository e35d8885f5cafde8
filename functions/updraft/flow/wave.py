"""Apply a wave: unless something holds it back (an abort, a kill switch, a pause, the maintenance window), the
first of its hosts' steps goes out: a drain for an ECS or EKS group, else the update."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from updraft.adapters import ecs, eks, ssm
from updraft.config import GroupPolicy
from updraft.domain.holds import abort_reason, hold, pause_news
from updraft.domain.host_record import HostRecord, HostState
from updraft.domain.host_transitions import advance, begin_drain, begin_node_drain, start_apply
from updraft.domain.lifecycle import Kind
from updraft.domain.nodes import leave_alone
from updraft.domain.polling import first_poll_seconds
from updraft.domain.rollout_events import Mark
from updraft.domain.rollout_record import Rollout, RolloutRecord, RolloutStatus
from updraft.flow import context
from updraft.flow.effects import carry_out, resume_sends
from updraft.flow.observe import observe
from updraft.ports import Ports, RolloutLedger
from updraft.settings import Settings


def apply_wave(env: Settings, rollout: Rollout, wave: int, now: datetime) -> dict[str, Any]:
    """Start the wave if nothing holds it back: the first of its hosts' steps (drain, or apply) is sent."""
    ports = context.ports(env)
    ledger = ports.ledger
    record = context.load(ledger, rollout.rollout_id)
    policy = record.policy
    # An earlier attempt of this step may have recorded sends it never finished: they go out (once) first.
    hosts = resume_sends(env, ledger, ledger.wave_hosts(rollout.rollout_id, wave), policy)
    held = _held_back(ports, record, rollout, wave, now)
    if held:
        return held
    pending = [host for host in hosts if host.state is HostState.PENDING]
    connected = ssm.online([host.instance_id for host in pending])
    gone = [
        host.move(HostState.SKIPPED, "SSM agent offline when its wave started", now)
        for host in pending
        if host.instance_id not in connected
    ]
    ledger.put_hosts(gone)
    ready = [host for host in pending if host.instance_id in connected]
    if policy.ecs:
        started = _drain_wave(env, ledger, ready, policy.ecs.cluster, policy, now)
    elif policy.eks:
        started = _drain_nodes(env, ledger, ready, policy.eks.cluster, policy, now)
    else:
        started = carry_out(env, ledger, [start_apply(host, "apply sent", now, policy) for host in ready], policy, now)
    context.write(
        ledger,
        rollout.rollout_id,
        current_wave=wave,
        status=RolloutStatus.ROLLING_OUT,
        waiting_reason="",
        wave_started_at=now.isoformat(),
    )
    # Every host of a wave is pending when it starts: the count stays the same when a retry finds it started.
    context.tell(ports, Kind.WAVE_STARTED, rollout, now, wave=wave, hosts=len(hosts))
    context.mark(ledger, rollout, Mark.WAVE_STARTED, now, wave, f"{len(hosts)} hosts")
    progress = {"verdict": "go", "done": False, "next_poll_seconds": first_poll_seconds(policy), "sent": len(started)}
    return {"rollout": rollout.as_state(), "wave": wave, "progress": progress}


def _held_back(
    ports: Ports, record: RolloutRecord, rollout: Rollout, wave: int, now: datetime
) -> dict[str, Any] | None:
    """Why the wave may not start now (abort, kill switch, pause, window), as the step's result; None to go."""
    policy = record.policy
    if wave == 0 and policy.alarms:
        ports.alarms.check_exist(policy.alarms)  # a gate watching nothing must not pass a rollout
    if record.abort_requested:
        return context.state(rollout, wave, verdict="abort", reason=abort_reason(record))
    news = pause_news(record)
    if news:  # told once that the rollout paused, and once that it resumed
        kind, request = news
        context.write(ports.ledger, rollout.rollout_id, pause_announced=record.paused)
        context.tell(ports, kind, rollout, now, by=request.by, reason=request.reason or "")
        paused = Mark.PAUSED if kind is Kind.ROLLOUT_PAUSED else Mark.RESUMED
        told = f"by {request.by or '?'}" + (f": {request.reason}" if request.reason else "")
        context.mark(ports.ledger, rollout, paused, now, wave, told, instance=request.at or "")
    held = hold(ports.controls.kill_switch_for(rollout.group), record, now)
    if held:
        reason, seconds = held
        if record.waiting_reason != reason:
            context.write(ports.ledger, rollout.rollout_id, status=RolloutStatus.WAITING, waiting_reason=reason)
            context.mark(ports.ledger, rollout, Mark.WAITING, now, wave, reason, instance=reason)
        return context.state(rollout, wave, verdict="wait", reason=reason, wait_seconds=seconds)
    return None


def _drain_wave(
    env: Settings, ledger: RolloutLedger, ready: list[HostRecord], cluster: str, policy: GroupPolicy, now: datetime
) -> list[HostRecord]:
    """Drain the wave's container instances, then look once: a host with nothing to drain is applied now."""
    found = ecs.container_instances(cluster, [host.instance_id for host in ready]) if ready else {}
    strangers = [
        host.move(HostState.SKIPPED, f"not a container instance of ECS cluster {cluster}; nothing applied", now)
        for host in ready
        if host.instance_id not in found
    ]
    ledger.put_hosts(strangers)
    members = [host for host in ready if host.instance_id in found]
    steps = [begin_drain(host, cluster, found[host.instance_id], now, policy) for host in members]
    return _first_look(env, ledger, carry_out(env, ledger, steps, policy, now), policy, now)


def _drain_nodes(
    env: Settings, ledger: RolloutLedger, ready: list[HostRecord], cluster: str, policy: GroupPolicy, now: datetime
) -> list[HostRecord]:
    """Cordon the wave's nodes that nothing else has a claim on, then look once: the first evictions go out."""
    found = eks.nodes_of(cluster, [host.instance_id for host in ready], now) if ready else {}
    left: list[HostRecord] = []
    steps = []
    for host in ready:
        node = found.get(host.instance_id)
        reason = leave_alone(node) if node else f"not a node of EKS cluster {cluster}"
        if reason:
            left.append(host.move(HostState.SKIPPED, f"{reason}; nothing applied, left as it was", now))
        else:
            steps.append(begin_node_drain(host, cluster, node.name, now, policy))  # type: ignore[union-attr]
    ledger.put_hosts(left)
    return _first_look(env, ledger, carry_out(env, ledger, steps, policy, now), policy, now)


def _first_look(
    env: Settings, ledger: RolloutLedger, draining: list[HostRecord], policy: GroupPolicy, now: datetime
) -> list[HostRecord]:
    """Look once at hosts just set draining: one with nothing to drain is applied now, evictions start."""
    seen = observe(draining, now)
    moved = [advance(host, seen[host.instance_id], now, policy) for host in draining]
    changed = [step for step, host in zip(moved, draining, strict=True) if step.action or step.record != host]
    carry_out(env, ledger, changed, policy, now)
    return draining
