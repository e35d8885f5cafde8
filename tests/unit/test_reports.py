"""Strict parsing of the one-line JSON reports the SSM documents print."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from updraft.domain.reports import (
    ApplyReport,
    ErrorReport,
    HealthReport,
    InventoryReport,
    Report,
    RollbackReport,
    VerifyReport,
    parse_report,
)
from updraft.errors import MalformedCommandOutput

BOOT = "3f2b8c1e-52aa-4c7e-9d01-6b1f0a9e4c21"

VALID = {
    "inventory": {
        "doc": "inventory",
        "result": "ok",
        "version": "1.26.0",
        "variant": "aws-ecs-2",
        "arch": "x86_64",
        "boot_id": BOOT,
        "update_state": "Available",
        "available": ["1.26.1", "1.26.0"],
    },
    "apply": {
        "doc": "apply",
        "result": "rebooting",
        "previous_version": "1.26.0",
        "target_version": "1.26.1",
        "boot_id": BOOT,
    },
    "verify": {
        "doc": "verify",
        "result": "ok",
        "version": "1.26.1",
        "expected_version": "1.26.1",
        "boot_id": BOOT,
        "update_state": "Idle",
        "active_version": "1.26.1",
        "version_lock": "1.26.1",
    },
    "rollback": {
        "doc": "rollback",
        "result": "rebooting",
        "previous_version": "1.26.0",
        "from_version": "1.26.1",
        "boot_id": BOOT,
    },
    "health": {
        "doc": "health",
        "result": "unhealthy",
        "exit_code": 1,
        "timeout_seconds": 120,
        "output": "app: 2 of 3 containers unhealthy\n",
    },
}
TYPES = {
    "inventory": InventoryReport,
    "apply": ApplyReport,
    "verify": VerifyReport,
    "rollback": RollbackReport,
    "health": HealthReport,
}
DOCS = sorted(VALID)


def line(data: object) -> str:
    return json.dumps(data, separators=(",", ":")) + "\n"


def malformed(doc: str, stdout: str) -> str:
    with pytest.raises(MalformedCommandOutput) as caught:
        parse_report(doc, stdout)
    message = str(caught.value)
    assert message.startswith(f"{doc}: "), f"the message does not name the document: {message}"
    return message


@pytest.mark.parametrize("doc", DOCS)
def test_valid_report_of_each_document_parses_to_its_type(doc: str) -> None:
    report = parse_report(doc, line(VALID[doc]))
    assert isinstance(report, TYPES[doc])
    assert report.model_dump(exclude_unset=True) == VALID[doc]


@pytest.mark.parametrize("doc", DOCS)
def test_error_report_of_each_document_parses(doc: str) -> None:
    report = parse_report(doc, line({"doc": doc, "result": "error", "stage": "get-os", "error": "Status 500"}))
    assert isinstance(report, ErrorReport)
    assert (report.stage, report.error) == ("get-os", "Status 500")


def test_apply_already_current_and_rollback_restored_parse() -> None:
    current = {**VALID["apply"], "result": "already-current", "previous_version": "1.26.1"}
    assert parse_report("apply", line(current)).result == "already-current"
    restored = {"doc": "rollback", "result": "restored", "previous_version": "1.26.0", "boot_id": BOOT}
    report = parse_report("rollback", line(restored))
    assert isinstance(report, RollbackReport)
    assert report.from_version is None


def test_verify_mismatch_with_no_active_partition_version_parses() -> None:
    report = parse_report("verify", line({**VALID["verify"], "result": "mismatch", "active_version": None}))
    assert isinstance(report, VerifyReport)
    assert (report.result, report.active_version) == ("mismatch", None)


def test_last_non_empty_line_is_the_report_and_earlier_lines_are_ignored() -> None:
    stdout = "warning: apiclient is slow today\n{not json either\n" + line(VALID["apply"]) + "\n   \n"
    assert isinstance(parse_report("apply", stdout), ApplyReport)


def test_a_valid_report_followed_by_a_warning_is_malformed() -> None:
    message = malformed("apply", line(VALID["apply"]) + "warning: trailing noise\n")
    assert "not JSON" in message


@pytest.mark.parametrize("stdout", ["", "\n\n  \n", None])
def test_empty_output_is_malformed(stdout: str | None) -> None:
    assert "printed no report" in malformed("verify", stdout)  # type: ignore[arg-type]


def test_non_json_output_is_malformed_and_quotes_the_line() -> None:
    message = malformed("apply", "Status 409 when POSTing /actions/prepare-update\n")
    assert "not JSON" in message
    assert "Status 409" in message


def test_report_of_another_document_is_malformed() -> None:
    message = malformed("apply", line(VALID["verify"]))
    assert "expected a report of document 'apply'" in message


@pytest.mark.parametrize("data", [[VALID["apply"]], "apply", 42, None])
def test_json_that_is_not_an_object_is_malformed(data: object) -> None:
    assert "expected a report of document 'apply'" in malformed("apply", line(data))


@pytest.mark.parametrize(("doc", "field"), [("apply", "boot_id"), ("verify", "version_lock"), ("inventory", "arch")])
def test_missing_field_is_malformed_and_named(doc: str, field: str) -> None:
    data = {key: value for key, value in VALID[doc].items() if key != field}
    assert field in malformed(doc, line(data))


def test_extra_field_is_malformed_and_named() -> None:
    assert "surprise" in malformed("apply", line({**VALID["apply"], "surprise": 1}))


@pytest.mark.parametrize("version", ["1.26", "v1.26.1", "1.26.1-d93bb1b1", "latest", ""])
def test_bad_version_string_is_malformed(version: str) -> None:
    assert "target_version" in malformed("apply", line({**VALID["apply"], "target_version": version}))


@pytest.mark.parametrize("state", ["Done", "ready", "", None])
def test_unknown_update_state_is_malformed(state: str | None) -> None:
    assert "update_state" in malformed("verify", line({**VALID["verify"], "update_state": state}))


def test_unknown_result_is_malformed() -> None:
    assert "result" in malformed("apply", line({**VALID["apply"], "result": "maybe"}))


def test_too_short_boot_id_is_malformed() -> None:
    assert "boot_id" in malformed("verify", line({**VALID["verify"], "boot_id": "abc"}))


@pytest.mark.parametrize("separator", ["\u2028", "\x85"])
def test_report_whose_text_contains_a_unicode_line_separator_still_parses(separator: str) -> None:
    data = {"doc": "apply", "result": "error", "stage": "apply", "error": f"first{separator}second"}
    stdout = json.dumps(data, ensure_ascii=False) + "\n"  # how jq -c prints it
    report = parse_report("apply", stdout)
    assert isinstance(report, ErrorReport)
    assert report.error == f"first{separator}second"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


@st.composite
def near_reports(draw: st.DrawFn) -> tuple[str, str]:
    """A document's valid report with some fields dropped, changed or added."""
    doc = draw(st.sampled_from(DOCS))
    data = dict(VALID[doc])
    for key in draw(st.lists(st.sampled_from(sorted(data)), max_size=3)):
        data.pop(key, None)
    data.update(draw(st.dictionaries(st.sampled_from([*sorted(VALID[doc]), "extra"]), json_values, max_size=3)))
    prefix = draw(st.text(max_size=30))
    return draw(st.sampled_from(DOCS)), prefix + "\n" + json.dumps(data)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.one_of(st.tuples(st.sampled_from(DOCS), st.text()), near_reports()))
def test_any_output_is_a_report_or_malformed_never_another_error(case: tuple[str, str]) -> None:
    doc, stdout = case
    try:
        report = parse_report(doc, stdout)
    except MalformedCommandOutput as error:
        assert str(error).startswith(f"{doc}: ")
    else:
        assert isinstance(report, Report)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"result": "maybe"}, "result"),
        ({"exit_code": 300}, "exit_code"),
        ({"exit_code": "1"}, "exit_code"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"output": "x" * 1025}, "output"),
    ],
)
def test_health_report_with_a_bad_field_is_malformed_naming_it(change: dict, field: str) -> None:
    assert field in malformed("health", line({**VALID["health"], **change}))


def test_health_report_of_another_document_is_malformed() -> None:
    assert "expected a report of document 'health'" in malformed("health", line(VALID["verify"]))
