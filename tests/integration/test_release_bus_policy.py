"""Only the release detector may announce releases: the release bus's resource policy, as deployed, refuses
every other principal, even one whose own policy allows events:PutEvents on everything. And each function
reaches the ledger only as far as its deployed role allows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from sim.aws.iam import acting_as
from sim.clock import EPOCH
from sim.update_repository import UpdateRepository
from sim.world import ACCOUNT, World
from stacks import synthesize
from tests.integration.conftest import detection_config
from updraft.config import UpdraftConfig

pytestmark = pytest.mark.integration
NEW = "1.26.1"
PUBLISH_ANYWHERE = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": "*"}],
}


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpdateRepository]:
    repo = UpdateRepository(tmp_path_factory.mktemp("updates"), "aws-ecs-2")
    repo.release("1.26.0", EPOCH - timedelta(days=30))
    yield repo
    repo.close()


@pytest.fixture(scope="module")
def world(repository: UpdateRepository, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    detection = detection_config(repository, tmp_path_factory.mktemp("trust"))
    config = {"groups": [{"name": "staging", "variant": "aws-ecs-2"}], "detection": detection}
    with World(synthesize(UpdraftConfig.model_validate(config))) as simulated:
        yield simulated


def impostor_events_client() -> Any:
    """EventBridge as a role of this account whose identity policy allows PutEvents on any bus, assumed
    through STS: the keys it signs with are that role session's."""
    iam = boto3.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(RoleName="impostor", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    iam.put_role_policy(RoleName="impostor", PolicyName="publish", PolicyDocument=json.dumps(PUBLISH_ANYWHERE))
    keys = boto3.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="spoof")["Credentials"]
    return boto3.client(
        "events",
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
    )


def release_entry(bus: str, detail_type: str) -> dict[str, str]:
    detail = {"variant": "aws-ecs-2", "arch": "x86_64", "version": NEW, "manifest_digest": "0" * 64}
    if detail_type == "Bottlerocket Release Available":
        detail["released_at"] = EPOCH.isoformat()
    return {"EventBusName": bus, "Source": "updraft", "DetailType": detail_type, "Detail": json.dumps(detail)}


@pytest.mark.parametrize("detail_type", ["Bottlerocket Release Available", "Bottlerocket Release Withdrawn"])
def test_another_principal_cannot_announce_or_withdraw_a_release(world, detail_type):
    world.reset()
    world.launch("staging", 2)
    events = impostor_events_client()
    bus = world.outputs["ReleaseBusName"]

    with pytest.raises(ClientError) as refused:
        events.put_events(Entries=[release_entry(bus, detail_type)])

    error = refused.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert error["Message"].startswith(f"User: arn:aws:sts::{ACCOUNT}:assumed-role/impostor/spoof is not authorized")
    assert "explicit deny in a resource-based policy" in error["Message"]
    world.settle()
    assert world.executions() == []
    assert {world.versions()[i] for i in world.versions()} == {"1.26.0"}
    # Its identity policy is real: on the default bus, which has no resource policy, it may publish.
    default = {**release_entry("default", detail_type), "Source": "someone.else"}
    assert events.put_events(Entries=[default])["FailedEntryCount"] == 0
    boto3.client("iam").delete_role_policy(RoleName="impostor", PolicyName="publish")
    boto3.client("iam").delete_role(RoleName="impostor")


def test_the_detector_still_announces_and_the_release_rolls_out(world, repository):
    world.reset()
    ids = world.launch("staging", 2)
    repository.release(NEW, EPOCH)

    world.tick()  # the detector's schedule: it verifies the release and puts it on the bus, under its role
    (execution,) = world.wait_all()

    assert world.rollout_record(execution.name)["status"] == "succeeded"
    assert {world.versions()[i] for i in ids} == {NEW}


def deployed_function(handler_module: str) -> str:
    """The deployed name of the function whose handler is `updraft.handlers.<handler_module>`."""
    functions = boto3.client("lambda").list_functions()["Functions"]
    (name,) = [f["FunctionName"] for f in functions if f["Handler"].split(".")[-2] == handler_module]
    return name


def test_each_function_reaches_the_tables_only_as_its_deployed_role_allows(world):
    world.reset()
    rollout = {"pk": "ROLLOUT#probe", "sk": "META"}
    with acting_as(deployed_function("plan_waves")):
        world.ledger.put_item(Item=rollout)  # its role writes the ledger
    with acting_as(deployed_function("detect_release")), pytest.raises(ClientError) as refused:
        world.locks.put_item(Item={"group": "staging", "holder": "spoof"})  # no lock grant: only lock steps have one
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "dynamodb:PutItem" in refused.value.response["Error"]["Message"]
    with acting_as(deployed_function("on_release_withdrawn")):
        world.locks.scan()  # it finds running rollouts through the locks: granted
        with pytest.raises(ClientError):
            world.ledger.scan()  # but no function may scan the ledger
    assert world.locks.scan()["Items"] == []
    world.ledger.delete_item(Key=rollout)
