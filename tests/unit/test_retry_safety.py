"""Safe retries: the send key and intent of a host, the ledger's conditional host writes and its closing, the
recovery of a send whose command id was never recorded, the command lookup and the replay of a step's result."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber
from moto import mock_aws

from updraft.adapters import ssm
from updraft.adapters.ledger import Ledger
from updraft.config import GroupPolicy, UpdraftConfig
from updraft.document_digest import document_digest
from updraft.domain.host_actions import Observation, SendDocument, intended_send, send_key
from updraft.domain.host_record import Doc, HostRecord, HostState
from updraft.domain.host_transitions import advance, begin_rollback, start_apply
from updraft.flow import effects
from updraft.handlers._common import replayable
from updraft.settings import Settings

POLICY = GroupPolicy(name="web", variant="aws-ecs-2")
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OLD, NEW = "1.26.0", "1.26.1"


def host(instance_id: str = "i-1", state: HostState = HostState.PENDING, **changes: object) -> HostRecord:
    record = HostRecord(
        rollout_id="r-1", instance_id=instance_id, az="us-east-1a", wave=0, previous_version=OLD, target_version=NEW
    )
    return record.model_copy(update={"state": state, **changes})


# -- the key and the intent ------------------------------------------------------------------------------
def test_a_send_key_is_the_same_for_every_attempt_of_a_step_and_differs_for_any_other_step():
    key = send_key("r-1", Doc.APPLY, T0)
    assert key == send_key("r-1", Doc.APPLY, T0)
    others = {
        send_key("r-2", Doc.APPLY, T0),
        send_key("r-1", Doc.VERIFY, T0),
        send_key("r-1", Doc.APPLY, T0 + timedelta(seconds=1)),
    }
    assert key not in others and len(others) == 3
    assert len(ssm.comment("Updraft-ApplyDocument-" + "x" * 80, key)) == 100 and key in ssm.comment("d" * 80, key)


def sends() -> list[tuple[HostRecord, SendDocument]]:
    """Every send the host model asks for, with the record it writes."""
    steps = [
        start_apply(host(), "apply sent", T0, POLICY),
        advance(host(state=HostState.REBOOTING, boot_id="old"), Observation(online=True), T0, POLICY),
        begin_rollback(host(state=HostState.UPDATED), "rolling back", Observation(online=True), T0, POLICY),
        advance(
            begin_rollback(host(state=HostState.UPDATED), "x", Observation(online=False), T0, POLICY).record,
            Observation(online=True),
            T0,
            POLICY,
        ),
    ]
    return [(step.record, step.action) for step in steps if isinstance(step.action, SendDocument)]


def test_a_recorded_intent_names_exactly_the_send_its_step_asked_for():
    found = sends()
    assert {action.doc for _, action in found} == {Doc.APPLY, Doc.VERIFY, Doc.ROLLBACK}
    for record, action in found:
        intent = record.intending(action.doc, "k")
        assert intent.unsent and intended_send(intent) == action
        sent = intent.sent(action.doc, "cmd-1")
        assert not sent.unsent and intended_send(sent) is None and sent.send_key is None


def test_a_new_state_supersedes_a_pending_send():
    intent = host(state=HostState.APPLYING).intending(Doc.APPLY, "k")
    assert intent.move(HostState.NEEDS_ATTENTION, "abandoned", T0).send_key is None
    assert not intent.model_copy(update={"state": HostState.SKIPPED}).unsent  # a final host awaits nothing


# -- the ledger ------------------------------------------------------------------------------------------
@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        boto3.client("dynamodb").create_table(
            TableName="ledger",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield


def test_a_host_write_expects_the_revision_it_was_read_at(aws):
    ledger = Ledger("ledger")
    ledger.put_planned([host("i-1"), host("i-2")])
    [read] = [h for h in ledger.all_hosts("r-1") if h.instance_id == "i-1"]
    assert read.revision == 1

    [moved] = ledger.put_hosts([read.move(HostState.APPLYING, "apply sent", T0)])
    stale = read.move(HostState.FAILED, "a second run's view", T0, failure="boom")

    assert moved.revision == 2
    assert ledger.put_hosts([stale]) == []  # another run moved it since: left out, nothing counted twice
    [again] = [h for h in ledger.all_hosts("r-1") if h.instance_id == "i-1"]
    assert (again.state, again.failure, again.revision) == (HostState.APPLYING, None, 2)


def test_a_closed_host_takes_no_more_writes_but_its_closing_is_written_once(aws):
    ledger = Ledger("ledger")
    ledger.put_planned([host("i-1")])
    [read] = ledger.all_hosts("r-1")
    [closed] = ledger.put_hosts([read.move(HostState.SKIPPED, "not started", T0)], closing_at=T0.isoformat())

    assert ledger.put_hosts([closed.move(HostState.APPLYING, "a late step", T0)]) == []
    assert ledger.all_hosts("r-1")[0].state is HostState.SKIPPED


def test_a_rollout_is_closed_once(aws):
    ledger = Ledger("ledger")
    ledger.create_rollout({"rollout_id": "r-1", "group": "web", "status": "rolling-out"})
    assert ledger.close_rollout("r-1", status="aborted", finished_at=T0.isoformat())
    assert not ledger.close_rollout("r-1", status="succeeded", finished_at=T0.isoformat())
    assert ledger.rollout("r-1")["status"] == "aborted"


# -- a send whose command id was never recorded --------------------------------------------------------------
CONFIG = UpdraftConfig.model_validate({"groups": [{"name": "web", "variant": "aws-ecs-2"}]})


APPLY = {"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runShellScript", "inputs": {"runCommand": ["true"]}}]}
DIGESTS = {Doc.APPLY: document_digest(APPLY)}


def env() -> Settings:
    documents = {d: f"doc-{d}" for d in Doc}
    return Settings(config=CONFIG, ledger_table="ledger", lock_table="locks", documents=documents, digests=DIGESTS)


@pytest.fixture
def apply_document(aws: None) -> None:
    """The apply document as deployed: it is read and checked before every send."""
    boto3.client("ssm").create_document(Name="doc-apply", Content=json.dumps(APPLY), DocumentType="Command")


def commands() -> list[dict[str, Any]]:
    return boto3.client("ssm").list_commands()["Commands"]


def test_a_retry_records_the_command_an_attempt_sent_and_sends_only_what_was_never_sent(apply_document, monkeypatch):
    ledger = Ledger("ledger")
    ledger.put_planned([host(f"i-{n}") for n in range(3)])
    steps = [start_apply(h, "apply sent", T0, POLICY) for h in ledger.all_hosts("r-1")]
    real_put = ledger.put_hosts

    def crash_on_command_ids(records: list[HostRecord], closing_at: str | None = None) -> list[HostRecord]:
        if any(record.command_id for record in records):
            raise RuntimeError("the function died before recording the command")
        return real_put(records, closing_at)

    monkeypatch.setattr(ledger, "put_hosts", crash_on_command_ids)
    with pytest.raises(RuntimeError):
        effects.carry_out(env(), ledger, steps[:2], POLICY, T0)  # i-0 and i-1 sent; i-2 not yet intended
    monkeypatch.setattr(ledger, "put_hosts", real_put)
    ledger.put_hosts([steps[2].record.intending(Doc.APPLY, send_key("r-1", Doc.APPLY, T0))])  # intended, never sent

    resumed = effects.resume_sends(env(), ledger, ledger.all_hosts("r-1"), POLICY)

    first, second = sorted(commands(), key=lambda c: len(c["InstanceIds"]), reverse=True)
    assert sorted(first["InstanceIds"]) == ["i-0", "i-1"] and second["InstanceIds"] == ["i-2"]
    assert first["Comment"] == second["Comment"] == ssm.comment("doc-apply", send_key("r-1", Doc.APPLY, T0))
    assert {h.instance_id: h.command_id for h in resumed} == {
        "i-0": first["CommandId"],
        "i-1": first["CommandId"],
        "i-2": second["CommandId"],
    }
    assert [h.command_id for h in ledger.all_hosts("r-1")] == [h.command_id for h in resumed]
    assert effects.resume_sends(env(), ledger, ledger.all_hosts("r-1"), POLICY) == ledger.all_hosts("r-1")
    assert len(commands()) == 2  # nothing is sent a second time


def test_a_second_run_of_a_step_sends_nothing_to_a_host_the_first_moved(apply_document):
    ledger = Ledger("ledger")
    ledger.put_planned([host("i-1")])
    read = ledger.all_hosts("r-1")
    effects.carry_out(env(), ledger, [start_apply(h, "apply sent", T0, POLICY) for h in read], POLICY, T0)

    stale = effects.carry_out(env(), ledger, [start_apply(h, "apply sent", T0, POLICY) for h in read], POLICY, T0)

    assert stale == [] and len(commands()) == 1


# -- the command lookup ----------------------------------------------------------------------------------
C1, C2, C3 = (f"{n}f2e3d4c-5b6a-4798-8a9b-0c1d2e3f4a5b" for n in "123")  # command ids are 36-character UUIDs


def test_sent_with_filters_by_document_and_time_and_matches_the_key_in_the_comment(monkeypatch):
    client = boto3.client(
        "ssm",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )
    monkeypatch.setattr(ssm, "client", lambda service: client)
    filters = [
        {"key": "DocumentName", "value": "doc-apply"},
        {"key": "InvokedAfter", "value": "2026-03-01T11:45:00Z"},  # the intent's time, less the margin
    ]
    page = {
        "Commands": [
            {"CommandId": C1, "Comment": ssm.comment("doc-apply", "k"), "InstanceIds": ["i-1", "i-2"]},
            {"CommandId": C2, "Comment": ssm.comment("doc-apply", "other"), "InstanceIds": ["i-3"]},
        ],
        "NextToken": "t",
    }
    last = {"Commands": [{"CommandId": C3, "Comment": ssm.comment("doc-apply", "k"), "InstanceIds": ["i-4"]}]}
    with Stubber(client) as stubbed:
        stubbed.add_response("list_commands", page, {"Filters": filters})
        stubbed.add_response("list_commands", last, {"Filters": filters, "NextToken": "t"})
        assert ssm.sent_with("doc-apply", "k", T0) == {"i-1": C1, "i-2": C1, "i-4": C3}


# -- a step's result, replayed ---------------------------------------------------------------------------
class Context:
    function_name = "step"
    aws_request_id = "req"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


def test_a_step_invoked_again_with_the_same_input_returns_its_first_result_and_a_failed_attempt_none(aws, monkeypatch):
    monkeypatch.setenv("LEDGER_TABLE", "ledger")
    runs: list[dict] = []

    @replayable
    def step(event: dict, context: Any) -> dict:
        runs.append(event)
        if event.get("fail") and runs.count(event) == 1:
            raise RuntimeError("died")
        return {"run": len(runs)}

    assert step({"now": "t1"}, Context()) == {"run": 1}
    assert step({"now": "t1"}, Context()) == {"run": 1}  # replayed from the ledger
    assert step({"now": "t2"}, Context()) == {"run": 2}  # another input: a step of its own
    with pytest.raises(RuntimeError):
        step({"now": "t3", "fail": True}, Context())
    assert step({"now": "t3", "fail": True}, Context()) == {"run": 4}  # the retry of a failed attempt runs
    stored = boto3.resource("dynamodb").Table("ledger").scan()["Items"]
    assert {item["pk"] for item in stored} == {f"IDEMPOTENCY#{__name__.rsplit('.', 1)[-1]}"}
