"""The simulated services refuse what the real ones refuse, with their error codes (moto checks none of these)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from sim.world import World


def test_send_command_takes_at_most_50_instances(world: World) -> None:
    ids = [f"i-{n:017x}" for n in range(51)]
    with pytest.raises(ClientError) as refused:
        boto3.client("ssm").send_command(DocumentName="Updraft-inventory", InstanceIds=ids, TimeoutSeconds=120)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "less than or equal to 50" in str(refused.value)


def test_put_events_takes_at_most_256_kb_in_one_request(world: World) -> None:
    events = boto3.client("events")
    entry = {"Source": "updraft", "DetailType": "test", "Detail": json.dumps({"pad": "x" * 100_000})}
    assert events.put_events(Entries=[entry, entry])["FailedEntryCount"] == 0  # about 200 KB: accepted
    with pytest.raises(ClientError) as refused:
        events.put_events(Entries=[entry, entry, entry])
    assert refused.value.response["Error"]["Code"] == "ValidationException"


def test_an_execution_input_over_256_kb_is_refused(world: World) -> None:
    with pytest.raises(ClientError) as refused:
        world.sfn.start_execution(
            stateMachineArn=world.outputs["RolloutStateMachineArn"], input=json.dumps({"pad": "x" * (256 * 1024)})
        )
    assert refused.value.response["Error"]["Code"] == "InvalidExecutionInput"
