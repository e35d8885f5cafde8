"""The per-host state machine: what advance() makes of each observation of a host."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from updraft.config import GroupPolicy
from updraft.domain.command_output import command_outcome, verify_verdict
from updraft.domain.host_actions import (
    ContainerView,
    Invocation,
    Observation,
    RebootThroughEc2,
    SendDocument,
    SetContainerState,
    Step,
)
from updraft.domain.host_record import Doc, HostRecord, HostState, RollbackStep, deadline_after
from updraft.domain.host_transitions import advance, begin_drain, begin_rollback
from updraft.domain.reports import VerifyReport

POLICY = GroupPolicy(name="web", variant="aws-ecs-2")  # the real defaults: apply 1200 s, verify 900 s
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
PREV, TARGET, OTHER = "1.26.0", "1.26.1", "1.25.0"
OLD_BOOT = "0a0a0a0a-0000-4000-8000-000000000001"  # before the update reboot
NEW_BOOT = "0b0b0b0b-0000-4000-8000-000000000002"  # after the update reboot
LATER_BOOT = "0c0c0c0c-0000-4000-8000-000000000003"  # after the rollback reboot


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def host(state: HostState, **changes: object) -> HostRecord:
    fields: dict[str, object] = {
        "rollout_id": "r-1",
        "instance_id": "i-0001",
        "az": "us-east-1a",
        "wave": 0,
        "state": state,
        "previous_version": PREV,
        "target_version": TARGET,
    }
    return HostRecord.model_validate(fields | changes)


def applying(**changes: object) -> HostRecord:
    base = {"command_doc": Doc.APPLY, "command_id": "c-apply", "deadline": deadline_after(T0, 1200)}
    return host(HostState.APPLYING, **(base | changes))


def rebooting(**changes: object) -> HostRecord:
    return host(HostState.REBOOTING, **({"boot_id": OLD_BOOT, "deadline": deadline_after(T0, 900)} | changes))


def verifying(**changes: object) -> HostRecord:
    base = {
        "command_doc": Doc.VERIFY,
        "command_id": "c-verify",
        "boot_id": OLD_BOOT,
        "deadline": deadline_after(T0, 900),
    }
    return host(HostState.VERIFYING, **(base | changes))


def rolling_back(step: RollbackStep, **changes: object) -> HostRecord:
    doc = {RollbackStep.COMMAND: Doc.ROLLBACK, RollbackStep.VERIFY: Doc.VERIFY}.get(step)
    base = {
        "rollback_step": step,
        "command_doc": doc,
        "command_id": f"c-{doc}" if doc else None,
        "boot_id": NEW_BOOT,
        "failure": "verification failed",
        "deadline": deadline_after(T0, 900),
    }
    return host(HostState.ROLLING_BACK, **(base | changes))


def apply_report(result: str = "rebooting", **fields: object) -> str:
    data = {"doc": "apply", "result": result, "previous_version": PREV, "target_version": TARGET, "boot_id": OLD_BOOT}
    return json.dumps(data | fields) + "\n"


def verify_report(version: str = TARGET, boot_id: str = NEW_BOOT, expected: str = TARGET, **fields: object) -> str:
    data = {
        "doc": "verify",
        "result": "ok" if version == expected else "mismatch",
        "version": version,
        "expected_version": expected,
        "boot_id": boot_id,
        "update_state": "Idle",
        "active_version": version,
        "version_lock": expected,
    }
    return json.dumps(data | fields) + "\n"


def rollback_report(result: str = "restored", boot_id: str = NEW_BOOT) -> str:
    data = {"doc": "rollback", "result": result, "previous_version": PREV, "boot_id": boot_id}
    return json.dumps(data | ({"from_version": TARGET} if result == "rebooting" else {})) + "\n"


def error_report(doc: str, stage: str, error: str) -> str:
    return json.dumps({"doc": doc, "result": "error", "stage": stage, "error": error}) + "\n"


def ended(stdout: str, status: str = "Success", stderr: str = "") -> Observation:
    return Observation(Invocation(status, stdout, stderr), online=True)


def seen(status: str | None = None, online: bool = True, instance_status: str | None = None) -> Observation:
    invocation = Invocation(status) if status else None
    return Observation(invocation, online=online, instance_status=instance_status)


# -- applying ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["Pending", "InProgress", "Delayed", None])
def test_applying_host_waits_while_its_command_runs(status: str | None) -> None:
    record = applying()
    step = advance(record, seen(status), at(600), POLICY)
    assert step == Step(record)


def test_applying_past_its_deadline_fails_and_rolls_back() -> None:
    step = advance(applying(), seen("InProgress"), at(1200), POLICY)
    assert step.record.state is HostState.ROLLING_BACK
    assert step.record.failure == "apply did not finish within 1200 s"
    assert step.action == SendDocument(Doc.ROLLBACK, PREV)


def test_apply_reporting_rebooting_awaits_the_reboot_with_the_boot_id_and_previous_version() -> None:
    record = applying(previous_version=OTHER)  # what inventory saw; the apply report is the authority
    step = advance(record, ended(apply_report()), at(300), POLICY)
    assert step.action is None
    assert step.record.state is HostState.REBOOTING
    assert (step.record.previous_version, step.record.boot_id) == (PREV, OLD_BOOT)
    assert step.record.deadline == deadline_after(at(300), POLICY.verify_timeout_seconds)
    assert (step.record.command_doc, step.record.command_id, step.record.failure) == (None, None, None)


def test_apply_reporting_already_current_is_updated_without_a_reboot() -> None:
    step = advance(applying(), ended(apply_report("already-current", previous_version=TARGET)), at(30), POLICY)
    assert step.action is None
    assert step.record.state is HostState.UPDATED
    assert step.record.failure is None


def test_apply_error_report_fails_and_sends_rollback_when_online() -> None:
    output = error_report("apply", "apply", "Status 500 Failed to prepare update: No space left on device")
    step = advance(applying(), ended(output, "Failed"), at(200), POLICY)
    assert step.record.state is HostState.ROLLING_BACK
    assert step.record.rollback_step is RollbackStep.COMMAND
    assert step.record.failure == "apply failed at apply: Status 500 Failed to prepare update: No space left on device"
    assert step.record.deadline == deadline_after(at(200), POLICY.apply_timeout_seconds)
    assert step.action == SendDocument(Doc.ROLLBACK, PREV)


def test_apply_error_report_reboots_through_ec2_when_the_agent_is_offline() -> None:
    observation = Observation(Invocation("Failed", error_report("apply", "apply", "boom")), online=False)
    step = advance(applying(), observation, at(200), POLICY)
    assert step.record.state is HostState.ROLLING_BACK
    assert step.record.rollback_step is RollbackStep.RECOVER
    assert step.record.deadline == deadline_after(at(200), POLICY.verify_timeout_seconds)
    assert step.action == RebootThroughEc2()


def test_apply_report_for_another_target_fails() -> None:
    step = advance(applying(), ended(apply_report(target_version=OTHER)), at(60), POLICY)
    assert step.record.state is HostState.ROLLING_BACK
    assert "not 1.26.1" in step.record.failure


@pytest.mark.parametrize("status", ["TimedOut", "Cancelled", "DeliveryTimedOut", "Undeliverable"])
def test_apply_command_ending_without_running_fails_naming_the_status(status: str) -> None:
    step = advance(applying(), Observation(Invocation(status, "", "agent said no\n"), online=True), at(60), POLICY)
    assert step.record.failure == f"apply command ended {status}: agent said no"
    assert step.action == SendDocument(Doc.ROLLBACK, PREV)


@pytest.mark.parametrize("stdout", ["", "Status 409 when POSTing\n", '{"doc":"apply"}\n', verify_report()])
def test_apply_malformed_output_fails_as_malformed(stdout: str) -> None:
    step = advance(applying(), ended(stdout, "Failed"), at(60), POLICY)
    assert step.record.failure.startswith("MalformedCommandOutput: apply: ")


# -- rebooting --------------------------------------------------------------------------------------


def test_rebooting_host_waits_while_its_agent_is_offline() -> None:
    record = rebooting()
    assert advance(record, seen(online=False), at(300), POLICY) == Step(record)


def test_rebooting_host_back_online_is_sent_verify_for_the_target() -> None:
    step = advance(rebooting(), seen(online=True), at(300), POLICY)
    assert step.record.state is HostState.VERIFYING
    assert step.action == SendDocument(Doc.VERIFY, TARGET)


def test_rebooting_host_still_offline_past_the_deadline_fails_and_is_rebooted_through_ec2() -> None:
    step = advance(rebooting(), seen(online=False), at(900), POLICY)
    assert step.record.failure == "did not come back within 900 s of the reboot"
    assert step.record.state is HostState.ROLLING_BACK
    assert step.action == RebootThroughEc2()


def test_a_host_found_online_after_the_deadline_is_still_verified() -> None:
    # Looking late is not the host's fault: its boot id says whether it rebooted.
    step = advance(rebooting(), seen(online=True), at(5000), POLICY)
    assert step.record.state is HostState.VERIFYING
    assert step.action == SendDocument(Doc.VERIFY, TARGET)


# -- verifying --------------------------------------------------------------------------------------


def test_verify_answered_from_the_same_boot_goes_back_to_awaiting_the_reboot() -> None:
    step = advance(verifying(), ended(verify_report(PREV, boot_id=OLD_BOOT), "Failed"), at(60), POLICY)
    assert step.action is None
    assert step.record.state is HostState.REBOOTING
    assert step.record.note == "not rebooted yet"
    assert (step.record.failure, step.record.command_id) == (None, None)


def test_verify_ok_with_status_checks_ok_is_updated() -> None:
    observation = Observation(Invocation("Success", verify_report()), online=True, instance_status="ok")
    step = advance(verifying(), observation, at(120), POLICY)
    assert step.action is None
    assert step.record.state is HostState.UPDATED
    assert step.record.failure is None


def test_verify_ok_with_status_checks_initializing_waits_without_a_new_command() -> None:
    observation = Observation(Invocation("Success", verify_report()), online=True, instance_status="initializing")
    step = advance(verifying(), observation, at(120), POLICY)
    assert step.action is None
    assert step.record.state is HostState.VERIFYING
    assert step.record.os_verified
    assert step.record.command_id is None
    # Later polls only watch the status checks.
    again = advance(step.record, seen(online=True, instance_status="initializing"), at(300), POLICY)
    assert again == Step(step.record)
    done = advance(step.record, seen(online=True, instance_status="ok"), at(330), POLICY)
    assert done.record.state is HostState.UPDATED


def test_verified_host_whose_status_checks_never_pass_fails_at_the_deadline() -> None:
    record = verifying(os_verified=True, command_id=None)
    step = advance(record, seen(online=True, instance_status="initializing"), at(900), POLICY)
    assert step.record.failure == "EC2 status checks not ok before the deadline (initializing)"


def test_verify_ok_with_status_checks_impaired_fails() -> None:
    observation = Observation(Invocation("Success", verify_report()), online=True, instance_status="impaired")
    step = advance(verifying(), observation, at(120), POLICY)
    assert step.record.failure == "EC2 status checks impaired after the reboot"
    assert step.action == SendDocument(Doc.ROLLBACK, PREV)


@pytest.mark.parametrize(
    ("stdout", "failure"),
    [
        (
            verify_report(PREV),
            "booted back into 1.26.0 (boot-loader fallback): the update to 1.26.1 did not take",
        ),
        (verify_report(OTHER), "runs 1.25.0, expected 1.26.1"),
        (verify_report(update_state="Ready"), "an update is still activated for the next boot"),
        (verify_report(active_version=OTHER), "active partition holds 1.25.0, expected 1.26.1"),
        (verify_report(version_lock="latest"), "version lock is latest, expected 1.26.1"),
        (error_report("verify", "get-os", "Status 500"), "verify failed at get-os: Status 500"),
    ],
    ids=["boot-loader-fallback", "other-version", "still-ready", "active-partition", "lock", "error-report"],
)
def test_verify_report_of_an_unhealthy_host_fails_with_the_reason(stdout: str, failure: str) -> None:
    step = advance(verifying(), ended(stdout, "Failed"), at(120), POLICY)
    assert step.record.failure == failure
    assert step.record.state is HostState.ROLLING_BACK
    assert step.action == SendDocument(Doc.ROLLBACK, PREV)


def test_verify_accepts_a_version_lock_with_a_leading_v() -> None:
    observation = Observation(Invocation("Success", verify_report(version_lock="v1.26.1")), True, "ok")
    assert advance(verifying(), observation, at(120), POLICY).record.state is HostState.UPDATED


def test_verify_malformed_output_fails_as_malformed_with_stderr() -> None:
    observation = Observation(Invocation("Failed", '{"os":', "jq: error: unfinished JSON\n"), online=True)
    step = advance(verifying(), observation, at(120), POLICY)
    assert step.record.failure.startswith("MalformedCommandOutput: verify: ")
    assert step.record.failure.endswith("(stderr: jq: error: unfinished JSON)")


def test_verify_not_reporting_before_the_deadline_fails() -> None:
    step = advance(verifying(), seen("InProgress"), at(900), POLICY)
    assert step.record.failure == "verification did not report before the deadline"


# -- rolling back -----------------------------------------------------------------------------------


def test_recover_waits_for_the_agent_until_the_deadline() -> None:
    record = rolling_back(RollbackStep.RECOVER)
    assert advance(record, seen(online=False), at(600), POLICY) == Step(record)
    step = advance(record, seen(online=False), at(900), POLICY)
    assert step.record.state is HostState.ROLLBACK_FAILED
    assert "did not come back online during the rollback" in step.record.note


def test_recover_sends_rollback_once_the_agent_is_online() -> None:
    step = advance(rolling_back(RollbackStep.RECOVER), seen(online=True), at(300), POLICY)
    assert step.record.rollback_step is RollbackStep.COMMAND
    assert step.record.deadline == deadline_after(at(300), POLICY.apply_timeout_seconds)
    assert step.action == SendDocument(Doc.ROLLBACK, PREV)


def test_rollback_command_restored_is_rolled_back() -> None:
    step = advance(rolling_back(RollbackStep.COMMAND), ended(rollback_report("restored")), at(60), POLICY)
    assert step.action is None
    assert step.record.state is HostState.ROLLED_BACK
    assert step.record.failure == "verification failed"  # the reason it was rolled back stays counted


def test_rollback_command_rebooting_awaits_the_rollback_reboot() -> None:
    step = advance(rolling_back(RollbackStep.COMMAND), ended(rollback_report("rebooting", NEW_BOOT)), at(60), POLICY)
    assert step.action is None
    assert step.record.state is HostState.ROLLING_BACK
    assert step.record.rollback_step is RollbackStep.REBOOT
    assert step.record.boot_id == NEW_BOOT
    assert step.record.deadline == deadline_after(at(60), POLICY.verify_timeout_seconds)


@pytest.mark.parametrize(
    ("observation", "now", "note"),
    [
        (seen("InProgress"), 900, "rollback did not finish before the deadline"),
        (ended(error_report("rollback", "apply", "Status 409"), "Failed"), 60, "rollback failed at apply: Status 409"),
        (ended("nonsense", "Failed"), 60, "MalformedCommandOutput: rollback: "),
    ],
    ids=["deadline", "error-report", "malformed"],
)
def test_rollback_command_that_fails_ends_rollback_failed(observation: Observation, now: int, note: str) -> None:
    step = advance(rolling_back(RollbackStep.COMMAND), observation, at(now), POLICY)
    assert step.action is None
    assert step.record.state is HostState.ROLLBACK_FAILED
    assert step.record.note.startswith(note)


def test_rollback_reboot_sends_verify_for_the_previous_version_once_online() -> None:
    step = advance(rolling_back(RollbackStep.REBOOT), seen(online=True), at(200), POLICY)
    assert step.record.rollback_step is RollbackStep.VERIFY
    assert step.action == SendDocument(Doc.VERIFY, PREV)


def test_rollback_reboot_never_back_online_ends_rollback_failed() -> None:
    step = advance(rolling_back(RollbackStep.REBOOT), seen(online=False), at(900), POLICY)
    assert step.record.state is HostState.ROLLBACK_FAILED


def test_rollback_verify_on_the_previous_version_is_rolled_back() -> None:
    observation = ended(verify_report(PREV, boot_id=LATER_BOOT, expected=PREV))
    step = advance(rolling_back(RollbackStep.VERIFY), observation, at(200), POLICY)
    assert step.record.state is HostState.ROLLED_BACK


def test_rollback_verify_on_another_version_ends_rollback_failed() -> None:
    observation = ended(verify_report(TARGET, boot_id=LATER_BOOT, expected=PREV), "Failed")
    step = advance(rolling_back(RollbackStep.VERIFY), observation, at(200), POLICY)
    assert step.record.state is HostState.ROLLBACK_FAILED
    assert step.record.note == "runs 1.26.1 after the rollback, expected 1.26.0"


def test_rollback_verify_from_the_same_boot_awaits_the_reboot_again() -> None:
    observation = ended(verify_report(TARGET, boot_id=NEW_BOOT, expected=PREV), "Failed")
    step = advance(rolling_back(RollbackStep.VERIFY), observation, at(200), POLICY)
    assert step.record.state is HostState.ROLLING_BACK
    assert step.record.rollback_step is RollbackStep.REBOOT


def test_rollback_verify_not_reporting_before_the_deadline_ends_rollback_failed() -> None:
    step = advance(rolling_back(RollbackStep.VERIFY), seen("InProgress"), at(900), POLICY)
    assert step.record.state is HostState.ROLLBACK_FAILED
    assert step.record.note == "verify did not finish before the deadline"


def test_rollback_reboot_that_never_happens_ends_rollback_failed_at_the_deadline() -> None:
    # The rollback document reported "rebooting" but the detached reboot never ran: the agent stays
    # online and every verify answers from the same boot. Past the deadline the host must give up.
    record = rolling_back(RollbackStep.REBOOT, deadline=deadline_after(T0, 900))
    step = advance(record, seen(online=True), at(1000), POLICY)
    assert step.action == SendDocument(Doc.VERIFY, PREV)
    verifying = step.record.sent(Doc.VERIFY, "c-verify")
    same_boot = verify_report(version=PREV, expected=PREV, boot_id=record.boot_id)
    step = advance(verifying, ended(same_boot), at(1001), POLICY)
    assert step.record.state is HostState.ROLLBACK_FAILED
    assert step.action is None


@pytest.mark.parametrize(
    "state", [HostState.UPDATED, HostState.ROLLED_BACK, HostState.ROLLBACK_FAILED, HostState.SKIPPED]
)
def test_final_hosts_are_left_alone(state: HostState) -> None:
    record = host(state)
    assert advance(record, seen("Success", online=False, instance_status="impaired"), at(9999), POLICY) == Step(record)


def test_begin_rollback_of_an_updated_host_does_not_count_a_failure() -> None:
    step = begin_rollback(host(HostState.UPDATED), "rolling back the wave", seen(online=True), at(10), POLICY)
    assert step.record.state is HostState.ROLLING_BACK
    assert step.record.failure is None
    assert step.action == SendDocument(Doc.ROLLBACK, PREV)


# -- command_outcome and verify_verdict ---------------------------------------------------------------


def test_command_outcome_is_none_while_the_command_runs() -> None:
    assert command_outcome(Doc.APPLY, None) is None
    assert command_outcome(Doc.APPLY, Invocation("InProgress", "partial")) is None


def test_command_outcome_of_a_failed_status_with_a_report_is_the_report() -> None:
    report = command_outcome(Doc.VERIFY, Invocation("Failed", verify_report(OTHER)))
    assert isinstance(report, VerifyReport)
    assert report.result == "mismatch"


def test_verify_verdict_is_none_for_a_healthy_host() -> None:
    report = VerifyReport.model_validate_json(verify_report())
    assert verify_verdict(report, TARGET, PREV) is None


# -- properties -------------------------------------------------------------------------------------

# Repeats weigh the draw towards commands that finish, so that more polls move the host on.
STATUSES = ["Success", "Success", "Success", "Failed", "Failed", "Pending", "InProgress", "Delayed", "TimedOut", None]
# Repeated happy answers weigh the draw towards hosts that get further along the way.
OUTPUTS = {
    Doc.APPLY: [
        *[apply_report()] * 3,
        apply_report("already-current", previous_version=TARGET),
        error_report("apply", "apply", "No space left on device"),
        apply_report(target_version=OTHER),
        "",
        "garbage\n",
    ],
    Doc.VERIFY: [
        *[verify_report(boot_id=NEW_BOOT)] * 3,
        verify_report(PREV, boot_id=NEW_BOOT),
        *[verify_report(PREV, boot_id=LATER_BOOT, expected=PREV)] * 2,
        verify_report(TARGET, boot_id=LATER_BOOT, expected=PREV),
        verify_report(update_state="Ready"),
        error_report("verify", "get-os", "Status 500"),
        '{"doc":"verify"',
        # Answers from a boot the record may still be waiting to leave: the reboot has not happened.
        verify_report(PREV, boot_id=OLD_BOOT),
        verify_report(TARGET, boot_id=NEW_BOOT, expected=PREV),
    ],
    Doc.ROLLBACK: [
        *[rollback_report("restored")] * 2,
        *[rollback_report("rebooting", NEW_BOOT)] * 2,
        rollback_report("rebooting", OLD_BOOT),
        error_report("rollback", "apply", "Status 409"),
        "",
    ],
}


@dataclass(frozen=True)
class World:
    """What one poll sees of the host. The command's output depends on which document it runs."""

    status: str | None = "Success"
    picks: dict[Doc, int] = field(default_factory=dict)
    stderr: str = ""
    online: bool = True
    instance_status: str | None = None

    def observe(self, record: HostRecord, rebooted: bool) -> Observation:
        invocation = None
        if record.command_id and self.status:
            outputs = OUTPUTS[record.command_doc]
            if rebooted and record.command_doc is Doc.VERIFY and record.boot_id:
                # The reboot the record waits for did happen: verify answers from another boot.
                outputs = [output for output in outputs if record.boot_id not in output]
            stdout = outputs[self.picks.get(record.command_doc, 0) % len(outputs)]
            invocation = Invocation(self.status, stdout, self.stderr)
        return Observation(invocation, self.online, self.instance_status)


