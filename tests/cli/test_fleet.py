"""`updraft fleet`: the fleet at a glance, read from EC2 and the ledger of a simulated deployment.

Each test compares what the command shows with what the simulation knows: the versions its hosts run, the
ledger's host records, the waves the planner made.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from cli import fleet_view
from sim.bottlerocket import Fault
from sim.world import ACCOUNT, World
from tests.cli.conftest import CONFIG, Cli
from tests.integration.test_access import signed_in
from updraft.ledger_schema import SK, SKIPPED, automatic_claim_item, release_key

OLD, NEW, NEWER = "1.26.0", "1.26.1", "1.27.0"
GROUP_KEYS = {
    "group",
    "variant",
    "arch",
    "versions",
    "hosts",
    "releases",
    "behind",
    "rollout",
    "kill_switch",
    "maintenance_window",
}
HOST_KEYS = {"instance_id", "az", "version", "known_from", "wave", "state"}


@pytest.fixture(autouse=True)
def virtual_now(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command's clock is the simulation's: windows and release ages are read at virtual time."""
    monkeypatch.setattr("cli.main.now", world.clock.now)


def fleet(cli: Cli, *args: str, config: Path | None = None) -> dict[str, Any]:
    return cli.json("fleet", *args, "--config", str(config or cli.config))


def one(cli: Cli, group: str, config: Path | None = None) -> dict[str, Any]:
    (shown,) = fleet(cli, group, config=config)["groups"]
    return shown


def hours_ago(world: World, hours: float) -> str:
    return (world.clock.now() - timedelta(hours=hours)).isoformat()


def record_releases(world: World, *versions: str) -> None:
    """The detector's records of these releases, the last one released an hour ago, each one a day before it."""
    for age, version in enumerate(reversed(versions)):
        world.record_release(version, hours_ago(world, 1 + 24 * age))


def withdraw(world: World, version: str) -> None:
    """The detector's withdrawal of the release, marked on its record as the detector marks it (this stack has no
    release bus to announce it on)."""
    world.ledger.update_item(
        Key=release_key(world.repository.variant, "x86_64", version),
        UpdateExpression="SET claimed_withdrawn = :now, announced_withdrawn = :now",
        ExpressionAttributeValues={":now": world.clock.now().isoformat()},
    )


def variant_config(tmp_path: Path, **changes: dict[str, Any]) -> Path:
    """A cdk.json of the deployed groups with `changes` to some of them (group name -> fields): what the command
    reads of the release policy. The deployed stack stays as it is."""
    groups = [
        group.model_dump(mode="json", exclude_defaults=True) | changes.get(group.name, {}) for group in CONFIG.groups
    ]
    path = tmp_path / "cdk.json"
    path.write_text(json.dumps({"context": {"updraft": {"groups": groups}}}))
    return path


def states_per_wave(records: dict[str, dict[str, Any]]) -> dict[int, dict[str, int]]:
    """The ledger's hosts of a rollout, counted per state in each wave (skipped-at-planning hosts left out)."""
    counted: dict[int, Counter[str]] = {}
    for item in records.values():
        if not item[SK].startswith(SKIPPED):
            counted.setdefault(int(item["wave"]), Counter())[item["state"]] += 1
    return {wave: dict(counts) for wave, counts in counted.items()}


# -- before, during and after a rollout --------------------------------------------------------------------------
def test_before_any_rollout_every_version_is_unknown_and_nothing_is_behind(world: World, cli: Cli) -> None:
    web = world.launch("web", 3, version=OLD)
    world.launch("batch", 2, version=OLD)  # another group's hosts
    record_releases(world, NEW, NEWER, "1.27.1")
    withdraw(world, "1.27.1")

    shown = one(cli, "web")

    assert set(shown) == GROUP_KEYS
    assert (shown["group"], shown["variant"], shown["arch"]) == ("web", "aws-ecs-2", "x86_64")
    assert shown["versions"] == [{"version": "unknown", "hosts": 3}]
    assert [set(host) for host in shown["hosts"]] == [HOST_KEYS] * 3
    assert {h["instance_id"]: h["az"] for h in shown["hosts"]} == {i: world.fleet.hosts[i].az for i in web}
    assert {(h["version"], h["known_from"], h["wave"], h["state"]) for h in shown["hosts"]} == {
        ("unknown", None, None, None)
    }
    releases = shown["releases"]
    assert releases["newest"]["version"] == releases["allowed"]["version"] == NEWER
    assert releases["newest"]["released_at"] == hours_ago(world, 25)  # 1.27.1, an hour old, was withdrawn
    assert releases["restriction"] is None
    assert releases["automatic"] == {"verdict": "start", "reason": f"{NEWER} is eligible"}
    assert shown["behind"] == {"release": NEWER, "hosts": 0, "unknown": 3}
    assert shown["rollout"] is None
    assert shown["kill_switch"] == {"engaged": False}
    assert shown["maintenance_window"] is None


