"""The steps of a rollout, one per state machine task: domain decisions carried out through adapters.

Every step is safe to retry: it reads the ledger, acts only on hosts whose recorded state asks
for it, and records each batch right after sending it.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from updraft.adapters import ec2, ecs, executions, ssm
from updraft.adapters.aws import chunks
from updraft.adapters.aws_ports import aws_ports
from updraft.config import GroupPolicy, RollbackScope, RolloutRequest
from updraft.domain.command_output import command_outcome
from updraft.domain.eligibility import Eligibility, decide
from updraft.domain.eligibility import Verdict as Eligible
from updraft.domain.gate import GateResult, Verdict, gate
from updraft.domain.host_actions import (
    Invocation,
    Observation,
    RebootThroughEc2,
    SendDocument,
    SetContainerState,
    Step,
    intended_send,
    send_key,
)
from updraft.domain.host_record import Doc, HostRecord, HostState, deadline_after
from updraft.domain.host_transitions import advance, begin_drain, begin_rollback, start_apply
from updraft.domain.lifecycle import OUTCOME_EVENTS, Kind, detail
from updraft.domain.polling import first_poll_seconds, next_poll_seconds
from updraft.domain.reports import InventoryReport
from updraft.domain.rollout_record import (
    ROLLED_BACK,
    AlarmTrip,
    Bake,
    InventoryRun,
    Request,
    Rollout,
    RolloutRecord,
    RolloutStatus,
    WaveResult,
    outcome_of,
    settled_outcome,
)
from updraft.domain.waves import Candidate
from updraft.domain.waves import plan_waves as split_into_waves
from updraft.domain.windows import next_start
from updraft.errors import InvalidRolloutRequest, RollbackRefused, RolloutNotFound
from updraft.ports import OperatorControls, Ports, RolloutLedger
from updraft.settings import Settings

LOG = logging.getLogger(__name__)

INVENTORY_TIMEOUT = 120
INVENTORY_DEADLINE = 300
DOC_PARAMETER = {
    Doc.APPLY: "TargetVersion",
    Doc.VERIFY: "ExpectedVersion",
    Doc.ROLLBACK: "PreviousVersion",
    Doc.HEALTH: "Group",  # the document runs the command configured for the group
}


def _ports(env: Settings) -> Ports:
    return env.ports or aws_ports(env.ledger_table, env.lock_table)


def _tell(ports: Ports, kind: Kind, rollout: Rollout, now: datetime, **data: Any) -> None:
    ports.events.publish([detail(kind, rollout.as_state(), now.isoformat(), **data)])


def _state(rollout: Rollout, wave: int, **progress: Any) -> dict[str, Any]:
    return {"rollout": rollout.as_state(), "wave": wave, "progress": progress}


def _record(ledger: RolloutLedger, rollout_id: str) -> RolloutRecord:
    return RolloutRecord.from_item(ledger.rollout(rollout_id))


def _write(ledger: RolloutLedger, rollout_id: str, **fields: Any) -> None:
    """Record `fields` (typed values) of the rollout."""
    ledger.update_rollout(rollout_id, **RolloutRecord.item_fields(**fields))


# -- request, release policy and lock ---------------------------------------------------------------------
RECHECK_SECONDS = 3600  # how often a follower looks again whether its leader finished
MAX_WAIT_SECONDS = 86_400


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


def check_release(env: Settings, request: Any, execution_id: str, now: datetime) -> dict[str, Any]:
    """May this announced release start the group's rollout now, later, or never?"""
    valid, policy = _validated(env, request)
    ports = _ports(env)
    ledger = ports.ledger
    leader = ledger.group_outcome(policy.follows, valid.target_version) if policy.follows else None
    decision = decide(policy, valid.target_version, valid.released_at or now, now, leader)
    if ports.releases.withdrawn(policy.variant, policy.arch, valid.target_version):
        decision = Eligibility(Eligible.SKIP, f"{valid.target_version} was withdrawn")
    result: dict[str, Any] = {"request": request, "verdict": str(decision.verdict), "reason": decision.reason}
    if decision.verdict is Eligible.WAIT:
        seconds = (decision.not_before - now).total_seconds() if decision.not_before else RECHECK_SECONDS
        result["wait_seconds"] = int(min(max(seconds, 1), MAX_WAIT_SECONDS))
    elif decision.verdict is Eligible.START and not ledger.claim_automatic(
        valid.group, valid.target_version, execution_id, now.isoformat()
    ):
        result |= {"verdict": "duplicate", "reason": "another execution already took this release for the group"}
    return result


def acquire(env: Settings, request: Any, execution_id: str, rollout_id: str, now: datetime) -> dict[str, Any]:
    valid, policy = _validated(env, request)
    ports = _ports(env)
    ledger = ports.ledger
    undoing = _undoable(ledger, valid.group, valid.rollback_of, policy, now) if valid.rollback_of else None
    target = valid.target_version or _common_previous_version(undoing or [])
    rollout = Rollout(rollout_id, valid.group, target)
    if undoing:
        # Undoing a bad release is urgent, and its alarms may well be firing: no alarm gate, bake or window.
        policy = policy.model_copy(update={"alarms": None, "bake_seconds": 0, "maintenance_window": None})
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
            _write(ledger, valid.rollback_of, rolled_back_by=rollout_id)
    return {"acquired": lock.acquired, "holder": lock.holder, "rollout": rollout.as_state()}