worlds = st.builds(
    World,
    status=st.sampled_from(STATUSES),
    picks=st.fixed_dictionaries({doc: st.integers(0, len(OUTPUTS[doc]) - 1) for doc in OUTPUTS}),
    stderr=st.sampled_from(["", "Status 500 boom\n"]),
    online=st.sampled_from([True, True, False]),
    instance_status=st.sampled_from(["ok", "ok", "initializing", "impaired", None]),
)
JUMP = timedelta(seconds=max(POLICY.apply_timeout_seconds, POLICY.verify_timeout_seconds) + 1)
BOUND = 10  # polls after every deadline has passed


def drive(phase1: list[tuple[World, int]], phase2: list[World], rebooted: bool) -> HostRecord:
    """Poll a host that was just sent apply: first as time creeps, then with every poll past every deadline."""
    record, now, sent = applying(), T0, 0
    polls = [(world, timedelta(seconds=seconds), False) for world, seconds in phase1]
    polls += [(world, JUMP, rebooted) for world in phase2]
    for world, delay, after_reboot in polls:
        now += delay
        observation = world.observe(record, after_reboot)
        step = advance(record, observation, now, POLICY)
        if record.final:
            assert step == Step(record), "a final host was touched"
        if isinstance(step.action, SendDocument):
            assert observation.online, "a document was sent to a host whose agent is offline"
            assert step.action.version in (PREV, TARGET)
            if step.action.doc is Doc.ROLLBACK:
                assert step.action.version == step.record.previous_version
            sent += 1
            record = step.record.sent(step.action.doc, f"c-{sent}")
        else:
            if isinstance(step.action, RebootThroughEc2):
                assert not observation.online, "rebooted through EC2 a host whose agent answers"
            record = step.record
    return record


