"""The simulated Bottlerocket host follows the update API as the reference describes it."""

from __future__ import annotations

import json
import random

import pytest

from sim.bottlerocket import Fault, Repository, SimHost

VARIANT = "aws-ecs-2"


def new_host(version: str = "1.26.0", faults: set[Fault] = frozenset(), versions: list[str] | None = None) -> SimHost:
    repo = Repository(VARIANT, "x86_64", versions or ["1.25.0", "1.26.0", "1.26.1"])
    return SimHost("i-0001", "us-east-1a", version, repo, seed=100, faults=set(faults), rng=random.Random(3))


def api(host: SimHost, *argv: str, at: float = 0.0) -> dict:
    """Run an apiclient command that must succeed; its JSON answer, if any."""
    reply = host.apiclient(list(argv), at)
    assert reply.rc == 0, f"apiclient {' '.join(argv)}: {reply.stderr}"
    return json.loads(reply.stdout) if reply.stdout else {}


def status(host: SimHost, at: float = 0.0) -> dict:
    return api(host, "raw", "-u", "/updates/status", at=at)


def running(host: SimHost, at: float) -> str:
    return api(host, "get", "os", at=at)["os"]["version_id"]


def reboot(host: SimHost, at: float) -> float:
    """Reboot through the API; the time at which the host's agent is back."""
    boots = host.boots
    api(host, "reboot", at=at)
    host.sync(at + 2)
    assert host.boots == boots + 1
    return host.online_at


def staged_and_ready(host: SimHost, version: str | None = None) -> None:
    if version:
        api(host, "set", f"updates.version-lock={version}", "updates.ignore-waves=true")
    api(host, "update", "apply", "--check")


def test_apply_from_idle_answers_409() -> None:
    host = new_host()
    reply = host.apiclient(["update", "apply"], 0)
    # apiclient/src/update.rs `apply` and its errors, main.rs `main`: the log line, then the error chain.
    assert (reply.rc, reply.stdout) == (1, "")
    assert reply.stderr == (
        "09:00:00 [INFO] Downloading and applying update to disk...\n"
        "Failed to apply update: Failed to prepare update.  This could mean that we don't have a list of updates "
        "yet or that an update is already applied.  Running 'apiclient update check' will help you find out.  You "
        "can cancel an applied ('Ready') update with 'apiclient update cancel' if desired.  Detail: Failed to make "
        "prepare request: Status 409 when POSTing /actions/prepare-update: Update action not allowed according to "
        "update state\n"
    )
    assert host.update_state == "Idle"


def test_check_chooses_the_newest_offered_version() -> None:
    checked = api(new_host(), "update", "check")
    assert checked["update_state"] == "Available"
    assert checked["chosen_update"]["version"] == "1.26.1"
    assert checked["available_updates"] == ["1.26.1", "1.26.0", "1.25.0"]
    assert checked["most_recent_command"]["cmd_type"] == "refresh"


def test_check_on_the_newest_version_stays_idle() -> None:
    checked = api(new_host("1.26.1"), "update", "check")
    assert (checked["update_state"], checked["chosen_update"]) == ("Idle", None)


def test_apply_check_stages_and_activates_the_target() -> None:
    host = new_host()
    staged_and_ready(host)
    after = status(host)
    assert after["update_state"] == "Ready"
    assert after["staging_partition"] == {
        "image": {"arch": "x86_64", "variant": VARIANT, "version": "1.26.1"},
        "next_to_boot": True,
    }
    assert after["active_partition"]["image"]["version"] == "1.26.0"
    assert after["active_partition"]["next_to_boot"] is False
    assert after["most_recent_command"]["cmd_type"] == "activate"


def test_apply_check_on_a_ready_host_does_nothing() -> None:
    host = new_host()
    staged_and_ready(host)
    before = status(host)
    reply = host.apiclient(["update", "apply", "--check"], 5)
    assert reply.rc == 0
    assert status(host)["update_state"] == "Ready"
    assert status(host)["staging_partition"] == before["staging_partition"]
    assert host.reboot_at is None


def test_cancel_moves_ready_back_to_staged() -> None:
    host = new_host()
    staged_and_ready(host)
    api(host, "update", "cancel")
    after = status(host)
    assert after["update_state"] == "Staged"
    assert after["staging_partition"]["next_to_boot"] is False
    assert after["active_partition"]["next_to_boot"] is True
    assert after["most_recent_command"]["cmd_type"] == "deactivate"


