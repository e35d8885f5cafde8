"""Limits the real services enforce on the calls the pipeline makes, and moto does not: the simulation refuses
what AWS would refuse, with AWS's error code.

moto already enforces DynamoDB's 400 KB item size (`ItemSizeTooLarge`) and the 256 KB payload of each Step
Functions state (`moto/stepfunctions/parser/quotas.py`); these are the ones it lacks. They are facts about the
services and import nothing of moto; the patches in sim/aws/ check each request against them.
"""

from __future__ import annotations

import re
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


# PutComplianceItems, as botocore's model of SSM bounds it (service-2.json: ComplianceResourceId, ComplianceTypeName,
# ComplianceItemEntryList, ...; https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutComplianceItems.html).
# botocore checks only what is required and the minimum lengths before sending; the service checks the rest.
COMPLIANCE_RESOURCE_ID = (1, 100)
COMPLIANCE_RESOURCE_TYPE = (1, 50)
COMPLIANCE_TYPE = (1, 100)
COMPLIANCE_TYPE_PATTERN = re.compile(r"^([A-Za-z0-9_\-]\w+|Custom:[a-zA-Z0-9_\-]\w+)$")
COMPLIANCE_EXECUTION_ID = 100
COMPLIANCE_EXECUTION_TYPE = 50
COMPLIANCE_ITEMS = 10_000
COMPLIANCE_TITLE = 500
COMPLIANCE_DETAIL_KEY = (1, 64)
COMPLIANCE_DETAIL_VALUE = 4096
COMPLIANCE_CONTENT_HASH = 256
COMPLIANCE_SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNSPECIFIED")
COMPLIANCE_STATUSES = ("COMPLIANT", "NON_COMPLIANT")
COMPLIANCE_UPLOAD_TYPES = ("COMPLETE", "PARTIAL")
# ComplianceTypeCountLimitExceededException: "You can specify a maximum of 10 different types."
CUSTOM_COMPLIANCE_TYPES = 10
# ComplianceStringFilter: Key 1-200 characters, 1-20 Values; MaxResults 1-50 (ListComplianceItems and
# ListResourceComplianceSummaries).
COMPLIANCE_FILTER_KEY = (1, 200)
COMPLIANCE_FILTER_VALUES = (1, 20)
COMPLIANCE_FILTER_TYPES = ("EQUAL", "NOT_EQUAL", "BEGIN_WITH", "LESS_THAN", "GREATER_THAN")
COMPLIANCE_MAX_RESULTS = (1, 50)


def check_put_compliance_items(request: dict[str, Any]) -> None:
    """Every constraint of the model a PutComplianceItems request breaks, as one ValidationException worded as AWS
    words them ("N validation errors detected: Value ... at '<member>' failed to satisfy constraint: ...")."""
    summary = request.get("ExecutionSummary") or {}
    items = request.get("Items") or []
    errors = [
        *_length(request.get("ResourceId"), "resourceId", *COMPLIANCE_RESOURCE_ID),
        *_length(request.get("ResourceType"), "resourceType", *COMPLIANCE_RESOURCE_TYPE),
        *_length(request.get("ComplianceType"), "complianceType", *COMPLIANCE_TYPE),
        *_pattern(request.get("ComplianceType"), "complianceType", COMPLIANCE_TYPE_PATTERN),
        *_length(summary.get("ExecutionId"), "executionSummary.executionId", 0, COMPLIANCE_EXECUTION_ID),
        *_length(summary.get("ExecutionType"), "executionSummary.executionType", 0, COMPLIANCE_EXECUTION_TYPE),
        *_length(request.get("ItemContentHash"), "itemContentHash", 0, COMPLIANCE_CONTENT_HASH),
        *_member_of(request.get("UploadType"), "uploadType", COMPLIANCE_UPLOAD_TYPES),
        *_length(items, "items", 0, COMPLIANCE_ITEMS),
    ]
    for index, item in enumerate(items[:COMPLIANCE_ITEMS], start=1):
        errors += _item_errors(item, f"items.{index}.member")
    _refuse(errors)


def _item_errors(item: dict[str, Any], at: str) -> list[str]:
    errors = [
        *_length(item.get("Title"), f"{at}.title", 0, COMPLIANCE_TITLE),
        *_member_of(item.get("Severity"), f"{at}.severity", COMPLIANCE_SEVERITIES),
        *_member_of(item.get("Status"), f"{at}.status", COMPLIANCE_STATUSES),
    ]
    for key, value in (item.get("Details") or {}).items():
        errors += _length(key, f"{at}.details.key", *COMPLIANCE_DETAIL_KEY)
        errors += _length(value, f"{at}.details.{key}", 0, COMPLIANCE_DETAIL_VALUE)
    return errors


def check_compliance_listing(filters: list[dict[str, Any]] | None, max_results: int | None) -> None:
    """ListComplianceItems' and ListResourceComplianceSummaries' own bounds."""
    errors: list[str] = []
    for index, found in enumerate(filters or [], start=1):
        at = f"filters.{index}.member"
        errors += _length(found.get("Key"), f"{at}.key", *COMPLIANCE_FILTER_KEY)
        errors += _length(found.get("Values") or [], f"{at}.values", *COMPLIANCE_FILTER_VALUES)
        errors += _member_of(found.get("Type"), f"{at}.type", COMPLIANCE_FILTER_TYPES)
    low, high = COMPLIANCE_MAX_RESULTS
    if max_results is not None and not low <= max_results <= high:
        errors.append(_broken("maxResults", f"Member must be between {low} and {high}", max_results))
    _refuse(errors)


def _refuse(errors: list[str]) -> None:
    if errors:
        count = f"{len(errors)} validation error{'s' if len(errors) > 1 else ''} detected"
        raise LimitRefused("ValidationException", f"{count}: {'; '.join(errors)}")


def _broken(member: str, constraint: str, value: Any = None) -> str:
    shown = "" if value is None else f" '{value}'"
    return f"Value{shown} at '{member}' failed to satisfy constraint: {constraint}"


def _length(value: Any, member: str, low: int, high: int) -> list[str]:
    if value is None:
        return []
    if len(value) > high:
        return [_broken(member, f"Member must have length less than or equal to {high}")]
    if len(value) < low:
        return [_broken(member, f"Member must have length greater than or equal to {low}")]
    return []


def _pattern(value: Any, member: str, pattern: re.Pattern[str]) -> list[str]:
    if value is None or pattern.match(value):
        return []
    return [_broken(member, f"Member must satisfy regular expression pattern: {pattern.pattern}", value)]


def _member_of(value: Any, member: str, allowed: tuple[str, ...]) -> list[str]:
    if value is None or value in allowed:
        return []
    return [_broken(member, f"Member must satisfy enum value set: [{', '.join(allowed)}]", value)]