def assert_final_with_reason(record: HostRecord) -> None:
    assert record.final, f"still {record.state} ({record.rollback_step}) after {BOUND} polls: {record.history[-6:]}"
    assert record.state in (HostState.UPDATED, HostState.ROLLED_BACK, HostState.ROLLBACK_FAILED)
    if record.state is HostState.UPDATED:
        assert record.failure is None
    else:
        assert record.failure, f"{record.state} without a failure reason"


phase1s = st.lists(st.tuples(worlds, st.integers(0, 180)), max_size=30)
phase2s = st.lists(worlds, min_size=BOUND, max_size=BOUND)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(phase1s, phase2s)
def test_host_whose_reboots_happen_always_ends_final_once_deadlines_pass(
    phase1: list[tuple[World, int]], phase2: list[World]
) -> None:
    assert_final_with_reason(drive(phase1, phase2, rebooted=True))


@settings(max_examples=200, derandomize=True, deadline=None)
@given(phase1s, phase2s)
@example(
    # apply reports rebooting; the host never reboots; verify answers from the same boot; the rollback
    # document reports rebooting too, and that reboot never happens either.
    phase1=[],
    phase2=[World(picks={Doc.APPLY: 0, Doc.VERIFY: 10, Doc.ROLLBACK: 4})] * BOUND,
)
def test_any_host_always_ends_final_once_deadlines_pass(phase1: list[tuple[World, int]], phase2: list[World]) -> None:
    assert_final_with_reason(drive(phase1, phase2, rebooted=False))


