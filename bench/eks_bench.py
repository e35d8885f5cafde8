"""A rollout of a simulated EKS node group, drained through the cluster's Kubernetes API, and what it costs.

One group of N nodes (canary 1, waves growing x2, capped at 100) in a simulated EKS cluster: a DaemonSet and a
static pod on every node, and a `web` Deployment of two replicas per node under a PodDisruptionBudget that lets
half of them go at once. Printed: the makespan against its lower bound, pods evicted and evictions refused per
node, Kubernetes API requests per node, AWS calls per node, and the wall time.

The lower bound is what no scheduler could beat with these waves: per wave, its slowest host's unavoidable
drain (its evicted pods' termination grace, `evict_concurrency` at a time) plus its apply until the agent is
back, the verify, and the kubelet turning Ready on the new image, whichever of the last two ends later.

Run: `make bench` (100 nodes) or `.venv/bin/python bench/eks_bench.py --nodes 300`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent.parent / "functions")]
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from sim.kubernetes import TERMINATION_GRACE_SECONDS  # noqa: E402
from sim.report import figures, outcome_record  # noqa: E402
from sim.world import World  # noqa: E402
from stacks import synthesize  # noqa: E402
from updraft.config import UpdraftConfig  # noqa: E402

VARIANT = "aws-k8s-1.32"
CLUSTER = "bench-eks"
REPLICAS_PER_NODE = 2
CONCURRENCY = 5
BOUND_TARGET = 1.10  # as for hosts without an orchestrator (rollout_bench.py)


def config() -> UpdraftConfig:
    group = {
        "name": "nodes",
        "variant": VARIANT,
        "canary_size": 1,
        "wave_growth": 2.0,
        "max_wave_size": 100,
        "eks": {"cluster": CLUSTER, "evict_concurrency": CONCURRENCY},
    }
    return UpdraftConfig.model_validate({"groups": [group]})


@dataclass
class Result:
    nodes: int
    waves: int
    makespan: float
    lower_bound: float
    evicted_per_node: float
    refused_per_node: float
    kubernetes_requests_per_node: float
    aws_calls_per_node: float
    updated: int
    wall_seconds: float

    @property
    def ratio(self) -> float:
        return self.makespan / self.lower_bound


def run(template: dict, nodes: int, seed: int) -> tuple[Result, dict]:
    started = time.perf_counter()
    with World(template, variant=VARIANT, seed=seed, lambda_log_level="ERROR", eks_clusters=[CLUSTER]) as world:
        ids = world.launch("nodes", nodes)
        names = world.join_eks(CLUSTER, ids)
        cluster = world.eks(CLUSTER)
        cluster.daemon_set("aws-node")
        for name in names.values():
            cluster.mirror_pod(name, "log-shipper")
        cluster.deployment("web", REPLICAS_PER_NODE * nodes, nodes=list(names.values()))
        cluster.budget("web", {"app": "web"}, max_unavailable="50%")
        execution = world.wait(world.start({"group": "nodes", "target_version": "1.26.1"}))
        if execution.status != "SUCCEEDED":
            raise SystemExit(f"{nodes} nodes: rollout {execution.status} {execution.error} {execution.cause}")
        numbers = figures(world, execution)
        records = world.host_records(execution.name)
        evictions = cluster.evictions_by_node()
        requests = sum(cluster.api_requests.values())
        result = Result(
            nodes=nodes,
            waves=numbers.waves,
            makespan=numbers.makespan,
            lower_bound=lower_bound(world, records, names),
            evicted_per_node=sum(c["accepted"] for c in evictions.values()) / nodes,
            refused_per_node=sum(c["refused"] for c in evictions.values()) / nodes,
            kubernetes_requests_per_node=requests / nodes,
            aws_calls_per_node=numbers.api_calls / nodes,
            updated=sum(1 for r in records.values() if r["state"] == "updated"),
            wall_seconds=time.perf_counter() - started,
        )
        return result, outcome_record(world)


def lower_bound(world: World, records: dict[str, dict], names: dict[str, str]) -> float:
    """Per wave, the slowest host's drain floor + apply, reboot and the later of verify and kubelet Ready."""
    cluster = world.eks(CLUSTER)
    applied, verified = _commands(world)
    slowest: dict[int, float] = {}
    for instance_id, record in records.items():
        if "wave" not in record or instance_id not in applied:
            continue
        start = applied[instance_id]
        boots = [back for down, back in world.fleet.hosts[instance_id].boot_log if down >= start]
        if not boots or instance_id not in verified:
            continue
        ready = cluster.ready_since(names[instance_id], boots[0] - 1)
        back = max(boots[0] + verified[instance_id], ready if ready is not None else boots[0])
        evicted = cluster.evictions_by_node().get(names[instance_id], {}).get("accepted", 0)
        drain = math.ceil(evicted / CONCURRENCY) * TERMINATION_GRACE_SECONDS
        wave = int(record["wave"])
        slowest[wave] = max(slowest.get(wave, 0.0), drain + back - start)
    return sum(slowest.values())


