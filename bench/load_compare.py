"""The same seeded simulation twice, once on an idle machine and once with every core saturated, and the two
outcome records compared exactly.

Each run is a fresh process writing its outcome record (sim.report.outcome_record: how every execution
ended, every host's recorded state and version, simulated durations, transitions; for the benchmark also
every figure but wall time). The loaded run starts a bounded CPU hog first: one busy process per core,
each stopping by itself after --hog-limit seconds at most. The two runs also use different hash seeds
(PYTHONHASHSEED), so an outcome that hung on the order of a set would show too.

Run: `.venv/bin/python bench/load_compare.py demo demo-eks bench:100 bench:1000 eks:100` (exit 1 if any pair
differs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.load import Hog  # noqa: E402


def job_command(job: str, record: Path, seed: int) -> list[str]:
    """`demo` (the demo's three acts), `demo-eks` (the EKS demo), `bench:N` (the benchmark's rollout of N hosts,
    one at a time off), `eks:N` (the EKS benchmark's rollout of N nodes) or `campaign:N` (N runs of the fault
    campaign from the seed on: its counts)."""
    if job in ("demo", "demo-eks"):
        module = "sim.demo" if job == "demo" else "sim.demo_eks"
        return [sys.executable, "-m", module, "--seed", str(seed), "--record", str(record)]
    if job.startswith("eks:"):
        script = str(ROOT / "bench" / "eks_bench.py")
        return [
            sys.executable,
            script,
            "--nodes",
            job.removeprefix("eks:"),
            "--seed",
            str(seed),
            "--record",
            str(record),
        ]
    if job.startswith("campaign:"):
        runs = job.removeprefix("campaign:")
        script = str(ROOT / "bench" / "fault_campaign.py")
        return [sys.executable, script, "--runs", runs, "--seed", str(seed), "--record", str(record)]
    if job.startswith("bench:"):
        size = job.removeprefix("bench:")
        script = str(ROOT / "bench" / "rollout_bench.py")
        return [
            sys.executable,
            script,
            "--sizes",
            size,
            "--seed",
            str(seed),
            "--serial-max",
            "0",
            "--record",
            str(record),
        ]
    raise SystemExit(f"unknown job {job!r}: demo, demo-eks, bench:<hosts>, eks:<nodes> or campaign:<runs>")


def run(job: str, seed: int, hash_seed: int, loaded: bool, hog_limit: float) -> tuple[dict[str, Any], float]:
    with tempfile.TemporaryDirectory() as scratch:
        record = Path(scratch) / "record.json"
        env = {**os.environ, "PYTHONHASHSEED": str(hash_seed)}
        started = time.monotonic()
        hog = Hog(hog_limit) if loaded else None
        try:
            if hog:
                hog.__enter__()
            done = subprocess.run(job_command(job, record, seed), cwd=ROOT, env=env, capture_output=True, text=True)
        finally:
            if hog:
                hog.__exit__()
        if done.returncode != 0 or not record.exists():
            raise SystemExit(f"{job} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return json.loads(record.read_text()), time.monotonic() - started


def differences(first: Any, second: Any, path: str = "") -> list[str]:
    """Where two records differ, as paths into them."""
    if isinstance(first, dict) and isinstance(second, dict):
        found = []
        for key in sorted(set(first) | set(second)):
            if key not in first or key not in second:
                found.append(f"{path}/{key}: only in {'the second' if key not in first else 'the first'}")
            else:
                found += differences(first[key], second[key], f"{path}/{key}")
        return found
    if isinstance(first, list) and isinstance(second, list) and len(first) == len(second):
        return [
            d
            for index, pair in enumerate(zip(first, second, strict=True))
            for d in differences(*pair, f"{path}[{index}]")
        ]
    return [] if first == second else [f"{path}: {first!r} != {second!r}"]


def load_average() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("jobs", nargs="+", help="demo, bench:100, bench:1000, ...")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hog-limit", type=float, default=7200, help="seconds the CPU hog may run at most")
    args = parser.parse_args()
    failed = False
    for job in args.jobs:
        print(f"{job}: idle run (load average {load_average()}) ...", flush=True)
        idle, idle_wall = run(job, args.seed, hash_seed=0, loaded=False, hog_limit=args.hog_limit)
        print(f"{job}: loaded run, {os.cpu_count()} busy processes ...", flush=True)
        loaded, loaded_wall = run(job, args.seed, hash_seed=1, loaded=True, hog_limit=args.hog_limit)
        found = differences(idle, loaded)
        verdict = "identical" if not found else f"{len(found)} DIFFERENCES"
        print(f"{job}: {verdict} ({_summary(idle)}); wall {idle_wall:.0f} s idle, {loaded_wall:.0f} s loaded")
        for line in found[:20]:
            print(f"  {line}")
        failed |= bool(found)
    return 1 if failed else 0


def _summary(record: dict[str, Any]) -> str:
    """What a record holds: executions and hosts (the demo, one entry per benchmark size), or campaign runs."""
    if "runs" in record:
        return f"{record['runs']} runs, {sum(record['host_states'].values())} host records"
    outcomes = [record] if "executions" in record else [entry["outcome"] for entry in record.values()]
    executions = sum(len(entry["executions"]) for entry in outcomes)
    hosts = sum(len(e["hosts"]) for entry in outcomes for e in entry["executions"])
    minutes = sum(entry["virtual_seconds"] for entry in outcomes) / 60
    return f"{executions} executions, {hosts} host records, {minutes:.1f} simulated min"


if __name__ == "__main__":
    sys.exit(main())