# -- workload health and ECS ------------------------------------------------------------------------
CLUSTER = "blue"
INSTANCE_ARN = "arn:aws:ecs:us-east-1:123456789012:container-instance/blue/0f1e2d3c"
HEALTHY = GroupPolicy(
    name="web", variant="aws-ecs-2", health_check={"command": "/usr/local/bin/check", "timeout_seconds": 60}
)
SKIP = GroupPolicy(name="web", variant="aws-ecs-2", ecs={"cluster": CLUSTER, "drain_timeout_seconds": 600})
WAIT = GroupPolicy(
    name="web", variant="aws-ecs-2", ecs={"cluster": CLUSTER, "drain_timeout_seconds": 600, "unmanaged_tasks": "wait"}
)
ECS_HOST = {"ecs_cluster": CLUSTER, "container_instance": INSTANCE_ARN}


def container(
    status: str = "DRAINING", tasks: int = 0, agent: bool = True, unmanaged: tuple[str, ...] = ()
) -> ContainerView:
    return ContainerView(status=status, running_tasks=tasks, agent_connected=agent, unmanaged_tasks=unmanaged)


def in_cluster(view: ContainerView | None, **changes: object) -> Observation:
    return Observation(**({"online": True, "container": view} | changes))


def health_report(result: str = "healthy", code: int = 0, output: str = "ok\n") -> str:
    data = {"doc": "health", "result": result, "exit_code": code, "timeout_seconds": 60, "output": output}
    return json.dumps(data) + "\n"


