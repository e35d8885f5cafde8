"""Figures of a finished rollout, read from the execution history, the ledger and the fleet."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sim.world import Execution, World
from updraft.config import GroupPolicy


@dataclass(frozen=True)
class Figures:
    hosts: int  # hosts planned into waves
    waves: int
    transitions: int  # states entered
    history_events: int
    lambda_invocations: int
    api_calls: int  # AWS API calls by the pipeline: Step Functions' integrations and the Lambdas
    makespan: float  # virtual seconds from the start to the end of the rollout
    lower_bound: float  # sum over waves of the slowest host's apply + reboot + verify, plus each full bake

    @property
    def per_host(self) -> float:
        return self.transitions / max(self.hosts, 1)


def figures(world: World, execution: Execution) -> Figures:
    history = world.history(execution.arn)
    meta = world.rollout_record(execution.name)
    records = world.host_records(execution.name)
    planned = [r for r in records.values() if "wave" in r]
    started = datetime.fromisoformat(meta["started_at"])
    finished = datetime.fromisoformat(meta["finished_at"])
    return Figures(
        hosts=len(planned),
        waves=len(meta.get("wave_sizes", [])),
        transitions=sum(1 for event in history if "stateEnteredEventDetails" in event),
        history_events=len(history),
        lambda_invocations=sum(
            1 for event in history if event.get("taskScheduledEventDetails", {}).get("resourceType") == "lambda"
        ),
        api_calls=sum(world.api_calls.values()),
        makespan=(finished - started).total_seconds(),
        lower_bound=_lower_bound(world, planned, started, finished) + _bakes(meta),
    )


def _bakes(meta: dict) -> float:
    """The bake time of every wave that baked to its end: no scheduler can skip it."""
    if "policy" not in meta:
        return 0.0
    baked = [r for r in json.loads(meta.get("wave_results", "{}")).values() if r["verdict"] in ("continue", "complete")]
    return float(GroupPolicy.model_validate_json(meta["policy"]).bake_seconds * len(baked))


def _lower_bound(world: World, planned: list[dict], started: datetime, finished: datetime) -> float:
    """What no scheduler could beat with these waves: each wave lasts as long as its slowest host."""
    window = ((started - world.clock.at(0)).total_seconds(), (finished - world.clock.at(0)).total_seconds())
    work = _host_work(world, window)
    slowest: dict[int, float] = defaultdict(float)
    for record in planned:
        slowest[int(record["wave"])] = max(slowest[int(record["wave"])], work.get(record["instance_id"], 0.0))
    return sum(slowest.values())


def _host_work(world: World, window: tuple[float, float]) -> dict[str, float]:
    """Per host: its apply until the agent is back after the reboot, plus its verify."""
    documents = world.outputs
    applied: dict[str, float] = {}
    verify_time: dict[str, list[tuple[float, float]]] = defaultdict(list)
    commands = [c for c in world.fleet.commands.values() if window[0] <= c.sent_at <= window[1]]
    for command in commands:
        for instance_id, invocation in command.invocations.items():
            if invocation.result is None:
                continue
            if command.document_name == documents["ApplyDocumentName"]:
                applied.setdefault(instance_id, invocation.started)
            elif command.document_name == documents["VerifyDocumentName"]:
                verify_time[instance_id].append((invocation.started, invocation.ended - invocation.started))
    work: dict[str, float] = {}
    for instance_id, started in applied.items():
        boots = [back for down, back in world.fleet.hosts[instance_id].boot_log if down >= started]
        back = boots[0] if boots else float("inf")
        verifies = [took for at, took in sorted(verify_time[instance_id]) if at >= back]
        if back != float("inf") and verifies:
            work[instance_id] = back - started + verifies[0]
    return work
