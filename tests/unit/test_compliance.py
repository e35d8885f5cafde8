"""Bottlerocket currency as SSM compliance: the item each host's record (or its skip at planning) makes, and the
ledger decorator that reports them after the writes that matter."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sim import service_limits
from tests.steps.memory import Memory
from updraft.adapters.compliance import ComplianceReportingLedger
from updraft.config import GroupPolicy
from updraft.domain import compliance
from updraft.domain.compliance import ComplianceItem, Severity, Status, host_item, skipped_item
from updraft.domain.host_actions import Invocation
from updraft.domain.host_record import FINAL, HostRecord, HostState
from updraft.domain.planning import plan_hosts, skipped_host
from updraft.domain.rollout_record import Rollout
from updraft.ports import RolloutLedger

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def warnings_heard(caplog: pytest.LogCaptureFixture) -> None:
    """The adapter's warnings are captured, whatever level a simulated Lambda run before set on the logger."""
    caplog.set_level(logging.WARNING, logger="updraft")
PREV, TARGET = "1.26.0", "1.26.1"
POLICY = GroupPolicy(name="web", variant="aws-ecs-2")
ROLLOUT = Rollout("r-1", "web", TARGET)
BOOT = "3f2b8c1e-52aa-4c7e-9d01-6b1f0a9e4c21"


def planned(instance_id: str = "i-1", wave: int = 0) -> HostRecord:
    return HostRecord(
        rollout_id="r-1",
        instance_id=instance_id,
        az="us-east-1a",
        wave=wave,
        previous_version=PREV,
        target_version=TARGET,
        note="planned",
        updated_at=T0.isoformat(),
    )


def reached(state: HostState, note: str = "", at: datetime = T0 + timedelta(minutes=5), **changes) -> HostRecord:
    return planned(**changes).move(state, note or f"now {state}", at)


# -- the item of a host of the ledger -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("state", "status", "running", "severity"),
    [
        (HostState.UPDATED, Status.COMPLIANT, TARGET, Severity.INFORMATIONAL),
        (HostState.ROLLED_BACK, Status.NON_COMPLIANT, PREV, Severity.MEDIUM),
        (HostState.SKIPPED, Status.NON_COMPLIANT, PREV, Severity.LOW),
        (HostState.ROLLBACK_FAILED, Status.NON_COMPLIANT, "unknown", Severity.CRITICAL),
        (HostState.NEEDS_ATTENTION, Status.NON_COMPLIANT, "unknown", Severity.HIGH),
    ],
)
def test_a_final_host_is_compliant_only_once_updated(state, status, running, severity):
    item = host_item(reached(state, "why it ended there"), fallback=T0)

    assert (item.status, item.running, item.severity) == (status, running, severity)
    assert item.details() == {
        "RunningVersion": running,
        "TargetVersion": TARGET,
        "RolloutId": "r-1",
        "HostState": str(state),
        "Reason": "why it ended there",
    }
    assert item.at == T0 + timedelta(minutes=5)  # the step's clock when it got there, not the fallback


def test_every_final_state_has_a_severity_of_its_own():
    assert set(compliance.SEVERITY) == FINAL | {HostState.PENDING}


def test_a_planned_host_is_behind_on_its_previous_version_from_the_plan_s_clock():
    item = host_item(planned(), fallback=T0 - timedelta(days=1))

    assert (item.status, item.running, item.state, item.reason) == (Status.NON_COMPLIANT, PREV, "pending", "planned")
    assert item.at == T0


