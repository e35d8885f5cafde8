"""Notifications, alarms and the dashboard in the synthesized template."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sim.aws.events import transform
from stacks import synthesize
from stacks.observability import HOST_METRICS, NOTIFIED, OUTCOME_METRICS
from updraft.config import UpdraftConfig
from updraft.domain.lifecycle import Kind, detail

ACCOUNT, REGION = "123456789012", "us-east-1"
EMAILS = ["oncall@example.com", "platform@example.org"]


def only(of_type, resource_type: str) -> tuple[str, dict[str, Any]]:
    ((logical_id, resource),) = of_type(resource_type).items()
    return logical_id, resource["Properties"]


def arn_text(value: Any) -> str:
    """An ARN written with Fn::Join and the partition pseudo parameter, as plain text."""
    if isinstance(value, str):
        return value
    parts = value["Fn::Join"][1]
    return "".join("aws" if part == {"Ref": "AWS::Partition"} else part for part in parts)


def statement_for(statements: list[dict], service: str) -> dict:
    (statement,) = [s for s in statements if s.get("Principal") == {"Service": service}]
    return statement


def source_arns(statement: dict) -> list[str]:
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    arns = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    return sorted(arn_text(arn) for arn in (arns if isinstance(arns, list) else [arns]))


@pytest.fixture(scope="module")
def topic(of_type) -> tuple[str, dict]:
    return only(of_type, "AWS::SNS::Topic")


@pytest.fixture(scope="module")
def notify_rule(of_type) -> dict:
    (rule,) = [
        r for r in of_type("AWS::Events::Rule").values() if r["Properties"]["EventPattern"]["source"] == ["updraft"]
    ]
    return rule["Properties"]


@pytest.fixture(scope="module")
def alarms(of_type) -> dict[str, dict]:
    return {a["Properties"]["AlarmName"]: a["Properties"] for a in of_type("AWS::CloudWatch::Alarm").values()}


@pytest.fixture(scope="module")
def expected_sources(alarms) -> dict[str, list[str]]:
    return {
        "events.amazonaws.com": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/Updraft-notify"],
        "cloudwatch.amazonaws.com": sorted(f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}" for name in alarms),
    }


def test_the_topic_is_encrypted_with_a_rotated_customer_managed_key(of_type, topic):
    key_id, key = only(of_type, "AWS::KMS::Key")
    assert topic[1]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert key["EnableKeyRotation"] is True


def test_the_key_serves_only_this_stacks_rule_and_alarms(of_type, expected_sources):
    _, key = only(of_type, "AWS::KMS::Key")
    statements = key["KeyPolicy"]["Statement"]
    for service, arns in expected_sources.items():
        statement = statement_for(statements, service)
        assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
        assert source_arns(statement) == arns


def test_the_topic_takes_only_tls_and_only_this_stacks_rule_and_alarms(of_type, topic, expected_sources):
    _, policy = only(of_type, "AWS::SNS::TopicPolicy")
    assert policy["Topics"] == [{"Ref": topic[0]}]
    statements = policy["PolicyDocument"]["Statement"]
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    for service, arns in expected_sources.items():
        statement = statement_for(statements, service)
        assert statement["Action"] == "sns:Publish"
        assert statement["Resource"] == {"Ref": topic[0]}
        assert source_arns(statement) == arns


def test_the_rule_sends_the_events_worth_a_humans_attention_to_the_topic(notify_rule, topic):
    assert notify_rule["Name"] == "Updraft-notify"
    pattern = notify_rule["EventPattern"]
    assert sorted(pattern["detail-type"]) == sorted(str(k) for k in NOTIFIED)
    assert {Kind.WAVE_STARTED, Kind.WAVE_FINISHED, Kind.ROLLOUT_STARTED}.isdisjoint(NOTIFIED)
    (target,) = notify_rule["Targets"]
    assert target["Arn"] == {"Ref": topic[0]}


def test_the_message_names_the_group_rollout_version_kind_and_reason(notify_rule):
    (target,) = notify_rule["Targets"]
    rollout = {"rollout_id": "r-42", "group": "web", "target_version": "1.27.0"}
    event = {
        "source": "updraft",
        "detail-type": "Rollout Halted",
        "detail": detail(
            Kind.ROLLOUT_HALTED, rollout, "2030-01-01T00:00:00+00:00", reason="error budget spent"
        ).model_dump(mode="json"),
    }
    message = transform(target["InputTransformer"], event)
    assert message == "Updraft Rollout Halted: group web, rollout r-42, version 1.27.0. Reason: error budget spent"


def test_the_alarms_page_through_the_topic(alarms, topic):
    assert "Updraft-rollouts-failed" in alarms
    assert "Updraft-function-errors" in alarms
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": topic[0]}]
        # SQS stops the metric of a queue idle for six hours, messages or not: that alarm keeps its state.
        missing = "ignore" if alarm["AlarmName"] == "Updraft-undelivered-events" else "notBreaching"
        assert alarm["TreatMissingData"] == missing
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert (alarm["Threshold"], alarm["EvaluationPeriods"]) == (1, 1)


def metric_queries(alarm: dict) -> tuple[str, dict[str, dict]]:
    (expression,) = [q["Expression"] for q in alarm["Metrics"] if "Expression" in q]
    stats = {q["Id"]: q["MetricStat"] for q in alarm["Metrics"] if "MetricStat" in q}
    return expression, stats


def test_failed_halted_or_timed_out_executions_raise_the_rollouts_alarm(alarms, of_type):
    machine, _ = only(of_type, "AWS::StepFunctions::StateMachine")
    expression, stats = metric_queries(alarms["Updraft-rollouts-failed"])
    assert {stat["Metric"]["MetricName"] for stat in stats.values()} == {"ExecutionsFailed", "ExecutionsTimedOut"}
    for query_id, stat in stats.items():
        assert query_id in expression
        assert stat["Metric"]["Namespace"] == "AWS/States"
        assert stat["Metric"]["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": machine}}]
        assert (stat["Period"], stat["Stat"]) == (300, "Sum")


def test_any_functions_error_raises_an_errors_alarm(alarms, functions):
    # One metric-math alarm reads at most ten metrics: the functions are split over as many alarms as needed.
    errors_alarms = sorted(name for name in alarms if name.startswith("Updraft-function-errors"))
    assert len(errors_alarms) == -(-len(functions) // 10)
    watched = []
    for name in errors_alarms:
        expression, stats = metric_queries(alarms[name])
        assert len(stats) <= 10
        for query_id, stat in stats.items():
            assert f"FILL({query_id}, 0)" in expression
            assert (stat["Metric"]["Namespace"], stat["Metric"]["MetricName"]) == ("AWS/Lambda", "Errors")
            (dimension,) = stat["Metric"]["Dimensions"]
            watched.append(dimension["Value"]["Ref"])
    assert sorted(watched) == sorted(f["LogicalId"] for f in functions.values())


def dashboard_body(of_type) -> dict:
    """The dashboard's JSON with each reference written `<LogicalId>` or `<LogicalId.Attribute>`."""
    _, dashboard = only(of_type, "AWS::CloudWatch::Dashboard")
    parts = dashboard["DashboardBody"]["Fn::Join"][1]
    text = "".join(reference(part) for part in parts)
    return json.loads(text.replace("<AWS::Region>", REGION))


