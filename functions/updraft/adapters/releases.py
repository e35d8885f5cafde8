"""The release ledger: every verified release seen, and which announcements went out, in the ledger table.

An announcement is claimed with a conditional write before its event is sent and marked sent after,
so overlapping or retried runs send it once; a claim older than `STALE_CLAIM` (a run that died
between the two) may be taken again.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any

from boto3.dynamodb.conditions import Attr, Key

from updraft.adapters.aws import table
from updraft.ledger_schema import PK, release_item, release_key, releases_pk

STALE_CLAIM = timedelta(minutes=15)


class ReleaseLedger:
    def __init__(self, table_name: str) -> None:
        self.table = table(table_name)
        self._conflict = self.table.meta.client.exceptions.ConditionalCheckFailedException

    def record(self, variant: str, arch: str, version: str, fields: dict[str, Any]) -> None:
        """Remember a release the first time it is seen; later sightings change nothing."""
        with contextlib.suppress(self._conflict):
            item = release_item(variant, arch, version) | fields
            self.table.put_item(Item=item, ConditionExpression=Attr(PK).not_exists())

    def claim(self, variant: str, arch: str, version: str, kind: str, now: datetime) -> bool:
        """True if this run may send the `kind` announcement ("available" or "withdrawn")."""
        stale = (now - STALE_CLAIM).isoformat()
        try:
            self.table.update_item(
                Key=release_key(variant, arch, version),
                UpdateExpression="SET #claim = :now",
                ConditionExpression=Attr(f"announced_{kind}").not_exists()
                & (Attr(f"claimed_{kind}").not_exists() | Attr(f"claimed_{kind}").lt(stale)),
                ExpressionAttributeNames={"#claim": f"claimed_{kind}"},
                ExpressionAttributeValues={":now": now.isoformat()},
            )
            return True
        except self._conflict:
            return False

    def mark_sent(self, variant: str, arch: str, version: str, kind: str, now: datetime) -> None:
        self.table.update_item(
            Key=release_key(variant, arch, version),
            UpdateExpression="SET #sent = :now",
            ExpressionAttributeNames={"#sent": f"announced_{kind}"},
            ExpressionAttributeValues={":now": now.isoformat()},
        )

    def withdrawn(self, variant: str, arch: str, version: str) -> bool:
        return "announced_withdrawn" in (self.release(variant, arch, version) or {})

    def release(self, variant: str, arch: str, version: str) -> dict[str, Any] | None:
        """The detector's record of the release, if it verified one (read consistently: an announcement may
        arrive right after the record was written)."""
        return self.table.get_item(Key=release_key(variant, arch, version), ConsistentRead=True).get("Item")

    def releases(self, variant: str, arch: str) -> list[dict[str, Any]]:
        items, start = [], None
        while True:
            extra = {"ExclusiveStartKey": start} if start else {}
            page = self.table.query(KeyConditionExpression=Key(PK).eq(releases_pk(variant, arch)), **extra)
            items += page["Items"]
            start = page.get("LastEvaluatedKey")
            if not start:
                return items