def test_the_request_is_one_complete_item_under_the_custom_type():
    request = host_item(reached(HostState.UPDATED, "verified"), fallback=T0).request()

    assert request["ResourceId"] == "i-1"
    assert request["ResourceType"] == "ManagedInstance"
    assert request["ComplianceType"] == "Custom:BottlerocketRelease"
    assert request["UploadType"] == "COMPLETE"
    assert request["ExecutionSummary"] == {
        "ExecutionTime": T0 + timedelta(minutes=5),
        "ExecutionId": "r-1",
        "ExecutionType": "Custom:Updraft",
    }
    (entry,) = request["Items"]
    assert (entry["Id"], entry["Status"], entry["Severity"]) == ("BottlerocketRelease", "COMPLIANT", "INFORMATIONAL")
    assert entry["Title"] == f"Bottlerocket {TARGET} (target {TARGET})"
    service_limits.check_put_compliance_items(request)


def test_the_content_hash_is_the_sha256_of_what_the_item_says_not_of_when():
    first = host_item(reached(HostState.ROLLED_BACK, "verify failed", at=T0), fallback=T0)
    again = host_item(reached(HostState.ROLLED_BACK, "verify failed", at=T0 + timedelta(hours=1)), fallback=T0)
    other = host_item(reached(HostState.ROLLED_BACK, "health check failed", at=T0), fallback=T0)

    text = json.dumps(first.content(), sort_keys=True, separators=(",", ":"))
    assert first.content_hash == hashlib.sha256(text.encode()).hexdigest()
    assert first.request()["ItemContentHash"] == first.content_hash
    assert again.content_hash == first.content_hash  # a repeat: SSM ignores it and keeps the first time
    assert other.content_hash != first.content_hash


@settings(max_examples=100, derandomize=True, deadline=None)
@given(note=st.text(max_size=6000), rollout_id=st.text(min_size=1, max_size=160))
@example(note="x" * 5000, rollout_id="r" * 101)
def test_every_item_stays_inside_the_api_s_limits(note: str, rollout_id: str):
    record = reached(HostState.NEEDS_ATTENTION, note or "-").model_copy(update={"rollout_id": rollout_id})
    request = host_item(record, fallback=T0).request()

    service_limits.check_put_compliance_items(request)  # the simulation's copy of the model's constraints
    assert len(request["Items"][0]["Details"]["Reason"]) <= 4096
    assert len(request["ExecutionSummary"]["ExecutionId"]) <= 100


# -- the item of a host the plan left out -----------------------------------------------------------------------
def inventory(version: str, variant: str = "aws-ecs-2", state: str = "Available") -> Invocation:
    report = {
        "doc": "inventory",
        "result": "ok",
        "version": version,
        "variant": variant,
        "arch": "x86_64",
        "boot_id": BOOT,
        "update_state": state,
        "available": [TARGET, PREV],
    }
    return Invocation(status="Success", stdout=json.dumps(report))


def test_the_plan_s_skips_carry_the_version_the_target_and_when():
    reports = {
        "i-current": inventory(TARGET),
        "i-other": inventory(TARGET, variant="aws-k8s-1.31"),
        "i-broken": Invocation(status="Success", stdout="not json"),
        "i-behind": inventory(PREV),
    }
    zones = dict.fromkeys(reports, "us-east-1a")

    plan = plan_hosts(ROLLOUT, POLICY, reports, zones, None, T0)

    skipped = {host["instance_id"]: host for host in plan.skipped}
    assert skipped["i-current"] == {
        "instance_id": "i-current",
        "az": "us-east-1a",
        "state": "skipped",
        "note": f"already on {TARGET}",
        "version": TARGET,
        "target_version": TARGET,
        "skipped_at": T0.isoformat(),
    }
    assert skipped["i-other"]["version"] == TARGET
    assert "version" not in skipped["i-broken"]  # its output was no report: the version is not known
    assert [host.instance_id for host in plan.hosts] == ["i-behind"]