def reference(part: str | dict) -> str:
    if isinstance(part, str):
        return part
    return f"<{part['Ref']}>" if "Ref" in part else f"<{'.'.join(part['Fn::GetAtt'])}>"


def plotted(body: dict) -> list[list[Any]]:
    return [metric for w in body["widgets"] for metric in w["properties"].get("metrics", [])]


def test_the_dashboard_shows_executions_updraft_metrics_per_group_errors_and_failed_deliveries(
    of_type, config, functions, topic
):
    body = dashboard_body(of_type)
    metrics = plotted(body)
    machine, _ = only(of_type, "AWS::StepFunctions::StateMachine")
    for name in ("Started", "Succeeded", "Failed", "TimedOut", "Aborted"):
        assert ["AWS/States", f"Executions{name}", "StateMachineArn", f"<{machine}>"] in [m[:4] for m in metrics]
    for group in config.groups:
        for name in (*HOST_METRICS, *OUTCOME_METRICS, "WaveDurationSeconds"):
            assert ["Updraft", name, "group", group.name, "service", "updraft"] in [m[:6] for m in metrics]
    for function in functions.values():
        for name in ("Errors", "Throttles"):
            assert ["AWS/Lambda", name, "FunctionName", f"<{function['LogicalId']}>"] in [m[:4] for m in metrics]
    topic_name = f"<{topic[0]}.TopicName>"
    assert ["AWS/SNS", "NumberOfNotificationsFailed", "TopicName", topic_name] in [m[:4] for m in metrics]


def test_outputs_name_the_topic_the_dashboard_and_the_alarms(template, of_type, topic, alarms):
    outputs = {key: output["Value"] for key, output in template["Outputs"].items()}
    assert outputs["NotificationTopicArn"] == {"Ref": topic[0]}
    dashboard, _ = only(of_type, "AWS::CloudWatch::Dashboard")
    assert outputs["DashboardName"] == {"Ref": dashboard}
    alarm_ids = {lid for lid in of_type("AWS::CloudWatch::Alarm")}
    assert {v["Ref"] for k, v in outputs.items() if k.endswith("AlarmName")} == alarm_ids
    assert outputs["RolloutsFailedAlarmName"] == {"Ref": next(i for i in alarm_ids if "RolloutsFailed" in i)}


def test_no_email_subscription_without_addresses(config, of_type):
    assert config.notify_emails == []
    assert of_type("AWS::SNS::Subscription") == {}


def test_each_configured_address_gets_an_email_subscription(config, topic):
    emailed = UpdraftConfig.model_validate({**config.model_dump(mode="json"), "notify_emails": EMAILS})
    resources = synthesize(emailed)["Resources"]
    subscriptions = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::SNS::Subscription"]
    assert sorted(s["Endpoint"] for s in subscriptions) == EMAILS
    for subscription in subscriptions:
        assert subscription["Protocol"] == "email"
        assert subscription["TopicArn"] == {"Ref": topic[0]}
