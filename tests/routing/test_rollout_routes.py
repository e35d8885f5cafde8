"""Every route through the rollout state machine, with canned step results: which states run, in which order,
what each step is handed, how errors are retried or caught, and how the execution ends."""

from __future__ import annotations

import itertools

import pytest

from tests.routing.machine import ROLLOUT, Machine, Raise, Refuse, Script, acquired, finished, progress

pytestmark = pytest.mark.routing

REQUEST = {"group": "web", "target_version": "1.26.1"}
PLANNED = ("AcquireLock", "IsLockAcquired", "StartInventory", "WaitForInventory", "PlanWaves", "IsPlanReady")
ENDING = ("Finish", "ReleaseLock", "Outcome")


def planned(waves: int) -> Script:
    """A rollout that takes the lock and plans `waves` waves at once."""
    return (
        Script()
        .on("acquire_lock", acquired())
        .on("start_inventory", progress(done=False))
        .on("plan_waves", progress(0, done=True, wave_count=waves))
    )


def test_a_rollout_runs_each_wave_then_finishes_and_releases_its_lock(machine: Machine) -> None:
    script = planned(2).on("apply_wave", progress(0, verdict="go", done=False), progress(1, verdict="go", done=False))
    script.on(
        "check_hosts",
        progress(0, done=False),
        progress(0, done=True, verdict="continue"),
        progress(1, done=True, verdict="complete"),
    )
    script.on("finish", finished("succeeded"))

    run = machine.run(REQUEST, script)

    assert run.status == "SUCCEEDED"
    wave = ("ApplyWave", "IsWaveStarted", "WaitForHosts", "CheckHosts", "IsWaveDone")
    assert run.states == [
        "IsReleaseEvent",
        *PLANNED,
        *wave,
        "WaitForHosts",
        "CheckHosts",
        "IsWaveDone",
        "NextWave",
        *wave,
        *ENDING,
        "Succeeded",
    ]
    assert [p["wave"] for p in script.payloads("apply_wave")] == [0, 1]  # NextWave adds one
    assert [p["scope"] for p in script.payloads("check_hosts")] == ["wave"] * 3
    assert script.payloads("acquire_lock")[0]["request"] == REQUEST
    assert script.payloads("finish")[0]["rollout"] == ROLLOUT


def test_the_waits_last_what_the_steps_ask_for(machine: Machine) -> None:
    script = planned(1).on(
        "apply_wave", {"rollout": ROLLOUT, "wave": 0, "progress": {"verdict": "go", "next_poll_seconds": 90}}
    )
    script.on("check_hosts", {"rollout": ROLLOUT, "wave": 0, "progress": {"done": True, "verdict": "complete"}})
    script.on("finish", finished("succeeded"))

    machine.run(REQUEST, script)

    at = {call.step: call.at for call in reversed(script.calls)}  # each step's first call
    assert at["plan_waves"] - at["start_inventory"] == 30  # WaitForInventory: the inventory's next_poll_seconds
    assert at["check_hosts"] - at["apply_wave"] == 90  # WaitForHosts: the apply's next_poll_seconds


def test_a_plan_with_no_wave_goes_straight_to_finish(machine: Machine) -> None:
    script = planned(0).on("finish", finished("nothing-to-do"))

    run = machine.run(REQUEST, script)

    assert run.status == "SUCCEEDED"
    assert run.states == ["IsReleaseEvent", *PLANNED, *ENDING, "Succeeded"]


def test_a_lock_held_by_another_rollout_ends_at_once(machine: Machine) -> None:
    run = machine.run(REQUEST, Script().on("acquire_lock", acquired(False)))

    assert (run.status, run.states[-1]) == ("SUCCEEDED", "AlreadyRunning")
    assert run.output["acquired"] is False


@pytest.mark.parametrize(
    ("raised", "state", "error"),
    [
        ("InvalidRolloutRequest", "Rejected", "Updraft.InvalidRolloutRequest"),
        ("RollbackRefused", "RollbackRefused", "Updraft.RollbackRefused"),
        ("ClientError", "LockFailed", "Updraft.LockFailed"),
    ],
)
def test_a_refused_start_fails_with_its_named_error(machine: Machine, raised: str, state: str, error: str) -> None:
    run = machine.run(REQUEST, Script().on("acquire_lock", Raise(raised)))

    assert (run.status, run.error, run.states[-1]) == ("FAILED", error, state)
    assert "StartInventory" not in run.states


def test_an_input_that_is_not_an_object_is_handed_to_the_lock_step_and_rejected(machine: Machine) -> None:
    run = machine.run("[]", Script().on("acquire_lock", Raise("InvalidRolloutRequest")))

    assert (run.status, run.error) == ("FAILED", "Updraft.InvalidRolloutRequest")
    assert run.states == ["IsReleaseEvent", "AcquireLock", "Rejected"]
    assert machine.script.payloads("acquire_lock")[0]["request"] == []