def test_during_a_rollout_each_host_has_its_wave_and_state_and_holds_are_shown(world: World, cli: Cli) -> None:
    web = world.launch("web", 4, version=OLD)
    record_releases(world, NEW)
    started = cli.json("start", "web", NEW, "--config", str(cli.config))
    rollout_id = started["rollout_id"]
    world.run_until(lambda: world.rollout_record(rollout_id).get("status") == "baking", "the canary to bake")
    cli.json("pause", "web", "--by", "erin", "--reason", "looking at the canary")
    cli.json("kill-switch", "on", "--group", "web", "--reason", "change freeze", "--by", "erin")

    shown = one(cli, "web")

    records = world.host_records(rollout_id)
    rollout = shown["rollout"]
    assert (rollout["rollout_id"], rollout["target_version"], rollout["status"]) == (rollout_id, NEW, "baking")
    assert rollout["running"] is True
    assert rollout["paused"] is True
    assert (rollout["pause"]["by"], rollout["pause"]["reason"]) == ("erin", "looking at the canary")
    assert [w["size"] for w in rollout["waves"]] == [1, 2, 1]
    assert {w["wave"]: w["states"] for w in rollout["waves"]} == states_per_wave(records)
    assert rollout["waves"][0]["states"] == {"updated": 1}
    assert rollout["waves"][0]["result"]["verdict"] == "baking"
    assert {h["instance_id"]: (h["wave"], h["state"]) for h in shown["hosts"]} == {
        i: (int(records[i]["wave"]), records[i]["state"]) for i in web
    }
    (canary,) = [i for i in web if records[i]["state"] == "updated"]
    assert {h["instance_id"]: h["version"] for h in shown["hosts"]} == {i: NEW if i == canary else OLD for i in web}
    assert world.versions()[canary] == NEW and {world.versions()[i] for i in web if i != canary} == {OLD}
    assert {h["known_from"] for h in shown["hosts"]} == {rollout_id}
    assert shown["versions"] == [{"version": NEW, "hosts": 1}, {"version": OLD, "hosts": 3}]
    assert shown["behind"] == {"release": NEW, "hosts": 3, "unknown": 0}
    assert shown["kill_switch"] == {
        "engaged": True,
        "scope": "web",
        "reason": "change freeze",
        "by": "erin",
        "at": shown["kill_switch"]["at"],
    }

    cli.json("kill-switch", "on", "--reason", "region event", "--by", "frank")
    assert (one(cli, "web")["kill_switch"]["scope"], one(cli, "batch")["kill_switch"]["reason"]) == (
        "all groups",
        "region event",
    )
    rendered = cli("fleet", "web", "--config", str(cli.config))
    assert rendered.exit_code == 0, rendered.stderr
    for words in ("where each host stands", f"rollout {rollout_id}", "paused", "ENGAGED (all groups)", canary):
        assert words in rendered.stdout


