"""The demo: Updraft, as `cdk deploy` would ship it for this cdk.json, on a simulated fleet.

A local signed update repository (real TUF metadata, RSA-PSS keys) stands in for Bottlerocket's.
1. Release 1.26.1 is published: the scheduled detector verifies it and announces it; staging rolls
   out in growing waves (one host's update fails and is rolled back through the update API), then
   prod, which follows staging, takes it.
2. Release 1.27.0 is published; its image fails to boot. Staging's canary fails, the error budget is
   spent, the rollout halts and rolls back; prod never starts it.
3. Release 1.27.1 is published. Staging takes it; in prod, the service's CloudWatch alarm fires while the
   third wave bakes: the wave fails, its hosts are rolled back (prod's rollback scope is `wave`), the
   waves before it keep 1.27.1 and the rest are never started.
No AWS account, no network: moto plays AWS, and simulated Bottlerocket hosts run the real SSM
documents. Each rollout's report (`updraft report`: its timeline, summary and failed hosts) is written to
reports/ (--reports).
"""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")  # before jsii starts

import argparse
import hashlib
import json
import logging
import os
import sys
import tempfile
import warnings
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from cli.deployment import find
from cli.records import Records
from cli.report_file import write_report
from sim.bottlerocket import Fault
from sim.clock import EPOCH
from sim.report import figures, outcome_record
from sim.update_repository import UpdateRepository
from sim.world import World
from stacks import config_from_cdk_json, synthesize
from stacks.synth import CDK_JSON
from updraft.config import Detection, UpdraftConfig
from updraft.domain.waves import Candidate, plan_waves

GOOD, BAD, NEXT = "1.26.1", "1.27.0", "1.27.1"
REDRAW_SECONDS = 60
ALARMED_WAVE = 2  # the wave of the alarmed group during whose bake its alarm fires
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


def watch_all(world: World, console: Console, title: str, before: set[str]) -> list[Any]:
    """Draw the waves of every execution not in `before` until none runs; those executions, oldest first.
    The picture is redrawn every REDRAW_SECONDS of simulated time: the world runs between two looks."""
    arn = world.outputs["RolloutStateMachineArn"]
    with Live(console=console, refresh_per_second=8, transient=False) as live:
        while True:
            listed = [
                e for e in world.sfn.list_executions(stateMachineArn=arn)["executions"] if e["name"] not in before
            ]
            views = [f"{title}   [dim]simulated time {world.clock.seconds / 60:6.1f} min[/]"]
            views += [_execution_view(world, e) for e in sorted(listed, key=lambda e: e["startDate"])]
            live.update(Group(*views))
            if not any(e["status"] == "RUNNING" for e in listed):
                break
            world.run_until(lambda: not world.clock.parked(), "the rollouts to end", within=REDRAW_SECONDS)
    console.print()
    return [e for e in world.wait_all() if e.name not in before]


def _execution_view(world: World, execution: dict[str, Any]) -> Any:
    meta = world.rollout_record(execution["name"])
    if meta:
        return wave_table(world, execution["name"], f"{meta['group']} -> {meta['target_version']}: {meta['status']}")
    request = world.sfn.describe_execution(executionArn=execution["executionArn"])
    group = json.loads(request["input"]).get("group", "?")
    state = "waiting on its release policy" if execution["status"] == "RUNNING" else "not started by its policy"
    return f"[dim]{group}: {state}[/]"


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
            f"[{STATE_STYLE.get(record['state'], '')}]{record['state']}[/]",
            record.get("failure") or record.get("note", ""),
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


def with_repository(config: UpdraftConfig, repository: UpdateRepository, root_file: Path) -> UpdraftConfig:
    detection = Detection(
        metadata_base_url=repository.metadata_base_url,
        targets_base_url=repository.targets_base_url,
        trusted_root_file=str(root_file),
        trusted_root_sha512=hashlib.sha512(root_file.read_bytes()).hexdigest(),
        schedule="rate(1 hour)",
    )
    return config.model_copy(update={"detection": detection})


def publish(world: World, console: Console, repository: UpdateRepository, version: str, reports: Path) -> list[Any]:
    repository.release(version, world.clock.now())
    console.rule(f"release {version} published; the scheduled detector runs")
    before = {e.name for e in world.wait_all()}
    world.tick()
    executions = watch_all(world, console, f"release {version}", before)
    for execution in executions:
        if world.rollout_record(execution.name):
            summary(world, console, execution)
            console.print(f"report: {report(world, execution.name, reports)}")
    return executions


