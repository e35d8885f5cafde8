"""The deployed state machine, the real Lambda handlers and the real SSM documents, on a simulated
fleet. Each scenario checks what the ledger recorded, what the hosts really run, and the lock."""

from __future__ import annotations

import pytest

from sim.bottlerocket import Fault
from tests.integration.conftest import assert_all_final, assert_calls_granted, states, waves_of

pytestmark = pytest.mark.integration

OLD, NEW, BAD = "1.26.0", "1.26.1", "1.27.0"


def test_happy_path_updates_every_host_in_growing_waves_spread_over_azs(world):
    ids = world.launch("web", 9)
    world.launch("other", 2)  # another group's hosts are never touched

    execution = world.rollout("web", NEW)

    assert execution.status == "SUCCEEDED"
    assert execution.output["outcome"] == "succeeded"
    records = world.host_records(execution.name)
    assert states(records) == dict.fromkeys(ids, "updated")
    waves: dict[int, set[str]] = {}
    for record in records.values():
        waves.setdefault(int(record["wave"]), set()).add(record["az"])
    assert [len(waves[w]) for w in sorted(waves)] == [1, 2, 3, 2]  # canary 1, then 2, 4 (3 AZs), 2
    versions = world.versions()
    assert all(versions[i] == NEW for i in ids)
    assert all(v == OLD for i, v in versions.items() if i not in ids)
    assert all(world.fleet.hosts[i].version_lock == NEW for i in ids)
    assert world.lock_holder("web") is None
    assert world.rollout_record(execution.name)["status"] == "succeeded"


def test_one_failed_host_is_rolled_back_and_the_rollout_continues(world):
    ids = world.launch("web", 9)
    victim = waves_of(world, ids)[2][0]
    world.inject(victim, Fault.APPLY_FAILS)

    execution = world.rollout("web", NEW)

    assert execution.status == "SUCCEEDED"
    records = world.host_records(execution.name)
    assert_all_final(records)
    assert records[victim]["state"] == "rolled-back"
    assert "No space left on device" in records[victim]["failure"]
    assert {records[i]["state"] for i in ids if i != victim} == {"updated"}
    host = world.fleet.hosts[victim]
    assert (host.version, host.version_lock) == (OLD, OLD)


def test_canary_failure_halts_and_leaves_the_fleet_on_the_old_version(world):
    world.repository.bad_releases[BAD] = Fault.BOOT_FALLBACK
    ids = world.launch("web", 9)
    canary = waves_of(world, ids)[0][0]

    execution = world.rollout("web", BAD)

    assert execution.status == "FAILED"
    assert execution.error == "Updraft.RolloutHalted"
    records = world.host_records(execution.name)
    assert_all_final(records)
    assert records[canary]["state"] == "rolled-back"
    assert "boot-loader fallback" in records[canary]["failure"]
    assert {records[i]["state"] for i in ids if i != canary} == {"skipped"}
    assert set(world.versions().values()) == {OLD}
    meta = world.rollout_record(execution.name)
    assert meta["status"] == "halted" and "canary wave" in meta["halt_reason"]
    assert world.lock_holder("web") is None


def test_budget_spent_mid_rollout_halts_and_rolls_back_the_scope(world):
    ids = world.launch("batch", 12)
    waves = waves_of(world, ids, "batch")
    victim = waves[2][1]
    world.inject(victim, Fault.WRONG_VERSION)

    execution = world.rollout("batch", NEW)

    assert execution.error == "Updraft.RolloutHalted"
    records = world.host_records(execution.name)
    assert_all_final(records)
    assert records[victim]["state"] == "rolled-back"
    assert "expected 1.26.1" in records[victim]["failure"]
    started = [i for wave in waves[:3] for i in wave]
    # rollout scope: every host the rollout updated went back to where it was
    assert {records[i]["state"] for i in started} == {"rolled-back"}
    assert {records[i]["state"] for wave in waves[3:] for i in wave} == {"skipped"}
    assert set(world.versions().values()) == {OLD}
    assert sum(1 for r in records.values() if r.get("failure")) == 1  # scope rollbacks are not failures


def test_a_reboot_that_never_returns_is_recovered_through_ec2_and_rolled_back(world):
    ids = world.launch("web", 4)
    victim = waves_of(world, ids)[1][0]
    world.inject(victim, Fault.REBOOT_HANGS)

    execution = world.rollout("web", NEW)

    assert execution.status == "SUCCEEDED"
    record = world.host_records(execution.name)[victim]
    assert record["state"] == "rolled-back"
    assert "did not come back within 900 s" in record["failure"]
    assert world.fleet.calls["ec2:RebootInstances"] == 1
    assert world.fleet.hosts[victim].version == OLD


