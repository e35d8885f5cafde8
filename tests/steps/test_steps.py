"""The rollout's steps (updraft.flow), called directly against the in-memory ports: their decisions and what
they record, in milliseconds per scenario. What touches the fleet (SSM, EC2, ECS) is tested on the simulated
fleet in tests/integration; these cover the logic that lives between the ledger, the lock and the controls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.steps.memory import Memory
from updraft import flow
from updraft.config import UpdraftConfig
from updraft.domain.eligibility import RECHECK_SECONDS
from updraft.domain.holds import CONTROL_RECHECK_SECONDS
from updraft.domain.host_record import Doc, HostRecord, HostState
from updraft.domain.lifecycle import Kind
from updraft.errors import AlarmNotFound, InvalidRolloutRequest, RollbackRefused
from updraft.flow import context
from updraft.settings import Settings

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
OLD, NEW = "1.26.0", "1.26.1"
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:rollout:r-1"
CONFIG = UpdraftConfig.model_validate(
    {
        "groups": [
            {"name": "web", "variant": "aws-ecs-2", "min_release_age_hours": 24},
            {"name": "prod", "variant": "aws-ecs-2", "follows": "web", "rollback_window_hours": 6},
            {
                "name": "gated",
                "variant": "aws-ecs-2",
                "alarms": {"names": ["service-errors"], "prefixes": ["web-"]},
                "bake_seconds": 600,
            },
            {
                "name": "nightly",
                "variant": "aws-ecs-2",
                "maintenance_window": {"schedule": "0 2 * * *", "duration_minutes": 120, "timezone": "UTC"},
            },
            {"name": "manual", "variant": "aws-ecs-2", "auto_rollout": False},
        ]
    }
)


@pytest.fixture
def memory() -> Memory:
    return Memory()


@pytest.fixture
def env(memory: Memory) -> Settings:
    documents = {doc: f"Updraft-{doc.name.title()}" for doc in Doc}
    return Settings(CONFIG, "ledger", "locks", documents, ports=memory.ports())


def started(env: Settings, group: str = "web", rollout_id: str = "r-1", **request) -> flow.Rollout:
    """A rollout whose lock was taken and whose record was written, as AcquireLock leaves it."""
    result = flow.acquire(env, {"group": group, "target_version": NEW, **request}, EXECUTION, rollout_id, T0)
    assert result["acquired"]
    return flow.Rollout(**result["rollout"])


def planned(memory: Memory, target: flow.Rollout, waves: list[list[str]], state=HostState.PENDING) -> None:
    """The plan's host records and the rollout's counts, as PlanWaves writes them."""
    records = [
        HostRecord(
            rollout_id=target.rollout_id,
            instance_id=instance,
            az="us-east-1a",
            wave=index,
            state=state,
            previous_version=OLD,
            target_version=target.target_version,
            updated_at=T0.isoformat(),
        )
        for index, wave in enumerate(waves)
        for instance in wave
    ]
    memory.ledger.put_planned(records)
    memory.ledger.update_rollout(
        target.rollout_id,
        status="rolling-out",
        wave_sizes=[len(wave) for wave in waves],
        planned_hosts=len(records),
    )


# -- the release policy ------------------------------------------------------------------------------------
def verified(env: Settings, released_at: datetime, version: str = NEW) -> None:
    """The detector's record of the release, as it writes it when the signed repository first offers it."""
    fields = {
        "manifest_digest": "a" * 64,
        "first_seen_at": released_at.isoformat(),
        "released_at": released_at.isoformat(),
    }
    context.ports(env).releases.record("aws-ecs-2", "x86_64", version, fields)


def announced(env: Settings, group: str, released_at: datetime, now: datetime, execution: str = EXECUTION) -> dict:
    request = {"group": group, "target_version": NEW, "released_at": released_at.isoformat()}
    return flow.check_release(env, request, execution, now)


def release(env: Settings, group: str, released_at: datetime, now: datetime, execution: str = EXECUTION) -> dict:
    verified(env, released_at)
    return announced(env, group, released_at, now, execution)


def test_a_release_waits_out_its_minimum_age_then_starts(env: Settings) -> None:
    early = release(env, "web", T0, T0 + timedelta(hours=2))
    assert (early["verdict"], early["wait_seconds"]) == ("wait", 22 * 3600)

    assert release(env, "web", T0, T0 + timedelta(hours=24))["verdict"] == "start"


