"""No lost events: a function a rule invokes that fails every attempt, or a target EventBridge cannot reach,
leaves its event on the failed-deliveries queue, and that queue's alarm pages through the topic."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from sim import aws
from sim.deploy import ACCOUNT, REGION

pytestmark = pytest.mark.integration

STATUS_CHANGE = "Step Functions Execution Status Change"


def failed_deliveries(world) -> list[dict[str, Any]]:
    """The queue's messages (drained), each with its body parsed and its string attributes."""
    sqs, url, found = boto3.client("sqs"), world.outputs["FailedDeliveriesQueueUrl"], []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
        "Messages", []
    ):
        for message in messages:
            attributes = {k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()}
            found.append({"body": json.loads(message["Body"]), "attributes": attributes})
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def execution_ended(world, execution_name: str) -> None:
    """Step Functions' status change for an execution of the rollout state machine that failed."""
    machine = world.outputs["RolloutStateMachineArn"]
    execution = machine.replace(":stateMachine:", ":execution:") + f":{execution_name}"
    detail = {"executionArn": execution, "stateMachineArn": machine, "name": execution_name, "status": "FAILED"}
    aws.events.service_event(ACCOUNT, REGION, "aws.states", STATUS_CHANGE, detail, execution, world.clock)


def runs_of(construct_id: str) -> int:
    """How many times the function built as `construct_id` ran."""
    return sum(1 for run in aws.lambda_.INVOCATIONS if construct_id in run.function)


def test_a_function_failing_every_attempt_leaves_its_invocation_record_on_the_queue(world, monkeypatch):
    from updraft.handlers import on_execution_end

    def broken(event: dict[str, Any], context: Any) -> dict:
        raise ConnectionError("ledger unreachable")

    monkeypatch.setattr(on_execution_end, "handler", broken)

    execution_ended(world, "r-lost")

    # The first attempt and Lambda's two retries, then the record of the last failure.
    assert runs_of("OnExecutionEnd") == 3
    (message,) = failed_deliveries(world)
    record = message["body"]
    assert record["version"] == "1.0"
    context = record["requestContext"]
    assert (context["condition"], context["approximateInvokeCount"]) == ("RetriesExhausted", 3)
    assert "OnExecutionEnd" in context["functionArn"]
    # The event as the rule delivered it: enough to settle the execution by hand.
    assert record["requestPayload"]["detail-type"] == STATUS_CHANGE
    assert record["requestPayload"]["detail"]["name"] == "r-lost"
    assert record["requestPayload"]["account"] == ACCOUNT
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "ConnectionError"
    assert record["responsePayload"]["errorMessage"] == "ledger unreachable"


def test_a_failure_a_retry_recovers_leaves_nothing_on_the_queue(world, monkeypatch):
    from updraft.handlers import on_execution_end

    original, calls = on_execution_end.handler, []

    def flaky(event: dict[str, Any], context: Any) -> dict:
        calls.append(event["id"])
        if len(calls) == 1:
            raise ConnectionError("ledger unreachable")
        return original(event, context)

    monkeypatch.setattr(on_execution_end, "handler", flaky)

    execution_ended(world, "r-recovered")

    assert len(calls) == 2 and len(set(calls)) == 1  # the same event, retried once
    assert failed_deliveries(world) == []


def test_an_invoke_refused_past_the_targets_retries_goes_to_the_dead_letter_queue(world):
    # More refusals than the rule's retry policy allows (8 retries): EventBridge gives up on the event.
    world.fail_lambda("on_execution_end", "TooManyRequestsException", times=20)

    execution_ended(world, "r-throttled")

    (message,) = failed_deliveries(world)
    assert message["body"]["detail"]["name"] == "r-throttled"
    attributes = message["attributes"]
    assert attributes["ERROR_CODE"] == "TooManyRequestsException"
    assert attributes["RETRY_ATTEMPTS"] == "8"
    assert attributes["EXHAUSTED_RETRY_CONDITION"] == "MaximumRetryAttempts"
    assert "ExecutionEnded" in attributes["RULE_ARN"]
    assert "OnExecutionEnd" in attributes["TARGET_ARN"]


def test_the_queue_is_deployed_with_its_policy_and_its_alarm_pages_the_topic(world):
    sqs, cloudwatch = boto3.client("sqs"), boto3.client("cloudwatch")
    url = world.outputs["FailedDeliveriesQueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["MessageRetentionPeriod"] == str(14 * 24 * 3600)
    # Only the stack's own rules may send to it, and only over TLS.
    rules = {rule["Arn"] for rule in boto3.client("events").list_rules()["Rules"]}
    statements = json.loads(attributes["Policy"])["Statement"]
    allowed = [s for s in statements if s["Effect"] == "Allow"]
    assert {s["Condition"]["ArnEquals"]["aws:SourceArn"] for s in allowed} <= rules
    assert all(
        s["Principal"] == {"Service": "events.amazonaws.com"} and s["Action"] == "sqs:SendMessage" for s in allowed
    )
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )
    # The asynchronously invoked function (this config has no alarm rollback) sends its failures there.
    functions = boto3.client("lambda")
    (function,) = [f for f in functions.list_functions()["Functions"] if "OnExecutionEnd" in f["FunctionName"]]
    config = functions.get_function_event_invoke_config(FunctionName=function["FunctionName"])
    assert config["MaximumRetryAttempts"] == 2
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == attributes["QueueArn"]

    name = world.outputs["UndeliveredEventsAlarmName"]
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    assert (alarm["MetricName"], alarm["Namespace"]) == ("ApproximateNumberOfMessagesVisible", "AWS/SQS")
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": url.rsplit("/", 1)[-1]}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1.0)
    assert alarm["AlarmActions"] == [world.outputs["NotificationTopicArn"]]


def test_the_tables_are_deployed_with_deletion_protection(world):
    dynamodb = boto3.client("dynamodb")
    for table in (world.outputs["LedgerTableName"], world.outputs["LockTableName"]):
        assert dynamodb.describe_table(TableName=table)["Table"]["DeletionProtectionEnabled"] is True
