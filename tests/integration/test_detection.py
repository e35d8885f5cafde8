"""Release detection on moto: a scheduled tick runs the real detector against a signed repository
served on 127.0.0.1, and announcements reach Updraft's bus (read here through an SQS queue)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from sim.aws.ssm import publish_public_parameter
from sim.deploy import ACCOUNT, REGION
from sim.update_repository import UpdateRepository
from sim.world import World
from stacks import synthesize
from tests.integration.conftest import assert_calls_granted, detection_config
from updraft import detection
from updraft.config import UpdraftConfig

pytestmark = pytest.mark.integration
RELEASED = datetime(2026, 1, 2, 17, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpdateRepository]:
    repo = UpdateRepository(tmp_path_factory.mktemp("updates"), "aws-ecs-2")
    repo.release("1.26.0", RELEASED)
    yield repo
    repo.close()


@pytest.fixture(scope="module")
def template(repository: UpdateRepository, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    detection = detection_config(repository, tmp_path_factory.mktemp("trust"))
    config = UpdraftConfig.model_validate({"groups": [{"name": "web", "variant": "aws-ecs-2"}], "detection": detection})
    return synthesize(config)


@pytest.fixture
def world(template: dict[str, Any]) -> Iterator[World]:
    with World(template) as simulated:
        yield simulated


def listen(world: World) -> str:
    """An SQS queue subscribed to everything Updraft announces."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    queue = sqs.create_queue(QueueName="announcements")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = world.outputs["ReleaseBusName"]
    events.put_rule(Name="listen", EventBusName=bus, EventPattern=json.dumps({"source": ["updraft"]}))
    events.put_targets(Rule="listen", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
    return queue


def announcements(queue: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    for message in messages:
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return [json.loads(m["Body"]) for m in messages]


def test_a_new_release_is_announced_once_and_an_idle_check_reads_only_the_timestamp(world, repository, template):
    queue = listen(world)
    repository.release("1.26.1", RELEASED)

    world.tick()
    (event,) = announcements(queue)
    assert event["detail-type"] == "Bottlerocket Release Available"
    detail = event["detail"]
    assert (detail["variant"], detail["arch"], detail["version"]) == ("aws-ecs-2", "x86_64", "1.26.1")
    assert detail["released_at"] == RELEASED.isoformat()
    assert len(detail["manifest_digest"]) == 64

    repository.server.forget()
    world.tick()
    assert announcements(queue) == []
    assert repository.server.fetched() == ["timestamp.json"]
    assert_calls_granted(world, template)


def test_trust_survives_in_the_bucket_and_a_pulled_release_is_announced_withdrawn(world, repository):
    queue = listen(world)
    repository.release("1.26.1", RELEASED)
    world.tick()
    announcements(queue)
    stored = boto3.client("s3").list_objects_v2(Bucket=world.outputs["TrustBucketName"])["Contents"]
    assert {"trust/aws-ecs-2/x86_64/root.json", "trust/aws-ecs-2/x86_64/timestamp.json"} <= {o["Key"] for o in stored}

    repository.withdraw("1.26.1", back_to="1.26.0")
    world.tick()
    (event,) = announcements(queue)
    assert event["detail-type"] == "Bottlerocket Release Withdrawn"
    assert event["detail"]["version"] == "1.26.1"


@pytest.mark.parametrize("attack", ["tamper_manifest", "expire_timestamp", "sign_timestamp_with_another_key"])
def test_an_untrusted_repository_announces_nothing(world, repository, attack, caplog):
    queue = listen(world)
    repository.release("1.27.0", RELEASED)
    getattr(repository, attack)()

    world.tick()

    (failure,) = [r.getMessage() for r in caplog.records if "DetectRelease" in r.getMessage()]
    assert "ReleaseCheckFailed" in failure and "UntrustedRelease" in failure

    assert announcements(queue) == []
    releases = world.ledger.query(
        KeyConditionExpression=boto3.dynamodb.conditions.Key("pk").eq("RELEASES#aws-ecs-2/x86_64")
    )["Items"]
    assert "1.27.0" not in {item["version"] for item in releases}


def test_the_public_parameter_is_read_and_compared_never_trusted(world):
    assert detection.public_version("aws-ecs-2", "x86_64") is None  # absent: nothing to compare
    publish_public_parameter(
        "/aws/service/bottlerocket/aws-ecs-2/x86_64/latest/image_version", "1.26.0-d93bb1b1", ACCOUNT, REGION
    )
    assert detection.public_version("aws-ecs-2", "x86_64") == "1.26.0"
    report = detection.RepositoryReport("aws-ecs-2", "x86_64", "1.26.1", [], [], 0, [], public_version="1.26.0")
    assert report.public_disagrees


def test_a_replaced_root_object_stops_detection_before_anything_is_fetched(world, repository, template, caplog):
    # Whoever can write the bootstrap bucket cannot swap the trust anchor: the detector pins its SHA-512.
    queue = listen(world)
    repository.release("1.26.1", RELEASED)
    (detector,) = [
        f["Properties"]["Environment"]["Variables"]
        for f in template["Resources"].values()
        if f["Type"] == "AWS::Lambda::Function" and "TRUSTED_ROOT_KEY" in str(f["Properties"].get("Environment"))
    ]
    bucket = f"cdk-hnb659fds-assets-{ACCOUNT}-{REGION}"
    boto3.client("s3").put_object(
        Bucket=bucket, Key=detector["TRUSTED_ROOT_KEY"], Body=b'{"signed": {"_type": "root"}}'
    )
    repository.server.forget()

    world.tick()

    (failure,) = [r.getMessage() for r in caplog.records if "DetectRelease" in r.getMessage()]
    assert "TrustedRootMismatch" in failure
    assert announcements(queue) == []
    assert repository.server.fetched() == []