def test_a_follower_waits_for_its_leader_and_takes_only_what_the_leader_finished(env: Settings, memory: Memory):
    waiting = release(env, "prod", T0, T0)
    assert (waiting["verdict"], waiting["wait_seconds"]) == ("wait", RECHECK_SECONDS)

    memory.ledger.record_group_outcome("web", NEW, "halted", "r-0", T0.isoformat())
    assert release(env, "prod", T0, T0)["verdict"] == "skip"
    memory.ledger.record_group_outcome("web", NEW, "succeeded", "r-0", T0.isoformat())
    assert release(env, "prod", T0, T0)["verdict"] == "start"


def test_one_automatic_rollout_per_group_and_version(env: Settings) -> None:
    assert release(env, "web", T0, T0 + timedelta(days=1), "arn:first")["verdict"] == "start"
    assert release(env, "web", T0, T0 + timedelta(days=1), "arn:first")["verdict"] == "start"  # its own retry
    duplicate = release(env, "web", T0, T0 + timedelta(days=1), "arn:second")
    assert duplicate["verdict"] == "duplicate"


def test_a_withdrawn_release_and_a_manual_group_start_nothing(env: Settings, memory: Memory) -> None:
    assert release(env, "manual", T0, T0)["verdict"] == "skip"
    memory.releases.mark_sent("aws-ecs-2", "x86_64", NEW, "withdrawn", T0)
    withdrawn = release(env, "web", T0, T0 + timedelta(days=1))
    assert (withdrawn["verdict"], withdrawn["reason"]) == ("skip", f"{NEW} was withdrawn")


def test_an_announcement_the_detector_never_recorded_is_forged_and_takes_no_claim(env: Settings, memory: Memory):
    forged = announced(env, "web", T0 - timedelta(days=30), T0)
    assert forged["verdict"] == flow.FORGED and "never verified" in forged["reason"]
    verified(env, T0)
    assert release(env, "web", T0, T0 + timedelta(days=1), "arn:real")["verdict"] == "start"  # the claim is free


def test_an_announcement_with_another_release_time_than_the_detectors_is_forged(env: Settings) -> None:
    verified(env, T0)
    backdated = announced(env, "web", T0 - timedelta(days=30), T0 + timedelta(hours=1))
    assert backdated["verdict"] == flow.FORGED and "by the detector's record" in backdated["reason"]


def test_a_record_without_the_detectors_fields_is_not_the_detectors(env: Settings, memory: Memory) -> None:
    memory.releases.record("aws-ecs-2", "x86_64", NEW, {"released_at": T0.isoformat()})
    forged = announced(env, "web", T0, T0 + timedelta(days=1))
    assert forged["verdict"] == flow.FORGED and "lacks manifest_digest, first_seen_at" in forged["reason"]


def test_only_a_withdrawal_the_detector_claimed_flags_running_rollouts(env: Settings, memory: Memory) -> None:
    flow.acquire(env, {"group": "web", "target_version": NEW}, EXECUTION, "r-1", T0)
    assert "never verified" in flow.withdraw(env, "aws-ecs-2", "x86_64", NEW, T0)["forged"]
    verified(env, T0)
    assert "has not withdrawn" in flow.withdraw(env, "aws-ecs-2", "x86_64", NEW, T0)["forged"]
    assert "withdrawn" not in memory.ledger.rollout("r-1")
    assert memory.releases.claim("aws-ecs-2", "x86_64", NEW, "withdrawn", T0)
    assert flow.withdraw(env, "aws-ecs-2", "x86_64", NEW, T0) == {"halting": ["r-1"]}
    assert memory.ledger.rollout("r-1")["withdrawn"] is True


@pytest.mark.parametrize(
    ("request_body", "named"),
    [
        ({"group": "web"}, "target_version"),
        ({"group": "nope", "target_version": NEW}, "group: 'nope' is not configured"),
        ({"group": "web", "target_version": "latest"}, "target_version"),
        ([], "input"),
    ],
)
def test_an_invalid_request_is_refused_naming_the_field_and_takes_no_lock(
    env: Settings, memory: Memory, request_body, named
):
    with pytest.raises(InvalidRolloutRequest, match=named):
        flow.acquire(env, request_body, EXECUTION, "r-1", T0)

    assert memory.locks.held() == []


