"""What moto 5.2.5 lacks for Updraft's notifications, patched for the life of `wired()`:

- CloudFormation creates no AWS::SNS::Subscription, AWS::SNS::TopicPolicy or AWS::CloudWatch::Alarm
  (it skips them with a warning): here each is created through its service's backend, as the API would;
- EventBridge rules deliver nothing to SNS targets: here a matching event reaches the topic as the text
  the target's input (or input transformer) makes of it, and SNS fans it out to its subscribers;
- an alarm changing state publishes nothing: here it sends CloudWatch's alarm notification to the SNS
  topics among its actions for the new state (drive alarms with `set_alarm_state`: moto never evaluates).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from moto.cloudformation import parsing
from moto.cloudwatch import models as cloudwatch_models
from moto.cloudwatch.models import Dimension, Metric, MetricDataQuery, MetricStat
from moto.events import models as events_models
from moto.sns import models as sns_models

from sim import moto_wiring  # which enters these patches: its helpers are read when called


@contextlib.contextmanager
def wired() -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.dict(parsing.get_model_map(), CLOUDFORMATION_MODELS))
        stack.enter_context(mock.patch.object(events_models.Rule, "send_to_targets", _rule_sender()))
        stack.enter_context(mock.patch.object(cloudwatch_models.Alarm, "update_state", _notifying_alarm()))
        yield


def _is_topic(arn: str) -> bool:
    return arn.split(":")[2:3] == ["sns"]


def _sns(arn: str) -> sns_models.SNSBackend:
    _, _, _, region, account, _ = arn.split(":", 5)
    return sns_models.sns_backends[account][region]


# -- CloudFormation ---------------------------------------------------------------------------------------
@dataclass
class _Created:
    """What CloudFormation keeps of a resource: the id `Ref` returns and what `Fn::GetAtt` may read."""

    physical_resource_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    cf_resource_type: str = ""
    logical_resource_id: str = ""

    def get_cfn_attribute(self, name: str) -> str:
        if name not in self.attributes:
            raise NotImplementedError(f"{name} of {{0}} is not simulated")
        return self.attributes[name]

    @staticmethod
    def is_created() -> bool:
        return True


class _Subscription:
    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> _Created:
        properties = cloudformation_json["Properties"]
        topic_arn = properties["TopicArn"]
        subscription = _sns(topic_arn).subscribe(topic_arn, properties["Endpoint"], properties["Protocol"])
        return _Created(subscription.arn, {"Arn": subscription.arn})


class _TopicPolicy:
    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> _Created:
        properties = cloudformation_json["Properties"]
        for topic_arn in properties["Topics"]:
            _sns(topic_arn).set_topic_attribute(topic_arn, "policy", json.dumps(properties["PolicyDocument"]))
        return _Created(resource_name)


class _Alarm:
    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> _Created:
        p = cloudformation_json["Properties"]
        name = p.get("AlarmName", resource_name)
        alarm = cloudwatch_models.cloudwatch_backends[account_id][region_name].put_metric_alarm(
            name=name,
            namespace=p.get("Namespace"),
            metric_name=p.get("MetricName"),
            metric_data_queries=[_query(q) for q in p.get("Metrics", [])] or None,
            comparison_operator=p["ComparisonOperator"],
            evaluation_periods=int(p["EvaluationPeriods"]),
            datapoints_to_alarm=p.get("DatapointsToAlarm"),
            period=p.get("Period"),
            threshold=float(p["Threshold"]),
            statistic=p.get("Statistic"),
            extended_statistic=p.get("ExtendedStatistic"),
            description=p.get("AlarmDescription"),
            dimensions=p.get("Dimensions", []),
            alarm_actions=p.get("AlarmActions", []),
            ok_actions=p.get("OKActions", []),
            insufficient_data_actions=p.get("InsufficientDataActions", []),
            unit=p.get("Unit"),
            actions_enabled=p.get("ActionsEnabled", True),
            treat_missing_data=p.get("TreatMissingData"),
            evaluate_low_sample_count_percentile=p.get("EvaluateLowSampleCountPercentile"),
            threshold_metric_id=p.get("ThresholdMetricId"),
        )
        return _Created(name, {"Arn": alarm.alarm_arn})


def _query(query: dict[str, Any]) -> MetricDataQuery:
    stat = query.get("MetricStat")
    metric_stat = None
    if stat:
        metric = stat["Metric"]
        dimensions = [Dimension(d["Name"], d["Value"]) for d in metric.get("Dimensions", [])]
        measured = Metric(metric["MetricName"], metric["Namespace"], dimensions)
        metric_stat = MetricStat(measured, stat["Period"], stat["Stat"], stat.get("Unit"))
    return MetricDataQuery(
        query_id=query["Id"],
        label=query.get("Label"),
        period=query.get("Period"),
        return_data=query.get("ReturnData", True),
        expression=query.get("Expression"),
        metric_stat=metric_stat,
    )


CLOUDFORMATION_MODELS = {
    "AWS::SNS::Subscription": _Subscription,
    "AWS::SNS::TopicPolicy": _TopicPolicy,
    "AWS::CloudWatch::Alarm": _Alarm,
}


# -- EventBridge to SNS -----------------------------------------------------------------------------------
def _rule_sender() -> Any:
    delivered_elsewhere = events_models.Rule.send_to_targets  # moto's, as the wiring patched it

    def send_to_targets(self: Any, event: dict, transform_input: bool = True) -> None:
        topics = [t for t in self.targets if _is_topic(t["Arn"])]
        others = [t for t in self.targets if t not in topics]
        if others:
            with mock.patch.object(self, "targets", others):
                delivered_elsewhere(self, event, transform_input)
        scheduled_only = self.scheduled_expression and event.get("detail-type") != "Scheduled Event"
        if not topics or scheduled_only or not self.event_pattern.matches_event(event):
            return
        for target in topics:
            # SNS publishes the text EventBridge makes: a JSON string template arrives with its quotes.
            message = json.dumps(moto_wiring._target_input(target, event), ensure_ascii=False)
            _sns(target["Arn"]).publish(message=message, arn=target["Arn"])

    return send_to_targets


# -- CloudWatch alarms to SNS -----------------------------------------------------------------------------
def _notifying_alarm() -> Any:
    original = cloudwatch_models.Alarm.update_state

    def update_state(self: Any, reason: str, reason_data: str, state_value: str) -> None:
        old = self.state_value
        original(self, reason, reason_data, state_value)
        if state_value == old or not self.actions_enabled:
            return
        actions = {
            "ALARM": self.alarm_actions,
            "OK": self.ok_actions,
            "INSUFFICIENT_DATA": self.insufficient_data_actions,
        }[state_value]
        for arn in actions:
            if _is_topic(arn):
                _sns(arn).publish(message=json.dumps(_alarm_message(self, old)), arn=arn, subject=_subject(self))

    return update_state


def _alarm_message(alarm: Any, old_state: str) -> dict[str, Any]:
    """The fields of CloudWatch's alarm notification that say which alarm changed, how and why."""
    _, _, _, region, account, _ = alarm.alarm_arn.split(":", 5)
    return {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description,
        "AWSAccountId": account,
        "NewStateValue": alarm.state_value,
        "NewStateReason": alarm.state_reason,
        "StateChangeTime": alarm.state_updated_timestamp.isoformat(),
        "Region": region,
        "AlarmArn": alarm.alarm_arn,
        "OldStateValue": old_state,
    }


def _subject(alarm: Any) -> str:
    # CloudWatch names the region in words ("US East (N. Virginia)"); its code serves the simulation.
    return f'{alarm.state_value}: "{alarm.name}" in {alarm.region_name}'[:100]