UNDOABLE = frozenset({RolloutStatus.SUCCEEDED, RolloutStatus.HALTED})


def _undoable(
    ledger: RolloutLedger, group: str, rollout_id: str, policy: GroupPolicy, now: datetime
) -> list[HostRecord]:
    """The hosts a finished rollout updated, if it may still be rolled back; else a named refusal."""
    try:
        undone = _record(ledger, rollout_id)
    except RolloutNotFound:
        raise RollbackRefused(f"rollback_of: no rollout {rollout_id!r}") from None
    if undone.group != group:
        raise RollbackRefused(f"rollback_of: {rollout_id} rolled out group {undone.group}, not {group}")
    if undone.status not in UNDOABLE or undone.rollback_of:
        raise RollbackRefused(f"rollback_of: {rollout_id} ended {undone.status}; only a finished rollout is undone")
    if undone.rolled_back_by:
        raise RollbackRefused(f"rollback_of: {rollout_id} is already rolled back by {undone.rolled_back_by}")
    closes = datetime.fromisoformat(undone.finished_at or "") + timedelta(hours=policy.rollback_window_hours)
    if now > closes:
        raise RollbackRefused(
            f"rollback_of: the rollback window of {rollout_id} closed at {closes.isoformat()} "
            f"({policy.rollback_window_hours} h after it finished)"
        )
    updated = [host for host in ledger.all_hosts(rollout_id) if host.state is HostState.UPDATED]
    if not updated:
        raise RollbackRefused(f"rollback_of: {rollout_id} left no host updated")
    return updated


def _common_previous_version(hosts: list[HostRecord]) -> str:
    """The version a rollback takes most hosts back to: what the rollout record shows as its target."""
    return Counter(host.previous_version for host in hosts).most_common(1)[0][0]


# -- inventory and plan -------------------------------------------------------------------------------
def start_inventory(env: Settings, rollout: Rollout, now: datetime) -> dict[str, Any]:
    ports = _ports(env)
    ledger = ports.ledger
    record = _record(ledger, rollout.rollout_id)
    instances = ec2.running_group_instances(record.tag_key, rollout.group)
    connected = ssm.online(list(instances))
    offline = sorted(set(instances) - connected)
    ledger.put_skipped(rollout.rollout_id, [_skipped(i, instances[i], "SSM agent not online") for i in offline])
    commands = ssm.send_document(env.documents[Doc.INVENTORY], sorted(connected), {}, INVENTORY_TIMEOUT)
    run = InventoryRun(commands=sorted(set(commands.values())), deadline=deadline_after(now, INVENTORY_DEADLINE))
    _write(ledger, rollout.rollout_id, status=RolloutStatus.INVENTORY, inventory=run)
    return {"rollout": rollout.as_state(), "progress": {"done": False, "next_poll_seconds": 15}}


def plan(env: Settings, rollout: Rollout, now: datetime) -> dict[str, Any]:
    ports = _ports(env)
    ledger = ports.ledger
    record = _record(ledger, rollout.rollout_id)
    policy = record.policy
    if record.planned:  # planned by an earlier attempt: its hosts may have moved on since
        progress = {
            "done": True,
            "wave_count": len(record.wave_sizes),
            "next_poll_seconds": policy.poll_interval_seconds,
        }
        return {"rollout": rollout.as_state(), "wave": 0, "progress": progress}
    inventory = record.inventory
    assert inventory is not None, "the inventory step records its commands before the plan runs"
    reports: dict[str, Invocation] = {}
    for command_id in inventory.commands:
        reports.update(ssm.invocations(command_id))
    still_running = any(inv.status in ("Pending", "InProgress", "Delayed") for inv in reports.values())
    if still_running and now < datetime.fromisoformat(inventory.deadline):
        return {"rollout": rollout.as_state(), "progress": {"done": False, "next_poll_seconds": 15}}

    zones = ec2.running_group_instances(record.tag_key, rollout.group)
    targets = _rollback_targets(ledger, record.rollback_of) if record.rollback_of else None
    candidates, skipped, versions = [], [], {}
    for instance_id, invocation in sorted(reports.items()):
        if instance_id not in zones:
            continue  # stopped or terminated since the inventory
        reason, version = _candidate_verdict(invocation, policy, rollout.target_version, targets, instance_id)
        if reason:
            skipped.append(_skipped(instance_id, zones[instance_id], reason))
        else:
            candidates.append(Candidate(zones[instance_id], instance_id))
            versions[instance_id] = version
    waves = split_into_waves(candidates, policy.canary_size, policy.wave_growth, policy.max_wave_size)
    records = [
        HostRecord(
            rollout_id=rollout.rollout_id,
            instance_id=host.instance_id,
            az=host.az,
            wave=index,
            previous_version=versions[host.instance_id],
            target_version=targets[host.instance_id][1] if targets else rollout.target_version,
            note="planned",
            updated_at=now.isoformat(),
        )
        for index, wave in enumerate(waves)
        for host in wave
    ]
    ledger.put_skipped(rollout.rollout_id, skipped)
    ledger.put_planned(records)
    skipped_count = len(skipped) + record.skipped_hosts
    sizes = [len(wave) for wave in waves]
    _write(
        ledger,
        rollout.rollout_id,
        status=RolloutStatus.ROLLING_OUT if waves else RolloutStatus.NOTHING_TO_DO,
        wave_sizes=sizes,
        planned_hosts=len(records),
        skipped_hosts=skipped_count,
    )
    started = {"requested_by": record.requested_by, "planned_hosts": len(records), "skipped_hosts": skipped_count}
    _tell(ports, Kind.ROLLOUT_STARTED, rollout, now, **started, wave_sizes=sizes, rollback_of=record.rollback_of)
    progress = {"done": True, "wave_count": len(waves), "next_poll_seconds": policy.poll_interval_seconds}
    return {"rollout": rollout.as_state(), "wave": 0, "progress": progress}