def test_a_rollback_s_skips_carry_each_host_s_own_target_and_the_version_inventoried():
    reports = {"i-moved": inventory("1.25.0"), "i-untouched": inventory(PREV)}
    targets = {"i-moved": (TARGET, PREV)}  # the rolled-back rollout took it from PREV to TARGET

    plan = plan_hosts(Rollout("r-2", "web", PREV), POLICY, reports, dict.fromkeys(reports, "a"), targets, T0)

    skipped = {host["instance_id"]: host for host in plan.skipped}
    assert (skipped["i-moved"]["version"], skipped["i-moved"]["target_version"]) == ("1.25.0", PREV)
    assert skipped["i-untouched"]["note"] == "not updated by the rollout being rolled back"
    assert skipped["i-untouched"]["version"] == PREV  # inventoried, though the verdict did not need it


def test_only_a_host_already_on_the_target_is_current():
    current = skipped_item("r-1", skipped_host("i-1", "a", f"already on {TARGET}", TARGET, TARGET, T0), TARGET, T0)
    other = skipped_item("r-1", skipped_host("i-2", "a", "runs aws-k8s-1.31/x86_64", TARGET, TARGET, T0), TARGET, T0)

    assert (current.status, current.severity) == (Status.COMPLIANT, Severity.INFORMATIONAL)
    assert (other.status, other.severity) == (Status.NON_COMPLIANT, Severity.LOW)


def test_an_offline_host_is_behind_with_its_version_unknown_at_the_rollout_s_time():
    offline = skipped_host("i-9", "us-east-1b", "SSM agent not online")  # as the inventory step makes it
    item = skipped_item("r-1", offline, TARGET, fallback=T0)

    assert offline == {"instance_id": "i-9", "az": "us-east-1b", "state": "skipped", "note": "SSM agent not online"}
    assert (item.status, item.running, item.target, item.at) == (Status.NON_COMPLIANT, "unknown", TARGET, T0)
    service_limits.check_put_compliance_items(item.request())


# -- the ledger that reports what it writes ---------------------------------------------------------------------
class Recorder:
    def __init__(self, fail: set[str] = frozenset()) -> None:
        self.sent: list[ComplianceItem] = []
        self.fail = fail

    def __call__(self, item: ComplianceItem) -> None:
        if item.instance_id in self.fail:
            raise RuntimeError(f"refused {item.instance_id}")
        self.sent.append(item)

    def said(self) -> dict[str, tuple[str, str]]:
        return {item.instance_id: (str(item.status), item.state) for item in self.sent}


def reporting(
    put: Recorder, calls: int = 1000, memory: Memory | None = None
) -> tuple[ComplianceReportingLedger, Memory]:
    """A step's ledger (one is built per step) over the rollout `r-1`, as the plan recorded it."""
    if memory is None:
        memory = Memory()
        rollout = {"rollout_id": "r-1", "group": "web", "status": "planning", "target_version": TARGET}
        memory.ledger.create_rollout(rollout | {"started_at": T0.isoformat()})
    return ComplianceReportingLedger(memory.ledger, put, calls), memory


def test_every_method_of_the_ledger_protocol_is_the_ledger_s():
    methods = {name for name in vars(RolloutLedger) if not name.startswith("_")}
    ledger, memory = reporting(Recorder())

    for name in methods:
        assert callable(getattr(ledger, name)), name
    assert ledger.rollout("r-1") == memory.ledger.rollout("r-1")
    ledger.update_rollout("r-1", status="rolling-out")
    assert memory.ledger.rollout("r-1")["status"] == "rolling-out"
    assert ledger.claim_automatic("web", TARGET, "arn:a", T0.isoformat())
    assert not memory.ledger.claim_automatic("web", TARGET, "arn:b", T0.isoformat())


def test_planned_hosts_are_reported_behind_and_only_final_writes_after():
    put = Recorder()
    ledger, _ = reporting(put)
    ledger.put_planned([planned("i-1"), planned("i-2")])
    assert put.said() == {"i-1": ("NON_COMPLIANT", "pending"), "i-2": ("NON_COMPLIANT", "pending")}

    one, two = ledger.all_hosts("r-1")
    put.sent.clear()
    ledger.put_hosts([one.move(HostState.APPLYING, "apply sent", T0)])  # in flight: nothing to say yet
    assert put.sent == []
    (applying,) = ledger.wave_hosts("r-1", 0)[:1]
    ledger.put_hosts([applying.move(HostState.UPDATED, "verified", T0), two.move(HostState.SKIPPED, "halted", T0)])
    assert put.said() == {"i-1": ("COMPLIANT", "updated"), "i-2": ("NON_COMPLIANT", "skipped")}