def report(world: World, rollout_id: str, reports: Path) -> Path:
    """The rollout's report, as `updraft report` writes it, read from the ledger through the AWS API."""
    meta = world.rollout_record(rollout_id)
    path = reports / f"{meta['target_version']}-{meta['group']}.html"
    write_report(Records(find("Updraft")).timeline(rollout_id, world.clock.now().isoformat()), path, False, 0)
    return path


def run(
    hosts: int, seed: int, cdk_json: Path = CDK_JSON, record: Path | None = None, reports: Path = Path("reports")
) -> int:
    quiet()
    console = Console()
    base = config_from_cdk_json(cdk_json)
    console.print("[bold]Updraft demo[/]: a signed update repository on 127.0.0.1, the stack for cdk.json in moto ...")
    with tempfile.TemporaryDirectory(prefix="updraft-demo-") as scratch:
        repository = UpdateRepository(Path(scratch) / "updates", base.groups[0].variant)
        try:
            repository.release("1.26.0", EPOCH - timedelta(days=30))
            root = Path(scratch) / "root.json"
            root.write_bytes(repository.trusted_root)
            config = with_repository(base, repository, root)
            reports.mkdir(parents=True, exist_ok=True)
            return _run(config, repository, hosts, seed, console, record, reports)
        finally:
            repository.close()


def _run(
    config: UpdraftConfig,
    repository: UpdateRepository,
    hosts: int,
    seed: int,
    console: Console,
    record: Path | None,
    reports: Path,
) -> int:
    template = synthesize(config)
    releases = ("1.26.0", GOOD, BAD, NEXT)
    with World(template, tag_key=config.tag_key, releases=releases, seed=seed, lambda_log_level="ERROR") as world:
        world.repository.bad_releases[BAD] = Fault.BOOT_FALLBACK
        fleets = {group.name: world.launch(group.name, hosts, version="1.26.0") for group in config.groups}
        first = config.groups[0]
        order = plan_waves(
            [Candidate(world.fleet.hosts[i].az, i) for i in fleets[first.name]],
            first.canary_size,
            first.wave_growth,
            first.max_wave_size,
        )
        victim = order[min(3, len(order) - 1)][0].instance_id
        world.inject(victim, Fault.APPLY_FAILS)
        alarms = _monitoring(world, config)
        all_hosts = [i for ids in fleets.values() for i in ids]
        console.print(
            f"Fleet: {', '.join(f'{len(ids)} hosts in group {g}' for g, ids in fleets.items())}, 3 AZs, "
            f"running {fleet_versions(world, all_hosts)}. Host {victim} ({first.name}) has a full disk.\n"
        )
        good = publish(world, console, repository, GOOD, reports)
        console.print(f"fleet now runs: {fleet_versions(world, all_hosts)}\n")
        bad = publish(world, console, repository, BAD, reports)
        console.print(f"fleet now runs: {fleet_versions(world, all_hosts)}\n")
        alarmed = next(iter(alarms), None)  # the first group with an alarm gate, if any
        if alarmed:
            _fire_alarm_mid_bake(world, alarmed, alarms[alarmed], console)
        last = publish(world, console, repository, NEXT, reports)
        console.print(f"fleet now runs: {fleet_versions(world, all_hosts)}\n")
        missed = _missed(world, config, good, bad, victim) + (_missed_alarm(world, last, alarmed) if alarmed else [])
        outcome = outcome_record(world)
        if record:
            record.write_text(json.dumps(outcome, indent=1, sort_keys=True))
        return verdict(console, missed, outcome)


def verdict(console: Console, missed: list[str], outcome: dict[str, Any], demo: str = "the demo") -> int:
    """Say whether every check held, and a fingerprint of the run: the same seed prints the same one anywhere."""
    digest = hashlib.sha256(json.dumps(outcome, sort_keys=True).encode()).hexdigest()[:16]
    console.print(f"outcome record {digest} ({outcome['virtual_seconds'] / 60:.1f} simulated minutes)")
    if not missed:
        console.print(f"[bold green]every check of {demo} held[/]")
        return 0
    console.print(f"[bold red]{demo} did not end as expected:[/]")
    for what in missed:
        console.print(f"[red]  - {what}[/]")
    return 1


