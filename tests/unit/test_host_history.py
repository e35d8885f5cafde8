"""A host's history: each state entered, and the notes gained within one; bounded; never a repeat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from updraft.domain.host_record import HISTORY_LIMIT, NOTE_LIMIT, HostRecord, HostState, Transition, planned_entry
from updraft.domain.rollout_events import Mark, RolloutEvent, event_key

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def planned() -> HostRecord:
    return HostRecord(
        rollout_id="r-1",
        instance_id="i-1",
        az="us-east-1a",
        wave=0,
        previous_version="1.26.0",
        target_version="1.26.1",
        note="planned",
        history=planned_entry("planned in wave 0", T0),
    )


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_each_state_entered_is_an_entry_with_its_time_and_why() -> None:
    host = planned().move(HostState.APPLYING, "apply sent", at(1)).move(HostState.REBOOTING, "rebooting", at(3))

    assert [(e.state, e.at, e.note) for e in host.history] == [
        (HostState.PENDING, T0.isoformat(), "planned in wave 0"),
        (HostState.APPLYING, at(1).isoformat(), "apply sent"),
        (HostState.REBOOTING, at(3).isoformat(), "rebooting"),
    ]


def test_the_same_move_made_twice_is_recorded_once() -> None:
    once = planned().move(HostState.APPLYING, "apply sent", at(1))

    again = once.move(HostState.APPLYING, "apply sent", at(2))  # a retried step, the host where it left it

    assert again.history == once.history


def test_a_note_within_a_state_is_kept_and_noted_keeps_the_state() -> None:
    draining = planned().move(HostState.DRAINING, "cordoned", at(1))

    host = draining.move(HostState.DRAINING, "2 pods evicted", at(2)).noted("eviction refused", at(3))

    assert [(e.state, e.note) for e in host.history[1:]] == [
        (HostState.DRAINING, "cordoned"),
        (HostState.DRAINING, "2 pods evicted"),
        (HostState.DRAINING, "eviction refused"),
    ]
    assert host.state is HostState.DRAINING and host.note == "eviction refused"


def test_past_the_limit_notes_within_a_state_go_first_and_every_state_change_stays() -> None:
    host = planned().move(HostState.DRAINING, "cordoned", at(1))
    for minute in range(2, 200):
        host = host.noted(f"{minute} pods still running", at(minute))
    host = host.move(HostState.APPLYING, "apply sent", at(200)).move(HostState.UPDATED, "updated", at(210))

    assert len(host.history) == HISTORY_LIMIT
    changes = [e.state for i, e in enumerate(host.history) if i == 0 or host.history[i - 1].state is not e.state]
    assert changes == [HostState.PENDING, HostState.DRAINING, HostState.APPLYING, HostState.UPDATED]
    assert host.history[1].note == "cordoned"  # when the drain began stays: the timeline's span starts there
    assert host.history[-3].note == "199 pods still running"  # the latest notes stay


def test_a_long_note_is_shortened_in_the_history_not_in_the_record() -> None:
    host = planned().move(HostState.FAILED, "x" * 1000, at(1), failure="x" * 1000)

    assert len(host.history[-1].note) == NOTE_LIMIT and host.history[-1].note.endswith("…")
    assert host.note == "x" * 1000


def test_a_history_kept_as_lines_reads_as_entries() -> None:
    item = planned().model_dump(mode="json") | {"history": ["2026-01-05T09:00:00+00:00 applying: apply sent: ok"]}

    (entry,) = HostRecord.model_validate(item).history

    assert entry == Transition(at="2026-01-05T09:00:00+00:00", state=HostState.APPLYING, note="apply sent: ok")


def test_an_event_is_keyed_by_what_it_is_not_by_when_it_was_seen() -> None:
    assert event_key(Mark.WAVE_STARTED, 3) == "wave-started#0003"
    assert event_key(Mark.HALT, 3) == event_key(Mark.HALT, 4) == "halt"  # at most once in a rollout
    paused = event_key(Mark.PAUSED, 1, instance="2026-01-05T09:00:00+00:00")
    assert paused.startswith("paused#0001#") and paused != event_key(Mark.PAUSED, 1, instance="later")
    assert len(RolloutEvent.of(Mark.ALARM, T0.isoformat(), 1, "y" * 5000).detail) == 300
