"""The ECS side of the simulation: what moto 5.2.5's ECS backend stores, brought to life.

moto keeps clusters, container instances and tasks but runs no scheduler and no agents. This module
plays ECS's part (see the ECS guide, "Draining Amazon ECS container instances"):
- a container instance set DRAINING has its service tasks stopped after a short delay, and each is
  replaced on another ACTIVE container instance with a connected agent, when there is one;
- tasks no service started keep running until their container's command ends (`sleep N` runs N s);
- the ECS agent of a host is connected while the simulated host is up: it disconnects when the host
  reboots, its tasks stop with the reboot, and it connects again when the host is back;
- the request limits ECS enforces (10 container instances per state change, 100 per describe);
- tasks no longer move towards STOPPED by being described (moto's state manager does that).
Everything runs on the virtual clock and is settled lazily, whenever the ECS API is called.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any
from unittest import mock

from moto.ecs.exceptions import InvalidParameterException
from moto.ecs.models import ContainerInstance, EC2ContainerServiceBackend, Task

from sim.clock import VirtualClock
from sim.fleet import Fleet

SERVICE_STARTED_BY = "ecs-svc/"  # a service deployment's id: what ECS puts in its tasks' startedBy
SERVICE_STOP_SECONDS = 30  # a draining instance's service tasks stop after the load balancer lets go
STATE_CHANGE_LIMIT = 10
DESCRIBE_LIMIT = 100


class SimulatedEcs:
    """The scheduler and agents' behaviour over moto's ECS backend."""

    def __init__(self, fleet: Fleet, clock: VirtualClock) -> None:
        self.fleet = fleet
        self.clock = clock
        self.started: dict[str, float] = {}  # task ARN -> when it started
        self.draining_since: dict[str, float] = {}  # container instance ARN -> when it was set DRAINING
        self.boots: dict[str, int] = {}  # container instance ARN -> the host's boot count last seen
        self._lock = threading.RLock()

    def forget(self, backend: EC2ContainerServiceBackend) -> None:
        """No cluster, container instance or task any more (the next test's account starts without ECS)."""
        with self._lock:
            backend.clusters.clear()
            backend.container_instances.clear()
            backend.tasks.clear()
            self.started.clear()
            self.draining_since.clear()
            self.boots.clear()

    # -- settling ------------------------------------------------------------------------------------
    def settle(self, backend: EC2ContainerServiceBackend) -> None:
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

    def _settle_instance(
        self, backend: EC2ContainerServiceBackend, cluster: str, instance: ContainerInstance, now: float
    ) -> None:
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

    def _stop_tasks(
        self, backend: EC2ContainerServiceBackend, cluster: str, arn: str, reason: str, services_only: bool
    ) -> None:
        for task in list(backend.tasks.get(cluster, {}).values()):
            if task.container_instance_arn != arn or not _running(task):
                continue
            if services_only and not task.started_by.startswith(SERVICE_STARTED_BY):
                continue
            backend.stop_task(cluster, task.task_arn, reason)
            if task.started_by.startswith(SERVICE_STARTED_BY):
                self._replace(backend, cluster, task)

    def _replace(self, backend: EC2ContainerServiceBackend, cluster: str, stopped: Task) -> None:
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

    def _ends_at(self, task: Task) -> float | None:
        """A task whose container runs `sleep N` ends N seconds after it started; others run on."""
        overrides = (task.overrides or {}).get("containerOverrides") or [{}]
        command = overrides[0].get("command") or []
        if len(command) == 2 and command[0] == "sleep" and task.task_arn in self.started:
            return self.started[task.task_arn] + float(command[1])
        return None

    # -- the patched backend --------------------------------------------------------------------------
    def patches(self) -> list[Any]:
        backend_class = EC2ContainerServiceBackend
        originals = {
            name: getattr(backend_class, name)
            for name in (
                "start_task",
                "update_container_instances_state",
                "describe_container_instances",
                "list_container_instances",
                "list_tasks",
                "describe_tasks",
            )
        }
        simulated = self

        def start_task(self: Any, *args: Any, **kwargs: Any) -> list[Task]:
            tasks = originals["start_task"](self, *args, **kwargs)
            simulated.started.update(dict.fromkeys((task.task_arn for task in tasks), simulated.clock.seconds))
            return tasks

        def update_container_instances_state(self: Any, cluster: str, arns: list[str], status: str) -> Any:
            _limit(arns, STATE_CHANGE_LIMIT, "containerInstances")
            simulated.settle(self)
            found, failures = originals["update_container_instances_state"](self, cluster, arns, status)
            for instance in found:
                arn = instance.container_instance_arn
                if status.upper() == "DRAINING":
                    simulated.draining_since.setdefault(arn, simulated.clock.seconds)
                else:
                    simulated.draining_since.pop(arn, None)
            return found, failures

        def describe_container_instances(self: Any, cluster: str, arns: list[str]) -> Any:
            _limit(arns, DESCRIBE_LIMIT, "containerInstances")
            simulated.settle(self)
            return originals["describe_container_instances"](self, cluster, arns)

        def describe_tasks(self: Any, cluster: str, tasks: list[str]) -> Any:
            _limit(tasks, DESCRIBE_LIMIT, "tasks")
            simulated.settle(self)
            return originals["describe_tasks"](self, cluster, tasks)

        def settled(name: str) -> Any:
            def call(self: Any, *args: Any, **kwargs: Any) -> Any:
                simulated.settle(self)
                return originals[name](self, *args, **kwargs)

            return call

        return [
            mock.patch.object(Task, "advance", lambda self: None),
            mock.patch.object(backend_class, "start_task", start_task),
            mock.patch.object(backend_class, "update_container_instances_state", update_container_instances_state),
            mock.patch.object(backend_class, "describe_container_instances", describe_container_instances),
            mock.patch.object(backend_class, "describe_tasks", describe_tasks),
            mock.patch.object(backend_class, "list_container_instances", settled("list_container_instances")),
            mock.patch.object(backend_class, "list_tasks", settled("list_tasks")),
        ]


def _running(task: Task) -> bool:
    return task.desired_status == "RUNNING"


def _limit(items: list[str] | None, limit: int, name: str) -> None:
    if items and len(items) > limit:
        raise InvalidParameterException(f"{name} can have at most {limit} items, got {len(items)}")


@contextlib.contextmanager
def simulated(fleet: Fleet, clock: VirtualClock) -> Iterator[SimulatedEcs]:
    """ECS's scheduler and agents for the life of the block."""
    ecs = SimulatedEcs(fleet, clock)
    with contextlib.ExitStack() as stack:
        for patcher in ecs.patches():
            stack.enter_context(patcher)
        yield ecs
