"""Check hosts: every host in scope one step further, from one look at them all; once a wave's hosts are all
done, its gate (the error budget, an alarm during the wave, a withdrawn release, an abort) and maybe its bake."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from updraft.domain.bake import bake_poll
from updraft.domain.gate import Verdict, wave_end, wave_recorded, wave_seconds
from updraft.domain.holds import abort_reason
from updraft.domain.host_record import HostRecord, HostState, count_states
from updraft.domain.host_transitions import advance, release_drain
from updraft.domain.lifecycle import Kind, detail
from updraft.domain.polling import next_poll_seconds
from updraft.domain.rollout_events import Mark
from updraft.domain.rollout_record import AlarmTrip, Bake, Rollout, RolloutRecord, RolloutStatus
from updraft.flow import context
from updraft.flow.effects import carry_out, resume_sends
from updraft.flow.observe import observe
from updraft.ports import Ports
from updraft.settings import Settings


def check_hosts(env: Settings, rollout: Rollout, wave: int, scope: str, now: datetime) -> dict[str, Any]:
    """Advance every host of the wave (or of the rollout, while it halts) that is under way."""
    ports = context.ports(env)
    ledger = ports.ledger
    record = context.load(ledger, rollout.rollout_id)
    policy = record.policy
    in_wave = scope == "wave"
    hosts = ledger.wave_hosts(rollout.rollout_id, wave) if in_wave else ledger.all_hosts(rollout.rollout_id)
    hosts = resume_sends(env, ledger, hosts, policy)
    active = [host for host in hosts if not host.final and host.state is not HostState.PENDING]
    stopping = _stopping(record, wave) if in_wave else None
    seen = observe([host for host in active if not (stopping and host.state is HostState.DRAINING)], now)
    steps = [
        release_drain(host, f"not applied: {stopping}", now)
        if stopping and host.state is HostState.DRAINING
        else advance(host, seen[host.instance_id], now, policy)
        for host in active
    ]
    # Write only what moved: most polls find most hosts where they were.
    moved = [step for step, host in zip(steps, active, strict=True) if step.action or step.record != host]
    changed = carry_out(env, ledger, moved, policy, now)
    _tell_rolled_back(ports, rollout, changed, now)
    current = {host.instance_id: host for host in hosts} | {host.instance_id: host for host in changed}
    records = list(current.values())
    progress: dict[str, Any] = {
        "done": all(host.final or host.state is HostState.PENDING for host in records),
        "states": count_states(records),
        "failures": sum(1 for host in records if host.failure),
        "next_poll_seconds": next_poll_seconds(records, policy, now),
    }
    if in_wave and policy.alarms:
        record = _watch_alarms(ports, record, wave, now)
    if progress["done"] and in_wave:
        progress.update(_gate_wave(ports, record, rollout, wave, records, now))
    return {"rollout": rollout.as_state(), "wave": wave, "progress": progress}


def _stopping(record: RolloutRecord, wave: int) -> str | None:
    """Why the wave will not go on (an abort asked for, an alarm fired during it), or None: hosts still draining
    are then let go, with nothing applied, instead of being updated by a rollout that stops."""
    if record.abort_requested:
        return abort_reason(record)
    tripped = record.alarm_tripped
    if tripped and tripped.wave == wave:
        return f"alarm {', '.join(tripped.alarms)} fired during wave {wave}"
    return None


def _tell_rolled_back(ports: Ports, rollout: Rollout, changed: list[HostRecord], now: datetime) -> None:
    rolled_back = [host for host in changed if host.state is HostState.ROLLED_BACK]
    ports.events.publish(
        [
            detail(
                Kind.HOST_ROLLED_BACK,
                rollout.as_state(),
                now.isoformat(),
                instance_id=host.instance_id,
                wave=host.wave,
                from_version=host.target_version,
                to_version=host.previous_version,
                reason=host.failure or "rolled back with the halted rollout",
            )
            for host in rolled_back
        ]
    )


def _watch_alarms(ports: Ports, record: RolloutRecord, wave: int, now: datetime) -> RolloutRecord:
    """An alarm that fires while a wave runs fails the wave, even if it is OK again when the wave ends."""
    if record.alarm_tripped and record.alarm_tripped.wave == wave:
        return record
    firing = ports.alarms.firing(record.policy.alarms)  # type: ignore[arg-type]
    if not firing:
        return record
    tripped = AlarmTrip(wave=wave, alarms=firing, at=now.isoformat())
    context.write(ports.ledger, record.rollout_id, alarm_tripped=tripped)
    context.mark(ports.ledger, record.reference, Mark.ALARM, now, wave, f"{', '.join(firing)} fired during the wave")
    return record.changed(alarm_tripped=tripped)


def _gate_wave(
    ports: Ports, record: RolloutRecord, rollout: Rollout, wave: int, hosts: list[HostRecord], now: datetime
) -> dict[str, Any]:
    """The wave's hosts are all done: spend the error budget, then bake, abort, halt or go on."""
    end = wave_end(wave, record, hosts)
    result = end.result
    if end.bake:
        until = now + timedelta(seconds=record.policy.bake_seconds)
        bake = Bake(wave=wave, until=until.isoformat(), then=end.verdict)
        context.write(ports.ledger, rollout.rollout_id, status=RolloutStatus.BAKING, bake=bake, bake_until=bake.until)
        fields = wave_recorded(record, wave, result.wave_failures, "baking", result.reason)
        context.write(ports.ledger, rollout.rollout_id, **fields)
        context.mark(ports.ledger, rollout, Mark.BAKE_STARTED, now, wave, f"alarms watched until {bake.until}")
        return {
            "verdict": "bake",
            "reason": result.reason,
            "failures": result.total_failures,
            "next_poll_seconds": bake_poll(record.policy, now, until),
        }
    seconds = finish_wave(ports, record, rollout, wave, result.wave_failures, end.verdict, result.reason, now)
    return {
        "verdict": end.verdict,
        "reason": result.reason,
        "failures": result.total_failures,
        "wave_duration_seconds": seconds,
    }


def finish_wave(
    ports: Ports,
    record: RolloutRecord,
    rollout: Rollout,
    wave: int,
    failures: int,
    verdict: str,
    reason: str,
    now: datetime,
) -> int:
    """Record the wave's verdict and tell it; returns how long the wave took, bake included."""
    context.write(ports.ledger, rollout.rollout_id, **wave_recorded(record, wave, failures, verdict, reason))
    context.mark(ports.ledger, rollout, Mark.WAVE_FINISHED, now, wave, f"{verdict}: {reason}")
    if verdict == Verdict.HALT:
        context.mark(ports.ledger, rollout, Mark.HALT, now, wave, reason)
    seconds = wave_seconds(record, now)
    context.tell(
        ports,
        Kind.WAVE_FINISHED,
        rollout,
        now,
        wave=wave,
        verdict=verdict,
        reason=reason,
        failures=failures,
        duration_seconds=seconds,
    )
    return seconds