def test_after_a_succeeded_rollout_hosts_run_its_version_and_none_is_behind(world: World, cli: Cli) -> None:
    web = world.launch("web", 3, version=OLD)
    record_releases(world, NEW)
    done = world.rollout("web", NEW)
    late = world.launch("web", 1, version=OLD)[0]  # joined after the rollout: no rollout recorded it

    shown = one(cli, "web")

    assert world.rollout_record(done.name)["status"] == "succeeded"
    assert shown["versions"] == [{"version": NEW, "hosts": 3}, {"version": "unknown", "hosts": 1}]
    versions = {h["instance_id"]: (h["version"], h["known_from"]) for h in shown["hosts"]}
    assert versions == {**{i: (world.versions()[i], done.name) for i in web}, late: ("unknown", None)}
    assert shown["behind"] == {"release": NEW, "hosts": 0, "unknown": 1}
    rollout = shown["rollout"]
    assert (rollout["rollout_id"], rollout["status"], rollout["running"]) == (done.name, "succeeded", False)
    assert rollout["summary"] == {"updated": 3, "skipped_at_plan": 0}
    assert "bake_until" not in rollout and "waiting_reason" not in rollout  # news of a running rollout only
    assert [w["states"] for w in rollout["waves"]] == [{"updated": 1}, {"updated": 2}]
    rendered = cli("fleet", "web", "--config", str(cli.config))
    assert f"last rollout {done.name}" in rendered.stdout and "0 hosts behind 1.26.1" in rendered.stdout
    assert "where each host stands" not in rendered.stdout


def test_after_a_halted_rollout_hosts_are_on_the_version_they_went_back_to(world: World, cli: Cli) -> None:
    web = world.launch("web", 4, version=OLD)
    record_releases(world, NEW, NEWER)
    first = world.rollout("web", NEW)
    world.repository.bad_releases[NEWER] = Fault.BOOT_FALLBACK
    halted = world.rollout("web", NEWER)

    shown = one(cli, "web")

    assert halted.error == "Updraft.RolloutHalted"
    records = world.host_records(halted.name)
    rollout = shown["rollout"]
    assert (rollout["rollout_id"], rollout["status"], rollout["running"]) == (halted.name, "halted", False)
    assert "canary wave" in rollout["halt_reason"]
    assert {w["wave"]: w["states"] for w in rollout["waves"]} == states_per_wave(records)
    assert rollout["waves"][0]["states"] == {"rolled-back": 1}
    assert {h["instance_id"]: h["version"] for h in shown["hosts"]} == {i: world.versions()[i] for i in web}
    assert {h["version"] for h in shown["hosts"]} == {NEW}
    assert {h["known_from"] for h in shown["hosts"]} == {halted.name}  # the newest record wins over `first`
    assert first.name != halted.name
    assert shown["behind"] == {"release": NEWER, "hosts": 4, "unknown": 0}
    assert "halted" in cli("fleet", "web", "--config", str(cli.config)).stdout


def test_a_host_skipped_at_planning_runs_the_version_its_item_records(world: World, cli: Cli) -> None:
    world.launch("web", 2, version=OLD)
    current = world.launch("web", 1, version=NEW)[0]  # already on the target: skipped at planning
    record_releases(world, NEW)
    done = world.rollout("web", NEW)

    shown = one(cli, "web")

    skipped = world.host_records(done.name)[current]
    assert skipped[SK].startswith(SKIPPED) and skipped["note"] == f"already on {NEW}"
    # The plan records the skipped host's version once its item carries one; until then it is not known.
    expected = skipped.get("version") or "unknown"
    (host,) = [h for h in shown["hosts"] if h["instance_id"] == current]
    assert (host["version"], host["wave"], host["state"]) == (expected, None, "skipped")
    assert shown["rollout"]["skipped_at_planning"] == 1


