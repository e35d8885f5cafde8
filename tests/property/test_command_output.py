"""SSM command output, whatever a host prints: a report, a named error, and never a host left unrecorded."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given, note
from hypothesis import strategies as st
from property_strategies import any_text, deep_json_text, huge_number_text, near, only_named_errors

from updraft.config import GroupPolicy
from updraft.domain.command_output import command_outcome
from updraft.domain.host_actions import ContainerView, Invocation, Observation
from updraft.domain.host_record import FINAL, Doc, HostRecord, HostState, RollbackStep, deadline_after
from updraft.domain.host_transitions import advance
from updraft.domain.reports import Report, parse_report

BOOT = "3f2b8c1e-52aa-4c7e-9d01-6b1f0a9e4c21"
VALID_REPORTS = {
    Doc.INVENTORY: {
        "doc": "inventory",
        "result": "ok",
        "version": "1.26.0",
        "variant": "aws-ecs-2",
        "arch": "x86_64",
        "boot_id": BOOT,
        "update_state": "Available",
        "available": ["1.26.1", "1.26.0"],
    },
    Doc.APPLY: {
        "doc": "apply",
        "result": "rebooting",
        "previous_version": "1.26.0",
        "target_version": "1.26.1",
        "boot_id": BOOT,
    },
    Doc.VERIFY: {
        "doc": "verify",
        "result": "ok",
        "version": "1.26.1",
        "expected_version": "1.26.1",
        "boot_id": BOOT,
        "update_state": "Idle",
        "active_version": "1.26.1",
        "version_lock": "1.26.1",
    },
    Doc.ROLLBACK: {"doc": "rollback", "result": "restored", "previous_version": "1.26.0", "boot_id": BOOT},
    Doc.HEALTH: {"doc": "health", "result": "healthy", "exit_code": 0, "timeout_seconds": 60, "output": "ok"},
}
ERROR_REPORT = {"doc": "apply", "result": "error", "stage": "download", "error": "no space left"}
# What SSM reports of an invocation, and some it never should.
STATUSES = st.one_of(
    st.sampled_from(
        [
            "Pending",
            "InProgress",
            "Delayed",
            "Success",
            "Cancelled",
            "TimedOut",
            "Failed",
            "Cancelling",
            "Undeliverable",
        ]
    ),
    any_text,
)


def stdout_for(doc: Doc) -> st.SearchStrategy[str]:
    """Output as a document might print it: noise, a near-valid or valid report last, pathological lines."""
    report_line = st.one_of(
        st.just(VALID_REPORTS[doc]),
        near(VALID_REPORTS[doc], deep=False),
        near({**ERROR_REPORT, "doc": str(doc)}, deep=False),
    ).map(lambda report: json.dumps(report, ensure_ascii=False, allow_nan=True))
    last_line = st.one_of(report_line, any_text, deep_json_text, huge_number_text)
    return st.builds(
        lambda noise, last, tail: f"{noise}\n{last}{tail}",
        any_text,
        last_line,
        st.sampled_from(["", "\n", "\r\n", "\u2028"]),
    )


docs = st.sampled_from(list(Doc))


@given(docs.flatmap(lambda doc: st.tuples(st.just(doc), st.one_of(stdout_for(doc), any_text))))
def test_any_output_parses_to_a_report_or_a_named_error(case: tuple[Doc, str]) -> None:
    doc, stdout = case
    report = only_named_errors(parse_report, str(doc), stdout)
    assert report is None or isinstance(report, Report)


@given(
    st.one_of(st.none(), docs),
    st.one_of(st.none(), st.builds(Invocation, STATUSES, st.one_of(docs.flatmap(stdout_for), any_text), any_text)),
)
def test_command_outcome_is_a_report_a_reason_or_still_running(doc: Doc | None, invocation: Invocation | None) -> None:
    outcome = command_outcome(doc, invocation)
    if outcome is None:
        assert invocation is None or invocation.status in {"Pending", "InProgress", "Delayed"}
    elif isinstance(outcome, str):
        assert outcome.strip(), "a failure needs a reason"
    else:
        assert isinstance(outcome, Report)


# -- a host in flight, whatever it reports ------------------------------------------------------------------
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
POLICY = GroupPolicy(
    name="web",
    variant="aws-ecs-2",
    ecs={"cluster": "blue"},
    health_check={"command": "/bin/check", "timeout_seconds": 60},
)
CONTAINER = "arn:aws:ecs:us-east-1:123456789012:container-instance/blue/0f1e2d3c"
# Each in-flight state with the command it awaits (None: it awaits a reboot, the agent or ECS).
IN_FLIGHT = [
    (HostState.DRAINING, None, None, False),
    (HostState.APPLYING, Doc.APPLY, None, False),
    (HostState.REBOOTING, None, None, False),
    (HostState.VERIFYING, Doc.VERIFY, None, False),
    (HostState.VERIFYING, None, None, True),  # OS verified: awaiting EC2 status checks
    (HostState.CHECKING_HEALTH, Doc.HEALTH, None, False),
    (HostState.ACTIVATING, None, None, False),
    (HostState.FAILED, None, None, False),
    (HostState.ROLLING_BACK, None, RollbackStep.RECOVER, False),
    (HostState.ROLLING_BACK, Doc.ROLLBACK, RollbackStep.COMMAND, False),
    (HostState.ROLLING_BACK, None, RollbackStep.REBOOT, False),
    (HostState.ROLLING_BACK, Doc.VERIFY, RollbackStep.VERIFY, False),
    (HostState.ROLLING_BACK, None, RollbackStep.ACTIVATE, False),
]


def record_in(state: HostState, doc: Doc | None, step: RollbackStep | None, os_verified: bool, ecs: bool) -> HostRecord:
    return HostRecord(
        rollout_id="r-1",
        instance_id="i-0001",
        az="us-east-1a",
        wave=1,
        state=state,
        previous_version="1.26.0",
        target_version="1.26.1",
        command_doc=doc,
        command_id="c-1" if doc else None,
        boot_id="0a0a0a0a-0000-4000-8000-000000000001",
        deadline=deadline_after(T0, 900),
        os_verified=os_verified,
        rollback_step=step,
        ecs_cluster="blue" if ecs else None,
        container_instance=CONTAINER if ecs else None,
        note="in flight",
        failure="apply failed" if state is HostState.FAILED else None,  # `fail` records why with the state
    )


@st.composite
def observations(draw: st.DrawFn, doc: Doc | None) -> Observation:
    invocation = draw(
        st.one_of(
            st.none(),
            st.builds(Invocation, STATUSES, stdout_for(doc) if doc else any_text, any_text),
        )
    )
    container = draw(
        st.one_of(
            st.none(),
            st.builds(
                ContainerView,
                st.sampled_from(["ACTIVE", "DRAINING", "INACTIVE", "REGISTERING"]),
                st.integers(0, 5),
                st.booleans(),
                st.lists(st.sampled_from(["task-a", "task-b"]), max_size=2).map(tuple),
            ),
        )
    )
    status = draw(st.sampled_from([None, "ok", "impaired", "initializing", "insufficient-data"]))
    return Observation(invocation=invocation, online=draw(st.booleans()), instance_status=status, container=container)


@st.composite
def hosts_in_flight(draw: st.DrawFn) -> tuple[HostRecord, Observation, datetime]:
    state, doc, step, os_verified = draw(st.sampled_from(IN_FLIGHT))
    record = record_in(state, doc, step, os_verified, ecs=draw(st.booleans()))
    seconds = draw(st.one_of(st.integers(0, 899), st.integers(900, 10**6)))
    return record, draw(observations(doc)), T0 + timedelta(seconds=seconds)


def made_progress(record: HostRecord, seen: Observation) -> bool:
    """The observation shows the host moving on, which may advance it rather than fail it, even late."""
    outcome = command_outcome(record.command_doc, seen.invocation)
    container = seen.container
    return (
        isinstance(outcome, Report)
        or seen.online
        or seen.instance_status == "ok"
        or (container is not None and (container.running_tasks == 0 or container.status == "ACTIVE"))
    )


@given(hosts_in_flight())
def test_a_host_in_flight_is_never_left_unrecorded(case: tuple[HostRecord, Observation, datetime]) -> None:
    record, seen, now = case
    note(f"{record.state} {record.rollback_step} at +{(now - T0).total_seconds()} s, seen {seen}")
    step = advance(record, seen, now, POLICY)
    moved = step.record
    assert moved.instance_id == record.instance_id and moved.rollout_id == record.rollout_id
    if moved != record:
        assert moved.note.strip(), "a move needs a note"
        assert moved.updated_at == now.isoformat() and moved.history[-1].state is moved.state
    if now < T0 + timedelta(seconds=900):
        return
    assert moved != record, f"{record.state} past its deadline stayed put"
    if not made_progress(record, seen):
        assert moved.state in FINAL | {HostState.FAILED, HostState.ROLLING_BACK}, moved.state
        if moved.state is HostState.ROLLING_BACK and record.state is not HostState.ROLLING_BACK:
            assert moved.failure, "a host rolled back past its deadline says why"
