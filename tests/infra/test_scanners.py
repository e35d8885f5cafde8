"""checkov (pinned in requirements-scan.lock, in .venv-scan) on the synthesized template, for cdk.json's config
and for the one with every feature on.

Every finding must be fixed or suppressed by a row of stacks/scan.py, with a reason specific to this stack.
Each template is scanned as synthesized and with its checkov metadata removed: the first must fail nothing,
and every suppression the aspect wrote must be one checkov honoured (skipped) and one the second scan
reports as a finding; a suppression that covers no finding is stale.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stacks.scan import SUPPRESSIONS
from tests.infra.test_least_privilege import GENERIC_REASONS, synthesize_everything

CONFIGS = ("default", "everything")
# A check the ledger table passes (point-in-time recovery is on): suppressing it must be reported as stale.
PASSING = ("CKV_AWS_28", "AWS::DynamoDB::Table")
STALE = "stale"

Finding = tuple[str, str]  # (logical id, check id)


def unsuppressed(template: dict[str, Any]) -> dict[str, Any]:
    """A copy of `template` without the checkov metadata the aspect wrote."""
    stripped = copy.deepcopy(template)
    for resource in stripped["Resources"].values():
        resource.get("Metadata", {}).pop("checkov", None)
    return stripped


def with_stale_suppression(template: dict[str, Any]) -> dict[str, Any]:
    """A copy of `template` that also suppresses a check the ledger table passes."""
    stale = copy.deepcopy(template)
    check, kind = PASSING
    table = next(r for r in stale["Resources"].values() if r["Type"] == kind)
    table.setdefault("Metadata", {}).setdefault("checkov", {}).setdefault("skip", []).append(
        {"id": check, "comment": "point-in-time recovery suppressed to prove that stale suppressions are found"}
    )
    return stale


def written_skips(template: dict[str, Any]) -> dict[Finding, str]:
    """{(logical id, check id): reason} of every suppression in the template's metadata."""
    return {
        (logical_id, skip["id"]): skip.get("comment", "")
        for logical_id, resource in template["Resources"].items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }


def run_checkov(checkov: Path, directory: Path, files: dict[str, dict[str, Any]]) -> dict[str, dict[str, list]]:
    """One checkov run over `files` (name -> template); {name: {"failed": [...], "skipped": [...]}}."""
    for name, template in files.items():
        (directory / f"{name}.json").write_text(json.dumps(template, indent=1))
    command = [str(checkov), "--framework", "cloudformation", "--output", "json", "--skip-download"]
    for name in files:
        command += ["--file", f"{name}.json"]
    # Exit code 1 means failed checks, which the tests report one by one; the JSON is what they read.
    result = subprocess.run(command, cwd=directory, capture_output=True, text=True, timeout=600)
    assert result.returncode in (0, 1), result.stdout[-2000:] + result.stderr[-4000:]
    reports = json.loads(result.stdout)
    (report,) = reports if isinstance(reports, list) else [reports]
    assert report["summary"]["parsing_errors"] == 0, report["summary"]
    assert report["summary"]["passed"] > 0, report["summary"]
    by_file: dict[str, dict[str, list]] = {name: {"failed": [], "skipped": []} for name in files}
    for outcome in ("failed", "skipped"):
        for check in report["results"][f"{outcome}_checks"]:
            by_file[Path(check["file_path"]).stem][outcome].append(check)
    return by_file


def finding(check: dict[str, Any]) -> Finding:
    """(logical id, check id) of a checkov result, whose `resource` reads `AWS::Type.LogicalId`."""
    return check["resource"].split(".", 1)[1], check["check_id"]


def describe(check: dict[str, Any]) -> str:
    return f"{check['check_id']} on {check['resource']}: {check['check_name']}"