def _rollback_targets(ledger: RolloutLedger, undone: str) -> dict[str, tuple[str, str]]:
    """For a rollback: each host the undone rollout updated -> (the version it took, the one it left)."""
    hosts = ledger.all_hosts(undone)
    return {h.instance_id: (h.target_version, h.previous_version) for h in hosts if h.state is HostState.UPDATED}


def _candidate_verdict(
    invocation: Invocation,
    policy: GroupPolicy,
    target: str,
    rollback_targets: dict[str, tuple[str, str]] | None,
    instance_id: str,
) -> tuple[str | None, str]:
    if rollback_targets is None:
        return _inventory_verdict(invocation, policy, target)
    if instance_id not in rollback_targets:
        return "not updated by the rollout being rolled back", ""
    took, left = rollback_targets[instance_id]
    reason, version = _inventory_verdict(invocation, policy, left)
    if reason is None and version != took:
        return f"runs {version}, no longer the {took} the rolled-back rollout installed: left alone", version
    return reason, version


def _inventory_verdict(invocation: Invocation, policy: GroupPolicy, target: str) -> tuple[str | None, str]:
    """Why a host is skipped (or None), and the version it runs."""
    report = command_outcome(Doc.INVENTORY, invocation)
    if not isinstance(report, InventoryReport):
        return report or f"inventory did not finish ({invocation.status})", ""
    if report.variant != policy.variant or report.arch != policy.arch:
        return f"runs {report.variant}/{report.arch}, the group is {policy.variant}/{policy.arch}", report.version
    if report.version == target:
        return f"already on {target}", report.version
    if report.update_state == "Ready" and report.activated != target:
        return f"an update to {report.activated} is already activated for the next boot: left alone", report.version
    return None, report.version


def _skipped(instance_id: str, az: str, reason: str) -> dict[str, str]:
    return {"instance_id": instance_id, "az": az, "state": HostState.SKIPPED, "note": reason}


# -- waves ----------------------------------------------------------------------------------------------
def apply_wave(env: Settings, rollout: Rollout, wave: int, now: datetime) -> dict[str, Any]:
    """Start the wave if nothing holds it back: the first of its hosts' steps (drain, or apply) is sent."""
    ports = _ports(env)
    ledger = ports.ledger
    record = _record(ledger, rollout.rollout_id)
    policy = record.policy
    # An earlier attempt of this step may have recorded sends it never finished: they go out (once) first.
    hosts = _resume_sends(env, ledger, ledger.wave_hosts(rollout.rollout_id, wave), policy)
    held = _held_back(ports, record, policy, rollout, wave, now)
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
    else:
        started = _carry_out(env, ledger, [start_apply(host, "apply sent", now, policy) for host in ready], policy, now)
    _write(
        ledger,
        rollout.rollout_id,
        current_wave=wave,
        status=RolloutStatus.ROLLING_OUT,
        waiting_reason="",
        wave_started_at=now.isoformat(),
    )
    # Every host of a wave is pending when it starts: the count stays the same when a retry finds it started.
    _tell(ports, Kind.WAVE_STARTED, rollout, now, wave=wave, hosts=len(hosts))
    progress = {"verdict": "go", "done": False, "next_poll_seconds": first_poll_seconds(policy), "sent": len(started)}
    return {"rollout": rollout.as_state(), "wave": wave, "progress": progress}


def check_hosts(env: Settings, rollout: Rollout, wave: int, scope: str, now: datetime) -> dict[str, Any]:
    ports = _ports(env)
    ledger = ports.ledger
    record = _record(ledger, rollout.rollout_id)
    policy = record.policy
    in_wave = scope == "wave"
    hosts = ledger.wave_hosts(rollout.rollout_id, wave) if in_wave else ledger.all_hosts(rollout.rollout_id)
    hosts = _resume_sends(env, ledger, hosts, policy)
    active = [host for host in hosts if not host.final and host.state is not HostState.PENDING]
    seen = _observe(active)
    steps = [advance(host, seen[host.instance_id], now, policy) for host in active]
    # Write only what moved: most polls find most hosts where they were.
    moved = [step for step, host in zip(steps, active, strict=True) if step.action or step.record != host]
    changed = _carry_out(env, ledger, moved, policy, now)
    _tell_rolled_back(ports, rollout, changed, now)
    current = {host.instance_id: host for host in hosts} | {host.instance_id: host for host in changed}
    records = list(current.values())
    progress: dict[str, Any] = {
        "done": all(host.final or host.state is HostState.PENDING for host in records),
        "states": dict(Counter(str(host.state) for host in records)),
        "failures": sum(1 for host in records if host.failure),
        "next_poll_seconds": next_poll_seconds(records, policy, now),
    }
    if in_wave and policy.alarms:
        record = _watch_alarms(ports, record, policy, wave, now)
    if progress["done"] and in_wave:
        progress.update(_gate_wave(ports, record, policy, rollout, wave, records, now))
    return {"rollout": rollout.as_state(), "wave": wave, "progress": progress}


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


