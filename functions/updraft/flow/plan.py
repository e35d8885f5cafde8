"""Plan: the inventory of the group's hosts (start_inventory), then who needs the update and in which waves
(plan)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from updraft.adapters import ec2, ssm
from updraft.config import GroupPolicy
from updraft.domain import rollback
from updraft.domain.host_actions import Invocation
from updraft.domain.host_record import Doc, deadline_after
from updraft.domain.lifecycle import Kind
from updraft.domain.planning import inventory_running, plan_hosts, skipped_host
from updraft.domain.polling import INVENTORY_POLL_SECONDS
from updraft.domain.rollout_events import Mark
from updraft.domain.rollout_record import InventoryRun, Rollout, RolloutStatus
from updraft.flow import context
from updraft.settings import Settings

INVENTORY_TIMEOUT = 120  # the inventory document's own timeout
INVENTORY_DEADLINE = 300  # the plan waits this long for every host's report, then plans with those it has


def start_inventory(env: Settings, rollout: Rollout, now: datetime) -> dict[str, Any]:
    """Send the inventory document to the group's running hosts whose agent is online; skip the others."""
    ports = context.ports(env)
    ledger = ports.ledger
    record = context.load(ledger, rollout.rollout_id)
    instances = ec2.running_group_instances(record.tag_key, rollout.group)
    connected = ssm.online(list(instances))
    offline = sorted(set(instances) - connected)
    ledger.put_skipped(rollout.rollout_id, [skipped_host(i, instances[i], "SSM agent not online") for i in offline])
    commands = ssm.send_document(
        env.documents[Doc.INVENTORY],
        sorted(connected),
        {},
        INVENTORY_TIMEOUT,
        sha256=env.digests.get(Doc.INVENTORY, ""),
    )
    run = InventoryRun(commands=sorted(set(commands.values())), deadline=deadline_after(now, INVENTORY_DEADLINE))
    context.write(ledger, rollout.rollout_id, status=RolloutStatus.INVENTORY, inventory=run)
    return _inventorying(rollout)


def plan(env: Settings, rollout: Rollout, now: datetime) -> dict[str, Any]:
    """Once the inventory has reported (or its deadline passed): record the waves and the hosts left out."""
    ports = context.ports(env)
    ledger = ports.ledger
    record = context.load(ledger, rollout.rollout_id)
    policy = record.policy
    if record.planned:  # planned by an earlier attempt: its hosts may have moved on since
        return _planned(rollout, len(record.wave_sizes), policy)
    inventory = record.inventory
    assert inventory is not None, "the inventory step records its commands before the plan runs"
    reports: dict[str, Invocation] = {}
    for command_id in inventory.commands:
        reports.update(ssm.invocations(command_id))
    if inventory_running(reports, inventory, now):
        return _inventorying(rollout)

    zones = ec2.running_group_instances(record.tag_key, rollout.group)
    targets = rollback.targets(ledger.all_hosts(record.rollback_of)) if record.rollback_of else None
    planned = plan_hosts(rollout, policy, reports, zones, targets, now)
    ledger.put_skipped(rollout.rollout_id, planned.skipped)
    ledger.put_planned(planned.hosts)
    skipped = len(planned.skipped) + record.skipped_hosts
    context.write(
        ledger,
        rollout.rollout_id,
        status=RolloutStatus.ROLLING_OUT if planned.wave_sizes else RolloutStatus.NOTHING_TO_DO,
        wave_sizes=planned.wave_sizes,
        planned_hosts=len(planned.hosts),
        skipped_hosts=skipped,
    )
    started = {
        "requested_by": record.requested_by,
        "planned_hosts": len(planned.hosts),
        "skipped_hosts": skipped,
        "wave_sizes": planned.wave_sizes,
        "rollback_of": record.rollback_of,
    }
    context.tell(ports, Kind.ROLLOUT_STARTED, rollout, now, **started)
    waves = len(planned.wave_sizes)
    context.mark(ledger, rollout, Mark.ROLLOUT_STARTED, now, detail=f"{len(planned.hosts)} hosts in {waves} waves")
    return _planned(rollout, len(planned.wave_sizes), policy)


def _inventorying(rollout: Rollout) -> dict[str, Any]:
    return {"rollout": rollout.as_state(), "progress": {"done": False, "next_poll_seconds": INVENTORY_POLL_SECONDS}}


def _planned(rollout: Rollout, wave_count: int, policy: GroupPolicy) -> dict[str, Any]:
    progress = {"done": True, "wave_count": wave_count, "next_poll_seconds": policy.poll_interval_seconds}
    return {"rollout": rollout.as_state(), "wave": 0, "progress": progress}
