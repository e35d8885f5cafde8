"""The metrics the rollout's handlers publish (CloudWatch embedded metric format on standard output)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from updraft.errors import DocumentChanged
from updraft.handlers import apply_wave, check_hosts, check_release, finish, halt, start_inventory

ROLLOUT = {"rollout_id": "r-1", "group": "web", "target_version": "1.27.0"}
EVENT = {"rollout": ROLLOUT, "now": "2030-01-01T00:00:00+00:00", "wave": 1, "scope": "wave"}
CONTEXT = SimpleNamespace(
    function_name="check",
    memory_limit_in_mb=512,
    invoked_function_arn="arn:aws:lambda:::function:x",
    aws_request_id="1",
)


@pytest.fixture(autouse=True)
def powertools_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Updraft")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "updraft")
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.setenv("POWERTOOLS_IDEMPOTENCY_DISABLED", "true")  # no ledger here: every call runs the handler


def published(output: str) -> dict[str, tuple[float, str, dict[str, str]]]:
    """{metric name: (value, unit, dimensions)} from the EMF lines a handler printed."""
    metrics = {}
    for line in output.splitlines():
        blob = json.loads(line) if line.startswith("{") else {}
        for directive in blob.get("_aws", {}).get("CloudWatchMetrics", []):
            (dimensions,) = directive["Dimensions"]
            assert directive["Namespace"] == "Updraft"
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                metrics[metric["Name"]] = (
                    value[0] if isinstance(value, list) else value,
                    metric["Unit"],
                    {d: blob[d] for d in dimensions},
                )
    return metrics


def run(monkeypatch, module: Any, step: str, result: dict, capsys) -> dict:
    monkeypatch.setattr(module, "settings", lambda: None)
    monkeypatch.setattr(module.flow, step, lambda *args: result)
    module.handler(dict(EVENT), CONTEXT)
    return published(capsys.readouterr().out)


def test_a_gated_wave_counts_its_hosts_its_failures_and_its_duration(monkeypatch, capsys):
    progress = {
        "done": True,
        "states": {"updated": 4, "rolled-back": 1, "rollback-failed": 1},
        "failures": 2,
        "verdict": "continue",
        "reason": "within budget",
        "wave_duration_seconds": 840,
    }
    metrics = run(
        monkeypatch, check_hosts, "check_hosts", {"rollout": ROLLOUT, "wave": 1, "progress": progress}, capsys
    )
    group = {"group": "web", "service": "updraft"}
    assert metrics == {
        "HostsUpdated": (4.0, "Count", group),
        "HostsRolledBack": (1.0, "Count", group),
        "HostsRollbackFailed": (1.0, "Count", group),
        "HostsFailed": (2.0, "Count", group),
        "WaveDurationSeconds": (840.0, "Seconds", group),
    }


def test_a_scope_still_running_publishes_nothing(monkeypatch, capsys):
    progress = {"done": False, "states": {"applying": 3}, "failures": 0, "next_poll_seconds": 30}
    assert (
        run(monkeypatch, check_hosts, "check_hosts", {"rollout": ROLLOUT, "wave": 1, "progress": progress}, capsys)
        == {}
    )


def test_a_scope_without_a_gate_has_no_failure_count_or_duration(monkeypatch, capsys):
    progress = {"done": True, "states": {"rolled-back": 3}, "failures": 1, "next_poll_seconds": 30}
    metrics = run(
        monkeypatch, check_hosts, "check_hosts", {"rollout": ROLLOUT, "wave": 1, "progress": progress}, capsys
    )
    assert set(metrics) == {"HostsUpdated", "HostsRolledBack", "HostsRollbackFailed"}


@pytest.mark.parametrize(
    ("outcome", "metric"),
    [
        ("succeeded", "RolloutsSucceeded"),
        ("nothing-to-do", "RolloutsSucceeded"),
        ("halted", "RolloutsHalted"),
        ("failed", "RolloutsFailed"),
        ("timed-out", "RolloutsFailed"),
        ("aborted", "RolloutsAborted"),
    ],
)
def test_finish_counts_the_rollout_by_its_outcome(monkeypatch, capsys, outcome, metric):
    result = {"rollout": ROLLOUT, "outcome": outcome, "summary": {"updated": 3}}
    metrics = run(monkeypatch, finish, "finish", result, capsys)
    assert metrics == {metric: (1.0, "Count", {"group": "web", "service": "updraft"})}


def test_an_announcement_the_detector_did_not_make_is_counted(monkeypatch, capsys):
    monkeypatch.setattr(check_release, "settings", lambda: None)
    forged = {"request": {"group": "web", "target_version": "1.27.0"}, "verdict": "forged", "reason": "never verified"}
    monkeypatch.setattr(check_release.flow, "check_release", lambda *args: forged)
    event = {"request": forged["request"], "execution_id": "arn:x", "now": EVENT["now"]}
    assert check_release.handler(event, CONTEXT)["verdict"] == "forged"
    assert published(capsys.readouterr().out) == {"ForgedRelease": (1.0, "Count", {"service": "updraft"})}


def test_an_announcement_the_policy_judges_is_not_counted_as_forged(monkeypatch, capsys):
    monkeypatch.setattr(check_release, "settings", lambda: None)
    waiting = {"request": {}, "verdict": "wait", "reason": "soaks", "wait_seconds": 60}
    monkeypatch.setattr(check_release.flow, "check_release", lambda *args: waiting)
    check_release.handler({"request": {}, "execution_id": "arn:x", "now": EVENT["now"]}, CONTEXT)
    assert "ForgedRelease" not in published(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("module", "step"),
    [(start_inventory, "start_inventory"), (apply_wave, "apply_wave"), (check_hosts, "check_hosts"), (halt, "halt")],
)
def test_a_refused_document_is_counted_and_fails_the_step(monkeypatch, capsys, module, step):
    def refuse(*args):
        raise DocumentChanged("SSM document Updraft-apply version 2 (its default) has SHA-256 b..., deployed a...")

    monkeypatch.setattr(module, "settings", lambda: None)
    monkeypatch.setattr(module.flow, step, refuse)
    with pytest.raises(DocumentChanged):
        module.handler(dict(EVENT), CONTEXT)
    # The documents are the stack's, not a group's: one series for the alarm to watch.
    assert published(capsys.readouterr().out) == {"DocumentChanged": (1.0, "Count", {"service": "updraft"})}
