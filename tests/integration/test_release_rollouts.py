"""From a verified release to rollouts: the detector's announcement starts each matching group's
rollout through its EventBridge rule, and the group's release policy decides when it runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from sim.clock import EPOCH
from sim.update_repository import UpdateRepository
from sim.world import World
from stacks import synthesize
from tests.integration.conftest import detection_config
from updraft.config import UpdraftConfig

pytestmark = pytest.mark.integration
NEW = "1.26.1"


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpdateRepository]:
    repo = UpdateRepository(tmp_path_factory.mktemp("updates"), "aws-ecs-2")
    repo.release("1.26.0", EPOCH - timedelta(days=30))
    yield repo
    repo.close()


@pytest.fixture(scope="module")
def template(repository: UpdateRepository, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    groups = [
        {"name": "staging", "variant": "aws-ecs-2"},
        {"name": "prod", "variant": "aws-ecs-2", "follows": "staging"},
        {"name": "slow", "variant": "aws-ecs-2", "min_release_age_hours": 24},
        {"name": "k8s", "variant": "aws-k8s-1.31"},
        {"name": "manual", "variant": "aws-ecs-2", "auto_rollout": False},
    ]
    detection = detection_config(repository, tmp_path_factory.mktemp("trust"))
    return synthesize(UpdraftConfig.model_validate({"groups": groups, "detection": detection}))


@pytest.fixture
def world(template: dict[str, Any]) -> Iterator[World]:
    with World(template) as simulated:
        yield simulated


def rollouts_by_group(world: World, executions: list) -> dict[str, list[dict[str, Any]]]:
    """The rollouts that really ran (acquired a lock), per group."""
    found: dict[str, list[dict[str, Any]]] = {}
    for execution in executions:
        meta = world.rollout_record(execution.name)
        if meta:
            found.setdefault(meta["group"], []).append(meta)
    return found


def test_a_release_rolls_out_to_matching_groups_in_policy_order(world, repository):
    fleets = {group: world.launch(group, 2) for group in ("staging", "prod", "slow", "manual")}
    repository.release(NEW, EPOCH)

    world.tick()
    ran = rollouts_by_group(world, world.wait_all())

    assert set(ran) == {"staging", "prod", "slow"}  # not k8s (another variant), not manual (off)
    (staging,), (prod,), (slow,) = ran["staging"], ran["prod"], ran["slow"]
    assert {staging["status"], prod["status"], slow["status"]} == {"succeeded"}
    assert datetime.fromisoformat(prod["started_at"]) >= datetime.fromisoformat(staging["finished_at"])
    assert datetime.fromisoformat(slow["started_at"]) >= EPOCH + timedelta(hours=24)
    versions = world.versions()
    assert {versions[i] for g in ("staging", "prod", "slow") for i in fleets[g]} == {NEW}
    assert {versions[i] for i in fleets["manual"]} == {"1.26.0"}


def test_a_duplicate_announcement_starts_one_rollout(world):
    world.launch("staging", 2)
    world.announce_release(NEW, EPOCH.isoformat())
    world.announce_release(NEW, EPOCH.isoformat())

    ran = rollouts_by_group(world, world.wait_all())

    assert len(ran["staging"]) == 1
    assert ran["staging"][0]["status"] == "succeeded"


def test_a_withdrawn_release_halts_its_running_rollout_and_rolls_back_every_updated_host(world):
    ids = world.launch("staging", 9)
    world.record_release(NEW, EPOCH.isoformat())

    def withdraw_after_the_canary(step_input: dict[str, Any], result: dict[str, Any]) -> None:
        if step_input["wave"] == 0 and result["progress"].get("verdict") == "continue":
            world.withdraw_release(NEW)

    # The release is pulled the moment the canary passed its gate: the next wave's gate halts.
    world.after_step("check_hosts", withdraw_after_the_canary)
    arn = world.start({"group": "staging", "target_version": NEW})
    name = arn.rsplit(":", 1)[-1]
    execution = world.wait(arn)

    assert execution.error == "Updraft.RolloutHalted"
    assert world.rollout_record(name)["halt_reason"] == "the release was withdrawn"
    records = world.host_records(name)
    assert {r["state"] for r in records.values()} <= {"rolled-back", "skipped"}
    assert {world.versions()[i] for i in ids} == {"1.26.0"}


# -- announcements the detector did not make -----------------------------------------------------------------
def forged_available(version: str, released_at: datetime) -> dict[str, Any]:
    return {
        "variant": "aws-ecs-2",
        "arch": "x86_64",
        "version": version,
        "released_at": released_at.isoformat(),
        "manifest_digest": "f" * 64,
    }


def refusals(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The functions' log records that refused an announcement, with their fields."""
    found = [r.__dict__ for r in caplog.records if r.getMessage().startswith("refused a release announcement")]
    return [{key: record.get(key) for key in ("kind", "version", "reason")} for record in found]


def forged_counts(output: str) -> int:
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return sum(
        int(line["ForgedRelease"][0] if isinstance(line["ForgedRelease"], list) else line["ForgedRelease"])
        for line in lines
        if "ForgedRelease" in line
    )


def test_an_available_release_the_detector_never_recorded_starts_nothing_and_takes_no_claim(world, capsys, caplog):
    ids = world.launch("staging", 2)
    world.put_release_event("Bottlerocket Release Available", forged_available(NEW, EPOCH))

    executions = world.wait_all()

    assert rollouts_by_group(world, executions) == {}
    assert {world.versions()[i] for i in ids} == {"1.26.0"}
    claims = world.ledger.scan()["Items"]
    assert not [item for item in claims if item["pk"].startswith("AUTO#")]
    (refusal,) = {line["version"]: line for line in refusals(caplog)}.values()
    assert "never verified" in refusal["reason"]
    assert forged_counts(capsys.readouterr().out) >= 1
    # The real announcement still takes the release, afterwards.
    world.announce_release(NEW, EPOCH.isoformat())
    assert rollouts_by_group(world, world.wait_all())["staging"][0]["status"] == "succeeded"


def test_a_known_release_announced_as_older_than_it_is_does_not_skip_the_soak(world, caplog):
    world.launch("slow", 1)  # soaks 24 hours from the release time
    world.record_release(NEW, EPOCH.isoformat())
    world.put_release_event("Bottlerocket Release Available", forged_available(NEW, EPOCH - timedelta(days=30)))

    executions = world.wait_all()

    assert rollouts_by_group(world, executions) == {}
    reasons = [line["reason"] for line in refusals(caplog)]
    assert reasons and all("by the detector's record" in reason for reason in reasons)


def test_a_withdrawal_the_detector_did_not_make_halts_nothing(world, capsys, caplog):
    ids = world.launch("staging", 3)
    world.record_release(NEW, EPOCH.isoformat())
    forged = {"variant": "aws-ecs-2", "arch": "x86_64", "version": NEW, "manifest_digest": "f" * 64}

    def forge_after_the_canary(step_input: dict[str, Any], result: dict[str, Any]) -> None:
        if step_input["wave"] == 0 and result["progress"].get("verdict") == "continue":
            world.put_release_event("Bottlerocket Release Withdrawn", forged)

    world.after_step("check_hosts", forge_after_the_canary)
    execution = world.wait(world.start({"group": "staging", "target_version": NEW}))

    assert execution.status == "SUCCEEDED"
    assert {world.versions()[i] for i in ids} == {NEW}
    (refusal,) = refusals(caplog)
    assert refusal["kind"] == "withdrawn" and "has not withdrawn" in refusal["reason"]
    assert forged_counts(capsys.readouterr().out) == 1