def draining(**changes: object) -> HostRecord:
    return host(HostState.DRAINING, **(ECS_HOST | {"deadline": deadline_after(T0, 600)} | changes))


def checking_health(**changes: object) -> HostRecord:
    base = {"command_doc": Doc.HEALTH, "command_id": "c-health", "deadline": deadline_after(T0, 120)}
    return host(HostState.CHECKING_HEALTH, **(base | changes))


def activating(**changes: object) -> HostRecord:
    return host(HostState.ACTIVATING, **(ECS_HOST | {"deadline": deadline_after(T0, 900)} | changes))


def test_begin_drain_sets_the_container_instance_draining_until_the_drain_deadline() -> None:
    step = begin_drain(host(HostState.PENDING), CLUSTER, INSTANCE_ARN, T0, SKIP)
    assert step.action == SetContainerState("DRAINING")
    assert step.record.state is HostState.DRAINING
    assert (step.record.ecs_cluster, step.record.container_instance) == (CLUSTER, INSTANCE_ARN)
    assert step.record.deadline == deadline_after(T0, 600)


def test_a_drained_host_is_sent_apply() -> None:
    step = advance(draining(), in_cluster(container(tasks=0)), at(60), SKIP)
    assert step.action == SendDocument(Doc.APPLY, TARGET)
    assert step.record.state is HostState.APPLYING
    assert step.record.deadline == deadline_after(at(60), POLICY.apply_timeout_seconds)


