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

STALE_CLAIM = timedelta(minutes=15)


def _pk(variant: str, arch: str) -> str:
    return f"RELEASES#{variant}/{arch}"


class ReleaseLedger:
    def __init__(self, table_name: str) -> None:
        self.table = table(table_name)
        self._conflict = self.table.meta.client.exceptions.ConditionalCheckFailedException

    def record(self, variant: str, arch: str, version: str, fields: dict[str, Any]) -> None:
        """Remember a release the first time it is seen; later sightings change nothing."""
        item = {"pk": _pk(variant, arch), "sk": version, "variant": variant, "arch": arch, "version": version}
        with contextlib.suppress(self._conflict):
            self.table.put_item(Item=item | fields, ConditionExpression=Attr("pk").not_exists())

    def claim(self, variant: str, arch: str, version: str, kind: str, now: datetime) -> bool:
        """True if this run may send the `kind` announcement ("available" or "withdrawn")."""
        stale = (now - STALE_CLAIM).isoformat()
        try:
            self.table.update_item(
                Key={"pk": _pk(variant, arch), "sk": version},
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
            Key={"pk": _pk(variant, arch), "sk": version},
            UpdateExpression="SET #sent = :now",
            ExpressionAttributeNames={"#sent": f"announced_{kind}"},
            ExpressionAttributeValues={":now": now.isoformat()},
        )

    def withdrawn(self, variant: str, arch: str, version: str) -> bool:
        item = self.table.get_item(Key={"pk": _pk(variant, arch), "sk": version}).get("Item", {})
        return "announced_withdrawn" in item

    def releases(self, variant: str, arch: str) -> list[dict[str, Any]]:
        items, start = [], None
        while True:
            extra = {"ExclusiveStartKey": start} if start else {}
            page = self.table.query(KeyConditionExpression=Key("pk").eq(_pk(variant, arch)), **extra)
            items += page["Items"]
            start = page.get("LastEvaluatedKey")
            if not start:
                return items
