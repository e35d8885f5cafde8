"""The plan: from the inventory's reports, which hosts need the update (and why the others are skipped), in
which waves, each host with the version it runs and the one it goes to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from updraft.config import GroupPolicy
from updraft.domain.command_output import RUNNING_STATUSES, command_outcome
from updraft.domain.host_actions import Invocation
from updraft.domain.host_record import Doc, HostRecord, HostState, planned_entry
from updraft.domain.reports import InventoryReport
from updraft.domain.rollout_record import InventoryRun, Rollout
from updraft.domain.waves import Candidate, plan_waves


@dataclass(frozen=True)
class Plan:
    hosts: list[HostRecord]  # wave by wave
    skipped: list[dict[str, str]]  # hosts left out, each with why
    wave_sizes: list[int]


def skipped_host(
    instance_id: str, az: str, reason: str, version: str = "", target_version: str = "", at: datetime | None = None
) -> dict[str, str]:
    """A host the plan leaves out, as the ledger keeps it: with the version its inventory reported, the one the
    plan would have taken it to and when it was left out, where they are known (an offline host reported none).
    The compliance report (updraft.domain.compliance) reads them."""
    host = {"instance_id": instance_id, "az": az, "state": HostState.SKIPPED, "note": reason}
    extra = {"version": version, "target_version": target_version, "skipped_at": at.isoformat() if at else ""}
    return host | {key: value for key, value in extra.items() if value}


def already_on(target: str) -> str:
    """Why a host that already runs the target is left out: it is the only skip that leaves a host current."""
    return f"already on {target}"


def inventory_running(reports: dict[str, Invocation], inventory: InventoryRun, now: datetime) -> bool:
    """Whether the plan waits on: some host still runs the inventory, and its deadline has not passed."""
    still_running = any(invocation.status in RUNNING_STATUSES for invocation in reports.values())
    return still_running and now < datetime.fromisoformat(inventory.deadline)


def plan_hosts(
    rollout: Rollout,
    policy: GroupPolicy,
    reports: dict[str, Invocation],
    zones: dict[str, str],
    rollback_targets: dict[str, tuple[str, str]] | None,
    now: datetime,
) -> Plan:
    """Every host that reported and still runs (`zones`: instance id -> AZ), planned into waves or skipped.
    A rollback (`rollback_targets`) takes only the hosts the undone rollout updated, each to what it left."""
    candidates, skipped, versions = [], [], {}
    for instance_id, invocation in sorted(reports.items()):
        if instance_id not in zones:
            continue  # stopped or terminated since the inventory
        reason, version = candidate_verdict(invocation, policy, rollout.target_version, rollback_targets, instance_id)
        if reason:
            target = rollback_targets[instance_id][1] if instance_id in (rollback_targets or {}) else None
            ran = version or reported_version(invocation)
            az = zones[instance_id]
            skipped.append(skipped_host(instance_id, az, reason, ran, target or rollout.target_version, now))
        else:
            candidates.append(Candidate(zones[instance_id], instance_id))
            versions[instance_id] = version
    waves = plan_waves(candidates, policy.canary_size, policy.wave_growth, policy.max_wave_size)
    hosts = [
        HostRecord(
            rollout_id=rollout.rollout_id,
            instance_id=host.instance_id,
            az=host.az,
            wave=index,
            previous_version=versions[host.instance_id],
            target_version=rollback_targets[host.instance_id][1] if rollback_targets else rollout.target_version,
            note="planned",
            updated_at=now.isoformat(),
            history=planned_entry(f"planned in wave {index}", now),
        )
        for index, wave in enumerate(waves)
        for host in wave
    ]
    return Plan(hosts, skipped, [len(wave) for wave in waves])


def candidate_verdict(
    invocation: Invocation,
    policy: GroupPolicy,
    target: str,
    rollback_targets: dict[str, tuple[str, str]] | None,
    instance_id: str,
) -> tuple[str | None, str]:
    """Why a host is skipped (or None), and the version it runs."""
    if rollback_targets is None:
        return inventory_verdict(invocation, policy, target)
    if instance_id not in rollback_targets:
        return "not updated by the rollout being rolled back", ""
    took, left = rollback_targets[instance_id]
    reason, version = inventory_verdict(invocation, policy, left)
    if reason is None and version != took:
        return f"runs {version}, no longer the {took} the rolled-back rollout installed: left alone", version
    return reason, version


def reported_version(invocation: Invocation) -> str:
    """The version the host's inventory reported, or "" if its report is not one."""
    report = command_outcome(Doc.INVENTORY, invocation)
    return report.version if isinstance(report, InventoryReport) else ""


def inventory_verdict(invocation: Invocation, policy: GroupPolicy, target: str) -> tuple[str | None, str]:
    """Why a host is skipped (or None) by what its inventory reported, and the version it runs."""
    report = command_outcome(Doc.INVENTORY, invocation)
    if not isinstance(report, InventoryReport):
        return report or f"inventory did not finish ({invocation.status})", ""
    if report.variant != policy.variant or report.arch != policy.arch:
        return f"runs {report.variant}/{report.arch}, the group is {policy.variant}/{policy.arch}", report.version
    if report.version == target:
        return already_on(target), report.version
    if report.update_state == "Ready" and report.activated != target:
        return f"an update to {report.activated} is already activated for the next boot: left alone", report.version
    return None, report.version
