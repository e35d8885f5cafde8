"""The real SSM documents, run in bash against simulated Bottlerocket hosts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sim.bottlerocket import Fault, Repository, SimHost
from sim.clock import VirtualClock
from sim.control_container import render
from sim.fleet import Fleet, SimulatedApiError, StoredDocument
from updraft.adapters.ssm import ERROR_MARKER
from updraft.domain.reports import ApplyReport, ErrorReport, RollbackReport, VerifyReport, parse_report

DOCUMENTS = Path(__file__).resolve().parents[2] / "ssm_documents"
VARIANT = "aws-ecs-2"
PREV, TARGET = "1.26.0", "1.26.1"
PARAMETER = {"apply": "TargetVersion", "verify": "ExpectedVersion", "rollback": "PreviousVersion"}


def load(name: str) -> dict:
    return yaml.safe_load((DOCUMENTS / f"{name}.yaml").read_text())


@pytest.fixture(scope="module")
def control_plane() -> Iterator[Fleet]:
    # One loopback server for the module: closing one takes half a second.
    simulated = Fleet(VirtualClock(), [Repository(VARIANT, "x86_64", ["1.25.0", PREV, TARGET])])
    simulated.document_source = lambda name, version: StoredDocument("1", load(name))
    yield simulated
    simulated.close()


@pytest.fixture
def fleet(control_plane: Fleet) -> Fleet:
    """The module's fleet, emptied, with its clock and randomness started afresh."""
    control_plane.clock = VirtualClock()
    control_plane.rng.seed(11)
    control_plane.hosts.clear()
    control_plane.commands.clear()
    return control_plane


class Run:
    """One document sent to one host, read back the way the adapter reads it."""

    def __init__(self, fleet: Fleet, host: SimHost, doc: str, version: str) -> None:
        self.fleet, self.host, self.doc = fleet, host, doc
        self.command_id = f"cmd-{doc}-{len(fleet.commands)}"
        fleet.send_command(self.command_id, f"updraft-{doc}", {PARAMETER[doc]: [version]}, [host.instance_id], 1200)

    def view(self) -> dict:
        (item,) = self.fleet.invocations(self.command_id)
        return item

    def finish(self) -> tuple[str, str, str, int]:
        """Advance the clock until the command ended; its status, stdout, stderr and exit code."""
        for _ in range(100):
            item = self.view()
            if item["Status"] not in ("Pending", "InProgress"):
                plugin = item["CommandPlugins"][0]
                stdout, _, stderr = plugin["Output"].partition(ERROR_MARKER)
                return item["Status"], stdout, stderr, plugin["ResponseCode"]
            self.fleet.clock.advance(30)
        raise AssertionError(f"{self.doc} never ended")


def test_render_substitutes_parameters_textually() -> None:
    script = render(["target='{{ TargetVersion }}'", "echo {{TargetVersion}}"], {"TargetVersion": "1.2.3"})
    assert script == "target='1.2.3'\necho 1.2.3\n"
    with pytest.raises(KeyError, match="TargetVersion"):
        render(["echo {{ TargetVersion }}"], {})


def test_apply_reports_rebooting_leaves_the_host_ready_and_reboots_it(fleet: Fleet) -> None:
    host = fleet.add_host("i-0001", "us-east-1a", VARIANT, PREV)
    boot_before = host.boot_id
    status, stdout, _, code = Run(fleet, host, "apply", "v" + TARGET).finish()
    assert (status, code) == ("Success", 0)
    report = parse_report("apply", stdout)
    assert isinstance(report, ApplyReport)
    assert (report.result, report.previous_version, report.target_version) == ("rebooting", PREV, TARGET)
    assert report.boot_id == boot_before
    assert host.update_state == "Ready"
    assert (host.version_lock, host.ignore_waves) == (TARGET, True)
    assert host.reboot_at is not None  # the detached reboot is scheduled, not done inside the command
    fleet.clock.advance(600)
    assert host.online(fleet.clock.seconds)
    assert host.version == TARGET
    assert host.boot_id != boot_before


def test_apply_on_a_host_already_on_the_target_reports_already_current(fleet: Fleet) -> None:
    host = fleet.add_host("i-0001", "us-east-1a", VARIANT, TARGET)
    status, stdout, _, _ = Run(fleet, host, "apply", TARGET).finish()
    report = parse_report("apply", stdout)
    assert (status, report.result, report.previous_version) == ("Success", "already-current", TARGET)
    assert host.reboot_at is None
    assert host.update_state == "Idle"


def test_apply_with_a_failing_prepare_prints_an_error_report(fleet: Fleet) -> None:
    host = fleet.add_host("i-0001", "us-east-1a", VARIANT, PREV, faults={Fault.APPLY_FAILS})
    status, stdout, _, code = Run(fleet, host, "apply", TARGET).finish()
    assert status == "Failed"
    assert code != 0
    report = parse_report("apply", stdout)
    assert isinstance(report, ErrorReport)
    assert report.stage == "apply"
    assert "No space left on device" in report.error
    assert report.previous_version == PREV
    assert host.reboot_at is None
    assert host.version == PREV


