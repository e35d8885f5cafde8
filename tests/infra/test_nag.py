"""cdk-nag's AwsSolutions pack: synth fails on any finding, so a synthesized template already means a pass.
These tests check the audit trail: every acknowledgement names one finding, says why, and is still needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ACKNOWLEDGED = "aws:cdk:acknowledged-rules"
# Findings a rule can only make once on the construct, so acknowledging the rule hides nothing else: the
# failed-deliveries queue is itself a dead-letter queue, through EventBridge targets and Lambda destinations,
# which AwsSolutions-SQS3 does not look at (it knows only queue redrive policies and function DLQs).
WHOLE_RULE = {("/Updraft/FailedDeliveries/Queue", "AwsSolutions::AwsSolutions-SQS3")}


@pytest.fixture(scope="module")
def plugin_reports(template, assembly: Path) -> dict[str, dict[str, Any]]:
    """Validation plugin reports by plugin name: cdk-nag's, and any CDK adds (it validates templates too)."""
    reports = json.loads((assembly / "validation-report.json").read_text())["pluginReports"]
    return {report["pluginName"]: report for report in reports}


@pytest.fixture(scope="module")
def report(plugin_reports) -> dict[str, Any]:
    return plugin_reports["AwsSolutions"]


@pytest.fixture(scope="module")
def acknowledgements(template, assembly: Path) -> dict[tuple[str, str], str]:
    """{(construct path, acknowledged id): reason} from the stack's metadata."""
    metadata = json.loads((assembly / "Updraft.metadata.json").read_text())
    return {
        (path, finding): reason
        for path, entries in metadata.items()
        for entry in entries
        if entry["type"] == ACKNOWLEDGED
        for finding, reason in entry["data"].items()
    }


def test_aws_solutions_checks_pass(report):
    assert report["conclusion"] == "success"
    assert report["violations"] == []


def test_no_validation_plugin_reports_anything(plugin_reports):
    for name, report in plugin_reports.items():
        assert report["violations"] == [], name


def test_every_acknowledgement_has_a_reason(acknowledgements):
    assert acknowledgements
    for (path, finding), reason in acknowledgements.items():
        assert len(reason.strip()) > 20, (path, finding)


def test_acknowledgements_name_single_findings(acknowledgements):
    # A bare rule id would hide every future finding of that rule on the construct.
    for path, finding in acknowledgements:
        assert finding.startswith("AwsSolutions::AwsSolutions-")
        assert finding.endswith("]") or (path, finding) in WHOLE_RULE, finding


def test_no_acknowledgement_is_stale(report, acknowledgements):
    used = {
        ("/" + suppressed["acknowledgedAt"], suppressed["acknowledgedId"])
        for suppressed in report["suppressedViolations"]
    }
    assert set(acknowledgements) == used


def test_only_wildcard_resource_findings_are_acknowledged(acknowledgements):
    for path, finding in acknowledgements:
        assert finding.startswith("AwsSolutions::AwsSolutions-IAM5[Resource::") or (path, finding) in WHOLE_RULE, (
            finding
        )
