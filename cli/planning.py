"""The dry run of a rollout: who would be updated, who skipped and why, in which waves, for how long."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from updraft.config import GroupPolicy
from updraft.domain.estimate import Estimate, estimate
from updraft.domain.waves import Candidate, plan_waves
from updraft.domain.windows import WindowOpening, next_window

BOTTLEROCKET = "Bottlerocket"


@dataclass(frozen=True)
class Skipped:
    instance_id: str
    az: str
    reason: str


@dataclass(frozen=True)
class Plan:
    group: str
    target_version: str
    policy: GroupPolicy
    versions: dict[str, str]  # candidate -> the version SSM reports it runs
    skipped: list[Skipped]
    waves: list[list[Candidate]]
    estimate: Estimate
    window: WindowOpening | None


def skip_reason(agent: dict[str, Any] | None, target: str) -> str | None:
    """Why the rollout would leave this instance alone, or None if it would update it."""
    if agent is None:
        return "no SSM agent registered"
    if agent.get("PingStatus") != "Online":
        return f"SSM agent not online ({agent.get('PingStatus', 'unknown')})"
    if agent.get("PlatformName") != BOTTLEROCKET:
        return f"not Bottlerocket ({agent.get('PlatformName', 'unknown platform')})"
    if agent.get("PlatformVersion", "").removeprefix("v") == target:
        return f"already on {target}"
    return None


def make_plan(
    policy: GroupPolicy, target: str, instances: dict[str, str], agents: dict[str, dict[str, Any]], now: datetime
) -> Plan:
    """`instances`: running instance id -> AZ; `agents`: SSM's instance information by instance id."""
    candidates, skipped, versions = [], [], {}
    for instance_id, az in sorted(instances.items()):
        agent = agents.get(instance_id)
        reason = skip_reason(agent, target)
        if reason:
            skipped.append(Skipped(instance_id, az, reason))
            continue
        candidates.append(Candidate(az, instance_id))
        versions[instance_id] = agent["PlatformVersion"]  # type: ignore[index]
    waves = plan_waves(candidates, policy.canary_size, policy.wave_growth, policy.max_wave_size)
    window = next_window(policy.maintenance_window, now) if policy.maintenance_window else None
    return Plan(
        policy.name, target, policy, versions, skipped, waves, estimate(policy, [len(w) for w in waves]), window
    )


def per_az(wave: list[Candidate]) -> dict[str, int]:
    return dict(sorted(Counter(host.az for host in wave).items()))


def plan_document(plan: Plan) -> dict[str, Any]:
    """The plan as JSON-ready data."""
    return {
        "group": plan.group,
        "target_version": plan.target_version,
        "candidates": len(plan.versions),
        "waves": [
            {
                "wave": index,
                "size": len(wave),
                "per_az": per_az(wave),
                "hosts": [
                    {"instance_id": h.instance_id, "az": h.az, "version": plan.versions[h.instance_id]} for h in wave
                ],
            }
            for index, wave in enumerate(plan.waves)
        ],
        "skipped": [{"instance_id": s.instance_id, "az": s.az, "reason": s.reason} for s in plan.skipped],
        "estimate": {
            "typical_seconds": plan.estimate.typical_seconds,
            "worst_case_seconds": plan.estimate.worst_seconds,
            "excludes": "time waiting for a maintenance window or a kill switch",
        },
        "maintenance_window": _window_document(plan),
    }


def _window_document(plan: Plan) -> dict[str, Any] | None:
    window = plan.policy.maintenance_window
    if window is None or plan.window is None:
        return None
    return {
        "schedule": window.schedule,
        "timezone": window.timezone,
        "duration_minutes": window.duration_minutes,
        "open_now": plan.window.open_now,
        "opens_at": plan.window.opens_at.isoformat(),
        "closes_at": plan.window.closes_at.isoformat(),
    }
