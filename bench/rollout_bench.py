"""Rollouts of simulated fleets of growing size, and what they cost the pipeline.

Per fleet size, one table: state transitions per host, history events, the largest payload in the history,
Lambda invocations and billed GB-seconds, AWS API calls per host, an estimated AWS cost per host updated,
the simulated makespan against its lower bound (the sum over waves of the slowest host's apply + reboot +
verify) and, in the same run, the makespan of a one-host-at-a-time policy on an identical fleet (measured up
to --serial-max hosts, extrapolated from its measured time per host beyond). Then the targets, as checks.

Run: `make bench` (10, 100 and 1,000 hosts) or `.venv/bin/python bench/rollout_bench.py --sizes 10000`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent.parent / "functions")]
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")

import boto3  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.costs import Cost, Meter, cost  # noqa: E402
from sim import aws  # noqa: E402
from sim.report import Figures, figures, outcome_record  # noqa: E402
from sim.world import World  # noqa: E402
from stacks import synthesize  # noqa: E402
from updraft.config import UpdraftConfig  # noqa: E402

WAVE_CAP = 100  # the default table's cap; --cap 1000 (the schema's largest) for 10,000 hosts


def config(cap: int) -> UpdraftConfig:
    """The same policy twice: waves growing from a canary of one, and one host at a time (what the ECS updater
    and the Kubernetes operator do by default)."""
    fleet = {"name": "fleet", "variant": "aws-ecs-2", "canary_size": 1, "wave_growth": 2.0, "max_wave_size": cap}
    one_by_one = {"name": "serial", "variant": "aws-ecs-2", "canary_size": 1, "wave_growth": 1.0, "max_wave_size": 1}
    return UpdraftConfig.model_validate({"groups": [fleet, one_by_one]})


HISTORY_LIMIT = 25_000  # events in one Standard execution
PAYLOAD_LIMIT = 256 * 1024  # bytes of a state's input or output
TRANSITIONS_TARGET = 0.5  # per host, at 1,000 hosts
BOUND_TARGET = 1.10  # makespan within 10% of the lower bound
SPEEDUP_TARGET = 10.0  # over one host at a time, at 100 hosts


@dataclass
class Row:
    figures: Figures
    cost: Cost
    wall_seconds: float
    throttled_sends: int
    outcome: dict  # the run's outcome record (sim.report.outcome_record)
    serial_makespan: float | None = None
    serial_estimated: bool = False

    @property
    def hosts(self) -> int:
        return self.figures.hosts


def run(template: dict, group: str, hosts: int, seed: int, throttle: int = 0) -> Row:
    """One rollout of a fresh, identically seeded fleet; its figures and estimated cost."""
    started = time.perf_counter()
    with World(template, seed=seed, lambda_log_level="ERROR") as world:
        meter = Meter(lambda: aws.pipeline_call(world.clock))
        meter.attach(boto3.DEFAULT_SESSION)
        world.launch(group, hosts)
        world.fleet.throttle_sends = throttle
        execution = world.wait(world.start({"group": group, "target_version": "1.26.1"}))
        if execution.status != "SUCCEEDED":
            raise SystemExit(f"{group} {hosts} hosts: rollout {execution.status} {execution.error} {execution.cause}")
        result = figures(world, execution)
        spent = cost(result.transitions, result.gb_seconds, result.invocations, meter)
        outcome = outcome_record(world)
        return Row(result, spent, time.perf_counter() - started, throttle - world.fleet.throttle_sends, outcome)


def serial(template: dict, rows: list[Row], limit: int, seed: int, console: Console) -> None:
    """One host at a time on the same fleets: measured up to `limit` hosts, then per host times the size."""
    per_host = None
    if limit and all(row.hosts > limit for row in rows):  # measure the rate at `limit` hosts to extrapolate
        measured = run(template, "serial", limit, seed)
        console.print(f"one at a time, {limit} hosts: {measured.wall_seconds:.0f} s of wall time")
        per_host = measured.figures.makespan / limit
    for row in sorted(rows, key=lambda r: r.hosts):
        if row.hosts <= limit:
            measured = run(template, "serial", row.hosts, seed)
            console.print(f"one at a time, {row.hosts} hosts: {measured.wall_seconds:.0f} s of wall time")
            row.serial_makespan, per_host = measured.figures.makespan, measured.figures.makespan / row.hosts
        elif per_host is not None:
            row.serial_makespan, row.serial_estimated = per_host * row.hosts, True


def checks(rows: list[Row]) -> list[tuple[str, bool | None]]:
    """Each target and whether the run met it (None: the run has no figure for it)."""
    at = {row.hosts: row for row in rows}
    found: list[tuple[str, bool | None]] = []
    for row in rows:
        f = row.figures
        found.append(
            (
                f"{row.hosts} hosts: history {f.history_events} events < {HISTORY_LIMIT}",
                f.history_events < HISTORY_LIMIT,
            )
        )
        found.append(
            (f"{row.hosts} hosts: largest payload {f.largest_payload} B < 256 KB", f.largest_payload < PAYLOAD_LIMIT)
        )
        found.append(
            (
                f"{row.hosts} hosts: makespan/bound {f.makespan / f.lower_bound:.3f} <= {BOUND_TARGET}",
                f.makespan / f.lower_bound <= BOUND_TARGET,
            )
        )
    thousand = at.get(1000)
    found.append(
        (
            f"1000 hosts: transitions/host {thousand.figures.per_host:.3f} < {TRANSITIONS_TARGET}"
            if thousand
            else "1000 hosts: not run",
            thousand.figures.per_host < TRANSITIONS_TARGET if thousand else None,
        )
    )
    hundred = at.get(100)
    if hundred and hundred.serial_makespan and not hundred.serial_estimated:
        speedup = hundred.serial_makespan / hundred.figures.makespan
        found.append(
            (
                f"100 hosts: {speedup:.1f}x faster than one at a time (>= {SPEEDUP_TARGET:.0f}x)",
                speedup >= SPEEDUP_TARGET,
            )
        )
    else:
        found.append(("100 hosts: one at a time not measured", None))
    return found


def minutes(seconds: float) -> str:
    return f"{seconds / 60:,.1f} min"


def table(rows: list[Row], seed: int, cap: int) -> Table:
    out = Table(title=f"simulated rollouts (canary 1, growth x2, waves capped at {cap}, seed {seed})")
    columns = (
        "hosts",
        "waves",
        "transitions/host",
        "history events",
        "largest payload",
        "Lambda runs",
        "GB-s",
        "API calls/host",
        "$/host",
        "makespan",
        "lower bound",
        "ratio",
        "one at a time",
        "speed-up",
        "wall",
    )
    for column in columns:
        out.add_column(column, justify="right")
    for row in rows:
        f = row.figures
        mark = "~" if row.serial_estimated else ""
        serial_text = f"{mark}{minutes(row.serial_makespan)}" if row.serial_makespan else "-"
        speedup = f"{mark}{row.serial_makespan / f.makespan:.1f}x" if row.serial_makespan else "-"
        out.add_row(
            f"{row.hosts:,}",
            str(f.waves),
            f"{f.per_host:.3f}",
            f"{f.history_events:,}",
            f"{f.largest_payload / 1024:.1f} KB",
            f"{f.invocations:,}",
            f"{f.gb_seconds:.1f}",
            f"{f.api_calls / row.hosts:.2f}",
            f"{row.cost.total / row.hosts:.6f}",
            minutes(f.makespan),
            minutes(f.lower_bound),
            f"{f.makespan / f.lower_bound:.3f}",
            serial_text,
            speedup,
            f"{row.wall_seconds:,.0f} s",
        )
    return out


def as_json(rows: list[Row], found: list[tuple[str, bool | None]], seed: int, cap: int) -> str:
    def entry(row: Row) -> dict:
        return {
            **asdict(row.figures),
            "transitions_per_host": row.figures.per_host,
            "api_calls_per_host": row.figures.api_calls / row.hosts,
            "cost_usd": {**asdict(row.cost), "total": row.cost.total, "per_host": row.cost.total / row.hosts},
            "wall_seconds": row.wall_seconds,
            "throttled_sends": row.throttled_sends,
            "serial_makespan": row.serial_makespan,
            "serial_estimated": row.serial_estimated,
        }

    checks_out = [{"check": text, "met": met} for text, met in found]
    return json.dumps({"seed": seed, "wave_cap": cap, "rows": [entry(r) for r in rows], "checks": checks_out}, indent=2)


def record(rows: list[Row]) -> dict:
    """What a run of one seed must reproduce on any machine: every figure but the wall time, and the outcome."""
    return {
        str(row.hosts): {
            "figures": asdict(row.figures),
            "cost_usd": asdict(row.cost),
            "throttled_sends": row.throttled_sends,
            "serial_makespan": row.serial_makespan,
            "outcome": row.outcome,
        }
        for row in rows
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--serial-max", type=int, default=100, help="largest fleet rolled one host at a time")
    parser.add_argument(
        "--throttle", type=int, default=0, help="throttle the first N SendCommand calls of each rollout"
    )
    parser.add_argument("--cap", type=int, default=WAVE_CAP, help="the fleet group's max_wave_size")
    parser.add_argument("--json", action="store_true", help="print the figures and checks as JSON")
    parser.add_argument(
        "--record", type=Path, help="write every figure that must not depend on the machine (JSON) to this file"
    )
    args = parser.parse_args()
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    warnings.filterwarnings("ignore", message="Dimension .* has already been added")
    console = Console(width=200, stderr=args.json)
    template = synthesize(config(args.cap))
    rows = []
    # Whatever the handlers print goes to standard error, so that standard output holds only the figures.
    with contextlib.redirect_stdout(sys.stderr):
        for size in args.sizes:
            rows.append(run(template, "fleet", size, args.seed, args.throttle))
            console.print(f"{size} hosts: {rows[-1].wall_seconds:.0f} s of wall time")
        serial(template, rows, args.serial_max, args.seed, console)
    found = checks(rows)
    if args.record:
        args.record.write_text(json.dumps(record(rows), indent=1, sort_keys=True, default=str))
    if args.json:
        print(as_json(rows, found, args.seed, args.cap))
        return
    console.print(table(rows, args.seed, args.cap))
    for text, met in found:
        verdict = {True: "[green]ok[/]", False: "[red]MISSED[/]", None: "[yellow]--[/]"}[met]
        console.print(f"  {verdict} {text}")
    throttled = sum(row.throttled_sends for row in rows)
    if throttled:
        console.print(f"  {throttled} SendCommand calls throttled and absorbed by botocore's retries")


if __name__ == "__main__":
    main()
