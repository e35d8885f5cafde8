"""The EKS demo: a rollout of Bottlerocket nodes of a simulated EKS cluster, drained through its Kubernetes API.

The stack is synthesized for one EKS group (`nodes`, cluster `demo-eks`, `pdb_blocked: wait`) and deployed into
moto; the cluster's API server runs on 127.0.0.1 over HTTPS with its own CA, and the functions reach it with the
real Kubernetes client, signed in as their own IAM roles. On the cluster: a DaemonSet and a static pod on every
node, a `web` Deployment spread over the nodes under a PodDisruptionBudget, and a `ledger` Deployment whose two
replicas share one node under a budget that wants both: that node's drain is refused (429) and waited on past its
deadline, until the team scales `ledger` up and the budget lets one go. One node is being disrupted by
Karpenter, one belongs to the Bottlerocket update operator: both are left alone. One host's new image fails to
boot: it is rolled back, and its node uncordoned once Ready on the old version.
"""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")  # before jsii starts

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from sim.bottlerocket import Fault
from sim.demo import quiet, summary, verdict, watch_all
from sim.report import outcome_record
from sim.world import World
from stacks import synthesize
from updraft.config import UpdraftConfig
from updraft.domain.waves import Candidate, plan_waves

OLD, NEW = "1.26.0", "1.26.1"
VARIANT = "aws-k8s-1.32"
CLUSTER = "demo-eks"
GROUP = "nodes"
DRAIN_TIMEOUT = 600
CONFIG = UpdraftConfig.model_validate(
    {
        "groups": [
            {
                "name": GROUP,
                "variant": VARIANT,
                "canary_size": 1,
                "error_budget": {"canary": "0", "per_wave": "1", "total": "20%"},
                "rollback_scope": "failed",
                "eks": {"cluster": CLUSTER, "drain_timeout_seconds": DRAIN_TIMEOUT, "pdb_blocked": "wait"},
            }
        ]
    }
)


def plan(world: World, ids: list[str]) -> list[list[str]]:
    """The waves the planner will make of these hosts (the pipeline's own pure function)."""
    policy = CONFIG.group(GROUP)
    hosts = [Candidate(world.fleet.hosts[i].az, i) for i in ids]
    waves = plan_waves(hosts, policy.canary_size, policy.wave_growth, policy.max_wave_size)
    return [[c.instance_id for c in wave] for wave in waves]


def build_cluster(world: World, ids: list[str]) -> dict[str, str]:
    """The hosts' roles in the story, by name: blocked, failing, disrupted, operated (and the node names)."""
    names = world.join_eks(CLUSTER, ids)
    waves = plan(world, ids)
    blocked, failing = waves[2][0], waves[1][0]
    disrupted, operated = waves[2][1], waves[3][0]
    cluster = world.eks(CLUSTER)
    cluster.daemon_set("aws-node")
    for name in names.values():
        cluster.mirror_pod(name, "log-shipper")
    others = [names[i] for i in ids if i != blocked]
    cluster.deployment("web", 2 * len(ids), nodes=others)
    cluster.budget("web", {"app": "web"}, max_unavailable="25%")
    cluster.deployment("ledger", 2, nodes=[names[blocked]])
    cluster.budget("ledger", {"app": "ledger"}, min_available=2)
    cluster.taint(names[disrupted], "karpenter.sh/disrupted")
    cluster.label(names[operated], "bottlerocket.aws/updater-interface-version", "2.0.0")
    world.inject(failing, Fault.BOOT_FALLBACK)
    return {"blocked": blocked, "failing": failing, "disrupted": disrupted, "operated": operated} | {
        f"node:{i}": n for i, n in names.items()
    }


def scale_up_when_waited_on(world: World, blocked: str, console: Console) -> None:
    """Once the blocked node's drain is past its deadline, the ledger team adds a replica."""
    done: list[bool] = []

    def hook(step_input: dict[str, Any], _result: Any) -> None:
        record = world.host_records(step_input["rollout"]["rollout_id"]).get(blocked, {})
        if not done and "past its" in record.get("note", ""):
            done.append(True)
            world.eks(CLUSTER).scale("ledger", 3)
            console.print(f"[dim]  {world.clock.seconds / 60:5.1f} min: the ledger team scales ledger to 3[/]")

    world.after_step("check_hosts", hook)


def node_table(world: World, roles: dict[str, str], ids: list[str]) -> Table:
    cluster = world.eks(CLUSTER)
    evictions = cluster.evictions_by_node()
    table = Table(title=f"nodes of {CLUSTER} after the rollout", title_justify="left")
    for column in ("node", "role", "cordoned", "Ready", "osImage version", "evicted", "refused"):
        table.add_column(column, no_wrap=True)
    named = {roles[key]: key for key in ("blocked", "failing", "disrupted", "operated")}
    for instance_id in ids:
        name = roles[f"node:{instance_id}"]
        node = cluster.read_node(name)
        counts = evictions.get(name, {})
        table.add_row(
            name,
            named.get(instance_id, ""),
            "yes" if node["spec"].get("unschedulable") else "no",
            cluster.node_ready(name),
            node["status"]["nodeInfo"]["osImage"].removeprefix("Bottlerocket OS ").split(" ")[0],
            str(counts.get("accepted", 0)),
            str(counts.get("refused", 0)),
        )
    return table


