"""Operator control, kept in the ledger table: kill switches, and pause / abort requests on a rollout.

Kill switches are items of their own (updraft.ledger_schema: one global, one per group); while one is engaged
no wave of the groups it covers starts. Pause and abort are kept in a request item beside the rollout's own,
which the ledger merges into the rollout's record when it reads it: the rollout sees them before every wave
(and, for abort, at every poll).
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key

from updraft.adapters.aws import table
from updraft.domain import rollout_record
from updraft.errors import RolloutNotFound
from updraft.ledger_schema import CONTROL, GLOBAL, PK, SK, request_key, rollout_key, switch_item, switch_key, switch_sk

ENDED = tuple(status.value for status in rollout_record.ENDED)
# A rollout takes requests only while it runs.
RUNNING = f"attribute_exists({PK}) AND NOT #status IN ({', '.join(f':s{i}' for i in range(len(ENDED)))})"


class Controls:
    def __init__(self, table_name: str) -> None:
        self.table = table(table_name)

    # -- kill switches ------------------------------------------------------------------------------
    def engage(self, group: str | None, reason: str, by: str, now: str) -> None:
        """Stop every wave of `group` (all groups when None) from starting until released."""
        self.table.put_item(Item=switch_item(group, reason, by, now))

    def release(self, group: str | None) -> None:
        self.table.delete_item(Key=switch_key(group))

    def switches(self) -> list[dict[str, Any]]:
        page = self.table.query(KeyConditionExpression=Key(PK).eq(CONTROL), ConsistentRead=True)
        return page["Items"]

    def kill_switch_for(self, group: str) -> dict[str, Any] | None:
        """The engaged switch that holds `group`, the global one first; None when waves may start."""
        engaged = {item[SK]: item for item in self.switches() if item.get("engaged")}
        return engaged.get(GLOBAL) or engaged.get(switch_sk(group))

    # -- requests on a running rollout -------------------------------------------------------------
    def pause(self, rollout_id: str, reason: str, by: str, now: str) -> None:
        self._request(rollout_id, paused=True, pause={"reason": reason, "by": by, "at": now})

    def resume(self, rollout_id: str, by: str, now: str) -> None:
        self._request(rollout_id, paused=False, resumed={"by": by, "at": now})

    def abort(self, rollout_id: str, reason: str, by: str, now: str) -> None:
        self._request(rollout_id, abort_requested={"reason": reason, "by": by, "at": now})

    def _request(self, rollout_id: str, **fields: Any) -> None:
        """Write the request beside the rollout's record, in one transaction with the check that it runs: the
        steps, which write the record, may not write requests (IAM grants them by key prefix)."""
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":v{i}": value for i, value in enumerate(fields.values())}
        running = {f":s{i}": status for i, status in enumerate(ENDED)}
        try:  # the resource's client serializes the values, as the table's own calls do
            self.table.meta.client.transact_write_items(
                TransactItems=[
                    {
                        "ConditionCheck": {
                            "TableName": self.table.name,
                            "Key": rollout_key(rollout_id),
                            "ConditionExpression": RUNNING,
                            "ExpressionAttributeNames": {"#status": "status"},
                            "ExpressionAttributeValues": running,
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table.name,
                            "Key": request_key(rollout_id),
                            "UpdateExpression": "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
                            "ExpressionAttributeNames": names,
                            "ExpressionAttributeValues": values,
                        }
                    },
                ]
            )
        except self.table.meta.client.exceptions.TransactionCanceledException:
            raise RolloutNotFound(f"{rollout_id}: no such rollout is running") from None