def test_a_host_still_draining_service_tasks_waits() -> None:
    record = draining()
    assert advance(record, in_cluster(container(tasks=3)), at(30), SKIP) == Step(record)


def test_a_drain_past_its_deadline_skips_the_host_and_sets_it_active_again() -> None:
    step = advance(draining(), in_cluster(container(tasks=2)), at(600), WAIT)
    assert step.action == SetContainerState("ACTIVE")
    assert step.record.state is HostState.SKIPPED
    assert step.record.failure is None  # nothing was applied: it does not count against the budget
    assert "drain did not finish within 600 s (2 tasks still running)" in step.record.note


def test_unmanaged_tasks_skip_the_host_before_anything_is_applied_under_policy_skip() -> None:
    view = container(tasks=2, unmanaged=("family:job/4f2a",))
    step = advance(draining(), in_cluster(view), at(30), SKIP)
    assert step.action == SetContainerState("ACTIVE")
    assert step.record.state is HostState.SKIPPED
    assert "runs tasks no service owns (family:job/4f2a)" in step.record.note


def test_unmanaged_tasks_are_waited_on_under_policy_wait_then_the_host_is_applied() -> None:
    view = container(tasks=1, unmanaged=("family:job/4f2a",))
    waiting = advance(draining(), in_cluster(view), at(30), WAIT)
    assert waiting.action is None
    assert waiting.record.state is HostState.DRAINING
    assert "waiting on tasks no service owns (family:job/4f2a)" in waiting.record.note
    assert advance(waiting.record, in_cluster(view), at(60), WAIT) == Step(waiting.record)  # no rewrite per poll
    done = advance(waiting.record, in_cluster(container(tasks=0)), at(400), WAIT)
    assert (done.record.state, done.action) == (HostState.APPLYING, SendDocument(Doc.APPLY, TARGET))