def test_a_release_event_waits_for_its_policy_then_starts_with_the_original_request(machine: Machine) -> None:
    event = {**REQUEST, "released_at": "2026-01-05T09:00:00+00:00"}
    script = Script().on(
        "check_release",
        {"request": event, "verdict": "wait", "wait_seconds": 3600},
        {"request": event, "verdict": "start"},
    )
    script.on("acquire_lock", acquired(False))

    run = machine.run(event, script)

    assert run.states[:9] == [
        "IsReleaseEvent",
        "NestRequest",
        "CheckRelease",
        "ReleaseVerdict",
        "WaitForEligibility",
        "CheckRelease",
        "ReleaseVerdict",
        "UnnestRequest",
        "AcquireLock",
    ]
    checks = [call.at for call in script.calls if call.step == "check_release"]
    assert checks[1] - checks[0] == 3600
    assert script.payloads("check_release")[0]["request"] == event
    assert script.payloads("acquire_lock")[0]["request"] == event  # UnnestRequest unnests the request


@pytest.mark.parametrize("verdict", ["skip", "duplicate"])
def test_a_release_the_policy_turns_down_starts_nothing(machine: Machine, verdict: str) -> None:
    event = {**REQUEST, "released_at": "2026-01-05T09:00:00+00:00"}

    run = machine.run(event, Script().on("check_release", {"request": event, "verdict": verdict}))

    assert (run.status, run.states[-1]) == ("SUCCEEDED", "NotStarted")
    assert "AcquireLock" not in run.states


@pytest.mark.parametrize(
    ("raised", "error"),
    [("InvalidRolloutRequest", "Updraft.InvalidRolloutRequest"), ("KeyError", "Updraft.ReleaseCheckFailed")],
)
def test_a_release_check_that_fails_is_named(machine: Machine, raised: str, error: str) -> None:
    event = {**REQUEST, "released_at": "2026-01-05T09:00:00+00:00"}

    run = machine.run(event, Script().on("check_release", Raise(raised)))

    assert (run.status, run.error) == ("FAILED", error)


@pytest.mark.parametrize(
    "error",
    [
        Refuse("ServiceException"),
        Refuse("TooManyRequestsException"),
        Raise("IdempotencyAlreadyInProgressError"),
        Raise("CommandThrottled"),
    ],
)
def test_transient_errors_are_retried_with_backoff(machine: Machine, error: Refuse | Raise) -> None:
    script = planned(1).on("apply_wave", progress(0, verdict="go"))
    script.on("check_hosts", error, error, progress(0, done=True, verdict="complete"))
    script.on("finish", finished("succeeded"))

    run = machine.run(REQUEST, script)

    assert run.status == "SUCCEEDED"
    attempts = [call.at for call in script.calls if call.step == "check_hosts"]
    assert [b - a for a, b in itertools.pairwise(attempts)] == [5, 10]  # 5 s, then twice as long
    assert run.states.count("CheckHosts") == 1  # retried within the state
    failed = [e["taskFailedEventDetails"] for e in run.history if e["type"] == "TaskFailed"]
    assert [f["resourceType"] for f in failed if f["resourceType"] == "lambda"] == ["lambda", "lambda"]


def test_errors_past_the_retries_are_recorded_and_fail_the_rollout(machine: Machine) -> None:
    script = planned(1).on("apply_wave", progress(0, verdict="go"))
    script.on("check_hosts", Refuse("ServiceException"))  # every attempt
    script.on("finish", finished("failed"))

    run = machine.run(REQUEST, script)

    assert (run.status, run.error) == ("FAILED", "Updraft.RolloutFailed")
    assert len([call for call in script.calls if call.step == "check_hosts"]) == 5  # the first try and 4 retries
    assert run.states[-5:] == ["CheckHosts", "FinishAsFailed", "ReleaseLock", "Outcome", "Failed"]
    (recorded,) = script.payloads("finish")
    assert recorded["rollout"] == ROLLOUT
    assert recorded["error"]["Error"] == "Lambda.ServiceException"


@pytest.mark.parametrize("step", ["start_inventory", "plan_waves", "apply_wave", "check_hosts", "finish"])
def test_a_step_that_fails_is_recorded_by_finish(machine: Machine, step: str) -> None:
    script = planned(1).on("apply_wave", progress(0, verdict="go"))
    script.on("check_hosts", progress(0, done=True, verdict="complete"))
    script.on("finish", lambda payload: finished("failed" if "error" in payload else "succeeded"))
    if step == "finish":  # Finish failed: FinishAsFailed, the same function, is then called with the error
        script.answers[step].insert(0, Raise("ValidationError"))
    else:
        script.answers[step] = [Raise("ValidationError")]

    run = machine.run(REQUEST, script)

    assert (run.status, run.error) == ("FAILED", "Updraft.RolloutFailed")
    assert "FinishAsFailed" in run.states
    assert script.payloads("finish")[-1]["error"]["Error"] == "ValidationError"


