"""The simulation's EventBridge delivers matching events to Step Functions targets, as AWS does."""

import json
import os

import boto3
import pytest
from moto import mock_aws

from sim import aws
from sim.aws.events import transform
from sim.bottlerocket import Repository
from sim.clock import VirtualClock
from sim.fleet import Fleet

DEFINITION = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
ROLE = "arn:aws:iam::123456789012:role/events"


@pytest.fixture
def clock():
    os.environ.update({"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"})
    clock = VirtualClock()
    fleet = Fleet(clock, [Repository("aws-ecs-2", "x86_64", ["1.26.0"])])
    with mock_aws(config=aws.MOTO_CONFIG), clock.harness(), aws.wired(fleet, clock):
        yield clock
    fleet.close()


def executions(clock: VirtualClock, sfn, arn: str) -> list[dict]:
    """Every execution of the state machine, once none is left running."""
    assert clock.run_until(lambda: not clock.parked(), "the executions to end", within=3600)
    found = sfn.list_executions(stateMachineArn=arn)["executions"]
    return [sfn.describe_execution(executionArn=e["executionArn"]) for e in found]


def test_a_matching_event_starts_the_target_with_its_transformed_input(clock) -> None:
    sfn, events = boto3.client("stepfunctions"), boto3.client("events")
    arn = sfn.create_state_machine(name="m", definition=json.dumps(DEFINITION), roleArn=ROLE)["stateMachineArn"]
    events.put_rule(Name="r", EventPattern=json.dumps({"source": ["updraft"], "detail": {"variant": ["aws-ecs-2"]}}))
    transformer = {
        "InputPathsMap": {"version": "$.detail.version"},
        "InputTemplate": '{"group": "prod", "target_version": "<version>"}',
    }
    events.put_targets(Rule="r", Targets=[{"Id": "1", "Arn": arn, "RoleArn": ROLE, "InputTransformer": transformer}])

    entry = {"Source": "updraft", "DetailType": "Bottlerocket Release Available"}
    events.put_events(Entries=[{**entry, "Detail": json.dumps({"variant": "aws-k8s-1.31", "version": "1.26.1"})}])
    events.put_events(Entries=[{**entry, "Detail": json.dumps({"variant": "aws-ecs-2", "version": "1.26.1"})}])

    (execution,) = executions(clock, sfn, arn)
    assert json.loads(execution["input"]) == {"group": "prod", "target_version": "1.26.1"}


def test_the_input_transformer_fills_placeholders_as_eventbridge_does() -> None:
    event = {"detail": {"version": "1.26.1", "count": 3}}
    transformer = {
        "InputPathsMap": {"v": "$.detail.version", "n": "$.detail.count"},
        "InputTemplate": '{"bare": <v>, "quoted": "<v>", "inside": "to <v> now", "number": <n>}',
    }
    assert transform(transformer, event) == {
        "bare": "1.26.1",
        "quoted": "1.26.1",
        "inside": "to 1.26.1 now",
        "number": 3,
    }


def test_a_target_that_cannot_be_reached_sends_the_event_to_its_dead_letter_queue(clock) -> None:
    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    dlq = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    missing = "arn:aws:states:us-east-1:123456789012:stateMachine:gone"
    rule = events.put_rule(Name="r", EventPattern=json.dumps({"source": ["updraft"]}))["RuleArn"]
    target = {"Id": "1", "Arn": missing, "RoleArn": ROLE, "DeadLetterConfig": {"Arn": dlq}}
    events.put_targets(Rule="r", Targets=[{**target, "RetryPolicy": {"MaximumRetryAttempts": 3}}])

    events.put_events(Entries=[{"Source": "updraft", "DetailType": "Release", "Detail": json.dumps({"v": 1})}])

    (message,) = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
    assert json.loads(message["Body"])["detail"] == {"v": 1}
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    # A state machine that does not exist is no throttle: EventBridge gives up at once, without retrying.
    assert attributes["ERROR_CODE"] == "StateMachineDoesNotExist"
    assert (attributes["RULE_ARN"], attributes["TARGET_ARN"], attributes["RETRY_ATTEMPTS"]) == (rule, missing, "0")
    assert "EXHAUSTED_RETRY_CONDITION" not in attributes