def test_a_container_instance_gone_while_draining_skips_the_host_untouched() -> None:
    step = advance(draining(), in_cluster(None), at(30), SKIP)
    assert (step.record.state, step.action) == (HostState.SKIPPED, None)
    assert "no longer in cluster blue" in step.record.note


def test_a_verified_host_of_a_group_with_a_health_command_is_sent_it() -> None:
    record = verifying(os_verified=True, command_id=None)
    step = advance(record, seen(instance_status="ok"), at(300), HEALTHY)
    assert step.action == SendDocument(Doc.HEALTH, TARGET)
    assert step.record.state is HostState.CHECKING_HEALTH
    assert step.record.deadline == deadline_after(at(300), 60 + 60)


def test_a_healthy_report_updates_the_host() -> None:
    step = advance(checking_health(), ended(health_report()), at(30), HEALTHY)
    assert (step.record.state, step.action) == (HostState.UPDATED, None)
    assert "healthy" in step.record.note


def test_a_healthy_ecs_host_is_set_active_and_awaits_its_agent() -> None:
    step = advance(checking_health(**ECS_HOST), ended(health_report()), at(30), HEALTHY)
    assert (step.record.state, step.action) == (HostState.ACTIVATING, SetContainerState("ACTIVE"))


def test_an_unhealthy_report_fails_the_host_and_rolls_it_back() -> None:
    step = advance(
        checking_health(), ended(health_report("unhealthy", 3, "db unreachable\n"), "Failed"), at(30), HEALTHY
    )
    assert step.record.state is HostState.ROLLING_BACK
    assert step.action == SendDocument(Doc.ROLLBACK, PREV)
    assert step.record.failure == "health command exited 3: db unreachable"