def test_boot_loader_fallback_is_a_failure_not_a_success(world):
    ids = world.launch("web", 4)
    victim = waves_of(world, ids)[1][0]
    world.inject(victim, Fault.BOOT_FALLBACK)

    execution = world.rollout("web", NEW)

    record = world.host_records(execution.name)[victim]
    assert record["state"] == "rolled-back"
    assert "booted back into 1.26.0 (boot-loader fallback)" in record["failure"]
    assert world.fleet.hosts[victim].version_lock == OLD  # the lock no longer points at the target


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault.AGENT_OFFLINE, "did not come back within"),
        (Fault.IMPAIRED, "EC2 status checks impaired"),
        (Fault.WRONG_VERSION, "runs 1.27.0, expected 1.26.1"),
    ],
)
def test_post_reboot_faults_fail_verification_and_roll_back(world, fault, reason):
    ids = world.launch("web", 4)
    victim = waves_of(world, ids)[1][0]
    world.inject(victim, fault)

    execution = world.rollout("web", NEW)

    records = world.host_records(execution.name)
    assert_all_final(records)
    assert records[victim]["state"] == "rolled-back", records[victim]["history"]
    assert reason in records[victim]["failure"]
    assert world.fleet.hosts[victim].version == OLD


def test_nothing_to_update_sends_no_apply(world):
    ids = world.launch("web", 4, version=NEW)

    execution = world.rollout("web", NEW)

    assert execution.status == "SUCCEEDED"
    assert execution.output["outcome"] == "nothing-to-do"
    records = world.host_records(execution.name)
    assert {r["note"] for r in records.values()} == {"already on 1.26.1"}
    assert set(records) == set(ids)
    sent = {c.document_name for c in world.fleet.commands.values()}
    assert sent == {world.outputs["InventoryDocumentName"]}


def test_hosts_already_on_target_are_skipped_and_the_rest_updated(world):
    current = world.launch("web", 3, version=NEW)
    behind = world.launch("web", 3, version=OLD)

    execution = world.rollout("web", NEW)

    records = world.host_records(execution.name)
    assert {records[i]["state"] for i in current} == {"skipped"}
    assert {records[i]["state"] for i in behind} == {"updated"}


def test_a_host_with_an_offline_agent_is_skipped_at_plan(world):
    ids = world.launch("web", 3)
    world.fleet.hosts[ids[0]].online_at = float("inf")

    execution = world.rollout("web", NEW)

    records = world.host_records(execution.name)
    assert records[ids[0]]["note"] == "SSM agent not online"
    assert {records[i]["state"] for i in ids[1:]} == {"updated"}


def test_concurrent_starts_for_one_group_run_one_rollout(world):
    world.launch("web", 3)
    arns = [world.start({"group": "web", "target_version": NEW}) for _ in range(2)]  # both in flight at once

    executions = [world.wait(arn) for arn in arns]

    assert sorted(e.status for e in executions) == ["SUCCEEDED", "SUCCEEDED"]
    outcomes = sorted(("acquired" in e.output and not e.output["acquired"]) for e in executions)
    assert outcomes == [False, True]  # one ran, one found the lock held
    ran = next(e for e in executions if e.output.get("outcome"))
    assert ran.output["outcome"] == "succeeded"
    assert world.lock_holder("web") is None


def test_the_lock_is_released_after_a_failure_and_the_next_rollout_runs(world):
    ids = world.launch("web", 3)
    world.fleet.throttle_sends = 10_000  # SendCommand refuses everything

    failed = world.rollout("web", NEW)

    assert failed.status == "FAILED" and failed.error == "Updraft.RolloutFailed"
    assert world.lock_holder("web") is None
    assert world.rollout_record(failed.name)["status"] == "failed"
    assert_all_final(world.host_records(failed.name))

    world.fleet.throttle_sends = 0
    again = world.rollout("web", NEW)
    assert again.status == "SUCCEEDED"
    assert set(states(world.host_records(again.name)).values()) == {"updated"}
    assert {world.versions()[i] for i in ids} == {NEW}


