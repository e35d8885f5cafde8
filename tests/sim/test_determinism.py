"""The simulation's outcome is a function of its seed and config: the same on an idle machine and with every
core saturated, and the same in a reused deployment (World.reset) as in a fresh one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sim.bottlerocket import Fault
from sim.load import Hog
from sim.report import outcome_record
from sim.world import World
from stacks import synthesize
from updraft.adapters.control import Controls
from updraft.config import UpdraftConfig

pytestmark = pytest.mark.integration
NEW = "1.26.1"
CONFIG = UpdraftConfig.model_validate(
    {
        "groups": [
            {"name": "staging", "variant": "aws-ecs-2", "error_budget": {"per_wave": "1", "total": "25%"}},
            {"name": "prod", "variant": "aws-ecs-2", "canary_size": 2, "bake_seconds": 900},
        ]
    }
)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return synthesize(CONFIG)


def two_groups_at_once(world: World) -> dict[str, Any]:
    """Staging rolls out with a failing host while prod's rollout waits behind a kill switch, polling every
    minute, until staging's second wave starts: two executions sharing virtual time, one sleeping while the
    other works through waves whose steps take longer on a loaded machine."""
    staging = world.launch("staging", 7)
    world.launch("prod", 4)
    controls = Controls(world.outputs["LedgerTableName"])
    controls.engage("prod", "after staging's canary", "release-manager", world.clock.now().isoformat())

    def fail_two_of_the_third_wave(step_input: dict[str, Any], result: dict[str, Any]) -> None:
        # Chosen from the plan, not from launch order: which hosts the canary and each wave take follows from
        # the instance ids, which follow from everything the deployment created before them.
        if step_input["rollout"]["group"] == "staging" and result["progress"].get("done"):
            records = world.host_records(step_input["rollout"]["rollout_id"]).values()
            third = sorted(r["instance_id"] for r in records if r.get("wave") == 2)
            world.inject(third[0], Fault.APPLY_FAILS)
            world.inject(third[1], Fault.BOOT_FALLBACK)

    def release_prod(step_input: dict[str, Any], _result: Any) -> None:
        if step_input["rollout"]["group"] == "staging" and step_input["wave"] == 2:
            controls.release("prod")

    world.after_step("plan_waves", fail_two_of_the_third_wave)
    world.after_step("apply_wave", release_prod)
    world.start({"group": "staging", "target_version": NEW})
    world.start({"group": "prod", "target_version": NEW})
    world.wait_all()
    assert len(staging) == 7
    return outcome_record(world)


def test_a_saturated_machine_changes_nothing(template: dict[str, Any]) -> None:
    with World(template, seed=11, lambda_log_level="ERROR") as idle:
        expected = two_groups_at_once(idle)
    with Hog(limit=600), World(template, seed=11, lambda_log_level="ERROR") as loaded:
        found = two_groups_at_once(loaded)

    assert found == expected
    statuses = {e["rollout"]["group"]: e["rollout"]["status"] for e in expected["executions"]}
    assert statuses == {"staging": "halted", "prod": "succeeded"}  # two failures: more than 25% of 7 allows
    states = [state for e in expected["executions"] for state, *_ in e["hosts"].values()]
    assert {"rolled-back", "updated"} <= set(states)


def messy(world: World) -> None:
    """A test that leaves everything behind: hosts, a rollout halted mid-way, an alarm, a queue, a cluster,
    an engaged kill switch, a hook and a planned Lambda error."""
    world.launch("staging", 3, faults={0: {Fault.REBOOT_HANGS}})
    world.alarm("leftover-alarm", "ALARM")
    world.subscribe_queue()
    world.capture_lifecycle_events()
    world.ecs_cluster("leftover")
    Controls(world.outputs["LedgerTableName"]).engage(None, "left on", "someone", world.clock.now().isoformat())
    world.after_step("check_hosts", lambda i, r: None)
    world.fail_lambda("plan_waves", times=1)
    world.start({"group": "prod", "target_version": NEW})  # held by the switch: still running at the reset
    world.sleep(600)


@pytest.mark.parametrize("before", [lambda world: None, messy], ids=["fresh", "after-a-messy-test"])
def test_a_reset_deployment_answers_as_a_fresh_one(template: dict[str, Any], before: Callable[[World], None]) -> None:
    def scenario(world: World) -> dict[str, Any]:
        world.launch("staging", 4, faults={2: {Fault.APPLY_FAILS}})
        world.rollout("staging", NEW)
        return outcome_record(world)

    with World(template, seed=5) as fresh:
        expected = scenario(fresh)
    with World(template, seed=5) as reused:
        before(reused)
        reused.reset()
        found = scenario(reused)

    assert found == expected  # the same instance ids, execution names, times and outcomes
