"""When a wave is looked at again: the group's interval, or soon when the wave's end is near."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from updraft.config import GroupPolicy
from updraft.domain.host_record import HostRecord, HostState
from updraft.domain.polling import (
    FIRST_LOOK_SECONDS,
    QUICK_POLL_SECONDS,
    QUICK_REBOOT_SECONDS,
    first_poll_seconds,
    next_poll_seconds,
)

POLICY = GroupPolicy(name="web", variant="aws-ecs-2")  # polls every 30 s
NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def host(index: int, state: HostState, since: float = 0.0, **changes: object) -> HostRecord:
    fields: dict[str, object] = {
        "rollout_id": "r-1",
        "instance_id": f"i-{index:04d}",
        "az": "us-east-1a",
        "wave": 3,
        "state": state,
        "previous_version": "1.26.0",
        "target_version": "1.26.1",
        "updated_at": (NOW - timedelta(seconds=since)).isoformat(),
    }
    return HostRecord.model_validate(fields | changes)


def wave(in_flight: list[HostRecord], done: int) -> list[HostRecord]:
    return in_flight + [host(100 + i, HostState.UPDATED) for i in range(done)]


def test_a_wave_with_hosts_still_applying_is_looked_at_the_groups_interval() -> None:
    records = wave([host(0, HostState.APPLYING), host(1, HostState.REBOOTING, since=20)], done=18)
    assert next_poll_seconds(records, POLICY, NOW) == POLICY.poll_interval_seconds


def test_a_wave_down_to_its_last_quarter_rebooting_is_looked_at_soon() -> None:
    records = wave([host(i, HostState.REBOOTING, since=40) for i in range(5)], done=15)
    assert next_poll_seconds(records, POLICY, NOW) == QUICK_POLL_SECONDS


def test_more_than_a_quarter_of_the_wave_in_flight_waits_the_interval() -> None:
    records = wave([host(i, HostState.REBOOTING, since=40) for i in range(6)], done=14)
    assert next_poll_seconds(records, POLICY, NOW) == POLICY.poll_interval_seconds


def test_a_late_reboot_no_longer_hurries_the_polls() -> None:
    # A hung host would otherwise be looked at every few seconds until its verify deadline.
    records = wave([host(0, HostState.REBOOTING, since=QUICK_REBOOT_SECONDS + 1)], done=19)
    assert next_poll_seconds(records, POLICY, NOW) == POLICY.poll_interval_seconds


def test_verify_reports_awaited_from_every_host_in_flight_are_looked_at_soon() -> None:
    records = wave([host(i, HostState.VERIFYING, command_id=f"c-{i}") for i in range(10)], done=0)
    assert next_poll_seconds(records, POLICY, NOW) == QUICK_POLL_SECONDS


def test_a_canary_rebooting_alone_is_the_whole_tail() -> None:
    assert next_poll_seconds([host(0, HostState.REBOOTING, since=30)], POLICY, NOW) == QUICK_POLL_SECONDS


def test_a_group_polling_faster_than_the_quick_look_keeps_its_interval() -> None:
    fast = POLICY.model_copy(update={"poll_interval_seconds": 5})
    records = wave([host(0, HostState.REBOOTING, since=30)], done=9)
    assert next_poll_seconds(records, fast, NOW) == 5


def test_a_wave_with_nothing_in_flight_waits_the_interval() -> None:
    assert next_poll_seconds(wave([], done=4), POLICY, NOW) == POLICY.poll_interval_seconds


def test_the_first_look_after_an_apply_is_two_intervals_and_never_before_the_shortest_update() -> None:
    assert first_poll_seconds(POLICY) == FIRST_LOOK_SECONDS
    slow = POLICY.model_copy(update={"poll_interval_seconds": 120})
    assert first_poll_seconds(slow) == 240


def test_hosts_awaiting_their_node_or_agent_after_verification_are_looked_at_soon() -> None:
    records = wave([host(0, HostState.ACTIVATING), host(1, HostState.ACTIVATING)], done=18)
    assert next_poll_seconds(records, POLICY, NOW) == QUICK_POLL_SECONDS


def test_the_first_look_after_a_drain_began_is_one_interval() -> None:
    eks = GroupPolicy(name="nodes", variant="aws-k8s-1.32", eks={"cluster": "prod"})
    ecs = GroupPolicy(name="web", variant="aws-ecs-2", ecs={"cluster": "blue"})
    assert first_poll_seconds(eks) == first_poll_seconds(ecs) == POLICY.poll_interval_seconds
    assert first_poll_seconds(POLICY) == FIRST_LOOK_SECONDS
