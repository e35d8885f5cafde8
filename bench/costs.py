"""Published AWS prices (us-east-1) and a meter of the billable units a simulated rollout used.

Prices as published on the services' pricing pages; checked 2025-06. Only what a rollout uses:
SSM Run Command has no charge on EC2 instances; CloudWatch metrics are left out (the bench disables them).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# aws.amazon.com/step-functions/pricing: Standard workflows, $0.025 per 1,000 state transitions.
SFN_PER_TRANSITION = 0.025 / 1000
# aws.amazon.com/lambda/pricing: Arm, first 7.5 billion GB-seconds a month, $0.0000133334 per GB-second;
# requests $0.20 per million.
LAMBDA_ARM_PER_GB_SECOND = 0.0000133334
LAMBDA_PER_REQUEST = 0.20 / 1_000_000
# aws.amazon.com/dynamodb/pricing/on-demand: $0.625 per million write request units, $0.125 per million
# read request units (since the November 2024 price change).
DYNAMODB_PER_WRU = 0.625 / 1_000_000
DYNAMODB_PER_RRU = 0.125 / 1_000_000
# aws.amazon.com/eventbridge/pricing: custom events $1.00 per million (each 64 KB chunk of an entry is one).
EVENTBRIDGE_PER_EVENT = 1.00 / 1_000_000
# aws.amazon.com/systems-manager/pricing: Run Command on EC2 instances, no additional charge.
SSM_RUN_COMMAND_PER_HOST = 0.0

WRITE_UNIT, READ_UNIT, EVENT_CHUNK = 1024, 4096, 64 * 1024


def _item_bytes(item: dict) -> int:
    """An item's size as DynamoDB counts it, approximately: attribute names plus their values' JSON (with the
    type tags, so a little over)."""
    return sum(len(name) + len(json.dumps(value, default=str)) for name, value in item.items())


@dataclass
class Meter:
    """Billable units of the calls the pipeline makes (`ours()` tells them from the harness's), from
    botocore's events."""

    ours: Callable[[], bool]
    write_units: float = 0.0
    read_units: float = 0.0
    events: int = 0

    def attach(self, session: Any) -> None:
        # before-parameter-build sees the operation's parameters (before-call sees the serialized request).
        session.events.register("before-parameter-build.dynamodb", self._writes)
        session.events.register("after-call.dynamodb", self._reads)
        session.events.register("before-parameter-build.eventbridge.PutEvents", self._put_events)

    def _writes(self, model: Any, params: dict, context: dict, **_: Any) -> None:
        context["consistent_read"] = bool(params.get("ConsistentRead"))  # for the read's answer
        if not self.ours():
            return
        items: list[dict] = []
        if model.name == "BatchWriteItem":
            for requests in params.get("RequestItems", {}).values():
                items += [
                    r.get("PutRequest", {}).get("Item") or r.get("DeleteRequest", {}).get("Key") for r in requests
                ]
        elif model.name in ("PutItem", "UpdateItem", "DeleteItem"):
            items.append(params.get("Item") or params.get("Key") or {})
        self.write_units += sum(max(1, math.ceil(_item_bytes(item) / WRITE_UNIT)) for item in items)

    def _reads(self, model: Any, parsed: dict, context: dict, **_: Any) -> None:
        if not self.ours() or model.name not in ("GetItem", "Query", "Scan", "BatchGetItem"):
            return
        found = parsed.get("Items") or ([parsed["Item"]] if parsed.get("Item") else [])
        units = max(1, math.ceil(sum(_item_bytes(item) for item in found) / READ_UNIT))
        # Eventually consistent reads cost half a unit per 4 KB.
        self.read_units += units if context.get("consistent_read") else units / 2

    def _put_events(self, params: dict, **_: Any) -> None:
        if self.ours():
            self.events += sum(
                max(1, math.ceil(len(json.dumps(entry)) / EVENT_CHUNK)) for entry in params.get("Entries", [])
            )


@dataclass(frozen=True)
class Cost:
    step_functions: float
    lambda_compute: float
    lambda_requests: float
    dynamodb: float
    eventbridge: float

    @property
    def total(self) -> float:
        return self.step_functions + self.lambda_compute + self.lambda_requests + self.dynamodb + self.eventbridge


def cost(transitions: int, gb_seconds: float, invocations: int, meter: Meter) -> Cost:
    return Cost(
        step_functions=transitions * SFN_PER_TRANSITION,
        lambda_compute=gb_seconds * LAMBDA_ARM_PER_GB_SECOND,
        lambda_requests=invocations * LAMBDA_PER_REQUEST,
        dynamodb=meter.write_units * DYNAMODB_PER_WRU + meter.read_units * DYNAMODB_PER_RRU,
        eventbridge=meter.events * EVENTBRIDGE_PER_EVENT,
    )