# -- the lock and the rollout's record ---------------------------------------------------------------------
def test_the_lock_goes_to_one_rollout_and_its_record_keeps_the_policy(env: Settings, memory: Memory) -> None:
    memory.running.add(EXECUTION)
    target = started(env, requested_by="alice")

    second = flow.acquire(env, {"group": "web", "target_version": NEW}, "arn:second", "r-2", T0)

    assert (second["acquired"], second["holder"]) == (False, EXECUTION)
    meta = memory.ledger.rollout(target.rollout_id)
    assert (meta["status"], meta["requested_by"], meta["execution_id"]) == ("planning", "alice", EXECUTION)
    assert CONFIG.group("web").model_validate_json(meta["policy"]) == CONFIG.group("web")
    again = flow.acquire(env, {"group": "web", "target_version": NEW}, EXECUTION, "r-1", T0)  # a retry
    assert again["acquired"]


# -- before a wave: abort, kill switches, pause, alarms, window --------------------------------------------
def test_a_kill_switch_holds_the_wave_and_says_who_engaged_it(env: Settings, memory: Memory) -> None:
    target = started(env)
    planned(memory, target, [["i-1"]])
    memory.controls.engage("web", "bad deploy in flight", "oncall", T0.isoformat())

    held = flow.apply_wave(env, target, 0, T0)

    assert held["progress"]["verdict"] == "wait"
    assert held["progress"]["wait_seconds"] == CONTROL_RECHECK_SECONDS
    meta = memory.ledger.rollout(target.rollout_id)
    assert (meta["status"], meta["waiting_reason"]) == (
        "waiting",
        "group kill switch engaged by oncall: bad deploy in flight",
    )
    memory.controls.engage(None, "change freeze", "cab", T0.isoformat())
    assert (
        flow.apply_wave(env, target, 0, T0)["progress"]["reason"] == "global kill switch engaged by cab: change freeze"
    )
    assert memory.ledger.wave_hosts(target.rollout_id, 0)[0].state is HostState.PENDING  # nothing was sent


def test_a_pause_holds_the_next_wave_and_is_told_once_each_way(env: Settings, memory: Memory) -> None:
    target = started(env)
    planned(memory, target, [["i-1"], ["i-2"]])
    memory.controls.pause(target.rollout_id, "watch the canary", "alice", T0.isoformat())

    for _ in range(2):
        assert flow.apply_wave(env, target, 1, T0)["progress"]["reason"] == "paused by alice: watch the canary"
    memory.controls.resume(target.rollout_id, "alice", T0.isoformat())
    memory.controls.engage("web", "hold on", "bob", T0.isoformat())  # still held, by something else now
    flow.apply_wave(env, target, 1, T0)

    assert memory.events.kinds() == [Kind.ROLLOUT_PAUSED, Kind.ROLLOUT_RESUMED]


def test_an_abort_request_stops_the_next_wave_and_skips_what_was_not_started(env: Settings, memory: Memory) -> None:
    target = started(env)
    planned(memory, target, [["i-1"], ["i-2", "i-3"]])
    memory.controls.abort(target.rollout_id, "wrong version", "bob", T0.isoformat())

    assert flow.apply_wave(env, target, 1, T0)["progress"]["verdict"] == "abort"
    done = flow.abort(env, target, 1, T0)

    assert done["progress"] == {"done": True, "skipped": 3}
    notes = {h.instance_id: (h.state, h.note) for h in memory.ledger.all_hosts(target.rollout_id)}
    assert notes["i-2"] == (HostState.SKIPPED, "not started: aborted by bob: wrong version")
    assert memory.ledger.rollout(target.rollout_id)["status"] == "aborting"


def test_a_gate_watching_alarms_that_do_not_exist_fails_before_the_canary(env: Settings, memory: Memory) -> None:
    target = started(env, group="gated")
    planned(memory, target, [["i-1"]])
    memory.alarms.states["service-errors"] = "OK"

    with pytest.raises(AlarmNotFound, match="web-\\*"):
        flow.apply_wave(env, target, 0, T0)


