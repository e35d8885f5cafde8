"""CloudWatch: an alarm changing state tells its SNS actions and the default bus (moto tells neither), and
DescribeAlarms filters by state as CloudWatch does. Drive alarms with `set_alarm_state`: moto never evaluates.

SetAlarmState passes through two of moto's methods, each patched once, in this order:
1. `CloudWatchBackend.set_alarm_state` notes the alarm's state and calls moto's, which calls
2. `Alarm.update_state`: moto's, then, when the state changed and actions are enabled, CloudWatch's alarm
   notification is published to the SNS topics among the actions for the new state;
3. back in `set_alarm_state`: when the state changed, a "CloudWatch Alarm State Change" event is put on the
   default bus.
"""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

from moto.cloudwatch import models as cloudwatch_models
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult

from sim.aws import events, sns
from sim.clock import VirtualClock


def patches(clock: VirtualClock) -> list[Any]:
    original_set = cloudwatch_models.CloudWatchBackend.set_alarm_state
    original_update = cloudwatch_models.Alarm.update_state
    original_describe = CloudWatchResponse.describe_alarms

    def set_alarm_state(self: Any, alarm_name: str, reason: str, reason_data: str, state_value: str) -> None:
        alarm = self.alarms.get(alarm_name)
        before = alarm.state_value if alarm else None
        original_set(self, alarm_name, reason, reason_data, state_value)
        if before != state_value:
            _publish_alarm_change(self, alarm_name, before, state_value, reason, clock)

    def update_state(self: Any, reason: str, reason_data: str, state_value: str) -> None:
        old = self.state_value
        original_update(self, reason, reason_data, state_value)
        if state_value == old or not self.actions_enabled:
            return
        actions = {
            "ALARM": self.alarm_actions,
            "OK": self.ok_actions,
            "INSUFFICIENT_DATA": self.insufficient_data_actions,
        }[state_value]
        for arn in actions:
            if sns.is_topic(arn):
                message = json.dumps(_alarm_message(self, old))
                sns.backend(arn).publish(message=message, arn=arn, subject=_subject(self))

    def describe_alarms(self: CloudWatchResponse) -> ActionResult:
        # moto drops the StateValue filter when names or a prefix are given too; CloudWatch applies both.
        state = self._get_param("StateValue")
        found = original_describe(self).result
        if state:
            found = {kind: [a for a in alarms if a.state_value == state] for kind, alarms in found.items()}
        return ActionResult(found)

    return [
        mock.patch.object(cloudwatch_models.CloudWatchBackend, "set_alarm_state", set_alarm_state),
        mock.patch.object(cloudwatch_models.Alarm, "update_state", update_state),
        mock.patch.object(CloudWatchResponse, "describe_alarms", describe_alarms),
    ]


def alarm_states(account: str, region: str) -> dict[str, str]:
    """Every alarm's state now, by name."""
    alarms = cloudwatch_models.cloudwatch_backends[account][region].alarms
    return {name: alarm.state_value for name, alarm in alarms.items()}


def restore(states: dict[str, str], account: str, region: str) -> None:
    """Put those of the alarms `alarm_states` saw back in the state it saw (silently: no notification)."""
    for name, alarm in cloudwatch_models.cloudwatch_backends[account][region].alarms.items():
        if name in states:
            alarm.state_value = states[name]


def publish_alarm_change(
    account: str, region: str, name: str, before: str | None, after: str, reason: str, clock: VirtualClock
) -> None:
    """The state change event of an existing alarm, put on the default bus now (the alarm itself unchanged)."""
    backend = cloudwatch_models.cloudwatch_backends[account][region]
    _publish_alarm_change(backend, name, before, after, reason, clock)


def _publish_alarm_change(
    backend: Any, name: str, before: str | None, after: str, reason: str, clock: VirtualClock
) -> None:
    stamp = clock.now().strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    alarm = backend.alarms[name]
    detail = {
        "alarmName": name,
        "state": {"value": after, "reason": reason, "timestamp": stamp},
        "previousState": {"value": before, "timestamp": stamp},
        "configuration": {"description": getattr(alarm, "description", "") or ""},
    }
    events.service_event(
        backend.account_id,
        backend.region_name,
        "aws.cloudwatch",
        "CloudWatch Alarm State Change",
        detail,
        alarm.alarm_arn,
        clock,
    )


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
