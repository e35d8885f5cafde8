"""The ECS side of the simulation: what ECS's scheduler and agents do, over the clusters, container instances
and tasks an ECS backend stores.

The backend stores; it runs no scheduler and no agents. This model plays ECS's part (see the ECS guide,
"Draining Amazon ECS container instances"):
- a container instance set DRAINING has its service tasks stopped after a short delay, and each is
  replaced on another ACTIVE container instance with a connected agent, when there is one;
- tasks no service started keep running until their container's command ends (`sleep N` runs N s);
- the ECS agent of a host is connected while the simulated host is up: it disconnects when the host
  reboots, its tasks stop with the reboot, and it connects again when the host is back.
Everything runs on the virtual clock and is settled lazily, whenever the ECS API is called: sim/aws/ecs.py
calls `settle` from moto's ECS backend, and tells the model of the tasks it starts and the state changes it
makes. This module imports nothing of moto: the backend is anything shaped like `Backend`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, Protocol

from sim.clock import VirtualClock
from sim.fleet import Fleet

SERVICE_STARTED_BY = "ecs-svc/"  # a service deployment's id: what ECS puts in its tasks' startedBy
SERVICE_STOP_SECONDS = 30  # a draining instance's service tasks stop after the load balancer lets go


class Backend(Protocol):
    """What the model reads and calls of an ECS backend (moto's EC2ContainerServiceBackend)."""

    clusters: dict[str, Any]
    container_instances: dict[str, dict[str, Any]]  # cluster -> container instance ARN -> container instance
    tasks: dict[str, dict[str, Any]]  # cluster -> task ARN -> task

    def stop_task(self, cluster: str, task: str, reason: str) -> Any: ...

    def start_task(
        self, cluster: str, task_definition: str, container_instances: list[str], overrides: dict, started_by: str, **kw
    ) -> list[Any]: ...


class SimulatedEcs:
    """The scheduler and agents' behaviour over an ECS backend."""

    def __init__(self, fleet: Fleet, clock: VirtualClock) -> None:
        self.fleet = fleet
        self.clock = clock
        self.started: dict[str, float] = {}  # task ARN -> when it started
        self.draining_since: dict[str, float] = {}  # container instance ARN -> when it was set DRAINING
        self.boots: dict[str, int] = {}  # container instance ARN -> the host's boot count last seen
        self._lock = threading.RLock()

    def forget(self, backend: Backend) -> None:
        """No cluster, container instance or task any more (the next test's account starts without ECS)."""
        with self._lock:
            backend.clusters.clear()
            backend.container_instances.clear()
            backend.tasks.clear()
            self.started.clear()
            self.draining_since.clear()
            self.boots.clear()

    # -- what the backend tells the model ---------------------------------------------------------------
    def tasks_started(self, tasks: Iterable[Any]) -> None:
        """Tasks started now (StartTask): a `sleep N` task ends N seconds from now."""
        self.started.update(dict.fromkeys((task.task_arn for task in tasks), self.clock.seconds))

    def state_changed(self, instances: Iterable[Any], status: str) -> None:
        """Container instances set to `status` now: a DRAINING one starts its drain (once), others end it."""
        for instance in instances:
            arn = instance.container_instance_arn
            if status.upper() == "DRAINING":
                self.draining_since.setdefault(arn, self.clock.seconds)
            else:
                self.draining_since.pop(arn, None)

    # -- settling ------------------------------------------------------------------------------------
    def settle(self, backend: Backend) -> None:
        """Bring ECS up to the current virtual time."""
        with self._lock:
            now = self.clock.seconds
            for cluster, instances in list(backend.container_instances.items()):
                for instance in list(instances.values()):
                    self._settle_instance(backend, cluster, instance, now)
            for cluster, tasks in list(backend.tasks.items()):
                for task in list(tasks.values()):
                    end = self._ends_at(task)
                    if _running(task) and end is not None and end <= now:
                        backend.stop_task(cluster, task.task_arn, "Essential container in task exited")

    def _settle_instance(self, backend: Backend, cluster: str, instance: Any, now: float) -> None:
        host = self.fleet.hosts.get(instance.ec2_instance_id)
        if host is None:
            return
        arn = instance.container_instance_arn
        host.sync(now)
        if self.boots.setdefault(arn, host.boots) != host.boots:
            self.boots[arn] = host.boots
            self._stop_tasks(backend, cluster, arn, "Host EC2 instance rebooted", services_only=False)
        instance.agent_connected = host.ecs_agent_connected(now)
        since = self.draining_since.get(arn)
        if instance.status == "DRAINING" and since is not None and now >= since + SERVICE_STOP_SECONDS:
            self._stop_tasks(backend, cluster, arn, "Container instance is draining", services_only=True)

    def _stop_tasks(self, backend: Backend, cluster: str, arn: str, reason: str, services_only: bool) -> None:
        for task in list(backend.tasks.get(cluster, {}).values()):
            if task.container_instance_arn != arn or not _running(task):
                continue
            if services_only and not task.started_by.startswith(SERVICE_STARTED_BY):
                continue
            backend.stop_task(cluster, task.task_arn, reason)
            if task.started_by.startswith(SERVICE_STARTED_BY):
                self._replace(backend, cluster, task)

    def _replace(self, backend: Backend, cluster: str, stopped: Any) -> None:
        """The service scheduler starts the task again on the least busy ACTIVE instance with an agent."""
        candidates = [
            instance
            for instance in backend.container_instances.get(cluster, {}).values()
            if instance.status == "ACTIVE"
            and instance.agent_connected
            and instance.container_instance_arn != stopped.container_instance_arn
        ]
        if not candidates:
            return
        target = min(candidates, key=lambda instance: (instance.running_tasks_count, instance.ec2_instance_id))
        (task,) = backend.start_task(
            cluster,
            stopped.task_definition_arn,
            [target.container_instance_arn],
            {},
            stopped.started_by,
            group=stopped.group,
        )
        self.started[task.task_arn] = self.clock.seconds

    def _ends_at(self, task: Any) -> float | None:
        """A task whose container runs `sleep N` ends N seconds after it started; others run on."""
        overrides = (task.overrides or {}).get("containerOverrides") or [{}]
        command = overrides[0].get("command") or []
        if len(command) == 2 and command[0] == "sleep" and task.task_arn in self.started:
            return self.started[task.task_arn] + float(command[1])
        return None


def _running(task: Any) -> bool:
    return task.desired_status == "RUNNING"
