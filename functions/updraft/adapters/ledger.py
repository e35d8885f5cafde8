"""The DynamoDB ledger: one item per rollout and one per host, laid out as updraft.ledger_schema says.

Host items sort by wave so a wave is one Query; the rollout item keeps the policy it started with, so a config
change never alters a rollout in flight.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from boto3.dynamodb.conditions import Key

from updraft.adapters.aws import table
from updraft.domain.host_record import HostRecord
from updraft.errors import RolloutNotFound
from updraft.ledger_schema import (
    BY_GROUP,
    CLOSED,
    EVENT,
    GROUP_KEY,
    PK,
    REQUEST_FIELDS,
    REVISION,
    SK,
    SKIPPED,
    WAVE,
    automatic_claim_item,
    event_item,
    group_outcome_item,
    group_outcome_key,
    host_item,
    host_key,
    request_key,
    rollout_item,
    rollout_key,
    rollout_pk,
    skipped_item,
    wave_prefix,
)

LOG = logging.getLogger(__name__)


class Ledger:
    def __init__(self, table_name: str) -> None:
        self.table = table(table_name)

    # -- rollouts --------------------------------------------------------------------------------
    def create_rollout(self, rollout: dict[str, Any]) -> None:
        """Record a new rollout; a retried step finds it there and leaves it as it is."""
        with contextlib.suppress(self.table.meta.client.exceptions.ConditionalCheckFailedException):
            self.table.put_item(Item=rollout_item(rollout), ConditionExpression=f"attribute_not_exists({PK})")

    def rollout(self, rollout_id: str) -> dict[str, Any]:
        """The rollout's item, with the operator's requests on it (kept in an item only operators write)."""
        item = self.table.get_item(Key=rollout_key(rollout_id), ConsistentRead=True).get("Item")
        if item is None:
            raise RolloutNotFound(rollout_id)
        requests = self.table.get_item(Key=request_key(rollout_id), ConsistentRead=True).get("Item", {})
        return item | {name: requests[name] for name in REQUEST_FIELDS if name in requests}

    def update_rollout(self, rollout_id: str, **fields: Any) -> None:
        self._update(rollout_id, fields, f"attribute_exists({PK})")

    def _update(self, rollout_id: str, fields: dict[str, Any], condition: str) -> None:
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":v{i}": value for i, value in enumerate(fields.values())}
        assignments = ", ".join(f"#f{i} = :v{i}" for i in range(len(fields)))
        self.table.update_item(
            Key=rollout_key(rollout_id),
            UpdateExpression=f"SET {assignments}",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ConditionExpression=condition,
        )

    def group_rollouts(self, group: str, newest: int = 20) -> list[dict[str, Any]]:
        """The group's latest rollouts, newest first."""
        page = self.table.query(
            IndexName=BY_GROUP,
            KeyConditionExpression=Key(GROUP_KEY).eq(group),
            ScanIndexForward=False,
            Limit=newest,
        )
        return page["Items"]

    # -- the rollout's own events ------------------------------------------------------------------
    def record_event(self, rollout_id: str, key: str, fields: dict[str, Any]) -> bool:
        """Keep the event once: False if it was recorded already (a retried step), which keeps the first."""
        try:
            self.table.put_item(
                Item=event_item(rollout_id, key, fields), ConditionExpression=f"attribute_not_exists({PK})"
            )
            return True
        except self.table.meta.client.exceptions.ConditionalCheckFailedException:
            return False

    def events(self, rollout_id: str) -> list[dict[str, Any]]:
        return self._query(rollout_id, EVENT)

    # -- groups: what each group finished, and which automatic rollout took a release ------------------
    def record_group_outcome(self, group: str, version: str, outcome: str, rollout_id: str, now: str) -> None:
        self.table.put_item(Item=group_outcome_item(group, version, outcome, rollout_id, now))

    def group_outcome(self, group: str, version: str) -> str | None:
        """How the group's last rollout to `version` ended, if one did."""
        item = self.table.get_item(Key=group_outcome_key(group, version), ConsistentRead=True)
        return item.get("Item", {}).get("outcome")

    def claim_automatic(self, group: str, version: str, execution_id: str, now: str) -> bool:
        """One automatic rollout per group and version: False if another execution took it."""
        try:
            self.table.put_item(
                Item=automatic_claim_item(group, version, execution_id, now),
                ConditionExpression=f"attribute_not_exists({PK}) OR holder = :me",
                ExpressionAttributeValues={":me": execution_id},
            )
            return True
        except self.table.meta.client.exceptions.ConditionalCheckFailedException:
            return False

    # -- hosts -----------------------------------------------------------------------------------
    def put_planned(self, records: list[HostRecord]) -> None:
        """The plan's new host records, in batches: nothing else writes a host before its plan returns."""
        with self.table.batch_writer(overwrite_by_pkeys=[PK, SK]) as batch:
            for record in records:
                batch.put_item(Item=host_item(record, record.revision + 1))

    def put_hosts(self, records: list[HostRecord], closing_at: str | None = None) -> list[HostRecord]:
        """Write each record unless the ledger moved on since it was read: a write expects the host's
        revision it was read at, and a rollout its execution's end settled (`CLOSED`) takes no more writes.
        Returns the records written, at their new revision; a record another run changed is left out.
        `closing_at` marks each record closed: the settlement's own, last writes."""
        return [written for record in records if (written := self._put_host(record, closing_at)) is not None]

    def _put_host(self, record: HostRecord, closing_at: str | None) -> HostRecord | None:
        item = host_item(record, record.revision + 1)
        condition = f"{REVISION} = :read" if record.revision else f"attribute_not_exists({REVISION})"
        values: dict[str, Any] = {":read": record.revision} if record.revision else {}
        if closing_at:
            item[CLOSED] = closing_at
        else:
            condition = f"({condition}) AND attribute_not_exists({CLOSED})"
        try:
            self.table.put_item(
                Item=item, ConditionExpression=condition, **({"ExpressionAttributeValues": values} if values else {})
            )
        except self.table.meta.client.exceptions.ConditionalCheckFailedException:
            LOG.warning("host %s changed since it was read: its write is left out", record.instance_id)
            return None
        return record.model_copy(update={"revision": record.revision + 1})

    def host(self, rollout_id: str, wave: int, instance_id: str) -> HostRecord | None:
        item = self.table.get_item(Key=host_key(rollout_id, wave, instance_id), ConsistentRead=True).get("Item")
        return HostRecord.model_validate(item) if item else None

    def close_rollout(self, rollout_id: str, **fields: Any) -> bool:
        """Record the rollout's end (`finished_at` among the fields) once: False if it was already recorded."""
        try:
            self._update(rollout_id, fields, f"attribute_exists({PK}) AND attribute_not_exists(finished_at)")
            return True
        except self.table.meta.client.exceptions.ConditionalCheckFailedException:
            return False

    def put_skipped(self, rollout_id: str, skipped: list[dict[str, str]]) -> None:
        with self.table.batch_writer(overwrite_by_pkeys=[PK, SK]) as batch:
            for host in skipped:
                batch.put_item(Item=skipped_item(rollout_id, host))

    def wave_hosts(self, rollout_id: str, wave: int) -> list[HostRecord]:
        return [HostRecord.model_validate(item) for item in self._query(rollout_id, wave_prefix(wave))]

    def all_hosts(self, rollout_id: str) -> list[HostRecord]:
        return [HostRecord.model_validate(item) for item in self._query(rollout_id, WAVE)]

    def skipped_hosts(self, rollout_id: str) -> list[dict[str, Any]]:
        return self._query(rollout_id, SKIPPED)

    def _query(self, rollout_id: str, prefix: str) -> list[dict[str, Any]]:
        condition = Key(PK).eq(rollout_pk(rollout_id)) & Key(SK).begins_with(prefix)
        items, start = [], None
        while True:
            extra = {"ExclusiveStartKey": start} if start else {}
            page = self.table.query(KeyConditionExpression=condition, ConsistentRead=True, **extra)
            items.extend(page["Items"])
            start = page.get("LastEvaluatedKey")
            if not start:
                return items
