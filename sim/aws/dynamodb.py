"""DynamoDB: item requests are authorised against the caller's policies, as the template grants them.

One patch, of `DynamoHandler._authenticate_and_authorize_normal_action` (the hook moto's own IAM checks use:
it runs for every request, after the parameters are parsed and before the action), decides each item request
of a principal (sim/aws/iam.py: a function's role, or the keys of a user or role session; the harness's
administrator and the services acting for themselves are allowed, as before):
- the resource is the table's ARN, or `<table ARN>/index/<name>` for a query or scan of an index;
- `dynamodb:LeadingKeys` is the partition key value of the item (or, for a query, the value its key condition
  names, of the index's partition key for an index query); a Scan names none, so the key is absent;
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html
- BatchWriteItem, BatchGetItem, TransactWriteItems and TransactGetItems are checked item by item (a batch under
  its own action, each transaction item under its item's: PutItem, UpdateItem, DeleteItem, ConditionCheckItem,
  GetItem), and one item denied refuses the whole call: the call is authorised for every key it names, and a
  refusal is an error, never an unprocessed item;
  https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html
- a denial is DynamoDB's `AccessDeniedException` (HTTP 400), worded "User: <arn> is not authorized to perform:
  dynamodb:<Action> on resource: <arn> because ...".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest import mock

from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.parsing.key_condition_expression import parse_expression
from moto.dynamodb.responses import DynamoHandler

from sim.aws import iam

# The item actions; anything else (DescribeTable, ...) is left as it was.
ITEM_ACTIONS = {
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "GetItem",
    "Query",
    "Scan",
    "BatchWriteItem",
    "BatchGetItem",
    "TransactWriteItems",
    "TransactGetItems",
}
_TRANSACT_WRITES = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


class AccessDeniedException(DynamodbException):
    def __init__(self, message: str) -> None:
        super().__init__(ERROR_TYPE_PREFIX + "AccessDeniedException", message)


def patches() -> list[Any]:
    original = DynamoHandler._authenticate_and_authorize_normal_action

    def authorize(self: DynamoHandler, resource: str = "*") -> None:
        original(self, resource)
        action = self._get_action()
        if action not in ITEM_ACTIONS:
            return
        principal = iam.caller(self.access_key, self.headers, self.current_account, self.region)
        if principal is None:
            return
        tables = _Tables(self.current_account, self.region)
        for request in requests(action, getattr(self, "params", {}), tables):
            try:
                iam.authorize(principal, request)
            except iam.AccessDenied as denied:
                raise AccessDeniedException(str(denied)) from None

    return [mock.patch.object(DynamoHandler, "_authenticate_and_authorize_normal_action", authorize)]


class _Tables:
    """The account's tables as moto holds them: ARNs and key schemas."""

    def __init__(self, account: str, region: str) -> None:
        self.backend = dynamodb_backends[account][region]

    def arn(self, name: str, index: str | None = None) -> str:
        table = self.backend.get_table(name)
        return f"{table.table_arn}/index/{index}" if index else table.table_arn

    def partition_key(self, name: str, index: str | None = None) -> str:
        schema = self.backend.get_schema(table_name=name, index_name=index)
        return next(k["AttributeName"] for k in schema if k["KeyType"] == "HASH")

    def schema(self, name: str, index: str | None = None) -> list[dict[str, Any]]:
        return self.backend.get_schema(table_name=name, index_name=index)


def _value(attribute: dict[str, Any] | None) -> str | None:
    """A key attribute's value as a condition sees it ({"S": "ROLLOUT#1"} -> "ROLLOUT#1")."""
    if not attribute:
        return None
    (value,) = attribute.values()
    return str(value)


def _keyed(action: str, table: str, key: dict[str, Any], tables: _Tables) -> iam.Request:
    leading = _value(key.get(tables.partition_key(table)))
    context = {} if leading is None else {"dynamodb:leadingkeys": (leading,)}
    return iam.Request(f"dynamodb:{action}", tables.arn(table), context)


def _query(params: dict[str, Any], tables: _Tables) -> iam.Request:
    table, index = params["TableName"], params.get("IndexName")
    leading = None
    if params.get("KeyConditionExpression"):
        hash_conditions, _, _ = parse_expression(
            key_condition_expression=params["KeyConditionExpression"],
            expression_attribute_values=params.get("ExpressionAttributeValues", {}),
            expression_attribute_names=params.get("ExpressionAttributeNames", {}),
            schema=tables.schema(table, index),
        )
        leading = _value(hash_conditions[0][1]) if hash_conditions else None
    elif params.get("KeyConditions"):  # the legacy form
        condition = params["KeyConditions"].get(tables.partition_key(table, index), {})
        leading = _value((condition.get("AttributeValueList") or [None])[0])
    context = {} if leading is None else {"dynamodb:leadingkeys": (leading,)}
    return iam.Request("dynamodb:Query", tables.arn(table, index), context)


def requests(action: str, params: dict[str, Any], tables: _Tables) -> Iterator[iam.Request]:
    """What DynamoDB authorises for one call: one request per item it touches."""
    if action in ("PutItem",):
        yield _keyed(action, params["TableName"], params["Item"], tables)
    elif action in ("UpdateItem", "DeleteItem", "GetItem"):
        yield _keyed(action, params["TableName"], params["Key"], tables)
    elif action == "Query":
        yield _query(params, tables)
    elif action == "Scan":
        yield iam.Request("dynamodb:Scan", tables.arn(params["TableName"], params.get("IndexName")))
    elif action == "BatchWriteItem":
        for table, writes in params["RequestItems"].items():
            for write in writes:
                key = write["PutRequest"]["Item"] if "PutRequest" in write else write["DeleteRequest"]["Key"]
                yield _keyed(action, table, key, tables)
    elif action == "BatchGetItem":
        for table, reads in params["RequestItems"].items():
            for key in reads["Keys"]:
                yield _keyed(action, table, key, tables)
    elif action == "TransactWriteItems":
        for item in params["TransactItems"]:
            ((kind, body),) = item.items()
            yield _keyed(_TRANSACT_WRITES[kind], body["TableName"], body.get("Item") or body["Key"], tables)
    elif action == "TransactGetItems":
        for item in params["TransactItems"]:
            yield _keyed("GetItem", item["Get"]["TableName"], item["Get"]["Key"], tables)
