"""The operator's and the viewer's managed policies, as deployed, attached to a role a person assumes: the
operator steers (kill switches, pause, resume, abort, starts) and writes nothing a rollout records; the viewer
reads and writes nothing. The simulation authorises these calls under the assumed role's policies."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from sim.world import ACCOUNT, World
from updraft.adapters.control import Controls
from updraft.ledger_schema import (
    REQUEST_FIELDS,
    release_key,
    rollout_item,
    rollout_key,
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


@contextlib.contextmanager
def signed_in(session: boto3.Session) -> Iterator[None]:
    """The CLI's adapters, run under `session` (they use boto3's default session, as the CLI does)."""
    before = boto3.DEFAULT_SESSION
    boto3.DEFAULT_SESSION = session
    try:
        yield
    finally:
        boto3.DEFAULT_SESSION = before


@pytest.fixture
def running(world: World) -> str:
    world.ledger.put_item(Item=rollout_item({"rollout_id": "r-1", "group": "web", "status": "rolling-out"}))
    return "r-1"


def test_the_operator_steers_and_records_nothing_of_a_rollout(world, running):
    session = person(world, "OperatorPolicyArn", "operator")
    ledger = session.resource("dynamodb").Table(world.outputs["LedgerTableName"])

    with signed_in(session):  # what `updraft kill-switch on|off` and `updraft pause` do, as the operator
        controls = Controls(world.outputs["LedgerTableName"])
        controls.engage("web", "freeze", "alice", "2030-01-01T00:00:00Z")
        controls.pause(running, "watch", "alice", "2030-01-01T00:00:00Z")
        controls.release("web")

    requests = {k: v for k, v in world.rollout_record(running).items() if k in REQUEST_FIELDS}
    assert requests == {"paused": True, "pause": {"reason": "watch", "by": "alice", "at": "2030-01-01T00:00:00Z"}}
    assert Controls(world.outputs["LedgerTableName"]).switches() == []
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
    with signed_in(session):
        controls = Controls(world.outputs["LedgerTableName"])
        assert controls.switches() == []  # `updraft kill-switch status` reads
        denied(lambda: controls.engage(None, "freeze", "mallory", "2030-01-01T00:00:00Z"))
        with pytest.raises(ClientError, match="AccessDenied"):
            controls.pause(running, "watch", "mallory", "2030-01-01T00:00:00Z")
