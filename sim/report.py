"""Figures of a finished rollout, read from the execution history, the ledger and the fleet."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3

from sim.aws import lambda_
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
    gb_seconds: float = 0.0  # billed: each run's modelled duration (`billed_ms`) times its function's memory

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


# What a warm invocation of a handler bills, modelled from what it did rather than measured here (moto's and
# the simulated fleet's speed depend on the machine): the handler's own work, plus the round trip of each
# AWS call it made. Typical in-region latencies, an estimate: DynamoDB answers in single-digit milliseconds,
# control-plane APIs in tens.
HANDLER_MS = 25.0
CALL_MS = {"dynamodb": 8.0, "ssm": 35.0, "ec2": 60.0, "ecs": 40.0, "eventbridge": 25.0, "sns": 25.0}
OTHER_CALL_MS = 40.0


def billed_ms(invocation: lambda_.Invocation) -> int:
    """One run's billed duration: rounded up to the millisecond, as Lambda bills."""
    calls = sum(CALL_MS.get(service, OTHER_CALL_MS) * count for service, count in invocation.calls.items())
    return math.ceil(HANDLER_MS + calls)


def _lambda_usage(world: World) -> dict:
    """Lambda runs and their billed GB-seconds (modelled: see `billed_ms`)."""
    runs = list(lambda_.INVOCATIONS)
    memory = {name: _memory_mb(name) for name in {run.function for run in runs}}
    gb_seconds = sum(billed_ms(run) / 1000 * memory[run.function] / 1024 for run in runs)
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


def outcome_record(world: World) -> dict[str, Any]:
    """Everything a run decided, to compare two runs of one seed exactly: how each execution ended, what each
    rollout recorded of itself and of every host, the version every host runs, and when (virtual time) the
    world stood when the record was taken."""
    executions = []
    for listed in sorted(world.executions(), key=lambda e: e["name"]):
        ended = world.wait(listed["executionArn"])
        history = world.history(ended.arn)
        meta = world.rollout_record(ended.name)
        rollout = {key: meta[key] for key in RECORDED_ROLLOUT if key in meta}
        hosts = {
            instance_id: [record.get(key) for key in RECORDED_HOST]
            for instance_id, record in sorted(world.host_records(ended.name).items())
        }
        executions.append(
            {
                "name": ended.name,
                "status": ended.status,
                "error": ended.error,
                "transitions": sum(1 for event in history if "stateEnteredEventDetails" in event),
                "history_events": len(history),
                "rollout": json.loads(json.dumps(rollout, default=str)),
                "hosts": json.loads(json.dumps(hosts, default=str)),
            }
        )
    return {
        "virtual_seconds": world.clock.seconds,
        "executions": executions,
        "versions": dict(sorted(world.versions().items())),
    }


RECORDED_ROLLOUT = (
    "group",
    "target_version",
    "status",
    "halt_reason",
    "started_at",
    "finished_at",
    "wave_sizes",
    "summary",
)
RECORDED_HOST = ("state", "wave", "previous_version", "target_version", "failure", "note", "updated_at")
