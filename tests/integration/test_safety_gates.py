"""Production safety gates on the simulated fleet: alarms through a bake time, maintenance windows, kill
switches, pause / resume, abort, and rolling a finished rollout back. Operators and monitoring act at exact
points of a rollout through `world.after_step`, so every scenario is deterministic."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from sim.world import World
from stacks import synthesize
from tests.integration.conftest import assert_all_final, assert_calls_granted, once, states, waves_of
from updraft.adapters.control import Controls
from updraft.config import UpdraftConfig

pytestmark = pytest.mark.integration

OLD, NEW = "1.26.0", "1.26.1"
ALARM = "checkout-5xx"
QUICK = {"apply_timeout_seconds": 600, "verify_timeout_seconds": 300}
CONFIG = UpdraftConfig.model_validate(
    {
        "groups": [
            {
                "name": "gated",
                "variant": "aws-ecs-2",
                "alarms": {"names": [ALARM]},
                "bake_seconds": 900,
                "rollback_scope": "wave",
                "error_budget": {"canary": "0", "per_wave": "1", "total": "50%"},
                "rollback_window_hours": 6,
            },
            {"name": "prefixed", "variant": "aws-ecs-2", "alarms": {"prefixes": ["payments-"]}},
            {
                "name": "windowed",
                "variant": "aws-ecs-2",
                "max_wave_size": 1,
                **QUICK,
                # 02:00-02:25 UTC daily; a wave may take 15 min, so none starts after 02:10.
                "maintenance_window": {"schedule": "0 2 * * *", "duration_minutes": 25, "timezone": "UTC"},
            },
            {"name": "plain", "variant": "aws-ecs-2", "max_wave_size": 1},
        ]
    }
)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return synthesize(CONFIG)


def waves(world: World, ids: list[str], group: str) -> list[list[str]]:
    return waves_of(world, ids, group, CONFIG)


def applied_at(record: dict[str, Any]) -> datetime:
    """When the rollout sent the host its apply (from the host's recorded history)."""
    (stamp,) = [entry["at"] for entry in record["history"] if entry["state"] == "applying"]
    return datetime.fromisoformat(stamp)


def controls(world: World) -> Controls:
    return Controls(world.outputs["LedgerTableName"])


def verdict_of(result: dict[str, Any]) -> str | None:
    return result.get("progress", {}).get("verdict")


# -- alarms and bake ------------------------------------------------------------------------------------
def test_an_alarm_firing_mid_bake_fails_the_wave_and_rolls_the_wave_back(world):
    ids = world.launch("gated", 6)
    planned = waves(world, ids, "gated")  # [1], [2], [3]
    world.alarm(ALARM)
    world.after_step(
        "check_hosts",
        once(lambda i, r: i["wave"] == 1 and verdict_of(r) == "bake", lambda i, r: world.set_alarm(ALARM, "ALARM")),
    )

    execution = world.rollout("gated", NEW)

    assert (execution.status, execution.error) == ("FAILED", "Updraft.RolloutHalted")
    records = world.host_records(execution.name)
    assert_all_final(records)
    assert {states(records)[i] for i in planned[0]} == {"updated"}  # the canary baked clean
    assert {states(records)[i] for i in planned[1]} == {"rolled-back"}  # the wave the alarm failed
    assert {states(records)[i] for i in planned[2]} == {"skipped"}
    assert all(world.versions()[i] == OLD for i in planned[1] + planned[2])
    meta = world.rollout_record(execution.name)
    results = json.loads(meta["wave_results"])
    assert results["0"]["verdict"] == "continue"
    assert results["1"]["verdict"] == "halt" and ALARM in results["1"]["reason"]
    assert meta["halt_reason"] == f"alarm {ALARM} went to ALARM while wave 1 baked"
    assert world.lock_holder("gated") is None


def test_an_alarm_that_fires_during_a_wave_fails_it_even_if_it_clears_before_the_wave_ends(world):
    ids = world.launch("gated", 3)
    planned = waves(world, ids, "gated")  # [1], [2]
    world.alarm(ALARM)
    world.after_step("apply_wave", once(lambda i, r: i["wave"] == 1, lambda i, r: world.set_alarm(ALARM, "ALARM")))
    world.after_step("check_hosts", once(lambda i, r: i["wave"] == 1, lambda i, r: world.set_alarm(ALARM, "OK")))

    execution = world.rollout("gated", NEW)

    assert execution.error == "Updraft.RolloutHalted"
    results = json.loads(world.rollout_record(execution.name)["wave_results"])
    assert results["1"]["reason"] == f"alarm {ALARM} went to ALARM during wave 1"
    assert {states(world.host_records(execution.name))[i] for i in planned[1]} == {"rolled-back"}


def test_waves_wait_the_bake_time_after_each_wave(world):
    ids = world.launch("gated", 3)
    planned = waves(world, ids, "gated")
    world.alarm(ALARM)

    execution = world.rollout("gated", NEW)

    assert execution.status == "SUCCEEDED"
    records = world.host_records(execution.name)
    canary_done = datetime.fromisoformat(records[planned[0][0]]["updated_at"])
    assert min(applied_at(records[i]) for i in planned[1]) >= canary_done + timedelta(seconds=900)
    assert json.loads(world.rollout_record(execution.name)["wave_results"])["1"]["verdict"] == "complete"


def test_a_gate_watching_an_alarm_that_does_not_exist_fails_before_touching_a_host(world):
    ids = world.launch("prefixed", 2)  # no alarm named payments-* exists

    execution = world.rollout("prefixed", NEW)

    assert execution.error == "Updraft.RolloutFailed"
    meta = world.rollout_record(execution.name)
    assert meta["error"].startswith("AlarmNotFound") and "payments-*" in meta["error"]
    assert set(states(world.host_records(execution.name)).values()) == {"skipped"}
    assert all(world.versions()[i] == OLD for i in ids)


def test_a_prefix_gate_watches_every_alarm_under_it(world):
    ids = world.launch("prefixed", 3)
    world.alarm("payments-latency")
    world.alarm("payments-errors")
    world.after_step(
        "apply_wave", once(lambda i, r: i["wave"] == 0, lambda i, r: world.set_alarm("payments-errors", "ALARM"))
    )

    execution = world.rollout("prefixed", NEW)

    assert execution.error == "Updraft.RolloutHalted"
    results = json.loads(world.rollout_record(execution.name)["wave_results"])
    assert results["0"]["reason"] == "alarm payments-errors went to ALARM during wave 0"
    assert {world.versions()[i] for i in ids} == {OLD}


# -- maintenance windows --------------------------------------------------------------------------------
def test_waves_start_only_inside_the_window_and_never_too_late_to_finish_in_it(world):
    ids = world.launch("windowed", 6)  # six waves of one host, a few minutes each

    execution = world.rollout("windowed", NEW)

    assert execution.status == "SUCCEEDED"
    records = world.host_records(execution.name)
    starts = sorted(applied_at(records[i]) for i in ids)
    budget = timedelta(seconds=CONFIG.group("windowed").wave_budget_seconds)
    for start in starts:
        opened = start.replace(hour=2, minute=0, second=0, microsecond=0)
        assert opened <= start and start + budget <= opened + timedelta(minutes=25), start
    days = sorted({start.date() for start in starts})
    assert len(days) >= 2, starts  # the window closed between two waves: the rest went the next night
    assert starts[0].date() > world.clock.at(0).date()  # the simulation starts at 09:00: first wave at 02:00


# -- kill switch, pause, resume, abort -----------------------------------------------------------------
def test_a_global_kill_switch_holds_every_wave_until_released(world):
    ids = world.launch("plain", 3)
    switch = controls(world)
    switch.engage(None, "incident 42", "oncall", world.clock.now().isoformat())
    waits: list[datetime] = []

    def count_waits(step_input: dict[str, Any], result: dict[str, Any]) -> None:
        if verdict_of(result) == "wait":
            waits.append(datetime.fromisoformat(step_input["now"]))
            if len(waits) == 3:
                switch.release(None)

    world.after_step("apply_wave", count_waits)
    execution = world.rollout("plain", NEW)

    assert execution.status == "SUCCEEDED"
    records = world.host_records(execution.name)
    assert min(applied_at(r) for r in records.values()) > waits[-1]  # nothing touched while engaged
    assert waits[-1] - waits[0] == timedelta(seconds=120)
    assert {world.versions()[i] for i in ids} == {NEW}


def test_a_group_kill_switch_holds_only_its_group(world):
    world.launch("plain", 2)
    world.launch("gated", 1)
    world.alarm(ALARM)
    controls(world).engage("gated", "bad deploy in flight", "oncall", world.clock.now().isoformat())
    held = world.start({"group": "gated", "target_version": NEW})

    assert world.rollout("plain", NEW).status == "SUCCEEDED"
    meta = world.rollout_record(held.rsplit(":", 1)[-1])
    assert meta["status"] == "waiting"
    assert meta["waiting_reason"] == "group kill switch engaged by oncall: bad deploy in flight"
    controls(world).release("gated")
    assert world.wait(held).status == "SUCCEEDED"


def test_pause_holds_the_next_wave_and_resume_lets_it_start(world):
    ids = world.launch("plain", 3)
    planned = waves(world, ids, "plain")
    rollout: dict[str, str] = {}
    pause_points: list[datetime] = []

    def pause(step_input: dict[str, Any], result: dict[str, Any]) -> None:
        rollout["id"] = step_input["rollout"]["rollout_id"]
        controls(world).pause(rollout["id"], "watch the canary", "alice", step_input["now"])

    def resume_after_two_looks(step_input: dict[str, Any], result: dict[str, Any]) -> None:
        if verdict_of(result) == "wait":
            pause_points.append(datetime.fromisoformat(step_input["now"]))
            if len(pause_points) == 2:
                controls(world).resume(rollout["id"], "alice", step_input["now"])

    world.after_step("check_hosts", once(lambda i, r: r["progress"].get("verdict") == "continue", pause))
    world.after_step("apply_wave", resume_after_two_looks)
    execution = world.rollout("plain", NEW)

    assert execution.status == "SUCCEEDED"
    records = world.host_records(execution.name)
    assert applied_at(records[planned[1][0]]) > pause_points[-1]
    meta = world.rollout_record(execution.name)
    assert meta["pause"]["by"] == "alice" and meta["paused"] is False


def test_abort_mid_wave_lets_the_wave_finish_then_starts_no_more(world):
    ids = world.launch("plain", 4)
    planned = waves(world, ids, "plain")  # four waves of one

    def abort(step_input: dict[str, Any], result: dict[str, Any]) -> None:
        rollout_id = step_input["rollout"]["rollout_id"]
        controls(world).abort(rollout_id, "wrong version", "bob", step_input["now"])

    world.after_step("apply_wave", once(lambda i, r: i["wave"] == 1, abort))
    execution = world.rollout("plain", NEW)

    assert execution.status == "SUCCEEDED" and execution.output["outcome"] == "aborted"
    records = world.host_records(execution.name)
    assert_all_final(records)
    assert [states(records)[w[0]] for w in planned] == ["updated", "updated", "skipped", "skipped"]
    assert records[planned[2][0]]["note"] == "not started: aborted by bob: wrong version"
    assert world.rollout_record(execution.name)["status"] == "aborted"
    assert world.lock_holder("plain") is None


# -- rollback window ------------------------------------------------------------------------------------
def test_an_operator_rolls_a_finished_rollout_back_inside_its_window(world):
    ids = world.launch("gated", 3)
    world.alarm(ALARM)
    done = world.rollout("gated", NEW)
    assert done.status == "SUCCEEDED"

    undo = world.rollout("gated", None, rollback_of=done.name, requested_by="alice")

    assert undo.status == "SUCCEEDED"
    assert {world.versions()[i] for i in ids} == {OLD}
    records = world.host_records(undo.name)
    assert {(r["target_version"], r["state"]) for r in records.values()} == {(OLD, "updated")}
    assert world.rollout_record(done.name)["rolled_back_by"] == undo.name
    again = world.rollout("gated", None, rollback_of=done.name)
    assert again.error == "Updraft.RollbackRefused"  # once is enough


def test_an_alarm_inside_the_window_rolls_the_finished_rollout_back(world, template):
    ids = world.launch("gated", 3)
    world.alarm(ALARM)
    done = world.rollout("gated", NEW)
    world.clock.advance(2 * 3600)

    world.set_alarm(ALARM, "ALARM", "5xx spike")  # CloudWatch's event reaches the rule's function
    executions = world.wait_all()

    (undo,) = [e for e in executions if e.name == f"rollback-{done.name}"]
    assert undo.status == "SUCCEEDED", (undo, world.rollout_record(undo.name))
    assert world.rollout_record(undo.name)["requested_by"] == f"alarm {ALARM}"
    assert {world.versions()[i] for i in ids} == {OLD}
    assert any("OnAlarm" in function for function in world.calls_by_function)  # the rule's function did it
    assert_calls_granted(world, template)


def test_an_alarm_event_cloudwatch_does_not_confirm_rolls_nothing_back(world):
    ids = world.launch("gated", 2)
    world.alarm(ALARM)
    done = world.rollout("gated", NEW)
    world.clock.advance(2 * 3600)

    world.redeliver_alarm_change(ALARM, "ALARM")  # the alarm itself is OK: a late or replayed event
    executions = world.wait_all()

    assert [e.name for e in executions if e.name.startswith("rollback-")] == []
    assert world.rollout_record(done.name)["status"] == "succeeded"
    assert {world.versions()[i] for i in ids} == {NEW}
