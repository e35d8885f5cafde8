"""Wave planning: a canary, growing capped waves, each spread across Availability Zones."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from updraft.domain.waves import Candidate, interleave_by_az, plan_waves, wave_sizes

PROPERTIES = settings(max_examples=200, derandomize=True, deadline=None)

AZS = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1f"]


@st.composite
def fleets(draw: st.DrawFn) -> list[Candidate]:
    """Hosts with unique instance ids spread unevenly over up to five AZs."""
    zones = draw(st.lists(st.sampled_from(AZS), min_size=1, max_size=5, unique=True))
    counts = draw(st.lists(st.integers(0, 40), min_size=len(zones), max_size=len(zones)))
    return [
        Candidate(az, f"i-{az[-1]}{index:04d}")
        for az, count in zip(zones, counts, strict=True)
        for index in range(count)
    ]


plans = st.tuples(fleets(), st.integers(1, 50), st.floats(1.0, 10.0), st.integers(1, 60))


def fleet(counts: dict[str, int]) -> list[Candidate]:
    return [Candidate(az, f"i-{az[-1]}{index:04d}") for az, count in counts.items() for index in range(count)]


def per_az(wave: list[Candidate]) -> Counter[str]:
    return Counter(host.az for host in wave)


@PROPERTIES
@given(plans)
def test_waves_partition_the_hosts_exactly(plan: tuple[list[Candidate], int, float, int]) -> None:
    hosts, canary, growth, cap = plan
    waves = plan_waves(hosts, canary, growth, cap)
    planned = [host for wave in waves for host in wave]
    assert sorted(planned) == sorted(hosts)
    assert len(set(planned)) == len(planned)
    assert all(waves), "no wave is empty"


@PROPERTIES
@given(plans)
def test_first_wave_is_the_canary_and_no_wave_exceeds_the_cap(plan: tuple[list[Candidate], int, float, int]) -> None:
    hosts, canary, growth, cap = plan
    waves = plan_waves(hosts, canary, growth, cap)
    if not hosts:
        assert waves == []
        return
    assert len(waves[0]) == min(canary, cap, len(hosts))
    assert all(len(wave) <= cap for wave in waves)


@PROPERTIES
@given(st.integers(0, 2000), st.integers(1, 50), st.floats(1.0, 10.0), st.integers(1, 1000))
def test_wave_sizes_sum_to_total_and_never_shrink_except_the_remainder(
    total: int, canary: int, growth: float, cap: int
) -> None:
    sizes = wave_sizes(total, canary, growth, cap)
    assert sum(sizes) == total
    assert all(0 < size <= cap for size in sizes)
    # Only the last wave may be smaller than the one before it: it takes what is left.
    body = sizes[:-1]
    assert body == sorted(body), f"sizes shrink before the last wave: {sizes}"


@PROPERTIES
@given(plans)
def test_a_wave_leans_towards_an_az_only_once_another_az_has_run_out(
    plan: tuple[list[Candidate], int, float, int],
) -> None:
    """What round-robin interleaving guarantees of every wave (a run of consecutive hosts):
    an AZ that still has hosts waiting after the wave got at most one host fewer than any other AZ
    in that wave. An AZ that runs out *during* the wave may fall further behind: nothing is left to take."""
    hosts, canary, growth, cap = plan
    waves = plan_waves(hosts, canary, growth, cap)
    for index, wave in enumerate(waves):
        counts = per_az(wave)
        later = {host.az for rest in waves[index + 1 :] for host in rest}
        for waiting in later:
            for az, count in counts.items():
                assert count <= counts[waiting] + 1, (
                    f"wave {index} takes {count} from {az} but {counts[waiting]} from {waiting}, "
                    f"which still has hosts: {dict(counts)}"
                )


@PROPERTIES
@given(plans, st.randoms(use_true_random=False))
def test_plan_does_not_depend_on_the_order_hosts_are_listed(
    plan: tuple[list[Candidate], int, float, int], rng: random.Random
) -> None:
    hosts, canary, growth, cap = plan
    shuffled = list(hosts)
    rng.shuffle(shuffled)
    assert plan_waves(shuffled, canary, growth, cap) == plan_waves(hosts, canary, growth, cap)


def test_thirty_hosts_in_three_azs_double_from_a_single_canary() -> None:
    hosts = fleet({"us-east-1a": 10, "us-east-1b": 10, "us-east-1c": 10})
    waves = plan_waves(hosts, canary=1, growth=2.0, cap=50)
    assert [len(wave) for wave in waves] == [1, 2, 4, 8, 15]
    assert [dict(per_az(wave)) for wave in waves[1:]] == [
        {"us-east-1b": 1, "us-east-1c": 1},
        {"us-east-1a": 2, "us-east-1b": 1, "us-east-1c": 1},
        {"us-east-1a": 2, "us-east-1b": 3, "us-east-1c": 3},
        {"us-east-1a": 5, "us-east-1b": 5, "us-east-1c": 5},
    ]


def test_cap_limits_every_wave_after_growth_reaches_it() -> None:
    assert wave_sizes(100, canary=2, growth=3.0, cap=20) == [2, 6, 18, 20, 20, 20, 14]


def test_growth_of_one_still_grows_by_one_host() -> None:
    assert wave_sizes(10, canary=1, growth=1.0, cap=50) == [1, 2, 3, 4]


def test_canary_larger_than_cap_is_capped() -> None:
    assert wave_sizes(7, canary=10, growth=2.0, cap=3) == [3, 3, 1]


def test_no_hosts_means_no_waves() -> None:
    assert wave_sizes(0, canary=1, growth=2.0, cap=50) == []
    assert plan_waves([], canary=1, growth=2.0, cap=50) == []


def test_the_largest_az_leads_the_interleaving() -> None:
    hosts = fleet({"us-east-1a": 1, "us-east-1b": 3, "us-east-1c": 2})
    assert [host.az[-1] for host in interleave_by_az(hosts)] == list("bcabcb")


def test_an_az_running_out_mid_wave_leaves_that_wave_uneven() -> None:
    # 1a has 5 hosts, 1b and 1c one each; the canary takes 1a and 1b. The next wave of four can only
    # take 1c's last host and three from 1a: uneven, but nothing else was left to take.
    hosts = fleet({"us-east-1a": 5, "us-east-1b": 1, "us-east-1c": 1})
    waves = plan_waves(hosts, canary=2, growth=2.0, cap=50)
    assert [dict(per_az(wave)) for wave in waves] == [
        {"us-east-1a": 1, "us-east-1b": 1},
        {"us-east-1c": 1, "us-east-1a": 3},
        {"us-east-1a": 1},
    ]
