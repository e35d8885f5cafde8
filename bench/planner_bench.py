"""How long the wave planner takes on large fleets: `updraft.domain.waves.plan_waves` on 10,000, 100,000
and 1,000,000 candidates spread over 3 to 6 Availability Zones (the PlanWaves step's own work, without AWS).

Run: `.venv/bin/python bench/planner_bench.py` (or `--sizes ... --zones ... --json`).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent / "functions")]

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from updraft.domain.waves import Candidate, plan_waves  # noqa: E402

TARGET_SECONDS = 2.0  # at 100,000 hosts
REGION_ZONES = "abcdef"


def fleet(size: int, zones: int, seed: int) -> list[Candidate]:
    """Hosts with random instance ids, unevenly spread over the zones (as a real fleet's are)."""
    rng = random.Random(seed)
    names = [f"us-east-1{letter}" for letter in REGION_ZONES[:zones]]
    weights = [1.0 + index / 2 for index in range(zones)]
    chosen = rng.choices(names, weights=weights, k=size)
    return [Candidate(az=az, instance_id=f"i-{rng.getrandbits(68):017x}") for az in chosen]


def time_plan(hosts: list[Candidate], cap: int, repeats: int) -> tuple[float, int]:
    """The best of `repeats` runs (least disturbed by the machine's other work) and the number of waves."""
    timings, waves = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        waves = plan_waves(hosts, canary=1, growth=2.0, cap=cap)
        timings.append(time.perf_counter() - started)
    assert sum(len(wave) for wave in waves) == len(hosts)
    return min(timings), len(waves)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--zones", type=int, nargs="+", default=[3, 6])
    parser.add_argument("--cap", type=int, default=1000, help="max_wave_size (the config allows up to 1000)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    args = parser.parse_args()
    rows = []
    for size in args.sizes:
        for zones in args.zones:
            hosts = fleet(size, zones, args.seed)
            best, waves = time_plan(hosts, args.cap, args.repeats if size <= 100_000 else 1)
            rows.append({"hosts": size, "zones": zones, "waves": waves, "seconds": round(best, 4)})
    at_target = [row["seconds"] for row in rows if row["hosts"] == 100_000]
    check = {"target_seconds": TARGET_SECONDS, "met": bool(at_target) and max(at_target) < TARGET_SECONDS}
    if args.json:
        print(json.dumps({"cap": args.cap, "rows": rows, "check_100k": check}, indent=2))
        return
    table = Table(title=f"plan_waves (canary 1, x2, cap {args.cap})")
    for column in ("hosts", "zones", "waves", "seconds", "µs/host"):
        table.add_column(column, justify="right")
    for row in rows:
        per_host = row["seconds"] / row["hosts"] * 1e6
        table.add_row(
            f"{row['hosts']:,}", str(row["zones"]), str(row["waves"]), f"{row['seconds']:.3f}", f"{per_host:.2f}"
        )
    console = Console()
    console.print(table)
    if at_target:
        verdict = "met" if check["met"] else "MISSED"
        median = statistics.median(at_target)
        console.print(
            f"check: 100,000 hosts planned in under {TARGET_SECONDS:.0f} s: {verdict} (median {median:.2f} s)"
        )


if __name__ == "__main__":
    main()
