"""`updraft plan`: a dry run over the real fleet reads and the real wave planner."""

from __future__ import annotations

from collections import Counter

from sim.world import AMI, World
from tests.cli.conftest import CONFIG, Cli
from updraft.domain.waves import Candidate, plan_waves


def test_plan_updates_the_online_bottlerocket_hosts_and_says_why_it_skips_the_others(world: World, cli: Cli) -> None:
    web = world.launch("web", 6, version="1.26.0")
    current = world.launch("web", 1, version="1.26.1")[0]
    world.launch("batch", 2, version="1.26.0")  # another group: not in the plan
    rebooting = web[0]
    world.ec2.reboot_instances(InstanceIds=[rebooting])  # its agent is away while it boots
    unmanaged = _instance_without_agent(world, "web")
    before = world.versions()

    plan = cli.json("plan", "web", "1.26.1", "--config", str(cli.config))

    candidates = [Candidate(world.fleet.hosts[i].az, i) for i in web[1:]]
    policy = CONFIG.group("web")
    expected = plan_waves(candidates, policy.canary_size, policy.wave_growth, policy.max_wave_size)
    assert [w["size"] for w in plan["waves"]] == [len(w) for w in expected] == [1, 2, 2]
    assert [[h["instance_id"] for h in w["hosts"]] for w in plan["waves"]] == [
        [c.instance_id for c in w] for w in expected
    ]
    assert [w["per_az"] for w in plan["waves"]] == [dict(Counter(c.az for c in w)) for w in expected]
    assert {s["instance_id"]: s["reason"] for s in plan["skipped"]} == {
        rebooting: "SSM agent not online (ConnectionLost)",
        current: "already on 1.26.1",
        unmanaged: "no SSM agent registered",
    }
    # Three waves, each a host update plus a poll and the 300 s bake; at worst every timeout in full.
    assert plan["estimate"]["typical_seconds"] == 3 * (6 * 60 + 30 + 300)
    assert plan["estimate"]["worst_case_seconds"] == 3 * (1200 + 900 + 300)
    assert plan["maintenance_window"] is None
    # A dry run: nothing started, no host touched.
    assert world.executions() == []
    assert world.versions() == before


def test_plan_shows_the_next_maintenance_window_and_renders_for_people(world: World, cli: Cli) -> None:
    world.launch("nightly", 3, version="1.26.0")

    plan = cli.json("plan", "nightly", "1.26.1", "--config", str(cli.config))
    shown = cli("plan", "nightly", "1.26.1", "--config", str(cli.config))

    assert [w["size"] for w in plan["waves"]] == [2, 1]
    window = plan["maintenance_window"]
    assert (window["schedule"], window["duration_minutes"]) == ("0 2 * * *", 120)
    assert window["closes_at"] > window["opens_at"]
    assert shown.exit_code == 0
    assert "dry run" in shown.stdout and "maintenance window" in shown.stdout


def test_plan_of_an_unknown_group_is_a_usage_error_naming_it(cli: Cli) -> None:
    result = cli("plan", "payments", "1.26.1", "--config", str(cli.config))

    assert result.exit_code == 2
    assert "'payments' is not configured" in result.stderr
    assert "web, batch, nightly" in result.stderr
    assert result.stdout == ""


def test_plan_of_a_malformed_version_is_a_usage_error(cli: Cli) -> None:
    result = cli("plan", "web", "latest", "--config", str(cli.config), "--json")

    assert result.exit_code == 2
    assert "target_version" in result.stderr
    assert result.stdout == ""


def test_a_missing_config_file_is_a_usage_error(cli: Cli) -> None:
    result = cli("plan", "web", "1.26.1", "--config", str(cli.config.parent / "absent.json"))

    assert result.exit_code == 2
    assert "absent.json: no such file" in result.stderr


def _instance_without_agent(world: World, group: str) -> str:
    """A tagged instance the simulated fleet does not run: SSM has never heard of its agent."""
    instance = world.ec2.run_instances(
        ImageId=AMI,
        MinCount=1,
        MaxCount=1,
        InstanceType="m7g.large",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": world.tag_key, "Value": group}]}],
    )["Instances"][0]
    return instance["InstanceId"]