# -- the release policy, windows, groups -----------------------------------------------------------------------
def test_the_release_policy_decides_which_release_hosts_are_behind(world: World, cli: Cli, tmp_path: Path) -> None:
    world.launch("web", 3, version=OLD)
    record_releases(world, NEW, NEWER)
    world.rollout("web", NEW)
    config = variant_config(
        tmp_path,
        web={"pinned_version": NEW},
        batch={"deny_versions": [NEWER], "min_release_age_hours": 72},
        nightly={"follows": "web"},
    )
    world.ledger.put_item(Item=automatic_claim_item("web", NEW, "auto-web-1", world.clock.now().isoformat()))

    web, batch, nightly = fleet(cli, config=config)["groups"]
    unrestricted = one(cli, "web")

    assert unrestricted["behind"] == {"release": NEWER, "hosts": 3, "unknown": 0}
    assert web["releases"]["newest"]["version"] == NEWER
    assert (web["releases"]["allowed"]["version"], web["releases"]["restriction"]) == (NEW, f"pinned_version {NEW}")
    assert web["behind"] == {"release": NEW, "hosts": 0, "unknown": 0}
    assert web["releases"]["automatic"] == {
        "verdict": "duplicate",
        "reason": "automatic rollout auto-web-1 already took it",
    }
    assert (batch["releases"]["allowed"]["version"], batch["releases"]["restriction"]) == (
        NEW,
        f"deny_versions {NEWER}",
    )
    # 1.26.1 was released a day before 1.27.0, 25 hours before the simulation's start; batch soaks 72 hours.
    assert batch["releases"]["allowed"]["released_at"] == "2026-01-04T08:00:00+00:00"
    assert batch["releases"]["automatic"] == {
        "verdict": "wait",
        "reason": f"{NEW} soaks until 2026-01-07T08:00:00+00:00",
    }
    assert nightly["releases"]["allowed"]["version"] == NEWER and nightly["releases"]["restriction"] is None
    assert nightly["releases"]["automatic"] == {"verdict": "wait", "reason": f"waiting for group web to finish {NEWER}"}
    pinned = variant_config(tmp_path, web={"pinned_version": "1.25.9"})
    absent = one(cli, "web", config=pinned)
    assert absent["releases"]["allowed"] is None and "not among the releases seen" in absent["releases"]["restriction"]
    assert absent["behind"] == {"release": None, "hosts": 0, "unknown": 0}


def test_the_next_maintenance_window_or_the_one_open_now(
    world: World, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    later = fleet(cli)["groups"]
    assert [g["group"] for g in later] == ["web", "batch", "nightly"]  # every group, in the config's order
    window = later[2]["maintenance_window"]  # nightly: 02:00 UTC for 120 min; the simulation starts at 09:00
    assert (window["open_now"], window["opens_at"], window["closes_at"]) == (
        False,
        "2026-01-06T02:00:00+00:00",
        "2026-01-06T04:00:00+00:00",
    )
    assert (window["schedule"], window["timezone"], window["duration_minutes"]) == ("0 2 * * *", "UTC", 120)

    monkeypatch.setattr("cli.main.now", lambda: world.clock.now() + timedelta(hours=17, minutes=30))  # 02:30
    opened = one(cli, "nightly")["maintenance_window"]
    assert (opened["open_now"], opened["closes_at"]) == (True, "2026-01-06T04:00:00+00:00")
    rendered = cli("fleet", "--config", str(cli.config))
    assert "maintenance window: open now until 2026-01-06T04:00:00+00:00" in rendered.stdout
    assert rendered.stdout.count("maintenance window: none configured") == 2


def test_one_group_is_the_same_as_in_the_whole_fleet(world: World, cli: Cli) -> None:
    world.launch("web", 2, version=OLD)
    world.launch("batch", 3, version=OLD)
    record_releases(world, NEW)
    world.rollout("batch", NEW)

    everything = fleet(cli)
    batch = fleet(cli, "batch")

    assert set(everything) == {"at", "groups"} and everything["at"] == world.clock.now().isoformat()
    assert batch["groups"] == [everything["groups"][1]]
    assert [len(g["hosts"]) for g in everything["groups"]] == [2, 3, 0]
    assert everything["groups"][1]["versions"] == [{"version": NEW, "hosts": 3}]


def test_an_unknown_group_is_a_usage_error_naming_the_configured_ones(cli: Cli) -> None:
    result = cli("fleet", "payments", "--config", str(cli.config), "--json")

    assert result.exit_code == 2
    assert "group 'payments' is not configured (configured: web, batch, nightly)" in result.stderr
    assert result.stdout == ""


# -- with only the viewer's policy -------------------------------------------------------------------------------
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
    ],
}