def test_verify_after_the_update_reports_ok(fleet: Fleet) -> None:
    host = fleet.add_host("i-0001", "us-east-1a", VARIANT, PREV)
    Run(fleet, host, "apply", TARGET).finish()
    fleet.clock.advance(600)
    status, stdout, _, code = Run(fleet, host, "verify", TARGET).finish()
    report = parse_report("verify", stdout)
    assert (status, code) == ("Success", 0)
    assert isinstance(report, VerifyReport)
    assert (report.result, report.version, report.version_lock) == ("ok", TARGET, TARGET)
    assert report.update_state == "Idle"
    assert report.boot_id == host.boot_id


def test_verify_on_the_wrong_version_reports_mismatch_and_fails(fleet: Fleet) -> None:
    host = fleet.add_host("i-0001", "us-east-1a", VARIANT, PREV)
    status, stdout, _, code = Run(fleet, host, "verify", TARGET).finish()
    assert status == "Failed"
    assert code != 0
    report = parse_report("verify", stdout)
    assert isinstance(report, VerifyReport)
    assert (report.result, report.version, report.expected_version) == ("mismatch", PREV, TARGET)


def test_verify_after_a_boot_loader_fallback_reports_the_old_version(fleet: Fleet) -> None:
    host = fleet.add_host("i-0001", "us-east-1a", VARIANT, PREV, faults={Fault.BOOT_FALLBACK})
    Run(fleet, host, "apply", TARGET).finish()
    fleet.clock.advance(600)
    _, stdout, _, _ = Run(fleet, host, "verify", TARGET).finish()
    report = parse_report("verify", stdout)
    assert (report.result, report.version, report.version_lock) == ("mismatch", PREV, TARGET)


def test_rollback_before_the_reboot_cancels_and_reports_restored(fleet: Fleet) -> None:
    host = fleet.add_host("i-0001", "us-east-1a", VARIANT, PREV)
    host.apiclient(["set", f"updates.version-lock={TARGET}", "updates.ignore-waves=true"], 0)
    host.apiclient(["update", "apply", "--check"], 0)
    assert host.update_state == "Ready"
    status, stdout, _, code = Run(fleet, host, "rollback", PREV).finish()
    assert (status, code) == ("Success", 0)
    report = parse_report("rollback", stdout)
    assert isinstance(report, RollbackReport)
    assert (report.result, report.previous_version, report.from_version) == ("restored", PREV, None)
    assert host.update_state == "Staged"
    assert not host.next_to_boot_staging
    assert host.version_lock == PREV
    assert host.reboot_at is None


def test_rollback_after_the_update_reboots_into_the_previous_version(fleet: Fleet) -> None:
    host = fleet.add_host("i-0001", "us-east-1a", VARIANT, PREV)
    Run(fleet, host, "apply", TARGET).finish()
    fleet.clock.advance(600)
    assert host.online(fleet.clock.seconds)
    assert host.version == TARGET
    status, stdout, _, _ = Run(fleet, host, "rollback", PREV).finish()
    report = parse_report("rollback", stdout)
    assert (status, report.result, report.from_version) == ("Success", "rebooting", TARGET)
    fleet.clock.advance(600)
    assert host.online(fleet.clock.seconds)
    assert host.version == PREV
    assert host.boot_id != report.boot_id


@pytest.mark.parametrize("value", ["1.2.3; reboot", "1.2.3'; apiclient reboot; '", "latest", "1.2"])
def test_parameter_failing_the_allowed_pattern_is_refused(fleet: Fleet, value: str) -> None:
    host = fleet.add_host("i-0001", "us-east-1a", VARIANT, PREV)
    with pytest.raises(SimulatedApiError) as caught:
        fleet.send_command("cmd-bad", "updraft-apply", {"TargetVersion": [value]}, [host.instance_id], 1200)
    assert caught.value.code == "InvalidParameters"
    assert "cmd-bad" not in fleet.commands
    assert host.update_state == "Idle"


def test_inventory_reports_the_running_version_and_the_offered_update(fleet: Fleet) -> None:
    host = fleet.add_host("i-0001", "us-east-1a", VARIANT, PREV)
    fleet.send_command("cmd-inv", "updraft-inventory", {}, [host.instance_id], 120)
    fleet.clock.advance(120)
    (item,) = fleet.invocations("cmd-inv")
    report = parse_report("inventory", item["CommandPlugins"][0]["Output"].partition(ERROR_MARKER)[0])
    assert (report.version, report.variant, report.update_state) == (PREV, VARIANT, "Available")
    assert report.available == [TARGET, PREV, "1.25.0"]
