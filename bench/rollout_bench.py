"""Rollouts of simulated fleets of growing size, and what they cost the pipeline.

Prints, per fleet size: state transitions per host, history events, Lambda invocations, AWS API
calls per host, and the simulated makespan against the lower bound (the sum over waves of the
slowest host's apply + reboot + verify). Run: `make bench` or
`.venv/bin/python bench/rollout_bench.py --sizes 10 100 1000`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent.parent / "functions")]
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from sim.report import Figures, figures  # noqa: E402
from sim.world import World  # noqa: E402
from stacks import synthesize  # noqa: E402
from updraft.config import UpdraftConfig  # noqa: E402

CONFIG = UpdraftConfig.model_validate(
    {"groups": [{"name": "fleet", "variant": "aws-ecs-2", "canary_size": 1, "wave_growth": 2.0, "max_wave_size": 100}]}
)


def measure(template: dict, hosts: int, seed: int) -> tuple[Figures, float]:
    started = time.perf_counter()
    with World(template, seed=seed, lambda_log_level="ERROR") as world:
        world.launch("fleet", hosts)
        execution = world.rollout("fleet", "1.26.1")
        if execution.status != "SUCCEEDED":
            raise SystemExit(f"{hosts} hosts: rollout {execution.status} {execution.error} {execution.cause}")
        return figures(world, execution), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    console = Console(width=160)
    template = synthesize(CONFIG)
    table = Table(title=f"simulated rollouts (canary 1, growth x2, waves capped at 100, seed {args.seed})")
    for column in (
        "hosts",
        "waves",
        "transitions/host",
        "history events",
        "Lambda invocations",
        "API calls/host",
        "makespan",
        "lower bound",
        "makespan/bound",
        "wall time",
    ):
        table.add_column(column, justify="right")
    for size in args.sizes:
        result, wall = measure(template, size, args.seed)
        console.print(f"{size} hosts done in {wall:.0f} s")
        table.add_row(
            str(result.hosts),
            str(result.waves),
            f"{result.per_host:.3f}",
            str(result.history_events),
            str(result.lambda_invocations),
            f"{result.api_calls / result.hosts:.2f}",
            f"{result.makespan / 60:.1f} min",
            f"{result.lower_bound / 60:.1f} min",
            f"{result.makespan / result.lower_bound:.2f}",
            f"{wall:.0f} s",
        )
    console.print(table)


if __name__ == "__main__":
    main()
