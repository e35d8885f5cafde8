"""The fault campaign's command line: runs the seeds, prints one line per violation, then the counts (the
campaign itself, its faults and invariants, is sim/campaign.py).

Run: `.venv/bin/python bench/fault_campaign.py --runs 300 --seed 1` (one line per violation, then the counts).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent.parent / "functions")]
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402

from sim import campaign as harness  # noqa: E402
from sim.campaign import INVARIANTS, RunResult, campaign  # noqa: E402

COUNTED = ("faults", "outcomes", "host_states", "violations")


def _table(title: str, counts: Counter[str], keys: list[str] | None = None) -> Table:
    table = Table(title=title)
    table.add_column("what")
    table.add_column("count", justify="right")
    for key in keys or sorted(counts):
        table.add_row(key, str(counts.get(key, 0)))
    return table


def main() -> None:
    description = f"{__doc__}\n{harness.__doc__}"
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1, help="the first run's seed; run i uses seed + i")
    parser.add_argument("--only", type=int, nargs="*", help="run just these seeds (to reproduce a violation)")
    parser.add_argument("--record", type=Path, help="write the campaign's counts (JSON) to this file")
    args = parser.parse_args()
    # The campaign's own report is the output: the simulated services' logs would drown it.
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    logging.getLogger("sim").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    console = Console(width=160)
    seeds = args.only or list(range(args.seed, args.seed + args.runs))
    started = time.perf_counter()
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )
    with progress:
        task = progress.add_task("runs", total=len(seeds))
        bad = [0]

        def on_result(result: RunResult) -> None:
            for invariant, what in result.violations:
                progress.console.print(f"[red]seed {result.seed}[/red] {invariant}: {what}")
            bad[0] += bool(result.violations)
            progress.update(task, advance=1, description=f"runs ({bad[0]} with violations)")

        totals = campaign(seeds, on_result)
    if args.record:
        counts = {name: dict(sorted(getattr(totals, name).items())) for name in COUNTED}
        failing = {str(seed): found for seed, found in totals.failing_seeds.items()}
        args.record.write_text(json.dumps({"runs": totals.runs, **counts, "failing_seeds": failing}, indent=1))
    console.print(f"runs: {totals.runs}, wall time {time.perf_counter() - started:.0f} s")
    console.print(_table("faults injected", totals.faults))
    console.print(_table("rollout outcomes", totals.outcomes))
    console.print(_table("hosts per final state", totals.host_states))
    console.print(_table("invariant violations (expected 0)", totals.violations, INVARIANTS))
    if totals.failing_seeds:
        console.print(f"seeds with violations: {sorted(totals.failing_seeds)}")


if __name__ == "__main__":
    main()