def _monitoring(world: World, config: UpdraftConfig) -> dict[str, str]:
    """The team's monitoring: every alarm the gated groups watch exists, and is OK. Group -> its first alarm."""
    first: dict[str, str] = {}
    for group in config.groups:
        if group.alarms:
            names = [*group.alarms.names, *(f"{prefix}errors" for prefix in group.alarms.prefixes)]
            for name in names:
                world.alarm(name)
            first[group.name] = names[0]
    return first


def _fire_alarm_mid_bake(world: World, group: str, alarm: str, console: Console) -> None:
    """The group's service alarm fires while its wave ALARMED_WAVE bakes the last release."""
    fired: list[bool] = []

    def fire(step_input: dict[str, Any], result: dict[str, Any]) -> None:
        rollout, progress = step_input["rollout"], result["progress"]
        bakes = progress.get("verdict") == "bake" and step_input["wave"] == ALARMED_WAVE
        if not fired and bakes and rollout["group"] == group and rollout["target_version"] == NEXT:
            fired.append(True)
            world.set_alarm(alarm, "ALARM", "5xx rate above 1% for 1 minute")

    world.after_step("check_hosts", fire)
    console.print(f"[dim]{group}'s service alarm {alarm} will fire while its wave {ALARMED_WAVE} bakes {NEXT}.[/]")


def _missed_alarm(world: World, executions: list[Any], group: str) -> list[str]:
    """The alarmed group halted on the alarm and rolled back exactly the baking wave; what did not hold."""
    metas = [meta for e in executions if (meta := world.rollout_record(e.name)) and meta["group"] == group]
    if len(metas) != 1:
        return [f"{group} ran {len(metas)} rollouts of {NEXT}, not one"]
    meta = metas[0]
    if meta["status"] != "halted" or "ALARM" not in meta.get("halt_reason", ""):
        why = meta.get("halt_reason", "no halt")
        return [f"{group}'s rollout of {NEXT} ended {meta['status']} ({why}), not halted by its alarm"]
    expected = {wave: "updated" for wave in range(ALARMED_WAVE)} | {ALARMED_WAVE: "rolled-back"}
    wrong = sorted(
        f"wave {wave}: {state}"
        for record in world.host_records(meta["rollout_id"]).values()
        if "wave" in record
        for wave, state in [(int(record["wave"]), record["state"])]
        if state != expected.get(wave, "skipped")
    )
    return [f"after the alarm, hosts in unexpected states ({', '.join(wrong)})"] if wrong else []


def _missed(world: World, config: UpdraftConfig, good: list[Any], bad: list[Any], victim: str) -> list[str]:
    """Every group took the good release; the bad one halted on the first group's canary, nowhere else."""
    ran_good = [meta for e in good if (meta := world.rollout_record(e.name))]
    ran_bad = [meta for e in bad if (meta := world.rollout_record(e.name))]
    automatic = sorted(g.name for g in config.groups if g.auto_rollout)
    checks = [
        (sorted(m["group"] for m in ran_good) == automatic, f"every automatic group rolled out {GOOD} once"),
        ({m["status"] for m in ran_good} == {"succeeded"}, f"every rollout of {GOOD} succeeded"),
        ([m["status"] for m in ran_bad] == ["halted"], f"{BAD} halted in the first group and started nowhere else"),
        (world.versions()[victim] == "1.26.0", f"the host with a full disk ({victim}) kept 1.26.0"),
        (BAD not in world.versions().values(), f"no host runs {BAD}"),
    ]
    found = {
        GOOD: ", ".join(f"{m['group']} {m['status']}" for m in ran_good) or "none",
        BAD: ", ".join(f"{m['group']} {m['status']}" for m in ran_bad) or "none",
    }
    return [f"{what} (rollouts: {GOOD}: {found[GOOD]}; {BAD}: {found[BAD]})" for held, what in checks if not held]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=30, help="hosts per group in the simulated fleet (default 30)")
    parser.add_argument("--seed", type=int, default=7, help="the simulation's seed (default 7)")
    parser.add_argument("--record", type=Path, help="write the run's outcome record (JSON) to this file")
    parser.add_argument("--reports", type=Path, default=Path("reports"), help="where each rollout's report goes")
    args = parser.parse_args(argv)
    try:
        return run(args.hosts, args.seed, record=args.record, reports=args.reports)
    except Exception as error:  # a failure is told in words, not as a traceback
        Console(stderr=True).print(f"[bold red]the demo failed: {type(error).__name__}: {error}[/]")
        return 1


if __name__ == "__main__":
    sys.exit(main())
