"""Whether a verified release may start a group's rollout by itself now, later, or never."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from updraft.config import GroupPolicy
from updraft.domain.rollout_record import RolloutStatus

# How often a follower looks again whether its leader finished, and the longest a release waits at once.
RECHECK_SECONDS = 3600
MAX_WAIT_SECONDS = 86_400


class Verdict(StrEnum):
    START = "start"
    WAIT = "wait"  # not yet: look again at `not_before` (or at the next tick)
    SKIP = "skip"  # never, by policy


@dataclass(frozen=True)
class Eligibility:
    verdict: Verdict
    reason: str
    not_before: datetime | None = None


# How a leader's rollout ended that lets its followers take the version.
FINISHED = frozenset({RolloutStatus.SUCCEEDED, RolloutStatus.NOTHING_TO_DO})


def decide(
    policy: GroupPolicy, version: str, released_at: datetime, now: datetime, leader_outcome: str | None
) -> Eligibility:
    """`leader_outcome`: how the group this one follows (if any) ended its rollout to this version,
    None while it has not ended one."""
    if not policy.auto_rollout:
        return Eligibility(Verdict.SKIP, "automatic rollouts are off for this group")
    if version in policy.deny_versions:
        return Eligibility(Verdict.SKIP, f"{version} is on the group's deny list")
    if policy.pinned_version and version != policy.pinned_version:
        return Eligibility(Verdict.SKIP, f"the group is pinned to {policy.pinned_version}")
    soaked_at = released_at + timedelta(hours=policy.min_release_age_hours)
    if now < soaked_at:
        return Eligibility(Verdict.WAIT, f"{version} soaks until {soaked_at.isoformat()}", soaked_at)
    if policy.follows and leader_outcome is None:
        return Eligibility(Verdict.WAIT, f"waiting for group {policy.follows} to finish {version}")
    if policy.follows and leader_outcome not in FINISHED:
        return Eligibility(Verdict.SKIP, f"group {policy.follows} did not finish {version} ({leader_outcome})")
    return Eligibility(Verdict.START, f"{version} is eligible")


def admit(
    policy: GroupPolicy,
    version: str,
    released_at: datetime,
    now: datetime,
    leader_outcome: str | None,
    withdrawn: bool,
) -> Eligibility:
    """`decide`, unless the release was withdrawn since it was announced."""
    if withdrawn:
        return Eligibility(Verdict.SKIP, f"{version} was withdrawn")
    return decide(policy, version, released_at, now, leader_outcome)


def wait_seconds(decision: Eligibility, now: datetime) -> int:
    """How long a release that must wait waits before it is looked at again."""
    seconds = (decision.not_before - now).total_seconds() if decision.not_before else RECHECK_SECONDS
    return int(min(max(seconds, 1), MAX_WAIT_SECONDS))
