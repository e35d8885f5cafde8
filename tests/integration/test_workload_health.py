"""Workload health on the simulated fleet: a group's health command after each host's verification,
and ECS groups whose container instances are drained before the update and set ACTIVE after it."""

from __future__ import annotations

from typing import Any

import pytest

from sim.bottlerocket import Fault
from stacks import synthesize
from tests.integration.conftest import assert_all_final, assert_calls_granted, states
from updraft.config import UpdraftConfig

pytestmark = pytest.mark.integration

OLD, NEW = "1.26.0", "1.26.1"
BUDGET = {"canary": "1", "per_wave": "2", "total": "50%"}
CONFIG = UpdraftConfig.model_validate(
    {
        "groups": [
            {
                "name": "checked",
                "variant": "aws-ecs-2",
                "error_budget": BUDGET,
                "rollback_scope": "failed",
                "health_check": {"command": "workload-health --all", "timeout_seconds": 60},
            },
            {
                "name": "blue",
                "variant": "aws-ecs-2",
                "error_budget": BUDGET,
                "rollback_scope": "failed",
                "ecs": {"cluster": "blue", "drain_timeout_seconds": 600, "unmanaged_tasks": "skip"},
            },
            {
                "name": "green",
                "variant": "aws-ecs-2",
                "error_budget": BUDGET,
                "rollback_scope": "failed",
                "ecs": {"cluster": "green", "drain_timeout_seconds": 600, "unmanaged_tasks": "wait"},
                "health_check": {"command": "workload-health"},
            },
        ]
    }
)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return synthesize(CONFIG)


def test_an_unhealthy_workload_fails_its_host_which_is_rolled_back(world, template):
    ids = world.launch("checked", 4, faults={2: {Fault.UNHEALTHY_WORKLOAD}})
    sick = ids[2]

    execution = world.rollout("checked", NEW)

    assert execution.status == "SUCCEEDED"
    records = world.host_records(execution.name)
    assert_all_final(records)
    assert records[sick]["state"] == "rolled-back"
    assert "health command exited 1" in records[sick]["failure"]
    assert "2 of 3 containers unhealthy" in records[sick]["failure"]
    assert {records[i]["state"] for i in ids if i != sick} == {"updated"}
    versions = world.versions()
    assert versions[sick] == OLD
    assert all(versions[i] == NEW for i in ids if i != sick)
    assert world.api_calls["ssm:SendCommand"] >= 3  # the health document was really sent
    assert_calls_granted(world, template)


def test_ecs_hosts_are_drained_updated_and_active_again_unmanaged_tasks_skip_their_host(world, template):
    serving, busy, idle, agentless, stranger = world.launch("blue", 5, faults={3: {Fault.ECS_AGENT_OFFLINE}})
    world.ecs_cluster("blue")
    world.join_cluster("blue", [serving, busy, idle, agentless])
    service_tasks = world.run_service_tasks("blue", serving, 3)
    report = world.run_standalone_task("blue", busy, seconds=3600)

    execution = world.rollout("blue", NEW)

    assert execution.status == "SUCCEEDED"
    records = world.host_records(execution.name)
    assert_all_final(records)
    assert states(records) == {
        serving: "updated",
        busy: "skipped",
        idle: "updated",
        agentless: "rolled-back",
        stranger: "skipped",
    }
    assert "runs tasks no service owns (family:job/" in records[busy]["note"]
    assert "not a container instance of ECS cluster blue" in records[stranger]["note"]
    assert "ECS agent not connected" in records[agentless]["failure"]
    assert "container instance ACTIVE" in records[agentless]["note"]
    versions = world.versions()
    assert (versions[serving], versions[idle]) == (NEW, NEW)
    assert (versions[busy], versions[agentless], versions[stranger]) == (OLD, OLD, OLD)
    instances = world.container_instances("blue")
    assert {i: (v["status"], v["agentConnected"]) for i, v in instances.items()} == dict.fromkeys(
        [serving, busy, idle, agentless], ("ACTIVE", True)
    )
    running = world.running_tasks("blue")
    assert report in running  # never drained away: its host was left alone
    assert not set(service_tasks) & set(running)  # stopped by the drain...
    replacements = [t for t in running.values() if t["group"] == "service:web"]
    assert len(replacements) == 3  # ...and the service runs them elsewhere
    assert_calls_granted(world, template)


def test_policy_wait_waits_for_a_standalone_task_and_skips_a_host_whose_drain_outlives_the_deadline(world, template):
    short, endless, serving = world.launch("green", 3)
    world.ecs_cluster("green")
    world.join_cluster("green", [short, endless, serving])
    world.run_standalone_task("green", short, seconds=300)
    world.run_standalone_task("green", endless, seconds=5000)
    world.run_service_tasks("green", serving, 2, service="api")

    execution = world.rollout("green", NEW)

    assert execution.status == "SUCCEEDED"
    records = world.host_records(execution.name)
    assert_all_final(records)
    assert states(records) == {short: "updated", endless: "skipped", serving: "updated"}
    assert "drain did not finish within 600 s (1 tasks still running)" in records[endless]["note"]
    history = " | ".join(f"{e['state']}: {e['note']}" for e in records[short]["history"])
    assert "waiting on tasks no service owns" in history and "checking-health" in history
    versions = world.versions()
    assert (versions[short], versions[endless], versions[serving]) == (NEW, OLD, NEW)
    instances = world.container_instances("green")
    assert {i: (v["status"], v["agentConnected"]) for i, v in instances.items()} == dict.fromkeys(
        [short, endless, serving], ("ACTIVE", True)
    )
    assert_calls_granted(world, template)


def _draining_host(world) -> str:
    """A green host whose drain waits on a long standalone task: nothing is applied to it for 600 s."""
    (host,) = world.launch("green", 1)
    world.ecs_cluster("green")
    world.join_cluster("green", [host])
    world.run_standalone_task("green", host, seconds=5000)
    return host


def test_a_rollout_failing_outright_while_a_host_drains_puts_its_container_instance_back(world):
    host = _draining_host(world)
    world.fail_lambda("check_hosts", on_call=2, times=5)  # every retry of the second look fails too

    execution = world.rollout("green", NEW)

    assert execution.status == "FAILED"
    record = world.host_records(execution.name)[host]
    assert record["state"] == "skipped"
    assert record["note"].endswith("nothing applied, container instance ACTIVE again")
    assert "the rollout failed while the host was draining" in record["note"]
    assert world.versions()[host] == OLD
    assert world.container_instances("green")[host]["status"] == "ACTIVE"
    assert world.lock_holder("green") is None


def test_a_rollout_stopped_while_a_host_drains_is_settled_with_its_container_instance_back(world):
    host = _draining_host(world)
    stop: dict[str, str] = {}

    def stop_after_the_first_look(step_input: dict[str, Any], _result: Any) -> None:
        stop.setdefault("rollout", step_input["rollout"]["rollout_id"])

    world.after_step("check_hosts", stop_after_the_first_look)
    arn = world.start({"group": "green", "target_version": NEW})
    world.run_until(lambda: bool(stop), "the first look at the wave")
    assert world.stop_while_sleeping(arn)  # at its next wait, before time moves on

    assert world.wait(arn).status == "ABORTED"
    world.wait_all()  # the end event was settled
    record = world.host_records(stop["rollout"])[host]
    assert record["state"] == "skipped"
    assert record["note"].endswith("nothing applied, container instance ACTIVE again")
    assert world.versions()[host] == OLD
    assert world.container_instances("green")[host]["status"] == "ACTIVE"
    assert world.lock_holder("green") is None
