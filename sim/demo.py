"""The demo: Updraft, as `cdk deploy` would ship it for this cdk.json, rolling out on a simulated fleet.

1. A good release goes to 30 hosts in 3 AZs in growing waves; one host's update fails, it is
   rolled back through the update API, and the rollout goes on.
2. A bad release fails its canary: the error budget is spent, the rollout halts, no other host
   is touched, and the canary is rolled back.
No AWS account, no network: moto plays AWS, and simulated Bottlerocket hosts run the real SSM
documents.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from collections import Counter, defaultdict
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from sim.bottlerocket import Fault
from sim.report import figures
from sim.world import World
from stacks import config_from_cdk_json, synthesize
from updraft.domain.waves import Candidate, plan_waves

GOOD, BAD = "1.26.1", "1.27.0"
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
STATE_STYLE = {
    "pending": "dim",
    "applying": "yellow",
    "rebooting": "magenta",
    "verifying": "cyan",
    "updated": "green",
    "failed": "red",
    "rolling-back": "bold red",
    "rolled-back": "red",
    "rollback-failed": "bold white on red",
    "skipped": "dim",
    "needs-attention": "bold white on red",
}


def wave_table(world: World, rollout_id: str, title: str) -> Table:
    records = [r for r in world.host_records(rollout_id).values() if "wave" in r]
    by_wave: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_wave[int(record["wave"])].append(record)
    table = Table(title=title, title_justify="left", expand=False)
    table.add_column("wave", justify="right")
    table.add_column("hosts", justify="right")
    table.add_column("AZs")
    table.add_column("states")
    for wave in sorted(by_wave):
        hosts = by_wave[wave]
        counts = Counter(h["state"] for h in hosts)
        zones = Counter(h["az"][-1] for h in hosts)
        cells = "  ".join(f"[{STATE_STYLE.get(s, '')}]{s} {n}[/]" for s, n in sorted(counts.items()))
        table.add_row(
            "canary" if wave == 0 else str(wave),
            str(len(hosts)),
            " ".join(f"{z}:{n}" for z, n in sorted(zones.items())),
            cells,
        )
    return table


def watch(world: World, console: Console, group: str, version: str) -> Any:
    """Start a rollout and draw its waves until it ends."""
    arn = world.start({"group": group, "target_version": version, "requested_by": "demo"})
    rollout_id = arn.rsplit(":", 1)[-1]
    title = f"{group} -> {version}"
    with Live(console=console, refresh_per_second=8, transient=False) as live:
        while True:
            status = world.sfn.describe_execution(executionArn=arn)["status"]
            minutes = world.clock.seconds / 60
            live.update(Group(wave_table(world, rollout_id, f"{title}   [dim]simulated time {minutes:5.1f} min[/]")))
            if status != "RUNNING":
                break
            time.sleep(0.15)
    console.print()
    return world.wait(arn)


def attention_table(world: World, rollout_id: str) -> Table | None:
    records = world.host_records(rollout_id)
    rows = [r for r in records.values() if r.get("failure") or r["state"] in ("rollback-failed", "needs-attention")]
    if not rows:
        return None
    table = Table(title="hosts that failed", title_justify="left")
    for column in ("instance", "wave", "state", "why"):
        table.add_column(column)
    for record in sorted(rows, key=lambda r: r["instance_id"]):
        table.add_row(
            record["instance_id"],
            str(record["wave"]),
            f"[{STATE_STYLE[record['state']]}]{record['state']}[/]",
            record["failure"],
        )
    return table


def summary(world: World, console: Console, execution: Any) -> None:
    meta = world.rollout_record(execution.name)
    numbers = figures(world, execution)
    states = Counter(r["state"] for r in world.host_records(execution.name).values())
    outcome = meta["status"]
    colour = "green" if outcome == "succeeded" else "red"
    ended = execution.status + (f", {execution.error}" if execution.error else "")
    lines = [
        f"outcome: [{colour}]{outcome}[/]  (execution {ended})",
        "hosts: " + ", ".join(f"{state} {count}" for state, count in sorted(states.items())),
        f"simulated duration {numbers.makespan / 60:.1f} min "
        f"(lower bound of these waves {numbers.lower_bound / 60:.1f} min)",
        f"{numbers.transitions} state transitions, {numbers.lambda_invocations} Lambda invocations, "
        f"{numbers.history_events} history events",
    ]
    if meta.get("halt_reason"):
        lines.insert(1, f"halted: {meta['halt_reason']}")
    console.print(Panel("\n".join(lines), title="rollout " + execution.name[:8], expand=False))
    table = attention_table(world, execution.name)
    if table:
        console.print(table)


def fleet_versions(world: World, ids: list[str]) -> str:
    return ", ".join(f"{v} x{n}" for v, n in sorted(Counter(world.versions()[i] for i in ids).items()))


def quiet() -> None:
    """The demo shows the rollout; the Lambdas' and moto's own logs would drown it."""
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", message="No application metrics to publish")


def run(hosts: int, group: str, seed: int) -> int:
    quiet()
    console = Console()
    config = config_from_cdk_json()
    policy = config.group(group)
    console.print("[bold]Updraft demo[/]: synthesizing the stack for cdk.json and deploying it into moto ...")
    template = synthesize(config)
    with World(
        template, tag_key=config.tag_key, releases=("1.26.0", GOOD, BAD), seed=seed, lambda_log_level="ERROR"
    ) as world:
        world.repository.bad_releases[BAD] = Fault.BOOT_FALLBACK
        ids = world.launch(group, hosts, version="1.26.0")
        order = plan_waves(
            [Candidate(world.fleet.hosts[i].az, i) for i in ids],
            policy.canary_size,
            policy.wave_growth,
            policy.max_wave_size,
        )
        victim = order[min(3, len(order) - 1)][0].instance_id
        world.inject(victim, Fault.APPLY_FAILS)
        zones = len({world.fleet.hosts[i].az for i in ids})
        console.print(
            f"Fleet: {hosts} Bottlerocket hosts tagged {config.tag_key}={group} in {zones} AZs, "
            f"running {fleet_versions(world, ids)}. Host {victim} has a full disk.\n"
        )
        console.rule(f"1. release {GOOD}")
        first = watch(world, console, group, GOOD)
        summary(world, console, first)
        console.print(f"fleet now runs: {fleet_versions(world, ids)}\n")

        console.rule(f"2. release {BAD}: its new image fails to boot")
        second = watch(world, console, group, BAD)
        summary(world, console, second)
        console.print(f"fleet now runs: {fleet_versions(world, ids)}\n")

        good = first.status == "SUCCEEDED" and world.versions()[victim] == "1.26.0"
        halted = second.error == "Updraft.RolloutHalted" and BAD not in world.versions().values()
        if not (good and halted):
            console.print("[bold red]the demo did not end as expected[/]")
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=30, help="hosts in the simulated fleet (default 30)")
    parser.add_argument("--group", default="staging", help="the cdk.json group to roll out (default staging)")
    parser.add_argument("--seed", type=int, default=7, help="the simulation's seed (default 7)")
    args = parser.parse_args(argv)
    return run(args.hosts, args.group, args.seed)


if __name__ == "__main__":
    sys.exit(main())