def checks(world: World, execution: Any, roles: dict[str, str], ids: list[str]) -> list[str]:
    """What the story promises, and what did not hold."""
    records = world.host_records(execution.name)
    cluster = world.eks(CLUSTER)
    versions = world.versions()
    blocked, failing, disrupted, operated = (roles[k] for k in ("blocked", "failing", "disrupted", "operated"))
    waited = " | ".join(f"{e['state']}: {e['note']}" for e in records[blocked]["history"])
    left_alone = {disrupted, operated, failing}
    web_ready = sum(
        1
        for pod in cluster.list_pods("default")
        if pod["metadata"]["labels"].get("app") == "web" and cluster.ready("default", pod["metadata"]["name"])
    )
    promised = [
        (execution.status == "SUCCEEDED", f"the rollout succeeded (execution {execution.status})"),
        (
            records[blocked]["state"] == "updated" and "past its" in waited,
            "the blocked node was waited on, then updated",
        ),
        (records[failing]["state"] == "rolled-back" and versions[failing] == OLD, "the failing host was rolled back"),
        (
            records[disrupted]["state"] == "skipped" and "Karpenter" in records[disrupted]["note"],
            "Karpenter's node was left",
        ),
        (
            records[operated]["state"] == "skipped" and "update operator" in records[operated]["note"],
            "brupop's node was left",
        ),
        (all(versions[i] == NEW for i in ids if i not in left_alone), f"every other host runs {NEW}"),
        (not any(cluster.read_node(roles[f"node:{i}"])["spec"].get("unschedulable") for i in ids), "no node cordoned"),
        (web_ready == 2 * len(ids), f"every web replica Ready again ({web_ready} of {2 * len(ids)})"),
    ]
    return [what for held, what in promised if not held]


def run(hosts: int, seed: int, record: Path | None = None) -> int:
    quiet()
    console = Console()
    console.print(f"[bold]Updraft EKS demo[/]: {hosts} Bottlerocket nodes of EKS cluster {CLUSTER}, simulated ...")
    template = synthesize(CONFIG)
    with World(template, variant=VARIANT, seed=seed, lambda_log_level="ERROR", eks_clusters=[CLUSTER]) as world:
        ids = world.launch(GROUP, hosts, version=OLD)
        roles = build_cluster(world, ids)
        console.print(
            f"Node {roles['node:' + roles['blocked']]} runs both ledger replicas (budget: minAvailable 2); "
            f"{roles['node:' + roles['disrupted']]} is being disrupted by Karpenter; "
            f"{roles['node:' + roles['operated']]} belongs to the update operator; "
            f"host {roles['failing']}'s new image will not boot.\n"
        )
        scale_up_when_waited_on(world, roles["blocked"], console)
        before = {e.name for e in world.wait_all()}
        world.start({"group": GROUP, "target_version": NEW})
        (execution,) = watch_all(world, console, f"{GROUP} -> {NEW}", before)
        summary(world, console, execution)
        console.print(node_table(world, roles, ids))
        blocked = world.host_records(execution.name)[roles["blocked"]]
        console.print(f"[bold]the blocked node's way[/] (host {roles['blocked']}):")
        for entry in blocked["history"]:
            console.print(f"  {entry['at']} {entry['state']}: {entry['note']}", highlight=False)
        states = Counter(r["state"] for r in world.host_records(execution.name).values())
        console.print("hosts: " + ", ".join(f"{s} {n}" for s, n in sorted(states.items())))
        missed = checks(world, execution, roles, ids)
        outcome = outcome_record(world)
        if record:
            record.write_text(json.dumps(outcome, indent=1, sort_keys=True))
        return verdict(console, missed, outcome, "the EKS demo")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=12, help="nodes in the simulated cluster (default 12, at least 8)")
    parser.add_argument("--seed", type=int, default=7, help="the simulation's seed (default 7)")
    parser.add_argument("--record", type=Path, help="write the run's outcome record (JSON) to this file")
    args = parser.parse_args(argv)
    if args.hosts < 8:
        parser.error("--hosts: at least 8 (the story needs four waves)")
    try:
        return run(args.hosts, args.seed, record=args.record)
    except Exception as error:  # a failure is told in words, not as a traceback
        Console(stderr=True).print(f"[bold red]the EKS demo failed: {type(error).__name__}: {error}[/]")
        return 1


if __name__ == "__main__":
    sys.exit(main())