def _watch_alarms(ports: Ports, record: RolloutRecord, policy: GroupPolicy, wave: int, now: datetime) -> RolloutRecord:
    """An alarm that fires while a wave runs fails the wave, even if it is OK again when the wave ends."""
    if record.alarm_tripped and record.alarm_tripped.wave == wave:
        return record
    firing = ports.alarms.firing(policy.alarms)  # type: ignore[arg-type]
    if not firing:
        return record
    tripped = AlarmTrip(wave=wave, alarms=firing, at=now.isoformat())
    _write(ports.ledger, record.rollout_id, alarm_tripped=tripped)
    return record.changed(alarm_tripped=tripped)


def _wave_seconds(record: RolloutRecord, now: datetime) -> int:
    started = record.wave_started_at
    return int((now - datetime.fromisoformat(started)).total_seconds()) if started else 0


def _gate_wave(
    ports: Ports,
    record: RolloutRecord,
    policy: GroupPolicy,
    rollout: Rollout,
    wave: int,
    records: list[HostRecord],
    now: datetime,
) -> dict[str, Any]:
    """The wave's hosts are all done: spend the error budget, then bake, abort, halt or go on."""
    results = dict(record.wave_results)
    earlier = sum(result.failures for index, result in results.items() if index != wave)
    wave_failures = sum(1 for host in records if host.failure)
    result = gate(
        wave,
        len(record.wave_sizes),
        records,
        earlier + wave_failures,
        record.planned_hosts or 0,
        policy.error_budget,
    )
    tripped = record.alarm_tripped
    if record.withdrawn:
        # A pulled release: stop here and take every host the rollout updated back.
        result = GateResult(Verdict.HALT, "the release was withdrawn", result.wave_failures, result.total_failures)
    elif tripped and tripped.wave == wave:
        reason = f"alarm {', '.join(tripped.alarms)} went to ALARM during wave {wave}"
        result = GateResult(Verdict.HALT, reason, result.wave_failures, result.total_failures)
    verdict = str(result.verdict)
    if result.verdict is Verdict.CONTINUE and record.abort_requested:
        verdict = "abort"  # the last wave simply completes: there is nothing left to not start
    elif result.verdict is not Verdict.HALT and (policy.bake_seconds or policy.alarms):
        until = now + timedelta(seconds=policy.bake_seconds)
        bake = Bake(wave=wave, until=until.isoformat(), then=verdict)
        _write(ports.ledger, record.rollout_id, status=RolloutStatus.BAKING, bake=bake, bake_until=until.isoformat())
        _record_wave(ports.ledger, record, results, wave, result.wave_failures, "baking", result.reason)
        return {
            "verdict": "bake",
            "reason": result.reason,
            "failures": result.total_failures,
            "next_poll_seconds": _bake_poll(policy, now, until),
        }
    seconds = _finish_wave(ports, record, rollout, results, wave, result.wave_failures, verdict, result.reason, now)
    return {
        "verdict": verdict,
        "reason": result.reason,
        "failures": result.total_failures,
        "wave_duration_seconds": seconds,
    }


def _record_wave(
    ledger: RolloutLedger,
    record: RolloutRecord,
    results: dict[int, WaveResult],
    wave: int,
    failures: int,
    verdict: str,
    reason: str,
) -> None:
    results[wave] = WaveResult(failures=failures, verdict=verdict, reason=reason)
    fields: dict[str, Any] = {"wave_results": results}
    if verdict == Verdict.HALT:
        fields |= {"status": RolloutStatus.HALTING, "halt_reason": reason}
    _write(ledger, record.rollout_id, **fields)


