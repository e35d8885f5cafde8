"""CloudWatch alarms a group's waves must keep OK."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from updraft.adapters.aws import client
from updraft.config import AlarmGate
from updraft.errors import AlarmNotFound

ALARM_TYPES = ["MetricAlarm", "CompositeAlarm"]


def _alarms(**query: Any) -> Iterator[dict[str, Any]]:
    pages = client("cloudwatch").get_paginator("describe_alarms").paginate(AlarmTypes=ALARM_TYPES, **query)
    for page in pages:
        yield from page.get("MetricAlarms", [])
        yield from page.get("CompositeAlarms", [])


def _queries(gate: AlarmGate) -> list[dict[str, Any]]:
    # DescribeAlarms takes up to 100 names, or one prefix, per call.
    queries: list[dict[str, Any]] = [
        {"AlarmNames": gate.names[start : start + 100]} for start in range(0, len(gate.names), 100)
    ]
    return queries + [{"AlarmNamePrefix": prefix} for prefix in gate.prefixes]


def firing(gate: AlarmGate) -> list[str]:
    """The gate's alarms in ALARM now, by name."""
    return sorted({alarm["AlarmName"] for query in _queries(gate) for alarm in _alarms(StateValue="ALARM", **query)})


def check_exist(gate: AlarmGate) -> None:
    """A gate that watches nothing would always pass: every named alarm and every prefix must match one."""
    missing = []
    for query in _queries(gate):
        found = {alarm["AlarmName"] for alarm in _alarms(**query)}
        if "AlarmNames" in query:
            missing += [name for name in query["AlarmNames"] if name not in found]
        elif not found:
            missing.append(f"{query['AlarmNamePrefix']}*")
    if missing:
        raise AlarmNotFound(f"the group's alarm gate watches alarms that do not exist: {', '.join(missing)}")


def state(alarm_name: str) -> str | None:
    """The alarm's state now (OK, ALARM, INSUFFICIENT_DATA), or None if this account has no such alarm."""
    found = [alarm for alarm in _alarms(AlarmNames=[alarm_name]) if alarm["AlarmName"] == alarm_name]
    return found[0]["StateValue"] if found else None


class CloudWatchAlarms:
    """CloudWatch, as the rollout's `AlarmGates` port."""

    firing = staticmethod(firing)
    check_exist = staticmethod(check_exist)
