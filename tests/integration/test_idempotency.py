"""Every step is safe to retry, on the simulated fleet: a step that dies between SendCommand and the ledger
write is retried by the state machine and sends nothing twice; a step invoked again with the same input
after it succeeded changes nothing. Apply and rollback commands are counted per host, as the fleet got them."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from sim.bottlerocket import Fault
from sim.world import World
from tests.integration.conftest import assert_all_final, assert_calls_granted, states, waves_of
from updraft.adapters import ssm

pytestmark = pytest.mark.integration

NEW = "1.26.1"
# An error the state machine's retriers name: the Lambda service failed the invocation after the function
# had done part of its work (the same retry follows a runtime that died, once the retriers name it).
LambdaServiceException = type("Lambda.ServiceException", (Exception,), {})
STEPS = ("start_inventory", "plan_waves", "apply_wave", "check_hosts", "halt", "abort_rollout", "bake", "finish")


def document(world: World, doc: str) -> str:
    """The deployed name of an Updraft SSM document (`apply`, `rollback`, ...)."""
    for function in boto3.client("lambda").list_functions()["Functions"]:
        variables = function.get("Environment", {}).get("Variables", {})
        if f"DOCUMENT_{doc.upper()}" in variables:
            return variables[f"DOCUMENT_{doc.upper()}"]
    raise AssertionError(f"no function knows the {doc} document")


def commands_per_host(world: World, doc: str) -> Counter[str]:
    """How many commands of the document each host was sent."""
    name = document(world, doc)
    return Counter(
        i for command in world.fleet.commands.values() if command.document_name == name for i in command.invocations
    )


def crash_after_sending(monkeypatch: pytest.MonkeyPatch, world: World, doc: str, times: int = 1) -> list[str]:
    """The next `times` sends of `doc` reach SSM, then the step dies before it records them."""
    name, real, crashed = document(world, doc), ssm.send_document, []

    def send_then_crash(document: str, instance_ids: list[str], *args: Any, **kwargs: Any) -> dict[str, str]:
        sent = real(document, instance_ids, *args, **kwargs)
        if document == name and len(crashed) < times:
            crashed.extend(instance_ids)
            raise LambdaServiceException("the function died after SendCommand, before the ledger write")
        return sent

    monkeypatch.setattr(ssm, "send_document", send_then_crash)
    return crashed


def way(record: dict[str, Any]) -> list[str]:
    """The states a host went through, from its recorded history (notes within a state left out)."""
    states_entered = [entry["state"] for entry in record["history"]]
    return [state for i, state in enumerate(states_entered) if i == 0 or states_entered[i - 1] != state]


def events(world: World, rollout_id: str) -> list[tuple[str, Any, str]]:
    """The rollout's own events, without their times."""
    return sorted((e["kind"], e.get("wave"), e["detail"]) for e in world.rollout_events(rollout_id))


def task_failures(world: World, arn: str) -> int:
    """How many step attempts died of the injected crash (each one the state machine then retried)."""
    failed = [event.get("taskFailedEventDetails", {}) for event in world.history(arn) if event["type"] == "TaskFailed"]
    return sum(1 for details in failed if details.get("error") == LambdaServiceException.__name__)


def test_a_crash_between_send_command_and_the_ledger_write_sends_no_second_apply(world, monkeypatch, template):
    ids = world.launch("web", 9)
    crashed = crash_after_sending(monkeypatch, world, "apply", times=2)  # the canary's wave, then the next

    execution = world.rollout("web", NEW)

    assert execution.status == "SUCCEEDED", execution.error
    assert task_failures(world, execution.arn) == 2  # each crashed attempt was retried by the state machine
    assert sorted(crashed) == sorted(waves_of(world, ids)[0] + waves_of(world, ids)[1])
    assert commands_per_host(world, "apply") == dict.fromkeys(ids, 1)
    assert world.api_calls["ssm:ListCommands"] >= 2  # each retry looked its command up instead of resending
    records = world.host_records(execution.name)
    assert states(records) == dict.fromkeys(ids, "updated")
    # The retried attempts found the hosts where the crashed ones had moved them: each state once in their history.
    way_of_each = ["pending", "applying", "rebooting", "verifying", "updated"]
    assert {i: way(records[i]) for i in ids} == {i: way_of_each for i in ids}
    assert all(world.versions()[i] == NEW for i in ids)
    assert_calls_granted(world, template)


def test_a_crash_while_sending_rollbacks_sends_each_rollback_once(world, monkeypatch):
    ids = world.launch("web", 9)
    victim = waves_of(world, ids)[2][0]
    world.inject(victim, Fault.APPLY_FAILS)
    crashed = crash_after_sending(monkeypatch, world, "rollback")

    execution = world.rollout("web", NEW)

    assert execution.status == "SUCCEEDED", execution.error
    assert crashed == [victim] and task_failures(world, execution.arn) == 1
    assert commands_per_host(world, "rollback") == {victim: 1}
    assert commands_per_host(world, "apply") == dict.fromkeys(ids, 1)
    records = world.host_records(execution.name)
    assert_all_final(records)
    assert records[victim]["state"] == "rolled-back"
    assert "No space left on device" in records[victim]["failure"]
    assert json.loads(world.rollout_record(execution.name)["wave_results"])["2"]["failures"] == 1


