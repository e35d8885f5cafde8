"""The SSM documents against what real apiclient prints, run as the SSM agent runs them (`sh -c`, bash as sh).

The stand-in `apiclient` answers each command line with a transcript from `transcripts.py` (written from
Bottlerocket's source, independently of the simulated host), log lines on stderr included; `jq`, `mktemp`,
`tail` and the shell are the machine's own. Every report must be one the pipeline's parsers accept.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conformance.transcripts import HOSTS
from updraft.domain.reports import (
    ApplyReport,
    ErrorReport,
    InventoryReport,
    RollbackReport,
    VerifyReport,
    parse_report,
)

DOCUMENTS = Path(__file__).resolve().parents[2] / "ssm_documents"
PARAMETERS = {
    "apply": {"TargetVersion": "1.26.1"},
    "verify": {"ExpectedVersion": "1.26.1"},
    "rollback": {"PreviousVersion": "1.26.0"},
}
STANDIN = """#!/bin/sh
key="$*"
case $key in set\\ *) key=set ;; esac
printf '%s\\n' "$key" >>"$STANDIN/calls"
file="$STANDIN/$(printf '%s' "$key" | tr ' /.' '___')"
[ -f "$file.rc" ] || { echo "stand-in: no transcript for '$key'" >&2; exit 2; }
cat "$file.out"
cat "$file.err" >&2
exit "$(cat "$file.rc")"
"""


def script(doc: str) -> str:
    content = yaml.safe_load((DOCUMENTS / f"updraft-{doc}.yaml").read_text())
    lines = content["mainSteps"][0]["inputs"]["runCommand"]
    assert all(isinstance(line, str) for line in lines), "every runCommand item must be a string"
    text = "\n".join(lines)
    for name, value in PARAMETERS.get(doc, {}).items():
        text = text.replace("{{ " + name + " }}", value)
    return text + "\n"


def run(doc: str, state: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess, list[str]]:
    standin = tmp_path / "standin"
    standin.mkdir()
    (standin / "apiclient").write_text(STANDIN)
    (standin / "apiclient").chmod(0o755)
    for key, (rc, out, err) in HOSTS[state].items():
        stem = standin / key.replace(" ", "_").replace("/", "_").replace(".", "_")
        Path(f"{stem}.rc").write_text(str(rc))
        Path(f"{stem}.out").write_text(out)
        Path(f"{stem}.err").write_text(err)
    env = {"PATH": f"{standin}:{os.environ['PATH']}", "STANDIN": str(standin), "LC_ALL": "C"}
    # The agent writes the commands to a file and runs it with `sh -c`; on Amazon Linux 2, sh is bash in
    # POSIX mode. The detached reboot of apply and rollback is left running on its own.
    done = subprocess.run(
        ["bash", "--posix", "-c", script(doc)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    calls_file = standin / "calls"
    return done, calls_file.read_text().splitlines() if calls_file.exists() else []


STATES = ["fresh-boot", "idle", "available", "staged", "ready", "null-partitions"]


@pytest.mark.parametrize("state", STATES)
def test_inventory_reports_every_state(state: str, tmp_path: Path) -> None:
    done, _ = run("inventory", state, tmp_path)
    report = parse_report("inventory", done.stdout)
    assert isinstance(report, InventoryReport), done.stdout
    assert (done.returncode, done.stderr) == (0, "")
    expected_state = {"fresh-boot": "Available", "null-partitions": "Idle"}.get(state, state.capitalize())
    assert report.update_state == expected_state
    assert report.activated == ("1.26.1" if state == "ready" else None)


@pytest.mark.parametrize("state", STATES)
def test_verify_reports_every_state(state: str, tmp_path: Path) -> None:
    done, _ = run("verify", state, tmp_path)
    report = parse_report("verify", done.stdout)
    assert isinstance(report, VerifyReport), done.stdout
    on_target = state in ("idle", "null-partitions")
    assert (report.result, done.returncode) == (("ok", 0) if on_target else ("mismatch", 1))
    assert report.version_lock == "1.26.1"


@pytest.mark.parametrize(
    ("state", "result", "reboots"),
    [
        ("available", "rebooting", True),
        ("staged", "rebooting", True),
        ("ready", "rebooting", True),
        ("idle", "already-current", False),
    ],
)
def test_apply_stages_then_reboots_detached(state: str, result: str, reboots: bool, tmp_path: Path) -> None:
    done, calls = run("apply", state, tmp_path)
    report = parse_report("apply", done.stdout)
    assert isinstance(report, ApplyReport), done.stdout
    assert (report.result, done.returncode) == (result, 0)
    if reboots:
        assert calls[:4] == ["get os", "set", "update apply --check", "raw -u /updates/status"]


@pytest.mark.parametrize(
    ("state", "stage", "says"),
    [
        ("prepare-fails", "apply", "No space left on device (os error 28)"),
        ("fresh-boot", "status", "Status 404 when GETing /updates/status"),
        ("garbled-os", "parse-os", "not a JSON object"),
    ],
)
def test_apply_failures_name_their_stage(state: str, stage: str, says: str, tmp_path: Path) -> None:
    done, calls = run("apply", state, tmp_path)
    report = parse_report("apply", done.stdout)
    assert isinstance(report, ErrorReport), done.stdout
    assert (report.stage, done.returncode) == (stage, 1)
    assert says in report.error
    assert "reboot" not in calls


def test_a_failing_stage_reports_the_end_of_the_log_not_the_status_json(tmp_path: Path) -> None:
    done, _ = run("apply", "prepare-fails", tmp_path)
    report = parse_report("apply", done.stdout)
    assert isinstance(report, ErrorReport)
    assert report.error.splitlines()[-1].startswith("Failed to apply update: Failed to prepare update.")
    assert '"update_state"' not in report.error
    assert "[INFO]" not in report.error  # the log lines stay out of the report


def test_rollback_before_the_reboot_cancels(tmp_path: Path) -> None:
    done, calls = run("rollback", "ready", tmp_path)
    report = parse_report("rollback", done.stdout)
    assert isinstance(report, RollbackReport) and report.result == "restored", done.stdout
    assert "update cancel" in calls and "update apply --check" not in calls


def test_rollback_after_the_update_stages_the_previous_version(tmp_path: Path) -> None:
    done, calls = run("rollback", "updated", tmp_path)
    report = parse_report("rollback", done.stdout)
    assert isinstance(report, RollbackReport) and report.result == "rebooting", done.stdout
    assert calls[:5] == ["get os", "update check", "set", "update apply --check", "raw -u /updates/status"]


@pytest.mark.parametrize("doc", ["inventory", "verify", "apply", "rollback"])
def test_reports_fit_the_plugin_output_that_list_command_invocations_returns(doc: str, tmp_path: Path) -> None:
    # CommandPlugin.Output holds 2,500 characters (SSM API reference): the report is the last line of stdout.
    done, _ = run(doc, "prepare-fails" if doc == "apply" else "available", tmp_path)
    assert len(done.stdout) + len(done.stderr) < 2500
