"""One contract, two implementations: every check runs against the in-memory ports the step tests use and
against the DynamoDB adapters on moto (tables shaped as the stack makes them). If the two ever answer
differently, a step test could pass on behaviour the deployed ledger does not have."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import boto3
import pytest
from moto import mock_aws

from tests.steps.memory import Memory
from updraft.adapters.aws_ports import aws_ports
from updraft.adapters.compliance import ComplianceReportingLedger
from updraft.domain.host_record import HostRecord, HostState, planned_entry
from updraft.errors import RolloutNotFound
from updraft.ports import Ports

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass
class Subject:
    ports: Ports
    running_execution: Callable[[], str]  # an execution id that runs (holds a lock nobody may take over)


def _tables() -> None:
    dynamodb = boto3.client("dynamodb")
    keys = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    attributes = [{"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "group_key", "started_at")]
    index = {
        "IndexName": "by-group",
        "KeySchema": [
            {"AttributeName": "group_key", "KeyType": "HASH"},
            {"AttributeName": "started_at", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }
    dynamodb.create_table(
        TableName="ledger",
        KeySchema=keys,
        AttributeDefinitions=attributes,
        GlobalSecondaryIndexes=[index],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.create_table(
        TableName="locks",
        KeySchema=[{"AttributeName": "group", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "group", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def _running_execution() -> str:
    """An execution moto keeps RUNNING (without its interpreter, nothing ever ends it)."""
    sfn = boto3.client("stepfunctions")
    definition = json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": True}}})
    role = "arn:aws:iam::123456789012:role/contract"
    arn = sfn.create_state_machine(name="holder", definition=definition, roleArn=role)["stateMachineArn"]
    return sfn.start_execution(stateMachineArn=arn)["executionArn"]


@pytest.fixture(params=["memory", "memory reporting compliance", "dynamodb"])
def subject(request: pytest.FixtureRequest) -> Iterator[Subject]:
    if request.param.startswith("memory"):
        memory = Memory()

        def running() -> str:
            memory.running.add("arn:running")
            return "arn:running"

        ports = memory.ports()
        if request.param.endswith("compliance"):  # the decorator aws_ports wraps the ledger in, reporting nowhere
            ports = dataclasses.replace(ports, ledger=ComplianceReportingLedger(ports.ledger, put=lambda item: None))
        yield Subject(ports, running)
        return
    saved = dict(os.environ)
    os.environ.update({"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"})
    try:
        with mock_aws():
            boto3.setup_default_session()
            _tables()
            yield Subject(aws_ports("ledger", "locks"), _running_execution)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def host(instance_id: str, wave: int = 0, **fields) -> HostRecord:
    return HostRecord(
        rollout_id="r-1",
        instance_id=instance_id,
        az="us-east-1a",
        wave=wave,
        previous_version="1.26.0",
        target_version="1.26.1",
        **fields,
    )


def rollout(rollout_id: str = "r-1", group: str = "web", started: datetime = T0, **fields) -> dict:
    return {"rollout_id": rollout_id, "group": group, "status": "planning", "started_at": started.isoformat(), **fields}


# -- rollouts --------------------------------------------------------------------------------------------
def test_a_rollout_is_created_once_read_back_and_updated(subject: Subject) -> None:
    ledger = subject.ports.ledger
    ledger.create_rollout(rollout(planned_hosts=3))
    ledger.create_rollout(rollout(status="other"))  # a retried step finds it there and leaves it

    ledger.update_rollout("r-1", status="rolling-out", wave_sizes=[1, 2])

    meta = ledger.rollout("r-1")
    assert (meta["status"], meta["group_key"], meta["wave_sizes"]) == ("rolling-out", "web", [1, 2])
    assert meta["planned_hosts"] == Decimal(3)  # numbers come back as boto3 returns them
    with pytest.raises(RolloutNotFound):
        ledger.rollout("nope")


def test_updating_a_rollout_that_does_not_exist_is_refused(subject: Subject) -> None:
    with pytest.raises(Exception, match="ConditionalCheckFailed"):
        subject.ports.ledger.update_rollout("nope", status="x")


def test_a_rollout_s_end_is_recorded_once(subject: Subject) -> None:
    ledger = subject.ports.ledger
    ledger.create_rollout(rollout())

    assert ledger.close_rollout("r-1", status="succeeded", finished_at=T0.isoformat())
    assert not ledger.close_rollout("r-1", status="failed", finished_at=T0.isoformat())
    assert not ledger.close_rollout("nope", status="failed", finished_at=T0.isoformat())
    assert ledger.rollout("r-1")["status"] == "succeeded"


def test_a_group_s_rollouts_come_newest_first(subject: Subject) -> None:
    ledger = subject.ports.ledger
    for index in range(3):
        ledger.create_rollout(rollout(f"r-{index}", started=T0 + timedelta(hours=index)))
    ledger.create_rollout(rollout("other", group="batch"))

    assert [r["rollout_id"] for r in ledger.group_rollouts("web")] == ["r-2", "r-1", "r-0"]
    assert [r["rollout_id"] for r in ledger.group_rollouts("web", newest=1)] == ["r-2"]


def test_group_outcomes_and_one_automatic_claim_per_version(subject: Subject) -> None:
    ledger = subject.ports.ledger
    assert ledger.group_outcome("web", "1.26.1") is None
    ledger.record_group_outcome("web", "1.26.1", "succeeded", "r-1", T0.isoformat())
    assert ledger.group_outcome("web", "1.26.1") == "succeeded"

    assert ledger.claim_automatic("web", "1.26.1", "arn:a", T0.isoformat())
    assert ledger.claim_automatic("web", "1.26.1", "arn:a", T0.isoformat())  # its own retry
    assert not ledger.claim_automatic("web", "1.26.1", "arn:b", T0.isoformat())
    assert ledger.claim_automatic("web", "1.27.0", "arn:b", T0.isoformat())


# -- hosts -----------------------------------------------------------------------------------------------
def test_hosts_are_read_by_wave_in_key_order(subject: Subject) -> None:
    ledger = subject.ports.ledger
    ledger.put_planned([host("i-2", 1), host("i-1", 0), host("i-3", 1)])
    ledger.put_skipped("r-1", [{"instance_id": "i-9", "az": "us-east-1b", "state": "skipped", "note": "offline"}])

    assert [h.instance_id for h in ledger.wave_hosts("r-1", 1)] == ["i-2", "i-3"]
    assert [h.instance_id for h in ledger.all_hosts("r-1")] == ["i-1", "i-2", "i-3"]
    assert {h.revision for h in ledger.all_hosts("r-1")} == {1}
    assert [s["note"] for s in ledger.skipped_hosts("r-1")] == ["offline"]
    assert ledger.host("r-1", 1, "i-3") == ledger.wave_hosts("r-1", 1)[1]
    assert ledger.host("r-1", 0, "i-3") is None


def test_a_host_write_expects_the_revision_it_read(subject: Subject) -> None:
    ledger = subject.ports.ledger
    ledger.put_planned([host("i-1")])
    (read,) = ledger.all_hosts("r-1")

    (written,) = ledger.put_hosts([read.move(HostState.APPLYING, "apply sent", T0)])
    stale = ledger.put_hosts([read.move(HostState.SKIPPED, "an older read", T0)])

    assert written.revision == 2 and stale == []
    assert ledger.host("r-1", 0, "i-1").state is HostState.APPLYING
    assert ledger.put_hosts([host("i-5")])[0].revision == 1  # a new host: nothing to expect
    assert ledger.put_hosts([host("i-5")]) == []  # ... but only once


def test_a_closed_host_takes_only_the_settlement_s_writes(subject: Subject) -> None:
    ledger = subject.ports.ledger
    ledger.put_planned([host("i-1")])
    (read,) = ledger.all_hosts("r-1")

    (closed,) = ledger.put_hosts([read.move(HostState.SKIPPED, "settled", T0)], closing_at=T0.isoformat())

    assert ledger.put_hosts([closed.move(HostState.APPLYING, "a late step", T0)]) == []
    assert len(ledger.put_hosts([closed.move(HostState.SKIPPED, "settled again", T0)], T0.isoformat())) == 1


def test_a_host_s_history_round_trips_through_the_ledger(subject: Subject) -> None:
    ledger = subject.ports.ledger
    ledger.put_planned([host("i-1").model_copy(update={"history": planned_entry("planned in wave 0", T0)})])
    (read,) = ledger.all_hosts("r-1")

    ledger.put_hosts([read.move(HostState.APPLYING, "apply sent", T0 + timedelta(minutes=1))])

    history = ledger.host("r-1", 0, "i-1").history
    assert [(e.state, e.note) for e in history] == [
        (HostState.PENDING, "planned in wave 0"),
        (HostState.APPLYING, "apply sent"),
    ]
    assert history[1].at == (T0 + timedelta(minutes=1)).isoformat()


# -- the rollout's own events ------------------------------------------------------------------------------
def test_an_event_is_kept_once_the_first_record_standing(subject: Subject) -> None:
    ledger = subject.ports.ledger
    ledger.create_rollout(rollout())
    first = {"kind": "wave-started", "at": T0.isoformat(), "wave": 0, "detail": "3 hosts"}

    assert ledger.record_event("r-1", "wave-started#0000", first)
    assert not ledger.record_event("r-1", "wave-started#0000", {**first, "at": "later"})  # a retried step
    assert ledger.record_event("r-1", "wave-started#0001", {**first, "wave": 1})

    kept = ledger.events("r-1")
    assert [(e["kind"], e["wave"], e["at"]) for e in kept] == [
        ("wave-started", Decimal(0), T0.isoformat()),
        ("wave-started", Decimal(1), T0.isoformat()),
    ]
    assert ledger.events("other") == []
    assert [h.instance_id for h in ledger.all_hosts("r-1")] == []  # events are not hosts


# -- the lock --------------------------------------------------------------------------------------------
def test_the_lock_has_one_holder_and_is_released_only_by_it(subject: Subject) -> None:
    locks = subject.ports.locks
    holder = subject.running_execution()

    assert locks.acquire("web", holder, {"rollout_id": "r-1"}).acquired
    refused = locks.acquire("web", "arn:second", {"rollout_id": "r-2"})
    assert (refused.acquired, refused.holder) == (False, holder)
    assert locks.acquire("web", holder, {"rollout_id": "r-1"}).acquired  # a retry of its own step
    assert [lock["rollout_id"] for lock in locks.held()] == ["r-1"]
    assert not locks.release("web", "arn:second")
    assert locks.release("web", holder)
    assert locks.held() == []


def test_a_lock_whose_holder_no_longer_runs_is_taken_over(subject: Subject) -> None:
    locks = subject.ports.locks
    assert locks.acquire("web", "arn:aws:states:us-east-1:123456789012:execution:holder:gone", {}).acquired

    taken = locks.acquire("web", "arn:next", {"rollout_id": "r-2"})

    assert (taken.acquired, taken.holder) == (True, "arn:next")
    assert [lock["holder"] for lock in locks.held()] == ["arn:next"]


# -- controls --------------------------------------------------------------------------------------------
def test_kill_switches_the_global_one_first(subject: Subject) -> None:
    controls = subject.ports.controls
    assert controls.kill_switch_for("web") is None
    controls.engage("web", "bad deploy", "oncall", T0.isoformat())
    assert controls.kill_switch_for("web")["reason"] == "bad deploy"
    assert controls.kill_switch_for("batch") is None

    controls.engage(None, "freeze", "cab", T0.isoformat())
    assert controls.kill_switch_for("batch")["reason"] == "freeze"
    assert controls.kill_switch_for("web")["sk"] == "GLOBAL"
    assert {switch["sk"] for switch in controls.switches()} == {"GLOBAL", "GROUP#web"}

    controls.release(None)
    controls.release("web")
    assert controls.switches() == []


def test_requests_reach_a_running_rollout_only(subject: Subject) -> None:
    ledger, controls = subject.ports.ledger, subject.ports.controls
    ledger.create_rollout(rollout(status="rolling-out"))

    controls.pause("r-1", "watch", "alice", T0.isoformat())
    controls.resume("r-1", "alice", T0.isoformat())
    controls.abort("r-1", "wrong version", "bob", T0.isoformat())

    meta = ledger.rollout("r-1")
    assert meta["paused"] is False and meta["pause"]["by"] == "alice" and meta["resumed"]["by"] == "alice"
    assert meta["abort_requested"]["reason"] == "wrong version"
    ledger.update_rollout("r-1", status="succeeded")
    with pytest.raises(RolloutNotFound):
        controls.pause("r-1", "too late", "carol", T0.isoformat())
    with pytest.raises(RolloutNotFound):
        controls.abort("nope", "no such", "carol", T0.isoformat())


# -- releases --------------------------------------------------------------------------------------------
def test_a_release_is_recorded_once_and_each_announcement_claimed_once(subject: Subject) -> None:
    releases = subject.ports.releases
    releases.record("aws-ecs-2", "x86_64", "1.26.1", {"released_at": T0.isoformat()})
    releases.record("aws-ecs-2", "x86_64", "1.26.1", {"released_at": "later"})

    assert releases.claim("aws-ecs-2", "x86_64", "1.26.1", "available", T0)
    assert not releases.claim("aws-ecs-2", "x86_64", "1.26.1", "available", T0 + timedelta(minutes=5))
    assert releases.claim("aws-ecs-2", "x86_64", "1.26.1", "available", T0 + timedelta(minutes=16))  # stale claim
    releases.mark_sent("aws-ecs-2", "x86_64", "1.26.1", "available", T0)
    assert not releases.claim("aws-ecs-2", "x86_64", "1.26.1", "available", T0 + timedelta(days=1))

    assert not releases.withdrawn("aws-ecs-2", "x86_64", "1.26.1")
    assert releases.claim("aws-ecs-2", "x86_64", "1.26.1", "withdrawn", T0)
    releases.mark_sent("aws-ecs-2", "x86_64", "1.26.1", "withdrawn", T0)
    assert releases.withdrawn("aws-ecs-2", "x86_64", "1.26.1")
    (seen,) = releases.releases("aws-ecs-2", "x86_64")
    assert seen["released_at"] == T0.isoformat()
