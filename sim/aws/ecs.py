"""ECS: moto's ECS backend stores clusters, container instances and tasks; the scheduler and agents it lacks are
the model's (sim/ecs.py), settled whenever the ECS API is called.

Each patched call, in this order: the request's limits (10 container instances per state change, 100 items per
describe: sim/service_limits.py), the model settled to now, moto's call, and what the model learns of it (tasks
started, drains begun or ended). Tasks no longer move towards STOPPED by being described (moto's state manager
does that).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from unittest import mock

from moto.ecs import models as ecs_models
from moto.ecs.exceptions import InvalidParameterException
from moto.ecs.models import EC2ContainerServiceBackend, Task

from sim import service_limits
from sim.clock import VirtualClock
from sim.ecs import SimulatedEcs
from sim.fleet import Fleet


def patches(simulated: SimulatedEcs) -> list[Any]:
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

    def start_task(self: Any, *args: Any, **kwargs: Any) -> list[Task]:
        tasks = originals["start_task"](self, *args, **kwargs)
        simulated.tasks_started(tasks)
        return tasks

    def update_container_instances_state(self: Any, cluster: str, arns: list[str], status: str) -> Any:
        _limit(arns, service_limits.ECS_STATE_CHANGE_ITEMS, "containerInstances")
        simulated.settle(self)
        found, failures = originals["update_container_instances_state"](self, cluster, arns, status)
        simulated.state_changed(found, status)
        return found, failures

    def describe_container_instances(self: Any, cluster: str, arns: list[str]) -> Any:
        _limit(arns, service_limits.ECS_DESCRIBE_ITEMS, "containerInstances")
        simulated.settle(self)
        return originals["describe_container_instances"](self, cluster, arns)

    def describe_tasks(self: Any, cluster: str, tasks: list[str]) -> Any:
        _limit(tasks, service_limits.ECS_DESCRIBE_ITEMS, "tasks")
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


@contextlib.contextmanager
def simulated(fleet: Fleet, clock: VirtualClock) -> Iterator[SimulatedEcs]:
    """ECS's patches alone, for the life of the block (for tests of the ECS model; `sim.aws.wired` enters them
    with every other service's)."""
    ecs = SimulatedEcs(fleet, clock)
    with contextlib.ExitStack() as stack:
        for patcher in patches(ecs):
            stack.enter_context(patcher)
        yield ecs


def backend(account: str, region: str) -> Any:
    """ECS's backend of the account and region (made now if it is not yet)."""
    return ecs_models.ecs_backends[account][region]


def forget(simulated: SimulatedEcs, account: str, region: str) -> None:
    """No cluster, container instance, task or task definition any more, in the model as in moto."""
    simulated.forget(ecs_models.ecs_backends[account][region])
    ecs_models.ecs_backends[account][region].task_definitions.clear()


def _limit(items: list[str] | None, limit: int, name: str) -> None:
    try:
        service_limits.check_ecs_items(items, limit, name)
    except service_limits.LimitRefused as error:
        raise InvalidParameterException(str(error)) from None
