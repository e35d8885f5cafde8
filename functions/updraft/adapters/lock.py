"""The per-group lock: a conditional write in DynamoDB, one holder (an execution) at a time."""

from __future__ import annotations

from dataclasses import dataclass

from boto3.dynamodb.conditions import Attr

from updraft.adapters.aws import client, table
from updraft.ledger_schema import LOCK_KEY, lock_item


@dataclass(frozen=True)
class LockState:
    acquired: bool
    holder: str


class GroupLock:
    def __init__(self, table_name: str) -> None:
        self.table = table(table_name)
        self._conflict = self.table.meta.client.exceptions.ConditionalCheckFailedException

    def acquire(self, group: str, execution_id: str, item: dict) -> LockState:
        """Take the lock; take it over from a holder that is no longer running (aborted, timed out)."""
        lock = lock_item(group, execution_id, item)
        try:
            self.table.put_item(Item=lock, ConditionExpression=Attr(LOCK_KEY).not_exists())
            return LockState(True, execution_id)
        except self._conflict:
            pass
        current = self.table.get_item(Key={LOCK_KEY: group}, ConsistentRead=True).get("Item", {})
        holder = current.get("holder", "")
        if holder == execution_id:  # a retry of our own step
            return LockState(True, execution_id)
        if holder and _still_running(holder):
            return LockState(False, holder)
        try:
            self.table.put_item(Item=lock, ConditionExpression=Attr("holder").eq(holder))
            return LockState(True, execution_id)
        except self._conflict:
            return LockState(False, self.table.get_item(Key={LOCK_KEY: group}).get("Item", {}).get("holder", ""))

    def held(self) -> list[dict]:
        """Every lock held now: one per group with a rollout running (a handful of items)."""
        items, start = [], None
        while True:
            page = self.table.scan(ConsistentRead=True, **({"ExclusiveStartKey": start} if start else {}))
            items += page["Items"]
            start = page.get("LastEvaluatedKey")
            if not start:
                return items

    def release(self, group: str, holder: str) -> bool:
        """Release the lock if `holder` still has it; False if someone else (or nobody) does."""
        try:
            self.table.delete_item(Key={LOCK_KEY: group}, ConditionExpression=Attr("holder").eq(holder))
            return True
        except self._conflict:
            return False


def _still_running(execution_arn: str) -> bool:
    sfn = client("stepfunctions")
    try:
        return sfn.describe_execution(executionArn=execution_arn)["status"] == "RUNNING"
    except sfn.exceptions.ExecutionDoesNotExist:
        return False
