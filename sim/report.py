"""Figures of a finished rollout, read from the execution history, the ledger and the fleet."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import boto3

from sim import moto_wiring
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
    largest_payload: int = 0  # bytes: the largest state input, output or task parameters in the history
    largest_payload_at: str = ""  # the state it belongs to
    invocations: int = 0  # Lambda handler runs, Step Functions tasks and EventBridge targets alike
    gb_seconds: float = 0.0  # billed: each run's duration rounded up to 1 ms, times its function's memory

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
        **_largest_payload(history),
        **_lambda_usage(world),
    )


def _largest_payload(history: list[dict]) -> dict:
    """The largest payload Step Functions carried: every state's input and output and every task's parameters
    and result count against the 256 KB limit."""
    largest, at, state = 0, "", ""
    for event in history:
        details = next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})
        state = details.get("name", state)
        for key in ("input", "output", "parameters"):
            size = len(str(details.get(key) or "").encode())
            if size > largest:
                largest, at = size, state
    return {"largest_payload": largest, "largest_payload_at": at}


def _lambda_usage(world: World) -> dict:
    """Lambda runs and their billed GB-seconds. A run's time spent carrying out document scripts is left out:
    on AWS the hosts run them, and SendCommand or ListCommandInvocations returns at once."""
    runs = list(moto_wiring.INVOCATIONS)
    scripts = list(world.fleet.script_runs)
    memory = {name: _memory_mb(name) for name in {name for name, _, _ in runs}}
    gb_seconds = 0.0
    for name, started, ended in runs:
        inside = sum(max(0.0, min(ended, end) - max(started, begin)) for begin, end in scripts)
        billed_ms = math.ceil(max(ended - started - inside, 0.0) * 1000)
        gb_seconds += billed_ms / 1000 * memory[name] / 1024
    return {"invocations": len(runs), "gb_seconds": gb_seconds}


def _memory_mb(function_name: str) -> int:
    return int(boto3.client("lambda").get_function_configuration(FunctionName=function_name)["MemorySize"])


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
