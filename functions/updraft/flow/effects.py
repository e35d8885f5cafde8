"""The effect executor: what the hosts' transitions ask for, carried out (documents sent, reboots, container
instance states, nodes cordoned, pods evicted) and recorded, each batch right after its call, so that a retried
step sends nothing twice."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime

from updraft.adapters import ec2, ecs, eks, ssm
from updraft.adapters.aws import chunks
from updraft.config import GroupPolicy
from updraft.domain.host_actions import (
    Action,
    EvictPods,
    RebootThroughEc2,
    SendDocument,
    SetContainerState,
    SetSchedulable,
    Step,
    intended_send,
    send_key,
)
from updraft.domain.host_record import Doc, HostRecord, HostState
from updraft.domain.host_transitions import abandon, evicted
from updraft.ports import RolloutLedger
from updraft.settings import Settings

LOG = logging.getLogger(__name__)

DOC_PARAMETER = {
    Doc.APPLY: "TargetVersion",
    Doc.VERIFY: "ExpectedVersion",
    Doc.ROLLBACK: "PreviousVersion",
    Doc.HEALTH: "Group",  # the document runs the command configured for the group
}


def carry_out(
    env: Settings, ledger: RolloutLedger, steps: list[Step], policy: GroupPolicy, now: datetime
) -> list[HostRecord]:
    """Record every step, sending each document once per batch of hosts that asked for it. Returns the
    records written: a host another run moved meanwhile is neither written nor acted on."""
    by_action: dict[Action | None, list[HostRecord]] = defaultdict(list)
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
    nodes = [
        record
        for schedulable in (False, True)
        for record in _set_schedulable(ledger, by_action.pop(SetSchedulable(schedulable), []), schedulable, now)
    ]
    evictions = [action for action in by_action if isinstance(action, EvictPods)]
    nodes += _evict(ledger, [(record, action) for action in evictions for record in by_action.pop(action)], policy, now)
    sent = [
        record
        for action, records in by_action.items()
        if isinstance(action, SendDocument)
        for record in send(env, ledger, records, action, policy, now)
    ]
    return done + rebooting + containers + nodes + sent


def send(
    env: Settings,
    ledger: RolloutLedger,
    records: list[HostRecord],
    action: SendDocument,
    policy: GroupPolicy,
    now: datetime,
) -> list[HostRecord]:
    """Record the intent to send first, under the step's send key; then send to the hosts whose intent was
    written. A retry finds the intent and looks for the command before it sends again (`resume_sends`)."""
    if not records:
        return []
    # A document that is not the one deployed is refused before any host records the intent to send it.
    ssm.checked_version(env.documents[action.doc], env.digests.get(action.doc, ""))
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
        sha256 = env.digests.get(action.doc, "")
        sent = ssm.send_document(env.documents[action.doc], ids, parameters, timeout, key, sha256=sha256)
        recorded += ledger.put_hosts([host.sent(action.doc, sent[host.instance_id]) for host in batch])
    return recorded


def resume_sends(
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


def _set_container_states(ledger: RolloutLedger, records: list[HostRecord], status: str) -> list[HostRecord]:
    """One batched state change per cluster, each record written right after its cluster's call."""
    written: list[HostRecord] = []
    for cluster, members in _by_cluster(records):
        # Set, then recorded: a retry in between sets the same state again, which changes nothing.
        ecs.set_state(cluster, [record.container_instance or "" for record in members], status)
        written += ledger.put_hosts(members)
    return written


def _set_schedulable(
    ledger: RolloutLedger, records: list[HostRecord], schedulable: bool, now: datetime
) -> list[HostRecord]:
    """Cordon or uncordon, each cluster's nodes recorded right after its calls."""
    written: list[HostRecord] = []
    for cluster, members in _by_eks_cluster(records):
        # Patched, then recorded: a retry in between patches the same again, which changes nothing.
        eks.set_schedulable(cluster, [record.node_name or "" for record in members], schedulable, now)
        written += ledger.put_hosts(members)
    return written


def _evict(
    ledger: RolloutLedger, asked: list[tuple[HostRecord, EvictPods]], policy: GroupPolicy, now: datetime
) -> list[HostRecord]:
    """Each node's evictions, then its record with what was refused (an eviction sent twice changes nothing)."""
    written: list[HostRecord] = []
    for record, action in asked:
        refused = eks.evict(record.eks_cluster or "", action.pods, now)
        written += ledger.put_hosts([evicted(record, len(action.pods), refused, now, policy)])
    return written


def put_abandoned(
    ledger: RolloutLedger, hosts: list[HostRecord], cause: str, now: datetime, closing_at: str | None = None
) -> list[HostRecord]:
    """Write each host a last time, those in flight abandoned; returns the records written. A host abandoned
    while it drained had nothing applied: once written (so no step still running can move it), its container
    instance takes tasks again and it is recorded skipped; if ECS refuses, it stays needs-attention, DRAINING."""
    written = ledger.put_hosts([host if host.final else abandon(host, cause, now) for host in hosts], closing_at)
    draining = {host.instance_id for host in hosts if host.state is HostState.DRAINING}
    released = [host for host in written if host.instance_id in draining]
    for cluster, members in _by_cluster([host for host in released if host.container_instance]):
        refused = ecs.reactivate(cluster, [host.container_instance or "" for host in members])
        if refused:
            LOG.warning("container instances of cluster %s left DRAINING: %s", cluster, refused)
            continue
        note = "nothing applied, container instance ACTIVE again"
        ledger.put_hosts([host.move(HostState.SKIPPED, f"{host.note}; {note}", now) for host in members], closing_at)
    for cluster, members in _by_eks_cluster([host for host in released if host.node_name]):
        refused = eks.uncordon(cluster, [host.node_name or "" for host in members], now)
        if refused:
            LOG.warning("nodes of cluster %s left cordoned: %s", cluster, refused)
            note = f"node left cordoned: {refused}"
            ledger.put_hosts([host.move(host.state, f"{host.note}; {note}", now) for host in members], closing_at)
            continue
        note = "nothing applied, node uncordoned"
        ledger.put_hosts([host.move(HostState.SKIPPED, f"{host.note}; {note}", now) for host in members], closing_at)
    return written


def _by_cluster(records: list[HostRecord]) -> list[tuple[str, list[HostRecord]]]:
    """ECS hosts grouped by their cluster, for one batched call per cluster."""
    return _grouped(records, lambda record: record.ecs_cluster)


def _by_eks_cluster(records: list[HostRecord]) -> list[tuple[str, list[HostRecord]]]:
    """EKS hosts grouped by their cluster."""
    return _grouped(records, lambda record: record.eks_cluster)


def _grouped(
    records: list[HostRecord], cluster: Callable[[HostRecord], str | None]
) -> list[tuple[str, list[HostRecord]]]:
    grouped: dict[str, list[HostRecord]] = defaultdict(list)
    for record in records:
        grouped[cluster(record) or ""].append(record)
    return sorted(grouped.items())
