"""Publishing lifecycle events to the default EventBridge bus, where rules route them (SNS, chat, audit)."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from updraft.adapters.aws import chunks, client
from updraft.domain.lifecycle import SOURCE, LifecycleDetail

PUT_EVENTS_LIMIT = 10
logger = Logger(child=True)


class LifecycleBus:
    """The default bus, as the rollout's `LifecycleEvents` port."""

    @staticmethod
    def publish(details: list[LifecycleDetail]) -> int:
        return publish(details)


def publish(details: list[LifecycleDetail]) -> int:
    """Send the events; returns how many EventBridge refused.

    Telling people never stops a rollout: a refused event is logged with its detail (the ledger keeps
    the facts), and a retried step never re-sends, since it only reports transitions it makes itself.
    """
    refused = 0
    for batch in chunks(details, PUT_EVENTS_LIMIT):
        entries = [{"Source": SOURCE, "DetailType": str(d.kind), "Detail": d.model_dump_json()} for d in batch]
        try:
            results = client("events").put_events(Entries=entries)["Entries"]
        except (BotoCoreError, ClientError) as error:
            logger.error("lifecycle events not sent", extra={"error": str(error), "events": entries})
            refused += len(entries)
            continue
        for entry, result in zip(entries, results, strict=True):
            if "EventId" not in result:
                logger.error("lifecycle event refused", extra={"event": entry, "result": result})
                refused += 1
    return refused
