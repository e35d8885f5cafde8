"""Limits the real services enforce on the calls the pipeline makes, and moto does not: the simulation refuses
what AWS would refuse, with AWS's error code.

moto already enforces DynamoDB's 400 KB item size (`ItemSizeTooLarge`) and the 256 KB payload of each Step
Functions state (`moto/stepfunctions/parser/quotas.py`); these are the ones it lacks. They are facts about the
services and import nothing of moto; the patches in sim/aws/ check each request against them.
"""

from __future__ import annotations

from typing import Any

KB = 1024
# SendCommand API reference: InstanceIds "Array Members: Maximum number of 50 items"; TimeoutSeconds 30..2592000.
SEND_COMMAND_INSTANCES = 50
SEND_COMMAND_TIMEOUT = (30, 2_592_000)
# Step Functions quotas: "Maximum input or output size for a task, state, or execution: 256 KB".
EXECUTION_INPUT = 256 * KB
# EventBridge: "The total size of a PutEvents request [is] 256 KB", each entry sized as "Calculating PutEvents
# event entry size" says: 14 bytes for a Time, then the UTF-8 bytes of Source, DetailType, Detail, Resources.
PUT_EVENTS_REQUEST = 256 * KB
TIME_BYTES = 14
# ECS API reference: UpdateContainerInstancesState takes at most 10 container instances, DescribeContainerInstances
# and DescribeTasks at most 100 items.
ECS_STATE_CHANGE_ITEMS = 10
ECS_DESCRIBE_ITEMS = 100


class LimitRefused(Exception):
    """What the service answers: an error code and its message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_send_command(instance_ids: list[str], timeout: int) -> None:
    if len(instance_ids) > SEND_COMMAND_INSTANCES:
        raise LimitRefused(
            "ValidationException",
            f"1 validation error detected: Value at 'instanceIds' failed to satisfy constraint: Member must have "
            f"length less than or equal to {SEND_COMMAND_INSTANCES}",
        )
    low, high = SEND_COMMAND_TIMEOUT
    if not low <= timeout <= high:
        raise LimitRefused("ValidationException", f"TimeoutSeconds {timeout} is outside {low}..{high}")


def check_ecs_items(items: list[str] | None, limit: int, name: str) -> None:
    if items and len(items) > limit:
        raise LimitRefused("InvalidParameterException", f"{name} can have at most {limit} items, got {len(items)}")


def check_execution_input(execution_input: str | None) -> None:
    size = len((execution_input or "").encode())
    if size > EXECUTION_INPUT:
        raise LimitRefused("InvalidExecutionInput", f"execution input of {size:,} bytes is over {EXECUTION_INPUT:,}")


def entry_size(entry: dict[str, Any]) -> int:
    size = TIME_BYTES if entry.get("Time") else 0
    for field in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(field) or "").encode())
    return size + sum(len(resource.encode()) for resource in entry.get("Resources") or [])


def check_put_events(entries: list[dict[str, Any]]) -> None:
    total = sum(entry_size(entry) for entry in entries)
    if total > PUT_EVENTS_REQUEST:
        raise LimitRefused("ValidationException", "Total size of the entries in the request is over the limit.")
