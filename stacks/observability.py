"""Telling people: the notification topic, the rule that sends it lifecycle events worth a human's
attention, the alarms that page through it, and the dashboard."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jsii
from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from updraft.config import UpdraftConfig
from updraft.domain.lifecycle import SOURCE, Kind

NAMESPACE = "Updraft"  # what the functions' POWERTOOLS_METRICS_NAMESPACE says
SERVICE = "updraft"  # Powertools adds the service name as a second dimension to every metric
NOTIFIED = (
    Kind.ROLLOUT_SUCCEEDED,
    Kind.ROLLOUT_HALTED,
    Kind.ROLLOUT_FAILED,
    Kind.ROLLOUT_ABORTED,
    Kind.HOST_ROLLED_BACK,
    Kind.ROLLOUT_PAUSED,
)
HOST_METRICS = ("HostsUpdated", "HostsFailed", "HostsRolledBack", "HostsRollbackFailed")
OUTCOME_METRICS = ("RolloutsSucceeded", "RolloutsHalted", "RolloutsFailed", "RolloutsAborted")
ALARM_PERIOD = Duration.minutes(5)
UNDELIVERED_ALARM = "undelivered-events"
# What the functions refuse because it is not Updraft's own verified fact, each counted and alarmed on.
REFUSALS = {
    "DocumentChanged": "An Updraft SSM document's default version is not the content the stack deployed: the "
    "rollout sent nothing with it and failed. Find who changed it (CloudTrail: UpdateDocument, "
    "UpdateDocumentDefaultVersion), then set the default back to the deployed version.",
    "ForgedRelease": "A release announcement (available or withdrawn) reached Updraft that the detector's release "
    "record does not vouch for: nothing started or halted. Find who sent it (CloudTrail: PutEvents on the "
    "release bus; the function's log names the version and the execution).",
}
METRICS_PER_ALARM = 10  # CloudWatch's limit on the metrics one metric-math alarm may read


def _field(path: str) -> str:
    return events.EventField.from_path(path)


# One line per event: what happened, to which rollout, and why.
MESSAGE = events.RuleTargetInput.from_text(
    f"Updraft {_field('$.detail.kind')}: group {_field('$.detail.group')}, "
    f"rollout {_field('$.detail.rollout_id')}, version {_field('$.detail.target_version')}. "
    f"Reason: {_field('$.detail.data.reason')}"
)


@jsii.implements(events.IRuleTarget)
class _TopicTarget:
    """The topic as a rule target, granting nothing by itself: `targets.SnsTopic` would add unconditioned
    statements for EventBridge to the topic and key policies, which this construct writes scoped instead."""

    def __init__(self, topic: sns.ITopic, message: events.RuleTargetInput) -> None:
        self._topic = topic
        self._message = message

    def bind(self, _rule: events.IRule, _id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self._topic.topic_arn, input=self._message)


class Observability(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: UpdraftConfig,
        state_machine: sfn.StateMachine,
        functions: dict[str, lambda_.IFunction],
        undelivered: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.undelivered = undelivered
        # Fixed names: the key and topic policies name the rule and the alarms, which name the topic.
        self.rule_name = f"{stack.stack_name}-notify"
        self.error_chunks = _chunks(sorted(functions), METRICS_PER_ALARM)
        self.refusals = {
            name: description
            for name, description in REFUSALS.items()
            if name != "ForgedRelease" or config.detection  # only a stack with a release bus gets announcements
        }
        names = ("rollouts-failed", UNDELIVERED_ALARM, *map(_kebab, self.refusals))
        alarm_names = [self._alarm_name(name) for name in names] + [
            self._alarm_name(_errors_alarm(index)) for index in range(len(self.error_chunks))
        ]
        rule_arn = stack.format_arn(service="events", resource="rule", resource_name=self.rule_name)
        alarm_arns = [
            stack.format_arn(
                service="cloudwatch", resource="alarm", resource_name=name, arn_format=ArnFormat.COLON_RESOURCE_NAME
            )
            for name in alarm_names
        ]
        publishers = {"events.amazonaws.com": [rule_arn], "cloudwatch.amazonaws.com": alarm_arns}
        self.key = self._key(publishers)
        self.topic = self._topic(self.key, publishers, config.notify_emails)
        self.rule = self._rule()
        self.alarms = self._alarms(state_machine, functions)
        self.dashboard = self._dashboard(config, state_machine, functions)

    def _alarm_name(self, name: str) -> str:
        return f"{Stack.of(self).stack_name}-{name}"

    # -- the topic ------------------------------------------------------------------------------
    def _key(self, publishers: dict[str, list[str]]) -> kms.Key:
        key = kms.Key(
            self,
            "NotificationKey",
            description="Updraft: encrypts the notification topic",
            enable_key_rotation=True,
        )
        for service, source_arns in publishers.items():
            # SNS uses the key on the publisher's behalf: the publisher needs a data key for each message.
            # GenerateDataKey by name: the wildcard would also grant the key-pair and no-plaintext variants.
            key.add_to_resource_policy(
                iam.PolicyStatement(
                    principals=[iam.ServicePrincipal(service)],
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=["*"],  # in a key policy, "*" is this key
                    conditions=_from(self, source_arns),
                )
            )
        return key

    def _topic(self, key: kms.IKey, publishers: dict[str, list[str]], emails: Sequence[str]) -> sns.Topic:
        topic = sns.Topic(self, "Notifications", display_name="Updraft", master_key=key, enforce_ssl=True)
        for service, source_arns in publishers.items():
            topic.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"PublishFrom{service.split('.')[0].capitalize()}",
                    principals=[iam.ServicePrincipal(service)],
                    actions=["sns:Publish"],
                    resources=[topic.topic_arn],
                    conditions=_from(self, source_arns),
                )
            )
        for email in emails:
            topic.add_subscription(subscriptions.EmailSubscription(email))
        return topic

    def _rule(self) -> events.Rule:
        return events.Rule(
            self,
            "Notify",
            rule_name=self.rule_name,
            description="Updraft: lifecycle events worth a human's attention, to the notification topic",
            event_pattern=events.EventPattern(source=[SOURCE], detail_type=[str(kind) for kind in NOTIFIED]),
            targets=[_TopicTarget(self.topic, MESSAGE)],
        )

    # -- alarms ---------------------------------------------------------------------------------
    def _alarms(self, state_machine: sfn.StateMachine, functions: dict[str, lambda_.IFunction]) -> list[cw.Alarm]:
        # A halted rollout ends in a Fail state, and a stuck one in TIMED_OUT: this alarm sees both.
        ended_badly = cw.MathExpression(
            expression="FILL(failed, 0) + FILL(timedOut, 0)",
            using_metrics={
                "failed": state_machine.metric_failed(period=ALARM_PERIOD, statistic="Sum"),
                "timedOut": state_machine.metric_timed_out(period=ALARM_PERIOD, statistic="Sum"),
            },
            label="Rollouts failed, halted or timed out",
            period=ALARM_PERIOD,
        )
        alarms = [
            self._alarm(
                "RolloutsFailed",
                "rollouts-failed",
                ended_badly,
                "A rollout execution failed, halted or timed out: see the ledger and the execution history.",
            )
        ]
        alarms.append(self._undelivered_alarm())
        for name, description in self.refusals.items():
            # The stack's, not a group's: counted with the service dimension only.
            refused = cw.Metric(
                namespace=NAMESPACE,
                metric_name=name,
                dimensions_map={"service": SERVICE},
                statistic="Sum",
                period=ALARM_PERIOD,
            )
            alarms.append(self._alarm(name, _kebab(name), refused, description))
        for index, chunk in enumerate(self.error_chunks):
            errors = cw.MathExpression(
                expression=" + ".join(f"FILL(e{i}, 0)" for i in range(len(chunk))),
                using_metrics={
                    f"e{i}": functions[name].metric_errors(period=ALARM_PERIOD, statistic="Sum")
                    for i, name in enumerate(chunk)
                },
                label="Errors of Updraft's functions",
                period=ALARM_PERIOD,
            )
            alarms.append(
                self._alarm(
                    f"FunctionErrors{index or ''}",
                    _errors_alarm(index),
                    errors,
                    f"An Updraft function raised an error ({', '.join(chunk)}): the state machine retries a "
                    "step, but one that keeps failing holds its rollout until the execution times out.",
                )
            )
        return alarms

    def _undelivered_alarm(self) -> cw.Alarm:
        # Any message is an event nothing acted on (a missed rollback, an unsettled execution, a release
        # never started). SQS stops sending the metric for a queue idle for six hours, messages or not
        # (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html):
        # missing data keeps the alarm in the state it is in.
        visible = self.undelivered.metric_approximate_number_of_messages_visible(
            period=ALARM_PERIOD, statistic="Maximum"
        )
        return self._alarm(
            "UndeliveredEvents",
            UNDELIVERED_ALARM,
            visible,
            "An event Updraft should have acted on is on the failed-deliveries queue (an undelivered rule "
            "target, or a function that failed every attempt): read it, fix the cause, act on it by hand.",
            treat_missing_data=cw.TreatMissingData.IGNORE,
        )

    def _alarm(
        self,
        construct_id: str,
        name: str,
        metric: cw.IMetric,
        description: str,
        treat_missing_data: cw.TreatMissingData = cw.TreatMissingData.NOT_BREACHING,
    ) -> cw.Alarm:
        alarm = cw.Alarm(
            self,
            construct_id,
            alarm_name=self._alarm_name(name),
            alarm_description=description,
            metric=metric,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=treat_missing_data,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
        return alarm

    # -- the dashboard --------------------------------------------------------------------------
    def _dashboard(
        self, config: UpdraftConfig, state_machine: sfn.StateMachine, functions: dict[str, lambda_.IFunction]
    ) -> cw.Dashboard:
        dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=f"{Stack.of(self).stack_name}-rollouts")
        executions = [
            state_machine.metric_started(statistic="Sum"),
            state_machine.metric_succeeded(statistic="Sum"),
            state_machine.metric_failed(statistic="Sum"),
            state_machine.metric_timed_out(statistic="Sum"),
            state_machine.metric_aborted(statistic="Sum"),
        ]
        dashboard.add_widgets(
            cw.GraphWidget(title="Rollout executions", left=executions, width=12),
            cw.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=12),
        )
        for group in config.groups:
            dashboard.add_widgets(
                cw.GraphWidget(title=f"{group.name}: hosts", left=_updraft(group.name, HOST_METRICS), width=8),
                cw.GraphWidget(
                    title=f"{group.name}: wave duration",
                    left=_updraft(group.name, ("WaveDurationSeconds",), statistic="Maximum"),
                    width=8,
                ),
                cw.GraphWidget(title=f"{group.name}: outcomes", left=_updraft(group.name, OUTCOME_METRICS), width=8),
            )
        names = sorted(functions)
        dashboard.add_widgets(
            cw.GraphWidget(
                title="Function errors",
                left=[functions[n].metric_errors(statistic="Sum", label=n) for n in names],
                width=8,
            ),
            cw.GraphWidget(
                title="Function throttles",
                left=[functions[n].metric_throttles(statistic="Sum", label=n) for n in names],
                width=8,
            ),
            cw.GraphWidget(
                title="Notifications failed",
                left=[self.topic.metric_number_of_notifications_failed(statistic="Sum")],
                width=8,
            ),
        )
        return dashboard


def _from(scope: Construct, source_arns: list[str]) -> dict[str, dict[str, Any]]:
    """Only on behalf of this stack's own rule or alarms (the confused-deputy guard)."""
    return {
        "StringEquals": {"aws:SourceAccount": Stack.of(scope).account},
        "ArnEquals": {"aws:SourceArn": source_arns},
    }


def _chunks(names: list[str], size: int) -> list[list[str]]:
    return [names[start : start + size] for start in range(0, len(names), size)]


def _kebab(name: str) -> str:
    """`DocumentChanged` -> `document-changed`, an alarm's name."""
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")


def _errors_alarm(index: int) -> str:
    return "function-errors" + (f"-{index + 1}" if index else "")


def _updraft(group: str, names: Sequence[str], statistic: str = "Sum") -> list[cw.IMetric]:
    return [
        cw.Metric(
            namespace=NAMESPACE,
            metric_name=name,
            dimensions_map={"group": group, "service": SERVICE},
            statistic=statistic,
            label=name,
        )
        for name in names
    ]