def test_a_health_command_stopped_by_its_timeout_fails_the_host() -> None:
    report = health_report("timed-out", 124, "")
    step = advance(checking_health(), ended(report, "Failed"), at(70), HEALTHY)
    assert step.record.failure == "health command did not finish within 60 s"
    assert step.action == SendDocument(Doc.ROLLBACK, PREV)


def test_a_health_command_that_never_reports_fails_at_its_deadline() -> None:
    record = checking_health()
    assert advance(record, seen("InProgress"), at(119), HEALTHY) == Step(record)
    step = advance(record, seen("InProgress"), at(120), HEALTHY)
    assert step.record.failure == "health command did not report within 60 s"
    assert step.record.state is HostState.ROLLING_BACK


def test_garbage_from_the_health_document_fails_as_malformed() -> None:
    step = advance(checking_health(), ended("all good!\n"), at(30), HEALTHY)
    assert step.record.failure.startswith("MalformedCommandOutput: health:")


def test_a_verified_ecs_host_without_a_health_command_is_set_active() -> None:
    record = verifying(os_verified=True, command_id=None, **ECS_HOST)
    step = advance(record, seen(instance_status="ok"), at(300), SKIP)
    assert (step.record.state, step.action) == (HostState.ACTIVATING, SetContainerState("ACTIVE"))
    assert step.record.deadline == deadline_after(at(300), POLICY.verify_timeout_seconds)


def test_activation_waits_for_the_agent_then_updates_the_host() -> None:
    record = activating()
    assert advance(record, in_cluster(container("ACTIVE", agent=False)), at(60), SKIP) == Step(record)
    step = advance(record, in_cluster(container("ACTIVE", agent=True)), at(90), SKIP)
    assert (step.record.state, step.action) == (HostState.UPDATED, None)
    assert "agent connected" in step.record.note


def test_an_agent_that_never_connects_fails_the_host_at_the_deadline() -> None:
    step = advance(activating(), in_cluster(container("ACTIVE", agent=False)), at(900), SKIP)
    assert step.record.failure == "ECS agent not connected within 900 s (status ACTIVE)"
    assert step.record.state is HostState.ROLLING_BACK


def test_a_rolled_back_ecs_host_is_set_active_again_and_awaits_its_agent() -> None:
    record = rolling_back(RollbackStep.COMMAND, **ECS_HOST)
    step = advance(record, ended(rollback_report("restored")), at(60), SKIP)
    assert step.action == SetContainerState("ACTIVE")
    assert (step.record.state, step.record.rollback_step) == (HostState.ROLLING_BACK, RollbackStep.ACTIVATE)
    done = advance(step.record, in_cluster(container("ACTIVE")), at(90), SKIP)
    assert (done.record.state, done.action) == (HostState.ROLLED_BACK, None)
    assert done.record.failure == "verification failed"  # still counted as the failure it was


def test_a_rollback_never_fails_because_of_ecs_the_problem_is_noted() -> None:
    record = rolling_back(RollbackStep.ACTIVATE, **ECS_HOST, command_doc=None, command_id=None)
    step = advance(record, in_cluster(container("ACTIVE", agent=False)), at(900), SKIP)
    assert step.record.state is HostState.ROLLED_BACK
    assert "needs attention: container instance ACTIVE, ECS agent connected: False" in step.record.note