def _finish_wave(
    ports: Ports,
    record: RolloutRecord,
    rollout: Rollout,
    results: dict[int, WaveResult],
    wave: int,
    failures: int,
    verdict: str,
    reason: str,
    now: datetime,
) -> int:
    """Record the wave's verdict and tell it; returns how long the wave took, bake included."""
    _record_wave(ports.ledger, record, results, wave, failures, verdict, reason)
    seconds = _wave_seconds(record, now)
    _tell(
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


# -- bake: the wave's hosts are done; its alarms must stay OK for a while before the next wave -----------------
MIN_ALARM_POLL_SECONDS = 60


def _bake_poll(policy: GroupPolicy, now: datetime, until: datetime) -> int:
    remaining = max(int((until - now).total_seconds()), 1)
    if not policy.alarms:
        return remaining  # nothing to watch: one wait
    return max(min(remaining, max(policy.poll_interval_seconds, MIN_ALARM_POLL_SECONDS)), 1)


def bake(env: Settings, rollout: Rollout, wave: int, now: datetime) -> dict[str, Any]:
    ports = _ports(env)
    ledger = ports.ledger
    record = _record(ledger, rollout.rollout_id)
    policy = record.policy
    baking = record.bake
    assert baking is not None, "a wave's gate records its bake before the bake runs"
    results = dict(record.wave_results)
    failures = results[wave].failures if wave in results else 0
    total = sum(result.failures for result in results.values())
    firing = ports.alarms.firing(policy.alarms) if policy.alarms else []
    until = datetime.fromisoformat(baking.until)
    if firing:
        verdict, reason = "halt", f"alarm {', '.join(firing)} went to ALARM while wave {wave} baked"
    elif record.abort_requested:
        verdict, reason = "abort", "aborted while the wave baked"
    elif now >= until:
        verdict, reason = baking.then, f"wave {wave} baked {policy.bake_seconds} s with its alarms OK"
    else:
        return _state(rollout, wave, verdict="bake", failures=total, next_poll_seconds=_bake_poll(policy, now, until))
    duration = _finish_wave(ports, record, rollout, results, wave, failures, verdict, reason, now)
    if verdict != "halt":
        _write(ledger, rollout.rollout_id, status=RolloutStatus.ROLLING_OUT)
    return _state(rollout, wave, verdict=verdict, reason=reason, failures=total, wave_duration_seconds=duration)


# -- before every wave (the start of ApplyWave): abort, kill switch, pause, maintenance window ----------------
CONTROL_RECHECK_SECONDS = 60


def _held_back(
    ports: Ports, record: RolloutRecord, policy: GroupPolicy, rollout: Rollout, wave: int, now: datetime
) -> dict[str, Any] | None:
    """Why the wave may not start now (abort, kill switch, pause, window), as the step's result; None to go."""
    if wave == 0 and policy.alarms:
        ports.alarms.check_exist(policy.alarms)  # a gate watching nothing must not pass a rollout
    if record.abort_requested:
        return _state(rollout, wave, verdict="abort", reason=_abort_reason(record))
    _announce_pause(ports, record, rollout, now)
    hold = _hold(ports.controls, record, policy, rollout, now)
    if hold:
        reason, seconds = hold
        if record.waiting_reason != reason:
            _write(ports.ledger, rollout.rollout_id, status=RolloutStatus.WAITING, waiting_reason=reason)
        return _state(rollout, wave, verdict="wait", reason=reason, wait_seconds=seconds)
    return None


def _hold(
    controls: OperatorControls, record: RolloutRecord, policy: GroupPolicy, rollout: Rollout, now: datetime
) -> tuple[str, int] | None:
    """Why the next wave may not start yet, and when to look again; None if it may start now."""
    switch = controls.kill_switch_for(rollout.group)
    if switch:
        scope = "global" if switch["sk"] == "GLOBAL" else "group"
        return f"{scope} kill switch engaged by {switch.get('by')}: {switch.get('reason')}", CONTROL_RECHECK_SECONDS
    if record.paused:
        pause = record.pause or Request()
        return f"paused by {pause.by}: {pause.reason}", CONTROL_RECHECK_SECONDS
    window = policy.maintenance_window
    if window:
        opens = next_start(window, now, timedelta(seconds=policy.wave_budget_seconds))
        if opens > now:
            seconds = max(1, math.ceil((opens - now).total_seconds()))
            return f"outside the maintenance window: next wave at {opens.isoformat()}", seconds
    return None


def _announce_pause(ports: Ports, record: RolloutRecord, rollout: Rollout, now: datetime) -> None:
    """Tell once that a rollout paused, and once that it resumed."""
    paused, announced = record.paused, record.pause_announced
    if paused == announced:
        return
    _write(ports.ledger, rollout.rollout_id, pause_announced=paused)
    request = (record.pause if paused else record.resumed) or Request()
    kind = Kind.ROLLOUT_PAUSED if paused else Kind.ROLLOUT_RESUMED
    _tell(ports, kind, rollout, now, by=request.by, reason=request.reason or "")


def _abort_reason(record: RolloutRecord) -> str:
    request = record.abort_requested or Request()
    return f"aborted by {request.by}: {request.reason}"


def abort(env: Settings, rollout: Rollout, wave: int, now: datetime) -> dict[str, Any]:
    """Start no more waves; hosts already done stay as they are (in-flight ones finished before this)."""
    ports = _ports(env)
    ledger = ports.ledger
    reason = _abort_reason(_record(ledger, rollout.rollout_id))
    hosts = ledger.all_hosts(rollout.rollout_id)
    not_started = [
        host.move(HostState.SKIPPED, f"not started: {reason}", now) for host in hosts if host.state is HostState.PENDING
    ]
    ledger.put_hosts(not_started)
    _write(ledger, rollout.rollout_id, status=RolloutStatus.ABORTING, halt_reason=reason)
    return _state(rollout, wave, done=True, skipped=len(not_started))


def halt(env: Settings, rollout: Rollout, wave: int, now: datetime) -> dict[str, Any]:
    """Start no more waves: skip the hosts not yet started; roll back the rollback scope."""
    ports = _ports(env)
    ledger = ports.ledger
    record = _record(ledger, rollout.rollout_id)
    policy = record.policy
    hosts = _resume_sends(env, ledger, ledger.all_hosts(rollout.rollout_id), policy)
    skipped = [
        host.move(HostState.SKIPPED, "not started: the rollout halted", now)
        for host in hosts
        if host.state is HostState.PENDING
    ]
    ledger.put_hosts(skipped)
    scope = RollbackScope.ROLLOUT if record.withdrawn else policy.rollback_scope
    in_scope = [host for host in hosts if host.state is HostState.UPDATED and _in_scope(host, scope, wave)]
    connected = ssm.online([host.instance_id for host in in_scope])
    note = f"rolling back with the halted rollout ({scope} scope)"
    steps = [
        begin_rollback(host, note, Observation(online=host.instance_id in connected), now, policy) for host in in_scope
    ]
    started = _carry_out(env, ledger, steps, policy, now)
    _write(ledger, rollout.rollout_id, status=RolloutStatus.HALTED_ROLLING_BACK)
    # Counted from the records, not from this attempt's steps: a retry finds its rollbacks already started.
    current = {host.instance_id: host for host in hosts} | {host.instance_id: host for host in started}
    rolling_back = sum(1 for host in current.values() if host.state is HostState.ROLLING_BACK)
    progress = {"done": not rolling_back, "next_poll_seconds": policy.poll_interval_seconds}
    progress["rolling_back"] = rolling_back
    return {"rollout": rollout.as_state(), "wave": wave, "progress": progress}


def withdraw(env: Settings, variant: str, arch: str, version: str, now: datetime) -> list[str]:
    """A release was pulled: flag the running rollouts to it; each halts at its next gate."""
    groups = {g.name for g in env.config.groups if (g.variant, g.arch) == (variant, arch)}
    ports, flagged = _ports(env), []
    ledger = ports.ledger
    for lock in ports.locks.held():
        if lock["group"] in groups and lock.get("target_version") == version:
            _write(ledger, lock["rollout_id"], withdrawn=True, withdrawn_at=now.isoformat())
            flagged.append(lock["rollout_id"])
    return flagged


def rollback_on_alarm(env: Settings, alarm_name: str, now: datetime) -> list[str]:
    """Roll back the latest rollout of each group that watches `alarm_name`, if it succeeded within the
    group's rollback window and no rollout of the group runs now. Returns the rollouts rolled back."""
    ports, started = _ports(env), []
    ledger = ports.ledger
    held = {lock["group"] for lock in ports.locks.held()}
    for policy in env.config.groups:
        if not policy.alarms or not policy.rollback_window_hours or policy.name in held:
            continue
        if not _watches(policy, alarm_name):
            continue
        item = next(iter(ledger.group_rollouts(policy.name, newest=1)), None)
        latest = RolloutRecord.from_item(item) if item else None
        if not latest or latest.status is not RolloutStatus.SUCCEEDED or latest.rollback_of:
            continue
        if now > datetime.fromisoformat(latest.finished_at or "") + timedelta(hours=policy.rollback_window_hours):
            continue
        request = {"group": policy.name, "rollback_of": latest.rollout_id, "requested_by": f"alarm {alarm_name}"}
        if executions.start(env.state_machine_arn, f"rollback-{latest.rollout_id}"[:80], request):
            started.append(latest.rollout_id)
    return started


def _watches(policy: GroupPolicy, alarm_name: str) -> bool:
    gate = policy.alarms
    return gate is not None and (alarm_name in gate.names or any(alarm_name.startswith(p) for p in gate.prefixes))


def _in_scope(host: HostRecord, scope: RollbackScope, wave: int) -> bool:
    if scope is RollbackScope.ROLLOUT:
        return True
    return scope is RollbackScope.WAVE and host.wave == wave


def finish(env: Settings, rollout: Rollout, now: datetime, error: dict[str, Any] | None) -> dict[str, Any]:
    ports = _ports(env)
    ledger = ports.ledger
    record = _record(ledger, rollout.rollout_id)
    if record.ended:
        return _recorded_end(rollout, record)  # a replay, or the execution's end was settled first
    hosts = ledger.all_hosts(rollout.rollout_id)
    if error:
        cause = f"{error.get('Error', 'Error')}: {str(error.get('Cause', ''))[:300]}"
        _put_abandoned(ledger, [host for host in hosts if not host.final], cause, now)
        hosts = ledger.all_hosts(rollout.rollout_id)
    ended = outcome_of(record, failed=bool(error))
    outcome = ended.value
    summary = dict(Counter(str(host.state) for host in hosts))
    summary["skipped_at_plan"] = record.skipped_hosts
    fields: dict[str, Any] = {"status": ended, "finished_at": now.isoformat(), "summary": summary}
    if error:
        fields["error"] = cause
    if not ledger.close_rollout(rollout.rollout_id, **RolloutRecord.item_fields(**fields)):
        return _recorded_end(rollout, _record(ledger, rollout.rollout_id))
    _record_group_outcome(ledger, record, rollout, outcome, now)
    reason = fields.get("error") or record.halt_reason or ""
    _tell(ports, OUTCOME_EVENTS[outcome], rollout, now, outcome=outcome, summary=summary, reason=reason)
    return {"rollout": rollout.as_state(), "outcome": outcome, "summary": summary}


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
        version = _record(ledger, undone).target_version
        ledger.record_group_outcome(rollout.group, version, ROLLED_BACK, rollout.rollout_id, now.isoformat())


def settle(env: Settings, rollout: Rollout, execution_id: str, status: str, now: datetime) -> dict[str, Any]:
    """An execution ended outside its own error handling (stopped, timed out): record every host it
    left in flight and release the group's lock if the execution still holds it. The rollout is closed
    first: a step of the execution still running can then write no host (nor send to one) after this."""
    ports = _ports(env)
    ledger = ports.ledger
    record = _record(ledger, rollout.rollout_id)
    cause = f"the execution ended {status}"
    ended = settled_outcome(status)
    outcome = ended.value
    fields = RolloutRecord.item_fields(status=ended, finished_at=now.isoformat(), error=cause)
    closed = ledger.close_rollout(rollout.rollout_id, **fields)
    if closed:
        _close_hosts(ledger, rollout, cause, now)
        _record_group_outcome(ledger, record, rollout, outcome, now)
        summary = dict(Counter(str(host.state) for host in ledger.all_hosts(rollout.rollout_id)))
        _tell(ports, OUTCOME_EVENTS[outcome], rollout, now, outcome=outcome, summary=summary, reason=cause)
    released = ports.locks.release(rollout.group, execution_id)
    return {"rollout": rollout.as_state(), "already_recorded": not closed, "lock_released": released}


CLOSE_ROUNDS = 5


def _close_hosts(ledger: RolloutLedger, rollout: Rollout, cause: str, now: datetime) -> None:
    """Write every host a last time, marked closed, those in flight abandoned. A host a running step wrote
    meanwhile is read again and closed on the next round; once closed, no step writes it."""
    hosts = ledger.all_hosts(rollout.rollout_id)
    for _ in range(CLOSE_ROUNDS):
        written = {host.instance_id for host in _put_abandoned(ledger, hosts, cause, now, now.isoformat())}
        changed = [host for host in hosts if host.instance_id not in written]
        if not changed:
            return
        hosts = [found for host in changed if (found := ledger.host(host.rollout_id, host.wave, host.instance_id))]


def _put_abandoned(
    ledger: RolloutLedger, hosts: list[HostRecord], cause: str, now: datetime, closing_at: str | None = None
) -> list[HostRecord]:
    """Write each host a last time, those in flight abandoned; returns the records written. A host abandoned
    while it drained had nothing applied: once written (so no step still running can move it), its container
    instance takes tasks again and it is recorded skipped; if ECS refuses, it stays needs-attention, DRAINING."""
    written = ledger.put_hosts([host if host.final else _abandon(host, cause, now) for host in hosts], closing_at)
    drained = {host.instance_id for host in hosts if host.state is HostState.DRAINING and host.container_instance}
    for cluster, members in _by_cluster([host for host in written if host.instance_id in drained]):
        refused = ecs.reactivate(cluster, [host.container_instance or "" for host in members])
        if refused:
            LOG.warning("container instances of cluster %s left DRAINING: %s", cluster, refused)
            continue
        note = "nothing applied, container instance ACTIVE again"
        ledger.put_hosts([host.move(HostState.SKIPPED, f"{host.note}; {note}", now) for host in members], closing_at)
    return written


def _abandon(host: HostRecord, cause: str, now: datetime) -> HostRecord:
    if host.state is HostState.PENDING:
        return host.move(HostState.SKIPPED, f"not started: the rollout failed ({cause})", now)
    return host.move(HostState.NEEDS_ATTENTION, f"the rollout failed while the host was {host.state}: {cause}", now)


# -- observing and acting ----------------------------------------------------------------------------------
def _observe(hosts: list[HostRecord]) -> dict[str, Observation]:
    """One batched look at the hosts: their commands, their agents, their status checks."""
    if not hosts:
        return {}
    outputs: dict[tuple[str, str], Invocation] = {}
    for command_id in sorted({host.command_id for host in hosts if host.command_id}):
        outputs.update({(command_id, iid): inv for iid, inv in ssm.invocations(command_id).items()})
    ids = [host.instance_id for host in hosts]
    connected = ssm.online(ids)
    verifying = [host.instance_id for host in hosts if host.state is HostState.VERIFYING]
    statuses = ec2.instance_status(verifying) if verifying else {}
    containers = _look_at_containers(hosts)
    return {
        host.instance_id: Observation(
            invocation=outputs.get((host.command_id or "", host.instance_id)),
            online=host.instance_id in connected,
            instance_status=statuses.get(host.instance_id),
            container=containers.get(host.container_instance or ""),
        )
        for host in hosts
    }


def _carry_out(
    env: Settings, ledger: RolloutLedger, steps: list[Step], policy: GroupPolicy, now: datetime
) -> list[HostRecord]:
    """Record every step, sending each document once per batch of hosts that asked for it. Returns the
    records written: a host another run moved meanwhile is neither written nor acted on."""
    by_action: dict[SendDocument | RebootThroughEc2 | None, list[HostRecord]] = defaultdict(list)
    for step in steps:
        by_action[step.action].append(step.record)
    done = ledger.put_hosts(by_action.pop(None, []))
    rebooting = by_action.pop(RebootThroughEc2(), [])
    if rebooting:
        # Rebooted, then recorded: a retry in between reboots again, which costs a boot and breaks nothing.
        ec2.reboot([host.instance_id for host in rebooting])
        rebooting = ledger.put_hosts(rebooting)
    containers = [
        record
        for status in ("DRAINING", "ACTIVE")
        for record in _set_container_states(ledger, by_action.pop(SetContainerState(status), []), status)
    ]
    sent = [
        record
        for action, records in by_action.items()
        if isinstance(action, SendDocument)
        for record in _send(env, ledger, records, action, policy, now)
    ]
    return done + rebooting + containers + sent


def _send(
    env: Settings,
    ledger: RolloutLedger,
    records: list[HostRecord],
    action: SendDocument,
    policy: GroupPolicy,
    now: datetime,
) -> list[HostRecord]:
    """Record the intent to send first, under the step's send key; then send to the hosts whose intent was
    written. A retry finds the intent and looks for the command before it sends again (`_resume_sends`)."""
    if not records:
        return []
    key = send_key(records[0].rollout_id, action.doc, now)
    intents = ledger.put_hosts([record.intending(action.doc, key) for record in records])
    return _dispatch(env, ledger, intents, action, policy, key)


def _dispatch(
    env: Settings, ledger: RolloutLedger, intents: list[HostRecord], action: SendDocument, policy: GroupPolicy, key: str
) -> list[HostRecord]:
    """Send the document in batches, recording each batch's command id as soon as it is sent."""
    timeout = policy.apply_timeout_seconds if action.doc in (Doc.APPLY, Doc.ROLLBACK) else 120
    if action.doc is Doc.HEALTH and policy.health_check:
        timeout = policy.health_check.timeout_seconds
    parameters = {DOC_PARAMETER[action.doc]: policy.name if action.doc is Doc.HEALTH else action.version}
    recorded: list[HostRecord] = []
    for batch in chunks(intents, ssm.SEND_COMMAND_LIMIT):
        ids = [host.instance_id for host in batch]
        sent = ssm.send_document(env.documents[action.doc], ids, parameters, timeout, key)
        recorded += ledger.put_hosts([host.sent(action.doc, sent[host.instance_id]) for host in batch])
    return recorded


def _resume_sends(
    env: Settings, ledger: RolloutLedger, hosts: list[HostRecord], policy: GroupPolicy
) -> list[HostRecord]:
    """The hosts, with every send an earlier attempt recorded but did not finish carried out: the command
    its key names is recorded if SSM has it, else the document is sent now (once, under the same key)."""
    pending: dict[tuple[str, SendDocument], list[HostRecord]] = defaultdict(list)
    for host in hosts:
        action = intended_send(host)
        if action and host.send_key:
            pending[(host.send_key, action)].append(host)
    resumed: dict[str, HostRecord] = {}
    for (key, action), intents in pending.items():
        since = min(datetime.fromisoformat(host.updated_at) for host in intents)
        found = ssm.sent_with(env.documents[action.doc], key, since)
        known = [host.sent(action.doc, found[host.instance_id]) for host in intents if host.instance_id in found]
        unsent = [host for host in intents if host.instance_id not in found]
        for record in ledger.put_hosts(known) + _dispatch(env, ledger, unsent, action, policy, key):
            resumed[record.instance_id] = record
    return [resumed.get(host.instance_id, host) for host in hosts]


# -- ECS container instances ------------------------------------------------------------------------------
# Observed while they matter: draining, being set ACTIVE again after the update or after a rollback.
_CONTAINER_STATES = frozenset({HostState.DRAINING, HostState.ACTIVATING, HostState.ROLLING_BACK})


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
    draining = _carry_out(env, ledger, steps, policy, now)
    seen = _observe(draining)
    moved = [advance(host, seen[host.instance_id], now, policy) for host in draining]
    changed = [step for step, host in zip(moved, draining, strict=True) if step.action or step.record != host]
    _carry_out(env, ledger, changed, policy, now)
    return draining


def _look_at_containers(hosts: list[HostRecord]) -> dict[str, Any]:
    """The container instances of the hosts that await ECS, by ARN, with unmanaged tasks of those draining."""
    by_cluster: dict[str, list[HostRecord]] = defaultdict(list)
    for host in hosts:
        if host.container_instance and host.ecs_cluster and host.state in _CONTAINER_STATES:
            by_cluster[host.ecs_cluster].append(host)
    views: dict[str, Any] = {}
    for cluster, members in by_cluster.items():
        found = ecs.describe(cluster, [host.container_instance or "" for host in members])
        busy = [
            arn
            for host in members
            if host.state is HostState.DRAINING and (arn := host.container_instance) in found
            if found[arn].running_tasks
        ]
        unmanaged = ecs.unmanaged_tasks(cluster, busy) if busy else {}
        views |= {
            arn: replace(view, unmanaged_tasks=unmanaged.get(arn, ())) if arn in unmanaged else view
            for arn, view in found.items()
        }
    return views


def _set_container_states(ledger: RolloutLedger, records: list[HostRecord], status: str) -> list[HostRecord]:
    """One batched state change per cluster, each record written right after its cluster's call."""
    written: list[HostRecord] = []
    for cluster, members in _by_cluster(records):
        # Set, then recorded: a retry in between sets the same state again, which changes nothing.
        ecs.set_state(cluster, [record.container_instance or "" for record in members], status)
        written += ledger.put_hosts(members)
    return written


def _by_cluster(records: list[HostRecord]) -> list[tuple[str, list[HostRecord]]]:
    """ECS hosts grouped by their cluster, for one batched call per cluster."""
    grouped: dict[str, list[HostRecord]] = defaultdict(list)
    for record in records:
        grouped[record.ecs_cluster or ""].append(record)
    return sorted(grouped.items())