def _commands(world: World) -> tuple[dict[str, float], dict[str, float]]:
    """When each host's apply started, and how long its first verify after the reboot took."""
    applied: dict[str, float] = {}
    verified: dict[str, float] = {}
    for command in sorted(world.fleet.commands.values(), key=lambda c: c.sent_at):
        for instance_id, invocation in command.invocations.items():
            if invocation.result is None:
                continue
            if command.document_name == world.outputs["ApplyDocumentName"]:
                applied.setdefault(instance_id, invocation.started)
            elif command.document_name == world.outputs["VerifyDocumentName"] and invocation.started > applied.get(
                instance_id, math.inf
            ):
                verified.setdefault(instance_id, invocation.ended - invocation.started)
    return applied, verified


def minutes(seconds: float) -> str:
    return f"{seconds / 60:,.1f} min"


def table(result: Result, seed: int) -> Table:
    out = Table(title=f"simulated EKS rollout (canary 1, growth x2, evict_concurrency {CONCURRENCY}, seed {seed})")
    columns = {
        "nodes": f"{result.nodes:,}",
        "waves": str(result.waves),
        "updated": str(result.updated),
        "makespan": minutes(result.makespan),
        "lower bound": minutes(result.lower_bound),
        "ratio": f"{result.ratio:.3f}",
        "pods evicted/node": f"{result.evicted_per_node:.2f}",
        "refused/node": f"{result.refused_per_node:.2f}",
        "K8s requests/node": f"{result.kubernetes_requests_per_node:.1f}",
        "AWS calls/node": f"{result.aws_calls_per_node:.2f}",
        "wall": f"{result.wall_seconds:,.0f} s",
    }
    for column in columns:
        out.add_column(column, justify="right")
    out.add_row(*columns.values())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--record", type=Path, help="write the run's figures and outcome record (JSON) to this file")
    args = parser.parse_args()
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    console = Console(width=200, stderr=args.json)
    with contextlib.redirect_stdout(sys.stderr):
        result, outcome = run(synthesize(config()), args.nodes, args.seed)
    if args.record:  # every figure but the wall time, and the outcome: what no machine may change
        figures_only = {key: value for key, value in asdict(result).items() if key != "wall_seconds"}
        entry = {str(args.nodes): {"figures": figures_only, "outcome": outcome}}  # rollout_bench.py's shape
        args.record.write_text(json.dumps(entry, indent=1, sort_keys=True))
    if args.json:
        print(json.dumps(asdict(result) | {"ratio": result.ratio, "at": datetime.now().isoformat()}, indent=2))
        return
    console.print(table(result, args.seed))
    met = result.ratio <= BOUND_TARGET
    console.print(f"makespan/bound {result.ratio:.3f} <= {BOUND_TARGET}: {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
