"""The fault campaign, small and seeded: randomized rollouts with injected faults keep every invariant.
Its own target (`make campaign`): minutes of simulated rollouts, so not part of `make test`."""

from __future__ import annotations

import pytest

from sim.campaign import INVARIANTS, campaign, campaign_template

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SEEDS = range(1000, 1020)


def test_a_seeded_campaign_keeps_every_invariant():
    totals = campaign(list(SEEDS), template=campaign_template())

    assert totals.runs == len(SEEDS)
    assert sum(totals.faults.values()) > len(SEEDS)  # every run injected something, most more than one
    assert {name: totals.violations[name] for name in INVARIANTS} == dict.fromkeys(INVARIANTS, 0), totals.failing_seeds