def test_a_wave_waits_for_the_maintenance_window_it_can_finish_in(env: Settings, memory: Memory) -> None:
    target = started(env, group="nightly")
    planned(memory, target, [["i-1"]])

    held = flow.apply_wave(env, target, 0, T0)  # 09:00: the window opens at 02:00 tomorrow

    assert held["progress"]["verdict"] == "wait"
    assert held["progress"]["wait_seconds"] == 17 * 3600
    assert "outside the maintenance window: next wave at 2026-01-06T02:00:00+00:00" in held["progress"]["reason"]


# -- the bake ----------------------------------------------------------------------------------------------
def baking(env: Settings, memory: Memory) -> flow.Rollout:
    target = started(env, group="gated")
    planned(memory, target, [["i-1"], ["i-2"]], state=HostState.UPDATED)
    until = T0 + timedelta(seconds=600)
    memory.ledger.update_rollout(
        target.rollout_id,
        status="baking",
        bake={"wave": 0, "until": until.isoformat(), "then": "continue"},
        wave_results='{"0": {"failures": 0, "verdict": "baking", "reason": ""}}',
        wave_started_at=T0.isoformat(),
    )
    memory.alarms.states.update({"service-errors": "OK", "web-latency": "OK"})
    return target


def test_a_bake_watches_its_alarms_until_it_is_over(env: Settings, memory: Memory) -> None:
    target = baking(env, memory)

    still = flow.bake(env, target, 0, T0 + timedelta(seconds=60))
    over = flow.bake(env, target, 0, T0 + timedelta(seconds=600))

    assert (still["progress"]["verdict"], still["progress"]["next_poll_seconds"]) == ("bake", 60)
    assert over["progress"]["verdict"] == "continue"
    assert over["progress"]["reason"] == "wave 0 baked 600 s with its alarms OK"
    assert memory.ledger.rollout(target.rollout_id)["status"] == "rolling-out"


@pytest.mark.parametrize("alarm", ["service-errors", "web-latency"])
def test_an_alarm_during_the_bake_halts_the_rollout(env: Settings, memory: Memory, alarm: str) -> None:
    target = baking(env, memory)
    memory.alarms.states[alarm] = "ALARM"

    halted = flow.bake(env, target, 0, T0 + timedelta(seconds=120))

    assert halted["progress"]["verdict"] == "halt"
    meta = memory.ledger.rollout(target.rollout_id)
    assert (meta["status"], meta["halt_reason"]) == ("halting", f"alarm {alarm} went to ALARM while wave 0 baked")
    assert memory.events.kinds()[-1] == Kind.WAVE_FINISHED


# -- the end -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "outcome", "event"),
    [
        ("rolling-out", "succeeded", Kind.ROLLOUT_SUCCEEDED),
        ("halted-rolling-back", "halted", Kind.ROLLOUT_HALTED),
        ("aborting", "aborted", Kind.ROLLOUT_ABORTED),
        ("nothing-to-do", "nothing-to-do", Kind.ROLLOUT_SUCCEEDED),
    ],
)
def test_finish_records_the_outcome_once_and_tells_it(env: Settings, memory: Memory, status, outcome, event) -> None:
    target = started(env)
    planned(memory, target, [["i-1"]], state=HostState.UPDATED)
    memory.ledger.update_rollout(target.rollout_id, status=status)

    first = flow.finish(env, target, T0, None)
    again = flow.finish(env, target, T0 + timedelta(minutes=1), None)  # a replay, or the end settled first

    assert first["outcome"] == again["outcome"] == outcome
    assert first["summary"] == again["summary"] == {"updated": 1, "skipped_at_plan": 0}
    assert memory.ledger.group_outcome("web", NEW) == outcome
    assert [d.kind for d in memory.events.published if d.kind == event] == [event]


def test_a_failed_step_leaves_every_host_recorded(env: Settings, memory: Memory) -> None:
    target = started(env)
    planned(memory, target, [["i-1"], ["i-2"]])
    (first, _) = memory.ledger.all_hosts(target.rollout_id)
    memory.ledger.put_hosts([first.move(HostState.REBOOTING, "rebooting", T0)])

    ended = flow.finish(env, target, T0, {"Error": "Lambda.ServiceException", "Cause": "boom"})

    assert ended["outcome"] == "failed"
    states = {h.instance_id: (h.state, h.note) for h in memory.ledger.all_hosts(target.rollout_id)}
    assert states["i-1"][0] is HostState.NEEDS_ATTENTION and "while the host was rebooting" in states["i-1"][1]
    assert states["i-2"] == (HostState.SKIPPED, "not started: the rollout failed (Lambda.ServiceException: boom)")
    assert memory.ledger.rollout(target.rollout_id)["error"] == "Lambda.ServiceException: boom"


