"""How long a rollout of a group may take: a typical and a worst-case duration, from its policy and waves.

The hosts of a wave update in parallel, so a wave costs about one host update whatever its size; waves
run one after the other. Time spent waiting for a maintenance window is not counted
(see `updraft.domain.windows.next_window`).
"""

from __future__ import annotations

from dataclasses import dataclass

from updraft.config import GroupPolicy

# A typical Bottlerocket host update: download and write the image (~2-3 min), reboot into it (~1-2 min),
# then the verify document and the EC2 status checks (~1 min).
TYPICAL_HOST_UPDATE_SECONDS = 6 * 60


@dataclass(frozen=True)
class WaveEstimate:
    hosts: int
    typical_seconds: int
    worst_seconds: int


@dataclass(frozen=True)
class Estimate:
    waves: list[WaveEstimate]

    @property
    def typical_seconds(self) -> int:
        return sum(wave.typical_seconds for wave in self.waves)

    @property
    def worst_seconds(self) -> int:
        return sum(wave.worst_seconds for wave in self.waves)


def _health_seconds(policy: GroupPolicy) -> int:
    return policy.health_check.timeout_seconds if policy.health_check else 0


def typical_wave_seconds(policy: GroupPolicy) -> int:
    """A host update, one poll interval before the rollout sees it done, the health check and the bake."""
    return TYPICAL_HOST_UPDATE_SECONDS + policy.poll_interval_seconds + _health_seconds(policy) + policy.bake_seconds


def estimate(policy: GroupPolicy, wave_sizes: list[int]) -> Estimate:
    # The worst case spends every timeout of a wave in full: the budget a maintenance window must hold.
    typical, worst = typical_wave_seconds(policy), policy.wave_budget_seconds
    return Estimate([WaveEstimate(size, typical, worst) for size in wave_sizes])