def test_a_crash_while_the_halt_sends_rollbacks_sends_each_rollback_once(world, monkeypatch):
    ids = world.launch("batch", 4)
    planned = waves_of(world, ids, "batch")
    world.inject(planned[1][0], Fault.APPLY_FAILS)  # the budget is 0: the halt rolls back the whole rollout
    crashed = crash_after_sending(monkeypatch, world, "rollback", times=2)  # the failed host's, then the halt's

    execution = world.rollout("batch", NEW)

    assert execution.error == "Updraft.RolloutHalted"
    assert task_failures(world, execution.arn) == 2
    rolled_back = planned[0] + planned[1]
    assert sorted(crashed) == sorted(rolled_back)
    assert commands_per_host(world, "rollback") == dict.fromkeys(rolled_back, 1)
    records = world.host_records(execution.name)
    assert_all_final(records)
    assert {states(records)[i] for i in rolled_back} == {"rolled-back"}
    assert sum(1 for record in records.values() if record.get("failure")) == 1


# -- a step invoked a second time with the same input, right after it succeeded ------------------------------
def replay_every_step(world: World) -> list[tuple[str, dict, Any, Any]]:
    """After each step returns, invoke its function again with the same input; what each returned."""
    functions = {
        function["Handler"].split(".")[-2]: function["FunctionName"]
        for function in boto3.client("lambda").list_functions()["Functions"]
    }
    replays: list[tuple[str, dict, Any, Any]] = []
    replaying = threading.local()

    def hook_for(step: str) -> Callable[[dict, Any], None]:
        def replay(step_input: dict, result: Any) -> None:
            if getattr(replaying, "on", False):
                return
            replaying.on = True
            try:
                response = boto3.client("lambda").invoke(FunctionName=functions[step], Payload=json.dumps(step_input))
                assert "FunctionError" not in response, response["Payload"].read()
                replays.append((step, step_input, result, json.loads(response["Payload"].read())))
            finally:
                replaying.on = False

        return replay

    for step in STEPS:
        world.after_step(step, hook_for(step))
    return replays


def outcome(world: World, execution: Any, ids: list[str]) -> dict[str, Any]:
    """What a rollout decided and recorded, without times or ids that differ from run to run (hosts by the
    order they were launched in)."""
    records = world.host_records(execution.name)
    meta = world.rollout_record(execution.name)
    launched = {instance_id: index for index, instance_id in enumerate(ids)}

    def by_launch(per_host: dict[str, Any]) -> dict[int, Any]:
        return {launched[i]: value for i, value in per_host.items()}

    return {
        "status": execution.status,
        "error": execution.error,
        "hosts": by_launch({i: (r["state"], r.get("failure")) for i, r in records.items()}),
        "history": by_launch({i: [(e["state"], e["note"]) for e in r["history"]] for i, r in records.items()}),
        "events": events(world, execution.name),
        "wave_results": json.loads(meta.get("wave_results", "{}")),
        "rollout": (meta["status"], meta.get("summary")),
        "apply": by_launch(commands_per_host(world, "apply")),
        "rollback": by_launch(commands_per_host(world, "rollback")),
    }


def run(world: World, group: str, count: int, faulty_wave: int, replay: bool, idempotency: bool) -> tuple:
    world.reset()
    if not idempotency:  # the steps' own safety alone, without the stored results
        world.lambda_env["POWERTOOLS_IDEMPOTENCY_DISABLED"] = "true"
    try:
        ids = world.launch(group, count)
        world.inject(waves_of(world, ids, group)[faulty_wave][0], Fault.APPLY_FAILS)
        replays = replay_every_step(world) if replay else []
        execution = world.rollout(group, NEW)
        return outcome(world, execution, ids), replays
    finally:
        world.lambda_env.pop("POWERTOOLS_IDEMPOTENCY_DISABLED", None)


@pytest.mark.parametrize("idempotency", [True, False], ids=["stored-results", "steps-alone"])
@pytest.mark.parametrize(
    ("group", "count", "faulty_wave"),
    [("web", 9, 2), ("batch", 4, 1)],
    ids=["failure-rolled-back", "halt-rolls-back-the-rollout"],
)
def test_every_step_run_twice_with_the_same_input_changes_nothing(world, group, count, faulty_wave, idempotency):
    expected, _ = run(world, group, count, faulty_wave, replay=False, idempotency=True)

    replayed, replays = run(world, group, count, faulty_wave, replay=True, idempotency=idempotency)

    assert replayed == expected
    assert set(expected["apply"].values()) == {1} and set(expected["rollback"].values()) == {1}
    assert {step for step, *_ in replays} >= {"start_inventory", "plan_waves", "apply_wave", "check_hosts", "finish"}
    if group == "batch":
        assert "halt" in {step for step, *_ in replays}
    if idempotency:  # the stored result comes back, whatever changed since
        assert all(first == again for _, _, first, again in replays)
    else:  # the step ran again and decided the same
        started = [(first, again) for step, _, first, again in replays if step == "apply_wave"]
        assert all(first["progress"]["sent"] > 0 == again["progress"]["sent"] for first, again in started)
        for step, _, first, again in replays:
            if step == "finish":
                assert (again["outcome"], again["summary"]) == (first["outcome"], first["summary"])
            elif step in ("check_hosts", "halt") and first["progress"]["done"]:
                decided = ("verdict", "failures", "states", "done")
                assert {k: again["progress"].get(k) for k in decided} == {k: first["progress"].get(k) for k in decided}
