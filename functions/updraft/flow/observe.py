"""Looking at hosts: one batched look at their commands, agents, status checks and container instances."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from updraft.adapters import ec2, ecs, ssm
from updraft.domain.host_actions import ContainerView, Invocation, Observation
from updraft.domain.host_record import HostRecord, HostState

# ECS container instances are looked at while they matter: draining, being set ACTIVE again after the update
# or after a rollback.
_CONTAINER_STATES = frozenset({HostState.DRAINING, HostState.ACTIVATING, HostState.ROLLING_BACK})


def observe(hosts: list[HostRecord]) -> dict[str, Observation]:
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