def test_throttled_send_command_is_absorbed_by_retries(world):
    ids = world.launch("web", 3)
    world.fleet.throttle_sends = 2

    execution = world.rollout("web", NEW)

    assert execution.status == "SUCCEEDED"
    assert {world.versions()[i] for i in ids} == {NEW}


def test_malformed_inventory_output_is_named_and_the_host_left_untouched(world):
    ids = world.launch("web", 3)
    world.inject(ids[0], Fault.GARBLED_OS)

    execution = world.rollout("web", NEW)

    records = world.host_records(execution.name)
    assert records[ids[0]]["state"] == "skipped"
    # The document names the stage whose output it could not read, and prints what it got.
    assert records[ids[0]]["note"].startswith("inventory failed at parse-os: not a JSON object, it begins with {")
    assert world.fleet.hosts[ids[0]].version == OLD
    assert {records[i]["state"] for i in ids[1:]} == {"updated"}


def test_malformed_apply_output_fails_the_host_and_cancels_its_activated_update(world):
    ids = world.launch("web", 4)
    victim = waves_of(world, ids)[1][0]
    world.inject(victim, Fault.GARBLED_STATUS)

    execution = world.rollout("web", NEW)

    record = world.host_records(execution.name)[victim]
    assert record["state"] == "rolled-back"
    assert record["failure"].startswith("apply failed at parse-status: not a JSON object")
    host = world.fleet.hosts[victim]
    # the update had been activated when the output broke: the rollback cancelled it, no reboot
    assert (host.version, host.update_state, host.next_to_boot_staging, host.boots) == (OLD, "Staged", False, 0)


def test_an_invalid_request_fails_with_a_named_error_and_takes_no_lock(world):
    # Each way a request can be invalid is named by the step (tests/steps) and routed to Rejected
    # (tests/routing); here, one of them end to end.
    world.launch("web", 2)

    execution = world.wait(world.start({"group": "nope", "target_version": NEW}))

    assert execution.status == "FAILED"
    assert execution.error == "Updraft.InvalidRolloutRequest"
    assert world.lock_holder("web") is None
    assert not world.fleet.commands


def _transitions(world, hosts: int) -> int:
    world.launch("web", hosts)
    execution = world.rollout("web", NEW)
    assert execution.status == "SUCCEEDED"
    return sum(1 for event in world.history(execution.arn) if "stateEnteredEventDetails" in event)


def test_state_transitions_grow_with_waves_not_hosts(world):
    few = _transitions(world, 6)
    world.reset()
    many = _transitions(world, 24)
    # four times the hosts, two more waves: far less than twice the work
    assert many < 2 * few, (few, many)


def test_every_call_a_function_makes_is_granted_to_its_role(world, template):
    ids = world.launch("web", 6)
    waves = waves_of(world, ids)
    world.inject(waves[1][0], Fault.REBOOT_HANGS)
    world.inject(waves[2][0], Fault.APPLY_FAILS)
    world.rollout("web", NEW)
    world.wait(world.start({"group": "web", "target_version": NEW}))  # nothing left to do

    # every step but the bake and abort ones (this group has no gate to bake on), and the settling of the halt
    assert len(world.calls_by_function) == 8
    assert_calls_granted(world, template)


def _settled(world, name: str, group: str) -> dict:
    """The settling function ran to its end: the rollout is recorded and the group's lock is free."""
    world.wait_all()  # the end event is settled in the execution's last turn
    meta = world.rollout_record(name)
    assert meta["status"] in ("aborted", "timed-out", "failed"), meta["status"]
    assert world.lock_holder(group) is None
    return meta


def test_a_stopped_rollout_is_settled_and_its_lock_released(world):
    ids = world.launch("web", 9)
    arn = world.start({"group": "web", "target_version": NEW})
    name = arn.rsplit(":", 1)[-1]
    world.run_until(lambda: any(r["state"] == "updated" for r in world.host_records(name).values()), "the canary")

    # Stopped while it waits between two looks, as an operator usually finds it (moto fails, rather than
    # aborts, an execution stopped inside a task).
    assert world.stop_while_sleeping(arn)
    assert world.wait(arn).status == "ABORTED"

    meta = _settled(world, name, "web")
    assert meta["status"] == "aborted"
    records = world.host_records(name)
    assert_all_final(records)
    assert {r["state"] for r in records.values()} <= {"updated", "needs-attention", "skipped"}
    assert world.lock_holder("web") is None
    assert world.rollout("web", NEW).status == "SUCCEEDED"  # the next rollout finishes the job
    assert {world.versions()[i] for i in ids} == {NEW}