def test_cancel_outside_ready_answers_409() -> None:
    reply = new_host().apiclient(["update", "cancel"], 0)
    assert (reply.rc, reply.stdout) == (1, "")
    assert reply.stderr == (
        "09:00:00 [INFO] Canceling update...\n"
        "Failed to cancel update: Failed to make deactivate request: Status 409 when POSTing "
        "/actions/deactivate-update: Update action not allowed according to update state\n"
    )


def test_status_is_gone_after_a_reboot_until_a_check() -> None:
    host = new_host()
    staged_and_ready(host)
    boot_before = host.boot_id
    back = reboot(host, at=10)
    assert host.boot_id != boot_before
    lost = host.apiclient(["raw", "-u", "/updates/status"], back)
    assert lost.rc == 1
    assert lost.stderr == (
        "Failed GET request to '/updates/status': Status 404 when GETing /updates/status: "
        "Update status is uninitialized, refresh-updates to initialize it\n"
    )
    assert running(host, back) == "1.26.1"
    api(host, "update", "check", at=back)
    after = status(host, back)
    assert after["update_state"] == "Idle"
    assert after["active_partition"]["image"]["version"] == "1.26.1"
    # The old image stays in the other set, but a new boot's status knows only what a prepare wrote.
    assert host.staging == "1.26.0"
    assert after["staging_partition"] is None


def test_agent_is_offline_while_the_host_boots() -> None:
    host = new_host()
    staged_and_ready(host)
    back = reboot(host, at=10)
    assert back > 12
    assert not host.online(back - 1)
    assert host.online(back)


def test_version_lock_to_an_older_offered_version_downgrades() -> None:
    host = new_host("1.26.1")
    staged_and_ready(host, "v1.25.0")
    assert status(host)["staging_partition"]["image"]["version"] == "1.25.0"
    back = reboot(host, at=10)
    assert running(host, back) == "1.25.0"


def test_version_lock_to_a_version_not_offered_chooses_nothing() -> None:
    host = new_host("1.26.1")
    api(host, "set", "updates.version-lock=1.24.0", "updates.ignore-waves=true")
    assert api(host, "update", "check")["update_state"] == "Idle"
    assert host.apiclient(["update", "apply"], 0).rc == 1


def test_boot_fallback_keeps_the_old_version_after_the_reboot() -> None:
    host = new_host(faults={Fault.BOOT_FALLBACK})
    staged_and_ready(host)
    back = reboot(host, at=10)
    assert host.online(back)
    assert running(host, back) == "1.26.0"


def test_hung_reboot_stays_offline_until_an_ec2_reboot_which_falls_back() -> None:
    host = new_host(faults={Fault.REBOOT_HANGS})
    staged_and_ready(host)
    reboot(host, at=10)
    assert not host.online(10_000)
    host.ec2_reboot(10_000)
    assert host.online(host.online_at)
    assert running(host, host.online_at) == "1.26.0"


@pytest.mark.parametrize("fault", [Fault.BOOT_FALLBACK, Fault.REBOOT_HANGS])
def test_a_host_boot_fault_strikes_only_once(fault: Fault) -> None:
    host = new_host(faults={fault})
    staged_and_ready(host)
    reboot(host, at=10)
    if fault is Fault.REBOOT_HANGS:
        host.ec2_reboot(1_000)
    now = host.online_at
    assert running(host, now) == "1.26.0"
    staged_and_ready(host)  # a second try, same image
    back = reboot(host, at=now + 10)
    assert host.online(back)
    assert running(host, back) == "1.26.1"


def test_a_bad_release_fails_every_boot_into_it() -> None:
    host = new_host()
    host.repo.bad_releases["1.26.1"] = Fault.BOOT_FALLBACK
    for attempt in range(2):
        staged_and_ready(host)
        now = reboot(host, at=1_000 * (attempt + 1))
        assert running(host, now) == "1.26.0"


def test_apply_fails_leaves_the_state_and_records_the_failure() -> None:
    host = new_host(faults={Fault.APPLY_FAILS})
    reply = host.apiclient(["update", "apply", "--check"], 0)
    assert reply.rc == 1
    assert "No space left on device" in reply.stderr
    after = status(host)
    assert after["update_state"] == "Available"
    assert after["most_recent_command"]["cmd_type"] == "prepare"
    assert after["most_recent_command"]["cmd_status"] == "Failed"


def test_apply_reboot_schedules_the_reboot_after_the_apply() -> None:
    host = new_host()
    reply = host.apiclient(["update", "apply", "--check", "--reboot"], 0)
    assert reply.rc == 0
    assert host.reboot_at is not None
    assert host.reboot_at > 0
    host.sync(host.reboot_at)
    assert host.version == "1.26.1"