def test_when_recording_the_failure_fails_too_the_rollout_still_ends_failed(machine: Machine) -> None:
    script = planned(1).on("apply_wave", Raise("ValidationError"))
    script.on("finish", Raise("ClientError"))

    run = machine.run(REQUEST, script)

    assert (run.status, run.error) == ("FAILED", "Updraft.RolloutFailed")
    assert run.states[-6:] == ["ApplyWave", "FinishAsFailed", "MarkFailed", "ReleaseLock", "Outcome", "Failed"]


def test_a_halt_rolls_back_until_done_and_ends_halted(machine: Machine) -> None:
    script = planned(3).on("apply_wave", progress(0, verdict="go"))
    script.on("check_hosts", progress(0, done=True, verdict="halt"), progress(0, done=False), progress(0, done=True))
    script.on("halt", progress(0, done=False))
    script.on("finish", finished("halted"))

    run = machine.run(REQUEST, script)

    assert (run.status, run.error) == ("FAILED", "Updraft.RolloutHalted")
    assert run.states[-12:] == [
        "IsWaveDone",
        "Halt",
        "WaitForRollback",
        "CheckRollback",
        "IsRollbackDone",
        "WaitForRollback",
        "CheckRollback",
        "IsRollbackDone",
        *ENDING,
        "Halted",
    ]
    assert [p["scope"] for p in script.payloads("check_hosts")] == ["wave", "rollout", "rollout"]
    assert script.payloads("apply_wave") == script.payloads("apply_wave")[:1]  # no wave after the halt


@pytest.mark.parametrize(
    ("after_bake", "route"),
    [
        ("continue", ["NextWave", "ApplyWave"]),
        ("halt", ["Halt"]),
        ("abort", ["AbortRollout", "Finish"]),
        ("complete", ["Finish"]),
    ],
)
def test_a_bake_polls_until_its_verdict(machine: Machine, after_bake: str, route: list[str]) -> None:
    script = planned(2).on("apply_wave", progress(0, verdict="go"), progress(1, verdict="go"))
    script.on("check_hosts", progress(0, done=True, verdict="bake"), progress(1, done=True, verdict="complete"))
    script.on("bake", progress(0, verdict="bake"), progress(0, verdict=after_bake))
    script.on("halt", progress(0, done=True))
    script.on("abort_rollout", progress(0, done=True))
    script.on("finish", finished({"halt": "halted", "abort": "aborted"}.get(after_bake, "succeeded")))

    run = machine.run(REQUEST, script)

    baked = run.states.index("WaitForBake")
    assert run.states[baked : baked + 6] == [
        "WaitForBake",
        "Bake",
        "IsBakeDone",
        "WaitForBake",
        "Bake",
        "IsBakeDone",
    ]
    assert run.states[baked + 6 : baked + 6 + len(route)] == route


def test_a_held_wave_waits_and_asks_again(machine: Machine) -> None:
    script = planned(1).on(
        "apply_wave",
        progress(0, verdict="wait", wait_seconds=600, reason="group kill switch engaged"),
        progress(0, verdict="go"),
    )
    script.on("check_hosts", progress(0, done=True, verdict="complete"))
    script.on("finish", finished("succeeded"))

    run = machine.run(REQUEST, script)

    assert run.status == "SUCCEEDED"
    held = run.states.index("WaitBeforeWave")
    assert run.states[held - 2 : held + 3] == [
        "ApplyWave",
        "IsWaveStarted",
        "WaitBeforeWave",
        "ApplyWave",
        "IsWaveStarted",
    ]
    applies = [call.at for call in script.calls if call.step == "apply_wave"]
    assert applies[1] - applies[0] == 600


@pytest.mark.parametrize("where", ["apply_wave", "check_hosts"])
def test_an_abort_skips_what_is_left_and_ends_aborted(machine: Machine, where: str) -> None:
    script = planned(3).on("apply_wave", progress(0, verdict="abort" if where == "apply_wave" else "go"))
    script.on("check_hosts", progress(0, done=True, verdict="abort"))
    script.on("abort_rollout", progress(0, done=True))
    script.on("finish", finished("aborted"))

    run = machine.run(REQUEST, script)

    assert (run.status, run.states[-1]) == ("SUCCEEDED", "Aborted")
    assert run.states[-5:-1] == ["AbortRollout", *ENDING]


def test_the_rollout_releases_the_lock_it_holds(machine: Machine) -> None:
    def take_the_lock(payload: dict) -> dict:
        machine.hold_lock(payload["execution_id"])
        return acquired()

    script = planned(0).on("finish", finished("nothing-to-do"))
    script.answers["acquire_lock"] = [take_the_lock]

    assert machine.run(REQUEST, script).status == "SUCCEEDED"
    assert "Item" not in machine.locks.get_item(Key={"group": "web"})


def test_the_lock_is_released_only_by_its_holder(machine: Machine) -> None:
    script = planned(0).on("finish", finished("nothing-to-do"))
    machine.hold_lock("arn:another-execution")

    run = machine.run(REQUEST, script)

    assert run.status == "SUCCEEDED"  # the conditional delete's refusal is caught
    assert machine.locks.get_item(Key={"group": "web"})["Item"]["holder"] == "arn:another-execution"
    machine.locks.delete_item(Key={"group": "web"})