@contextlib.contextmanager
def as_viewer(world: World, calls: list[str]) -> Iterator[None]:
    """The CLI's AWS calls signed by a role that carries only the stack's viewer policy; each call recorded as the
    IAM action it needs. The simulation authorises the DynamoDB calls under the role's policies."""
    iam = boto3.client("iam")
    role = iam.create_role(RoleName="viewer", AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]
    iam.attach_role_policy(RoleName="viewer", PolicyArn=world.outputs["ViewerPolicyArn"])
    keys = boto3.client("sts").assume_role(RoleArn=role["Arn"], RoleSessionName="viewer")["Credentials"]
    session = boto3.Session(
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
        region_name="us-east-1",
    )
    session.events.register("before-call", lambda event_name, **_: calls.append(_action(event_name)))
    with signed_in(session):
        yield


def _action(event_name: str) -> str:
    _, service, operation = event_name.split(".", 2)  # before-call.<service>.<Operation>
    return f"{service}:{operation}"


def viewer_actions(template: dict[str, Any]) -> set[str]:
    (policy,) = [
        resource["Properties"]["PolicyDocument"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::IAM::ManagedPolicy" and logical_id.startswith("AccessViewer")
    ]
    actions = [statement["Action"] for statement in policy["Statement"]]
    return {action for granted in actions for action in ([granted] if isinstance(granted, str) else granted)}


def test_the_viewer_policy_is_enough(world: World, cli: Cli, template: dict[str, Any], tmp_path: Path) -> None:
    world.launch("web", 4, version=OLD)
    record_releases(world, NEW)
    started = cli.json("start", "web", NEW, "--config", str(cli.config))
    world.run_until(lambda: world.rollout_record(started["rollout_id"]).get("status") == "baking", "a bake")
    cli.json("kill-switch", "on", "--group", "batch", "--reason", "freeze", "--by", "erin")
    config = variant_config(tmp_path, nightly={"follows": "web"})  # a leader's outcome read too
    expected = fleet(cli, config=config)

    calls: list[str] = []
    with as_viewer(world, calls):
        seen = fleet(cli, config=config)

    assert seen == expected
    assert seen["groups"][0]["rollout"]["running"] is True
    assert set(calls) <= viewer_actions(template), sorted(set(calls) - viewer_actions(template))
    assert {"cloudformation:DescribeStacks", "ec2:DescribeInstances", "dynamodb:GetItem", "dynamodb:Query"} <= set(
        calls
    )


# -- the version rules, without AWS ----------------------------------------------------------------------------
def test_a_hosts_version_comes_from_the_newest_rollout_that_names_one() -> None:
    newest = [
        {SK: "SKIPPED#i-1", "instance_id": "i-1", "state": "skipped"},  # no version recorded: look further back
        {SK: "SKIPPED#i-2", "instance_id": "i-2", "state": "skipped", "version": "1.27.0"},
        {SK: "WAVE#0000#i-3", "instance_id": "i-3", "state": "applying", "previous_version": "1.26.1"},
    ]
    older = [
        {SK: "WAVE#0000#i-1", "instance_id": "i-1", "state": "updated", "previous_version": OLD, "target_version": NEW},
        {SK: "WAVE#0000#i-2", "instance_id": "i-2", "state": "updated", "previous_version": OLD, "target_version": NEW},
    ]
    read: list[str] = []

    def recorded(rollout_id: str) -> list[dict[str, Any]]:
        read.append(rollout_id)
        return {"r-3": newest, "r-2": older}.get(rollout_id, [])

    known = fleet_view.known_versions(["r-3", "r-2", "r-1"], recorded, ["i-1", "i-2", "i-3"])

    assert {host: (k.version, k.rollout_id) for host, k in known.items()} == {
        "i-1": (NEW, "r-2"),
        "i-2": ("1.27.0", "r-3"),
        "i-3": ("1.26.1", "r-3"),
    }
    assert read == ["r-3", "r-2"]  # every host known: the oldest rollout is not read


def test_versions_are_ordered_as_bottlerocket_orders_them() -> None:
    counts = fleet_view.version_counts({"a": "1.9.0", "b": "1.10.0", "c": "unknown", "d": "1.10.0", "e": "1.9.0-rc.1"})

    assert counts == [
        {"version": "1.10.0", "hosts": 2},
        {"version": "1.9.0", "hosts": 1},
        {"version": "1.9.0-rc.1", "hosts": 1},
        {"version": "unknown", "hosts": 1},
    ]
