"""Looking at hosts: one batched look at their commands, agents, status checks, container instances and nodes."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import datetime

from updraft.adapters import ec2, ecs, eks, ssm
from updraft.domain.host_actions import ContainerView, Invocation, NodeView, Observation
from updraft.domain.host_record import HostRecord, HostState, RollbackStep

# ECS container instances are looked at while they matter: draining, being set ACTIVE again after the update
# or after a rollback.
_CONTAINER_STATES = frozenset({HostState.DRAINING, HostState.ACTIVATING, HostState.ROLLING_BACK})


def observe(hosts: list[HostRecord], now: datetime) -> dict[str, Observation]:
    """One batched look at the hosts: their commands, their agents, their status checks, their container
    instances or nodes."""
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
    nodes = _look_at_nodes(hosts, now)
    return {
        host.instance_id: Observation(
            invocation=outputs.get((host.command_id or "", host.instance_id)),
            online=host.instance_id in connected,
            instance_status=statuses.get(host.instance_id),
            container=containers.get(host.container_instance or ""),
            node=nodes.get(host.instance_id),
        )
        for host in hosts
    }


def _look_at_containers(hosts: list[HostRecord]) -> dict[str, ContainerView]:
    """The container instances of the hosts that await ECS, by ARN, with unmanaged tasks of those draining."""
    by_cluster: dict[str, list[HostRecord]] = defaultdict(list)
    for host in hosts:
        if host.container_instance and host.ecs_cluster and host.state in _CONTAINER_STATES:
            by_cluster[host.ecs_cluster].append(host)
    views: dict[str, ContainerView] = {}
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


def _look_at_nodes(hosts: list[HostRecord], now: datetime) -> dict[str, NodeView]:
    """The nodes of the hosts that await their cluster, by instance id, with the pods of those draining."""
    by_cluster: dict[str, list[HostRecord]] = defaultdict(list)
    for host in hosts:
        if host.node_name and host.eks_cluster and host.state in _CONTAINER_STATES:
            by_cluster[host.eks_cluster].append(host)
    views: dict[str, NodeView] = {}
    for cluster, members in sorted(by_cluster.items()):
        found = eks.nodes_of(cluster, [host.instance_id for host in members], now)
        for host in members:
            node = found.get(host.instance_id)
            if node and node.name != host.node_name:
                continue  # another node has this instance now: the recorded one is gone
            if node and _drains(host):
                node = replace(node, pods=eks.pods_on(cluster, node.name, now))
            if node:
                views[host.instance_id] = node
    return views


def _drains(host: HostRecord) -> bool:
    """Its node is being drained: before its update, or before the rollback of an updated node."""
    return host.state is HostState.DRAINING or host.rollback_step is RollbackStep.DRAIN
