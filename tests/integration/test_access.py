"""The operator's and the viewer's managed policies, as deployed, attached to a role a person assumes: the
operator steers (kill switches, pause, resume, abort, starts) and writes nothing a rollout records; the viewer
reads and writes nothing. The simulation authorises these calls under the assumed role's policies."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from sim.world import ACCOUNT, World
from updraft.ledger_schema import (
    REQUEST_FIELDS,
    release_key,
    request_key,
    rollout_item,
    rollout_key,
    switch_item,
)

pytestmark = pytest.mark.integration
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
    ],
}


def person(world: World, policy_output: str, name: str) -> boto3.Session:
    """A session of a role that carries only the stack's managed policy named by `policy_output`."""
    iam = boto3.client("iam")
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]
    iam.attach_role_policy(RoleName=name, PolicyArn=world.outputs[policy_output])
    keys = boto3.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName=name)["Credentials"]
    return boto3.Session(
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
        region_name="us-east-1",
    )


def denied(call: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call()
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException", raised.value.response
    return raised.value.response["Error"]["Message"]


def pause(table: Any, rollout_id: str) -> None:
    """What `updraft pause` writes (updraft.adapters.control): the request, if the rollout runs."""
    table.meta.client.transact_write_items(
        TransactItems=[
            {
                "ConditionCheck": {
                    "TableName": table.name,
                    "Key": rollout_key(rollout_id),
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": table.name,
                    "Key": request_key(rollout_id),
                    "UpdateExpression": "SET paused = :yes",
                    "ExpressionAttributeValues": {":yes": True},
                }
            },
        ]
    )


@pytest.fixture
def running(world: World) -> str:
    world.ledger.put_item(Item=rollout_item({"rollout_id": "r-1", "group": "web", "status": "rolling-out"}))
    return "r-1"


def test_the_operator_steers_and_records_nothing_of_a_rollout(world, running):
    ledger = person(world, "OperatorPolicyArn", "operator").resource("dynamodb").Table(world.outputs["LedgerTableName"])

    ledger.put_item(Item=switch_item("web", "freeze", "alice", "2030-01-01T00:00:00Z"))
    pause(ledger, running)
    ledger.delete_item(Key={"pk": "CONTROL", "sk": "GROUP#web"})

    assert {k: v for k, v in world.rollout_record(running).items() if k in REQUEST_FIELDS} == {"paused": True}
    message = denied(
        lambda: ledger.update_item(
            Key=rollout_key(running),
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": "succeeded"},
        )
    )
    assert "dynamodb:UpdateItem" in message
    denied(lambda: ledger.put_item(Item={**release_key("aws-ecs-2", "x86_64", "9.9.9"), "manifest_digest": "f" * 64}))


def test_the_viewer_reads_and_writes_nothing(world, running):
    session = person(world, "ViewerPolicyArn", "viewer")
    ledger = session.resource("dynamodb").Table(world.outputs["LedgerTableName"])

    assert ledger.get_item(Key=rollout_key(running))["Item"]["status"] == "rolling-out"
    denied(lambda: ledger.put_item(Item=switch_item(None, "freeze", "mallory", "2030-01-01T00:00:00Z")))
    denied(lambda: pause(ledger, running))
