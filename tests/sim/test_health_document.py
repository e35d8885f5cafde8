"""The health document as deployed (commands written in per group), run in bash against simulated hosts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sim.bottlerocket import Fault, Repository, SimHost
from sim.clock import VirtualClock
from sim.fleet import Fleet, SimulatedApiError, StoredDocument
from stacks.documents import health_document
from updraft.adapters.ssm import ERROR_MARKER
from updraft.config import GroupPolicy
from updraft.domain.reports import ErrorReport, HealthReport, parse_report
from updraft.errors import MalformedCommandOutput

VARIANT = "aws-ecs-2"
PREV, TARGET = "1.26.0", "1.26.1"
GROUPS = [
    GroupPolicy(name="web", variant=VARIANT, health_check={"command": "workload-health -q", "timeout_seconds": 30}),
    # A command with shell metacharacters and quotes: written into the script literally, never interpreted early.
    GroupPolicy(name="api", variant=VARIANT, health_check={"command": 'echo "it\'s $((1+1))" && workload-health'}),
    GroupPolicy(name="batch", variant=VARIANT),
]
DOCUMENT = health_document(GROUPS)


@pytest.fixture
def fleet() -> Iterator[Fleet]:
    simulated = Fleet(VirtualClock(), [Repository(VARIANT, "x86_64", [PREV, TARGET])], seed=3)
    simulated.document_source = lambda name, version: StoredDocument("1", DOCUMENT)
    yield simulated
    simulated.close()


def updated_host(fleet: Fleet, faults: set[Fault] = frozenset()) -> SimHost:
    """A host launched on PREV that now runs TARGET (the workload faults show on a new version)."""
    host = fleet.add_host(f"i-{len(fleet.hosts):04d}", "us-east-1a", VARIANT, PREV, faults=faults)
    host.version = TARGET
    return host


def run(fleet: Fleet, host: SimHost, group: str) -> tuple[str, str, str]:
    command_id = f"cmd-{len(fleet.commands)}"
    fleet.send_command(command_id, "updraft-health", {"Group": [group]}, [host.instance_id], 60)
    for _ in range(400):
        (item,) = fleet.invocations(command_id)
        if item["Status"] not in ("Pending", "InProgress"):
            stdout, _, stderr = item["CommandPlugins"][0]["Output"].partition(ERROR_MARKER)
            return item["Status"], stdout, stderr
        fleet.clock.advance(10)
    raise AssertionError("the health command never ended")


def test_the_document_admits_only_groups_with_a_health_command() -> None:
    assert DOCUMENT["parameters"]["Group"]["allowedPattern"] == "^(web|api)$"
    # The longest configured timeout (api's default 120 s) and a minute to report.
    assert DOCUMENT["mainSteps"][0]["inputs"]["timeoutSeconds"] == "180"
    with pytest.raises(ValueError, match="no group has a health_check"):
        health_document([GROUPS[2]])


def test_a_healthy_workload_reports_healthy(fleet: Fleet) -> None:
    host = updated_host(fleet)
    status, stdout, _ = run(fleet, host, "web")
    report = parse_report("health", stdout)
    assert status == "Success"
    assert isinstance(report, HealthReport)
    assert (report.result, report.exit_code, report.timeout_seconds) == ("healthy", 0, 30)
    assert f"workload healthy on {TARGET}" in report.output


def test_an_unhealthy_workload_fails_with_its_exit_code_and_output(fleet: Fleet) -> None:
    host = updated_host(fleet, {Fault.UNHEALTHY_WORKLOAD})
    status, stdout, _ = run(fleet, host, "web")
    report = parse_report("health", stdout)
    assert status == "Failed"
    assert (report.result, report.exit_code) == ("unhealthy", 1)
    assert "2 of 3 containers unhealthy" in report.output


def test_the_same_fault_on_the_launched_version_is_healthy(fleet: Fleet) -> None:
    host = fleet.add_host("i-0009", "us-east-1a", VARIANT, PREV, faults={Fault.UNHEALTHY_WORKLOAD})
    assert parse_report("health", run(fleet, host, "web")[1]).result == "healthy"


def test_a_hung_workload_check_is_stopped_at_the_group_timeout(fleet: Fleet) -> None:
    host = updated_host(fleet, {Fault.WORKLOAD_HANGS})
    sent_at = fleet.clock.seconds
    status, stdout, _ = run(fleet, host, "web")
    report = parse_report("health", stdout)
    assert status == "Failed"
    assert (report.result, report.exit_code, report.timeout_seconds) == ("timed-out", 124, 30)
    invocation = next(iter(fleet.commands.values())).invocations[host.instance_id]
    assert invocation.ended - sent_at == pytest.approx(30, abs=1)


def test_the_command_runs_exactly_as_configured(fleet: Fleet) -> None:
    host = updated_host(fleet)
    report = parse_report("health", run(fleet, host, "api")[1])
    assert report.result == "healthy"
    assert report.output.startswith("it's 2\n")


def test_a_group_without_a_health_command_is_refused_by_the_pattern(fleet: Fleet) -> None:
    host = updated_host(fleet)
    for group in ("batch", "web' ; reboot ; '"):
        with pytest.raises(SimulatedApiError, match="fails"):
            fleet.send_command("cmd-x", "updraft-health", {"Group": [group]}, [host.instance_id], 60)


def test_garbage_from_the_document_is_a_named_error() -> None:
    with pytest.raises(MalformedCommandOutput, match="health: expected a report of document 'health'"):
        parse_report("health", '{"doc":"verify"}\n')
    report = parse_report("health", '{"doc":"health","result":"error","stage":"config","error":"no command"}\n')
    assert isinstance(report, ErrorReport)