def test_a_stopped_execution_is_settled_its_hosts_closed_and_its_lock_released(env: Settings, memory: Memory) -> None:
    target = started(env)
    planned(memory, target, [["i-1"], ["i-2"]])

    settled = flow.settle(env, target, EXECUTION, "ABORTED", T0)
    again = flow.settle(env, target, EXECUTION, "ABORTED", T0)  # EventBridge delivers at least once

    assert (settled["already_recorded"], settled["lock_released"]) == (False, True)
    assert (again["already_recorded"], again["lock_released"]) == (True, False)
    assert memory.ledger.rollout(target.rollout_id)["status"] == "aborted"
    assert {h.state for h in memory.ledger.all_hosts(target.rollout_id)} == {HostState.SKIPPED}
    (host, _) = memory.ledger.all_hosts(target.rollout_id)
    assert memory.ledger.put_hosts([host.move(HostState.APPLYING, "a step still running", T0)]) == []
    assert [d.kind for d in memory.events.published if d.kind == Kind.ROLLOUT_ABORTED] == [Kind.ROLLOUT_ABORTED]


# -- rolling a finished rollout back -----------------------------------------------------------------------
def finished(env: Settings, memory: Memory, group: str = "prod", status: str = "succeeded") -> flow.Rollout:
    target = started(env, group=group, rollout_id="done")
    planned(memory, target, [["i-1", "i-2"]], state=HostState.UPDATED)
    memory.ledger.update_rollout(target.rollout_id, status=status)
    flow.finish(env, target, T0, None)
    flow.settle(env, target, EXECUTION, "SUCCEEDED", T0)  # release the lock (and change nothing else)
    return target


def test_a_rollback_inside_the_window_takes_the_hosts_back_without_the_gates(env: Settings, memory: Memory) -> None:
    done = finished(env, memory)

    undo = flow.acquire(env, {"group": "prod", "rollback_of": "done"}, "arn:undo", "undo", T0 + timedelta(hours=5))

    assert undo["acquired"] and undo["rollout"]["target_version"] == OLD
    assert memory.ledger.rollout(done.rollout_id)["rolled_back_by"] == "undo"
    again = {"group": "prod", "rollback_of": "done"}
    with pytest.raises(RollbackRefused, match="already rolled back by undo"):
        flow.acquire(env, again, "arn:again", "again", T0 + timedelta(hours=5))


@pytest.mark.parametrize(
    ("request_body", "when", "refusal"),
    [
        ({"group": "prod", "rollback_of": "nope"}, 1, "no rollout 'nope'"),
        ({"group": "web", "rollback_of": "done"}, 1, "rolled out group prod, not web"),
        ({"group": "prod", "rollback_of": "done"}, 7, "the rollback window of done closed"),
    ],
)
def test_a_rollback_that_may_not_happen_is_refused_and_named(
    env: Settings, memory: Memory, request_body, when, refusal
):
    finished(env, memory)

    with pytest.raises(RollbackRefused, match=refusal):
        flow.acquire(env, request_body, "arn:undo", "undo", T0 + timedelta(hours=when))
    assert memory.locks.held() == []


def test_a_withdrawn_release_flags_the_rollouts_running_it(env: Settings, memory: Memory) -> None:
    target = started(env)
    other = started(env, group="gated", rollout_id="r-2", target_version="1.27.0")
    verified(env, T0)
    memory.releases.claim("aws-ecs-2", "x86_64", NEW, "withdrawn", T0)

    flagged = flow.withdraw(env, "aws-ecs-2", "x86_64", NEW, T0)

    assert flagged == {"halting": [target.rollout_id]}
    assert memory.ledger.rollout(target.rollout_id)["withdrawn"] is True
    assert "withdrawn" not in memory.ledger.rollout(other.rollout_id)
