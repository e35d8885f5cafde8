"""Updraft's events on its EventBridge bus."""

from __future__ import annotations

import json
from typing import Any

from updraft.adapters.aws import client
from updraft.errors import UpdraftError

SOURCE = "updraft"


class EventNotSent(UpdraftError):
    """EventBridge refused an event; the run fails so that it is retried."""


def publish(bus: str, detail_type: str, detail: dict[str, Any]) -> str:
    entry = {"EventBusName": bus, "Source": SOURCE, "DetailType": detail_type, "Detail": json.dumps(detail)}
    (result,) = client("events").put_events(Entries=[entry])["Entries"]
    if "EventId" not in result:
        raise EventNotSent(f"{detail_type}: {result.get('ErrorCode')}: {result.get('ErrorMessage')}")
    return result["EventId"]
