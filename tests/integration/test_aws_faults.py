"""The simulation's AWS-side faults reach the pipeline the way the services deliver them, and the pipeline
copes: Lambda service errors, instances terminated mid-rollout, SendCommand refusing a terminated instance."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from sim.campaign import NEW, OLD, POLICIES, campaign_template
from sim.world import World

pytestmark = pytest.mark.integration
GROUP = POLICIES[0]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return campaign_template()


@pytest.fixture(scope="module")
def deployment(template: dict[str, Any]) -> Iterator[World]:
    with World(template, variant=GROUP["variant"]) as deployed:
        yield deployed


def failed_tasks(world: World, arn: str) -> list[str]:
    return [e["taskFailedEventDetails"]["error"] for e in world.history(arn) if e["type"] == "TaskFailed"]


def test_a_lambda_service_error_reaches_the_state_machine_as_lambda_error_and_is_retried(world):
    ids = world.launch(GROUP["name"], 3)
    world.fail_lambda("check_hosts", "ServiceException", on_call=1, times=2)
    world.fail_lambda("plan_waves", "TooManyRequestsException")

    execution = world.rollout(GROUP["name"], NEW)

    assert execution.status == "SUCCEEDED"
    errors = failed_tasks(world, execution.arn)
    assert errors == ["Lambda.TooManyRequestsException", "Lambda.ServiceException", "Lambda.ServiceException"]
    assert {world.versions()[i] for i in ids} == {NEW}


def test_errors_beyond_the_retries_fail_the_rollout_and_leave_every_host_recorded(world):
    world.launch(GROUP["name"], 3)
    world.fail_lambda("check_hosts", "ServiceException", on_call=1, times=5)

    execution = world.rollout(GROUP["name"], NEW)

    assert (execution.status, execution.error) == ("FAILED", "Updraft.RolloutFailed")
    assert failed_tasks(world, execution.arn).count("Lambda.ServiceException") == 5
    records = world.host_records(execution.name)
    assert {r["state"] for r in records.values()} <= {"needs-attention", "skipped"}
    assert world.lock_holder(GROUP["name"]) is None


def test_a_host_terminated_after_planning_is_skipped_when_its_wave_starts(world):
    ids = world.launch(GROUP["name"], 3)
    victim = ids[-1]  # planned in the last wave: terminated once the plan is written
    world.after_step("plan_waves", lambda i, r: r["progress"]["done"] and world.terminate(victim))

    execution = world.rollout(GROUP["name"], NEW)

    records = world.host_records(execution.name)
    assert world.fleet.hosts[victim].online(world.clock.seconds) is False
    assert world.versions()[victim] == OLD
    assert (records[victim]["state"], records[victim]["note"]) == ("skipped", "SSM agent offline when its wave started")
    assert world.lock_holder(GROUP["name"]) is None


def test_send_command_naming_a_terminated_instance_fails_as_a_whole(world):
    ids = world.launch(GROUP["name"], 2)
    world.terminate(ids[0])
    ssm = boto3.client("ssm")

    with pytest.raises(ClientError) as refused:
        ssm.send_command(InstanceIds=ids, DocumentName=world.outputs["InventoryDocumentName"])

    assert refused.value.response["Error"]["Code"] == "InvalidInstanceId"
    assert not world.fleet.commands  # nothing was sent, not even to the running instance
    pings = {i["InstanceId"]: i["PingStatus"] for i in ssm.describe_instance_information()["InstanceInformationList"]}
    assert pings == {ids[0]: "ConnectionLost", ids[1]: "Online"}


def test_an_end_event_for_a_running_execution_settles_nothing(world):
    ids = world.launch(GROUP["name"], 2)
    said: list[str] = []

    def claim_it_failed(step_input: dict[str, Any], result: dict[str, Any]) -> None:
        if not said:
            said.append(world.executions()[0]["executionArn"])
            world.redeliver_status_change(said[0], status="FAILED")  # EventBridge's word, not Step Functions'

    world.after_step("check_hosts", claim_it_failed)
    execution = world.rollout(GROUP["name"], NEW)

    assert execution.status == "SUCCEEDED"
    records = world.host_records(execution.name)
    assert {r["state"] for r in records.values()} == {"updated"}
    assert not [r for r in records.values() if "closed_at" in r]
    assert {world.versions()[i] for i in ids} == {NEW}
