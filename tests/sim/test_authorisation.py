"""The simulation's IAM: the policy evaluator follows AWS's logic, and DynamoDB and EventBridge requests of a
function's role are decided by the policies that role really has."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from sim.aws import dynamodb, events, iam
from sim.clock import VirtualClock

ACCOUNT = "123456789012"
TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/ledger"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/step"


def principal(*statements: dict[str, Any], role: str = ROLE) -> iam.Principal:
    session = role.replace(":iam::", ":sts::").replace(":role/", ":assumed-role/") + "/fn"
    return iam.Principal(session, role, ACCOUNT, (iam.parse({"Statement": list(statements)}),))


def allow(action: str | list[str], resource: str | list[str] = TABLE, **condition: Any) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    return {**statement, "Condition": condition} if condition else statement


def leading(*keys: str) -> dict[str, tuple[str, ...]]:
    return {"dynamodb:leadingkeys": keys}


def decide(who: iam.Principal, action: str, resource: str = TABLE, context=None, on_resource=None) -> iam.Decision:
    return iam.evaluate(who, iam.Request(action, resource, context or {}), on_resource)


# -- the evaluator ---------------------------------------------------------------------------------------------
def test_nothing_is_allowed_that_no_policy_allows():
    assert decide(principal(), "dynamodb:GetItem") is iam.Decision.IMPLICIT_DENY
    assert decide(principal(allow("dynamodb:GetItem")), "dynamodb:PutItem") is iam.Decision.IMPLICIT_DENY


def test_actions_match_with_wildcards_and_without_case():
    who = principal(allow("dynamodb:Get*"), allow("ssm:?etParameter", "*"))
    assert decide(who, "dynamodb:GetItem") is iam.Decision.ALLOWED
    assert decide(who, "DynamoDB:getitem") is iam.Decision.ALLOWED
    assert decide(who, "ssm:GetParameter", "arn:aws:ssm:us-east-1::parameter/x") is iam.Decision.ALLOWED
    assert decide(who, "dynamodb:BatchGetItem") is iam.Decision.IMPLICIT_DENY


def test_not_action_and_not_resource_grant_everything_else():
    who = principal({"Effect": "Allow", "NotAction": "dynamodb:Delete*", "NotResource": f"{TABLE}/index/*"})
    assert decide(who, "dynamodb:PutItem") is iam.Decision.ALLOWED
    assert decide(who, "dynamodb:DeleteItem") is iam.Decision.IMPLICIT_DENY
    assert decide(who, "dynamodb:Query", f"{TABLE}/index/by-group") is iam.Decision.IMPLICIT_DENY


def test_resources_match_as_arn_wildcards_case_sensitively():
    who = principal(allow("dynamodb:Query", f"{TABLE}/index/*"))
    assert decide(who, "dynamodb:Query", f"{TABLE}/index/by-group") is iam.Decision.ALLOWED
    assert decide(who, "dynamodb:Query", TABLE) is iam.Decision.IMPLICIT_DENY  # the table is not its index
    assert decide(who, "dynamodb:Query", f"{TABLE.upper()}/index/x") is iam.Decision.IMPLICIT_DENY


def test_an_explicit_deny_wins_over_any_allow():
    deny = {"Effect": "Deny", "Action": "dynamodb:*", "Resource": "*"}
    assert decide(principal(allow("dynamodb:GetItem"), deny), "dynamodb:GetItem") is iam.Decision.DENIED_BY_IDENTITY


def test_within_the_account_a_resource_policy_allow_suffices_and_its_deny_wins():
    bus = f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/releases"
    grant = iam.parse(
        {"Statement": [{"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "events:PutEvents", "Resource": bus}]}
    )
    assert decide(principal(), "events:PutEvents", bus, on_resource=grant) is iam.Decision.ALLOWED
    other = principal(role=f"arn:aws:iam::{ACCOUNT}:role/other")
    assert decide(other, "events:PutEvents", bus, on_resource=grant) is iam.Decision.IMPLICIT_DENY
    everywhere = principal(allow("events:PutEvents", "*"), role=f"arn:aws:iam::{ACCOUNT}:role/other")
    assert decide(everywhere, "events:PutEvents", bus, on_resource=grant) is iam.Decision.ALLOWED  # Allow is not enough
    deny_others = {
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "events:PutEvents",
        "Resource": bus,
        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": ROLE}},
    }
    fenced = iam.parse({"Statement": [*grant_statements(grant), deny_others]})
    assert decide(everywhere, "events:PutEvents", bus, on_resource=fenced) is iam.Decision.DENIED_BY_RESOURCE
    assert decide(principal(), "events:PutEvents", bus, on_resource=fenced) is iam.Decision.ALLOWED


def test_the_account_as_principal_denies_everyone_in_it_but_grants_nothing_by_itself():
    bus = f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/releases"

    def to_account(effect: str) -> iam.Policy:
        root = {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
        return iam.parse({"Statement": [{"Effect": effect, "Principal": root, "Action": "events:*", "Resource": bus}]})

    assert decide(principal(), "events:PutEvents", bus, on_resource=to_account("Allow")) is iam.Decision.IMPLICIT_DENY
    everywhere = principal(allow("events:PutEvents", "*"))
    assert decide(everywhere, "events:PutEvents", bus, on_resource=to_account("Allow")) is iam.Decision.ALLOWED
    denied = decide(everywhere, "events:PutEvents", bus, on_resource=to_account("Deny"))
    assert denied is iam.Decision.DENIED_BY_RESOURCE


def grant_statements(policy: iam.Policy) -> list[dict[str, Any]]:
    (statement,) = policy.statements
    return [
        {
            "Effect": "Allow",
            "Principal": {"AWS": ROLE},
            "Action": "events:PutEvents",
            "Resource": statement.resources[0],
        }
    ]


def test_string_and_arn_operators():
    ctx = {"events:source": "updraft", "aws:principalarn": ROLE}
    holds = iam.condition_holds
    assert holds("StringEquals", "events:source", ("updraft",), ctx)
    assert not holds("StringEquals", "events:source", ("Updraft",), ctx)
    assert holds("StringNotEquals", "events:source", ("aws.ec2", "other"), ctx)  # NOR of the values
    assert not holds("StringNotEquals", "events:source", ("aws.ec2", "updraft"), ctx)
    assert holds("StringLike", "events:source", ("up*",), ctx)
    assert holds("ArnLike", "aws:principalarn", (f"arn:aws:iam::{ACCOUNT}:role/*",), ctx)
    assert not holds("ArnLike", "aws:principalarn", ("arn:aws:iam::*:user/*",), ctx)
    assert holds("ArnEquals", "aws:principalarn", (ROLE,), ctx)
    assert holds("ArnNotEquals", "aws:principalarn", (f"arn:aws:iam::{ACCOUNT}:role/detector",), ctx)
    assert holds("Bool", "aws:securetransport", ("true",), {"aws:securetransport": True})


def test_a_missing_key_fails_a_condition_passes_a_negated_one_and_an_if_exists_one():
    assert not iam.condition_holds("StringEquals", "events:source", ("updraft",), {})
    assert iam.condition_holds("StringNotEquals", "events:source", ("updraft",), {})
    assert iam.condition_holds("StringEqualsIfExists", "events:source", ("updraft",), {})
    assert not iam.condition_holds("StringEqualsIfExists", "events:source", ("updraft",), {"events:source": "x"})
    assert iam.condition_holds("Null", "events:source", ("true",), {})


def test_set_operators_and_the_absent_key():
    like = ("ROLLOUT#*",)
    assert iam.condition_holds(
        "ForAllValues:StringLike", "dynamodb:leadingkeys", like, leading("ROLLOUT#1", "ROLLOUT#2")
    )
    assert not iam.condition_holds(
        "ForAllValues:StringLike", "dynamodb:leadingkeys", like, leading("ROLLOUT#1", "CONTROL")
    )
    assert iam.condition_holds("ForAnyValue:StringLike", "dynamodb:leadingkeys", like, leading("ROLLOUT#1", "CONTROL"))
    assert iam.condition_holds("ForAnyValue:StringEquals", "dynamodb:leadingkeys", ("CONTROL",), leading("CONTROL"))
    # No value in the request: nothing fails "all values", nothing satisfies "any value".
    assert iam.condition_holds("ForAllValues:StringLike", "dynamodb:leadingkeys", like, {})
    assert not iam.condition_holds("ForAnyValue:StringLike", "dynamodb:leadingkeys", like, {})


def test_a_scan_granted_with_only_a_leading_keys_condition_reads_every_partition():
    """Why a Scan must not be granted that way: a Scan names no partition key, so ForAllValues holds."""
    who = principal(allow("dynamodb:Scan", **{"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["ROLLOUT#*"]}}))
    assert decide(who, "dynamodb:Scan") is iam.Decision.ALLOWED
    guarded = principal(
        allow(
            "dynamodb:Scan",
            **{
                "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["ROLLOUT#*"]},
                "Null": {"dynamodb:LeadingKeys": "false"},
            },
        )
    )
    assert decide(guarded, "dynamodb:Scan") is iam.Decision.IMPLICIT_DENY


def test_an_unsimulated_operator_is_refused_not_guessed():
    who = principal(allow("dynamodb:GetItem", NumericLessThan={"dynamodb:Attributes": "3"}))
    with pytest.raises(iam.UnsupportedCondition):
        decide(who, "dynamodb:GetItem", context={"dynamodb:attributes": "1"})


def test_policies_are_parsed_once_per_text():
    text = json.dumps({"Statement": [allow("dynamodb:GetItem")]})
    assert iam.parse(text) is iam.parse(text)


# -- enforced on moto ------------------------------------------------------------------------------------------
ROLLOUT_ONLY = [
    allow(
        ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query", "dynamodb:BatchWriteItem"],
        **{"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["ROLLOUT#*"]}},
    ),
    allow(
        "events:PutEvents",
        f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default",
        StringEquals={"events:source": "updraft"},
    ),
]


@pytest.fixture
def account() -> Iterator[dict[str, Any]]:
    """A ledger table and a Lambda function whose role grants ROLLOUT# partitions only, with the patches."""
    os.environ.update({"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"})
    with mock_aws(), contextlib.ExitStack() as patched:
        for patcher in [*dynamodb.patches(), *events.patches(VirtualClock(seed=0))]:
            patched.enter_context(patcher)
        client = boto3.client("dynamodb")
        client.create_table(
            TableName="ledger",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "group")],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by-group",
                    "KeySchema": [{"AttributeName": "group", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        role = _role("step", ROLLOUT_ONLY)
        boto3.client("lambda").create_function(
            FunctionName="plan_waves", Runtime="python3.12", Role=role, Handler="x.handler", Code={"ZipFile": b"x"}
        )
        yield {"dynamodb": client, "events": boto3.client("events")}


def _role(name: str, statements: list[dict[str, Any]]) -> str:
    client = boto3.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    arn = client.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    client.put_role_policy(
        RoleName=name,
        PolicyName="grants",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )
    return arn


def in_handler(name: str = "plan_waves") -> Any:
    """As while the function's handler runs in-process (sim/aws/lambda_.py sets this for a real Invoke)."""
    return mock.patch.object(iam, "running_function", return_value=name)


def item(pk: str, sk: str = "META") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def refusal(call: Any) -> str:
    with pytest.raises(ClientError) as refused:
        call()
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    return refused.value.response["Error"]["Message"]


def test_a_role_writes_its_own_prefix_and_is_refused_another(account):
    db = account["dynamodb"]
    with in_handler():
        db.put_item(TableName="ledger", Item=item("ROLLOUT#r1"))
        message = refusal(lambda: db.put_item(TableName="ledger", Item=item("CONTROL", "GLOBAL")))
        refusal(lambda: db.update_item(TableName="ledger", Key=item("CONTROL", "GLOBAL")))
    assert message == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/step/plan_waves is not authorized to perform: "
        f"dynamodb:PutItem on resource: {TABLE} because no identity-based policy allows the dynamodb:PutItem action"
    )
    assert "Item" not in db.get_item(TableName="ledger", Key=item("CONTROL", "GLOBAL"))  # the administrator reads
    assert "Item" in db.get_item(TableName="ledger", Key=item("ROLLOUT#r1"))


def test_one_smuggled_item_refuses_the_whole_batch(account):
    db = account["dynamodb"]
    own = [{"PutRequest": {"Item": item("ROLLOUT#r1", f"WAVE#{i}")}} for i in range(3)]
    smuggled = {"PutRequest": {"Item": item("CONTROL", "GLOBAL")}}
    with in_handler():
        db.batch_write_item(RequestItems={"ledger": own})
        refusal(lambda: db.batch_write_item(RequestItems={"ledger": [*own[:2], smuggled]}))
    assert db.get_item(TableName="ledger", Key=item("CONTROL", "GLOBAL")).get("Item") is None


def test_transactions_and_queries_are_checked_per_item_and_per_key(account):
    db = account["dynamodb"]
    with in_handler():
        db.query(
            TableName="ledger",
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeNames={"#pk": "pk"},
            ExpressionAttributeValues={":pk": {"S": "ROLLOUT#r1"}},
        )
        refusal(
            lambda: db.query(
                TableName="ledger",
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": "CONTROL"}},
            )
        )
        # An index query's resource is the index, which this role is not granted at all.
        refusal(
            lambda: db.query(
                TableName="ledger",
                IndexName="by-group",
                KeyConditionExpression="#g = :g",
                ExpressionAttributeNames={"#g": "group"},
                ExpressionAttributeValues={":g": {"S": "ROLLOUT#x"}},
            )
        )
        # A transaction is not an action of its own: each item is its action's (PutItem here, granted).
        db.transact_write_items(TransactItems=[{"Put": {"TableName": "ledger", "Item": item("ROLLOUT#r2")}}])
        put = {"Put": {"TableName": "ledger", "Item": item("CONTROL")}}
        message = refusal(lambda: db.transact_write_items(TransactItems=[put]))
        check = {
            "ConditionCheck": {
                "TableName": "ledger",
                "Key": item("ROLLOUT#r2"),
                "ConditionExpression": "attribute_exists(pk)",
            }
        }
        checked = refusal(lambda: db.transact_write_items(TransactItems=[check]))
        refusal(lambda: db.scan(TableName="ledger"))
    assert "dynamodb:PutItem" in message
    assert "dynamodb:ConditionCheckItem" in checked


def test_a_session_of_a_role_is_held_to_the_role_outside_a_handler(account):
    iam_client, sts = boto3.client("iam"), boto3.client("sts")
    arn = iam_client.get_role(RoleName="step")["Role"]["Arn"]
    keys = sts.assume_role(RoleArn=arn, RoleSessionName="operator")["Credentials"]
    db = boto3.client(
        "dynamodb",
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
    )
    db.put_item(TableName="ledger", Item=item("ROLLOUT#r1"))
    message = refusal(lambda: db.put_item(TableName="ledger", Item=item("CONTROL")))
    assert message.startswith(f"User: arn:aws:sts::{ACCOUNT}:assumed-role/step/operator ")


def test_put_events_is_held_to_the_source_the_role_may_publish(account):
    bus = account["events"]
    entry = {"Source": "updraft", "DetailType": "Rollout Started", "Detail": "{}"}
    with in_handler():
        assert bus.put_events(Entries=[entry])["FailedEntryCount"] == 0
        mixed = bus.put_events(Entries=[entry, {**entry, "Source": "aws.ec2"}])
        refusal(lambda: bus.put_events(Entries=[{**entry, "Source": "aws.ec2"}]))
    assert mixed["FailedEntryCount"] == 1
    assert mixed["Entries"][1]["ErrorCode"] == "AccessDeniedException"
    assert "EventId" in mixed["Entries"][0]
