"""What people hear about a rollout: the lifecycle events on the default bus, the notifications the topic
sends (read through an SQS subscription, as any subscriber would), and the alarms that page through it."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from sim.bottlerocket import Fault
from tests.integration.conftest import waves_of
from updraft.domain.lifecycle import SOURCE, Kind, LifecycleDetail

pytestmark = pytest.mark.integration

NEW = "1.26.1"
# What each kind's `data` carries at least (docs/events.md).
DATA_FIELDS = {
    Kind.ROLLOUT_STARTED: {"requested_by", "planned_hosts", "skipped_hosts", "wave_sizes"},
    Kind.WAVE_STARTED: {"wave", "hosts"},
    Kind.WAVE_FINISHED: {"wave", "verdict", "reason", "failures", "duration_seconds"},
    Kind.HOST_ROLLED_BACK: {"instance_id", "wave", "from_version", "to_version", "reason"},
    Kind.ROLLOUT_SUCCEEDED: {"outcome", "summary", "reason"},
    Kind.ROLLOUT_HALTED: {"outcome", "summary", "reason"},
}


def message_text(notification: dict[str, Any]) -> str:
    # The rule's template is a JSON string: SNS carries it, quotes and all.
    return json.loads(notification["Message"])


def details(events: list[dict[str, Any]]) -> list[LifecycleDetail]:
    parsed = []
    for event in events:
        assert event["source"] == SOURCE
        detail = LifecycleDetail.model_validate(event["detail"])
        assert event["detail-type"] == detail.kind
        parsed.append(detail)
    return parsed


def assert_in_order(kinds: list[Kind], waves: list[int | None], wave_count: int, outcome: Kind) -> None:
    """Started, then each wave started and finished in turn (host rollbacks inside it), then the outcome."""
    assert kinds[0] is Kind.ROLLOUT_STARTED
    assert kinds[-1] is outcome
    expected_wave, in_wave = 0, False
    for kind, wave in zip(kinds[1:-1], waves[1:-1], strict=True):
        if kind is Kind.WAVE_STARTED:
            assert not in_wave and wave == expected_wave
            in_wave = True
        elif kind is Kind.WAVE_FINISHED:
            assert in_wave and wave == expected_wave
            in_wave, expected_wave = False, expected_wave + 1
        else:
            assert kind is Kind.HOST_ROLLED_BACK and in_wave and wave == expected_wave
    assert not in_wave and expected_wave == wave_count


def test_a_failed_host_is_notified_and_every_event_follows_the_rollout(world):
    notifications, captured = world.subscribe_queue(), world.capture_lifecycle_events()
    ids = world.launch("web", 5)
    waves = waves_of(world, ids)
    victim = waves[1][0]
    world.inject(victim, Fault.APPLY_FAILS)

    execution = world.rollout("web", NEW)

    assert execution.status == "SUCCEEDED"
    rollout_id = execution.name
    events = details(world.lifecycle_events(captured))
    assert {d.rollout_id for d in events} == {rollout_id}
    assert {(d.group, d.target_version) for d in events} == {("web", NEW)}
    for d in events:
        assert DATA_FIELDS[d.kind] <= set(d.data), d.kind
    kinds = [d.kind for d in events]
    assert_in_order(kinds, [d.data.get("wave") for d in events], len(waves), Kind.ROLLOUT_SUCCEEDED)
    (rolled_back,) = [d for d in events if d.kind is Kind.HOST_ROLLED_BACK]
    assert (rolled_back.data["instance_id"], rolled_back.data["wave"]) == (victim, 1)
    assert (rolled_back.data["from_version"], rolled_back.data["to_version"]) == (NEW, "1.26.0")

    # Only what needs a human reaches the topic: the rollback and the outcome, not the waves.
    texts = [message_text(n) for n in world.notifications(notifications)]
    assert [t.split(":")[0] for t in texts] == ["Updraft Host Rolled Back", "Updraft Rollout Succeeded"]
    for text in texts:
        assert f"group web, rollout {rollout_id}, version {NEW}." in text
    assert "No space left on device" in texts[0]


def test_a_halted_rollout_is_notified_with_its_reason(world):
    notifications, captured = world.subscribe_queue(), world.capture_lifecycle_events()
    ids = world.launch("batch", 3)
    canary = waves_of(world, ids, "batch")[0][0]
    world.inject(canary, Fault.WRONG_VERSION)

    execution = world.rollout("batch", NEW)

    assert execution.status == "FAILED"
    events = details(world.lifecycle_events(captured))
    assert_in_order([d.kind for d in events], [d.data.get("wave") for d in events], 1, Kind.ROLLOUT_HALTED)
    halted = events[-1]
    assert halted.data["outcome"] == "halted" and halted.data["reason"]
    texts = [message_text(n) for n in world.notifications(notifications)]
    assert texts[-1] == (
        f"Updraft Rollout Halted: group batch, rollout {execution.name}, version {NEW}. Reason: {halted.data['reason']}"
    )
    assert [t.split(":")[0] for t in texts] == ["Updraft Host Rolled Back", "Updraft Rollout Halted"]


def test_an_alarm_pages_through_the_topic(world):
    notifications = world.subscribe_queue()
    name = world.outputs["RolloutsFailedAlarmName"]
    cloudwatch = boto3.client("cloudwatch")

    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="1 execution failed")

    (notification,) = world.notifications(notifications)
    assert notification["Subject"].startswith(f'ALARM: "{name}"')
    message = json.loads(notification["Message"])
    assert (message["AlarmName"], message["NewStateValue"], message["OldStateValue"]) == (name, "ALARM", "OK")
    assert message["NewStateReason"] == "1 execution failed"
