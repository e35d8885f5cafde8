"""`start`, `status`, `pause` / `resume` / `abort`, `history`, `kill-switch` and `rollback` on a simulated deployment.

The state machine's reaction to pause, abort and kill switches is not under test here: only what the
command line reads and writes.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from sim.world import World
from tests.cli.conftest import Cli
from updraft.adapters.control import ENDED


def start_held(world: World, cli: Cli, *args: str) -> dict:
    """Start a rollout and let it run to its first wait, time standing still: it stays running."""
    started = cli.json("start", *args, "--config", str(cli.config))
    world.settle()
    return started


def test_a_rollout_seen_through_the_command_line(world: World, cli: Cli) -> None:
    hosts = world.launch("web", 4, version="1.26.0")

    first = start_held(world, cli, "web", "1.26.1", "--requested-by", "alice")
    execution = world.sfn.describe_execution(executionArn=first["execution_arn"])
    assert execution["name"] == first["rollout_id"]
    assert json.loads(execution["input"]) == {
        "group": "web",
        "target_version": "1.26.1",
        "requested_by": "alice",
    }

    running = cli.json("status", "web")
    assert running["running"] is True
    meta = running["rollout"]
    assert (meta["rollout_id"], meta["target_version"], meta["requested_by"]) == (
        first["rollout_id"],
        "1.26.1",
        "alice",
    )

    again = cli("start", "web", "1.27.0", "--config", str(cli.config))
    assert again.exit_code == 1
    assert f"already has rollout {first['rollout_id']} running" in again.stderr

    cli.json("pause", "web", "--by", "bob", "--reason", "incident 42")
    paused = world.rollout_record(first["rollout_id"])
    assert paused["paused"] is True
    assert (paused["pause"]["by"], paused["pause"]["reason"]) == ("bob", "incident 42")

    cli.json("resume", "web", "--by", "bob")
    resumed = world.rollout_record(first["rollout_id"])
    assert resumed["paused"] is False
    assert resumed["resumed"]["by"] == "bob"

    world.wait(first["execution_arn"])
    ended = cli.json("status", "web")  # nothing runs: the last rollout
    assert ended["running"] is False
    assert ended["rollout"]["rollout_id"] == first["rollout_id"]
    assert ended["rollout"]["status"] in ENDED
    assert sum(w["size"] for w in ended["waves"]) == len(hosts)
    for wave in ended["waves"]:
        assert sum(wave["states"].values()) == wave["size"] == len(wave["hosts"])
    shown = cli("status", "web")
    assert shown.exit_code == 0
    assert "no rollout of web is running" in shown.stdout and first["rollout_id"] in shown.stdout
    watched = cli("status", "--rollout", first["rollout_id"], "--watch", "--json")
    assert [json.loads(line)["running"] for line in watched.stdout.splitlines()] == [False]
    watched = cli("status", "--rollout", first["rollout_id"], "--watch", "--interval", "0.1")
    assert watched.exit_code == 0 and first["rollout_id"] in watched.stdout

    second = start_held(world, cli, "web", "1.27.0")
    requested = cli.json("abort", "web", "--reason", "wrong version")
    assert requested["rollout_id"] == second["rollout_id"]
    assert world.rollout_record(second["rollout_id"])["abort_requested"]["reason"] == "wrong version"
    world.wait(second["execution_arn"])

    history = cli.json("history", "web")
    assert [row["rollout_id"] for row in history] == [second["rollout_id"], first["rollout_id"]]
    assert [row["target_version"] for row in history] == ["1.27.0", "1.26.1"]
    assert all(row["status"] in ENDED for row in history)
    shown = cli("history", "web")
    assert shown.exit_code == 0
    assert second["rollout_id"] in shown.stdout and first["rollout_id"] in shown.stdout

    nothing_running = cli("pause", "web")
    assert nothing_running.exit_code == 1
    assert "no rollout of group 'web' is running" in nothing_running.stderr


def test_kill_switches_on_off_and_status(world: World, cli: Cli) -> None:
    assert cli.json("kill-switch", "status")["engaged"] == []

    cli.json("kill-switch", "on", "--group", "web", "--reason", "web canary looks bad", "--by", "carol")
    engaged = cli.json("kill-switch", "on", "--reason", "region event", "--by", "carol")["engaged"]
    assert {(s["scope"], s["reason"], s["by"]) for s in engaged} == {
        ("web", "web canary looks bad", "carol"),
        ("all groups", "region event", "carol"),
    }

    released = cli.json("kill-switch", "off")
    assert [s["scope"] for s in released["engaged"]] == ["web"]
    assert [s["scope"] for s in cli.json("kill-switch", "status")["engaged"]] == ["web"]
    shown = cli("kill-switch", "status")
    assert shown.exit_code == 0 and "web canary looks bad" in shown.stdout
    cli.json("kill-switch", "off", "--group", "web")
    assert cli.json("kill-switch", "status")["engaged"] == []


def test_a_stack_that_is_not_there_is_named(world: World, cli: Cli) -> None:
    result = cli("status", "web", "--stack", "Elsewhere", "--json")

    assert result.exit_code == 1
    assert "stack 'Elsewhere' not found" in result.stderr
    assert result.stdout == ""


def test_status_needs_a_group_or_a_rollout(cli: Cli) -> None:
    result = cli("status")

    assert result.exit_code == 2
    assert "name a GROUP or give --rollout ID" in result.stderr


def test_rollback_needs_a_succeeded_rollout(world: World, cli: Cli) -> None:
    result = cli("rollback", "batch", "--config", str(cli.config))

    assert result.exit_code == 1
    assert "group 'batch' has no succeeded rollout to roll back" in result.stderr
    assert world.executions() == []


def test_rollback_within_the_window_starts_an_undo_and_refuses_once_it_closed(
    world: World, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.launch("batch", 3, version="1.26.0")
    done = world.rollout("batch", "1.26.1")
    finished = world.rollout_record(done.name)
    assert finished["status"] == "succeeded"
    finished_at = datetime.fromisoformat(finished["finished_at"])

    monkeypatch.setattr("cli.main.now", lambda: finished_at + timedelta(hours=6))  # batch's window: 6 h
    closed = cli("rollback", "batch", "--config", str(cli.config))
    assert closed.exit_code == 1
    assert f"rollback window of rollout {done.name} closed" in closed.stderr

    monkeypatch.setattr("cli.main.now", lambda: finished_at + timedelta(hours=5))
    started = cli.json("rollback", "batch", "--requested-by", "dave", "--config", str(cli.config))
    execution = world.sfn.describe_execution(executionArn=started["execution_arn"])
    assert json.loads(execution["input"]) == {
        "group": "batch",
        "rollback_of": done.name,
        "requested_by": "dave",
    }
    world.wait(started["execution_arn"])  # what the rollback then does is the state machine's business