def test_a_write_the_ledger_refused_is_not_reported():
    put = Recorder()
    ledger, _ = reporting(put)
    ledger.put_planned([planned("i-1")])
    (read,) = ledger.all_hosts("r-1")
    ledger.put_hosts([read.move(HostState.APPLYING, "apply sent", T0)])
    put.sent.clear()

    assert ledger.put_hosts([read.move(HostState.SKIPPED, "an older read", T0)]) == []  # stale: left out
    assert put.sent == []


def test_the_settlement_s_closing_rewrite_costs_a_call_only_for_hosts_it_moves():
    put = Recorder()
    ledger, memory = reporting(put)
    ledger.put_planned([planned("i-1"), planned("i-2")])
    one, _ = ledger.all_hosts("r-1")
    ledger.put_hosts([one.move(HostState.UPDATED, "verified", T0)])
    settling, _ = reporting(put, memory=memory)  # the settlement is a step of its own
    put.sent.clear()

    hosts = settling.all_hosts("r-1")
    closing = [host if host.final else host.move(HostState.SKIPPED, "not started", T0) for host in hosts]
    settling.put_hosts(closing, closing_at=T0.isoformat())
    settling.put_hosts(closing[:1], closing_at=T0.isoformat())  # a second round: the same words again

    assert put.said() == {"i-2": ("NON_COMPLIANT", "skipped")}


def test_a_failed_report_is_logged_and_counted_and_the_write_stands(caplog, capsys, monkeypatch):
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    put = Recorder(fail={"i-2"})
    ledger, memory = reporting(put)
    ledger.rollout("r-1")

    ledger.put_planned([planned("i-1"), planned("i-2")])

    assert [h.instance_id for h in memory.ledger.all_hosts("r-1")] == ["i-1", "i-2"]
    assert put.said() == {"i-1": ("NON_COMPLIANT", "pending")}
    assert "compliance not reported to SSM for 1 host(s)" in caplog.text and "refused i-2" in caplog.text
    (metric,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "ComplianceNotReported" in line]
    assert metric["ComplianceNotReported"] == [1.0] and metric["group"] == "web" and metric["service"] == "updraft"
    assert metric["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Updraft"


def test_a_step_makes_at_most_its_budget_of_calls_and_counts_the_rest(caplog):
    put = Recorder()
    ledger, _ = reporting(put, calls=2)

    ledger.put_planned([planned(f"i-{n}") for n in range(3)])

    assert len(put.sent) == 2
    assert "not reported to SSM for 1 host(s)" in caplog.text


def test_skipped_hosts_take_the_rollout_s_target_and_start_where_they_say_none():
    put = Recorder()
    ledger, _ = reporting(put)

    ledger.put_skipped("r-1", [skipped_host("i-9", "a", "SSM agent not online")])
    ledger.put_skipped("r-1", [skipped_host("i-8", "a", f"already on {TARGET}", TARGET, TARGET, T0 + timedelta(1))])

    offline, current = put.sent
    assert (offline.status, offline.running, offline.target, offline.at) == ("NON_COMPLIANT", "unknown", TARGET, T0)
    assert (current.status, current.at) == ("COMPLIANT", T0 + timedelta(1))


def test_a_repeat_in_the_same_step_is_not_sent_twice():
    put = Recorder()
    ledger, _ = reporting(put)
    ledger.put_planned([planned("i-1")])
    ledger.put_planned([planned("i-1")])  # a retried write of the same plan

    assert len(put.sent) == 1