def suppression_problems(
    written: dict[Finding, str], scanned: dict[str, list], unsuppressed_scan: dict[str, list]
) -> list[str]:
    """What is wrong with a template's suppressions, given its scan and the scan of its unsuppressed copy."""
    skipped = {finding(check): check for check in scanned["skipped"]}
    findings = {finding(check): check for check in unsuppressed_scan["failed"]}
    problems = [f"not fixed nor suppressed in stacks/scan.py: {describe(check)}" for check in scanned["failed"]]
    problems += [
        f"suppressed in the template but not skipped by checkov: {check} on {logical_id}"
        for (logical_id, check) in sorted(written.keys() - skipped.keys())
    ]
    problems += [
        f"stale suppression (the check passes without it): {check} on {logical_id}: {written[(logical_id, check)]!r}"
        for (logical_id, check) in sorted(written.keys() - findings.keys())
    ]
    problems += [
        f"skipped without a reason of stacks/scan.py: {describe(skipped[key])}: {written.get(key)!r}"
        for key in sorted(skipped.keys())
        if written.get(key) not in {s.reason for s in SUPPRESSIONS if s.check == key[1]}
    ]
    return problems


@pytest.fixture(scope="module")
def templates(template, tmp_path_factory) -> dict[str, dict[str, Any]]:
    _, everything, _ = synthesize_everything(tmp_path_factory.mktemp("everything"))
    return {"default": dict(template), "everything": dict(everything)}


@pytest.fixture(scope="module")
def scans(checkov, templates, tmp_path_factory) -> dict[str, dict[str, list]]:
    """Each template scanned as synthesized and unsuppressed (`<name>-unsuppressed`), plus the stale copy."""
    files = {name: template for name, template in templates.items()}
    files |= {f"{name}-unsuppressed": unsuppressed(template) for name, template in templates.items()}
    files[STALE] = with_stale_suppression(templates["default"])
    return run_checkov(checkov, tmp_path_factory.mktemp("checkov"), files)


@pytest.mark.parametrize("name", CONFIGS)
def test_checkov_finds_nothing_unsuppressed(name, templates, scans):
    problems = suppression_problems(written_skips(templates[name]), scans[name], scans[f"{name}-unsuppressed"])
    assert problems == [], f"{name} template:\n" + "\n".join(problems)


def test_a_stale_suppression_is_reported(templates, scans):
    stale = with_stale_suppression(templates["default"])
    problems = suppression_problems(written_skips(stale), scans[STALE], scans["default-unsuppressed"])
    about_it = [problem for problem in problems if f"{PASSING[0]} on " in problem]
    assert len(about_it) == 2, problems  # stale, and its reason is none of stacks/scan.py's
    assert about_it[0].startswith(f"stale suppression (the check passes without it): {PASSING[0]} on Ledger")


def test_an_unsuppressed_finding_is_reported(templates, scans):
    problems = suppression_problems({}, scans["default-unsuppressed"], scans["default-unsuppressed"])
    assert problems and all(p.startswith("not fixed nor suppressed in stacks/scan.py: CKV_") for p in problems)
    assert any("CKV_AWS_117 on AWS::Lambda::Function." in p for p in problems), problems


def test_every_suppression_is_used(templates):
    used = {(check, reason) for t in templates.values() for (_, check), reason in written_skips(t).items()}
    unused = [(s.check, s.resource_type, s.path) for s in SUPPRESSIONS if (s.check, s.reason) not in used]
    assert unused == [], f"rows of stacks/scan.py that suppress nothing in either template: {unused}"


@pytest.mark.parametrize("suppression", SUPPRESSIONS, ids=lambda s: f"{s.check}-{s.resource_type}")
def test_every_reason_is_specific(suppression):
    reason = suppression.reason.strip()
    assert reason.lower().rstrip(".") not in GENERIC_REASONS, suppression
    assert len(reason.split()) >= 12, f"say why this holds for this stack: {suppression}"
    assert suppression.check.startswith("CKV_"), suppression
    assert sum(s.check == suppression.check and s.reason == reason for s in SUPPRESSIONS) == 1, suppression
