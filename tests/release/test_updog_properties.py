"""Properties of reading manifest.json and picking an update as updog does (see test_updog_conformance.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from updraft.release import MalformedManifest, Version, parse_manifest
from updraft.release.manifest import MAX_SEED, MAX_WAVE_KEY, Manifest, Update
from updraft.release.selection import update_ready, update_required

PROPERTY = settings(derandomize=True, deadline=None, max_examples=200)
ONE_WAVE = (Path(__file__).parent / "updog_cases" / "single_wave.json").read_bytes()


def with_wave(key: str, time: str) -> bytes:
    return ONE_WAVE.replace(b'"0": "2021-06-01T08:00:00Z"', f"{json.dumps(key)}: {json.dumps(time)}".encode())


@PROPERTY
@given(st.integers(-(10**12), 10**12), st.integers(0, 3), st.booleans())
def test_a_wave_key_is_any_u32_and_nothing_else(number: int, zeros: int, plus: bool) -> None:
    key = ("-" if number < 0 else "+" if plus else "") + "0" * zeros + str(abs(number))

    if 0 <= number <= MAX_WAVE_KEY:
        (update,) = parse_manifest(with_wave(key, "2021-06-01T08:00:00Z")).updates
        assert list(update.waves) == [number]
    else:
        with pytest.raises(MalformedManifest, match=r"updates\[0\]\.waves: seed"):
            parse_manifest(with_wave(key, "2021-06-01T08:00:00Z"))


SPACE = st.sampled_from(["", "", "", " ", "\t", "\n", "\u3000", "\xa0"])


@st.composite
def chrono_times(draw: st.DrawFn) -> tuple[str, datetime]:
    """A time as chrono 0.4.38 reads it (padded or not, spaced, any separator and zone spelling), and
    the instant it names, to the microsecond."""
    instant = draw(st.datetimes(datetime(1, 1, 3), datetime(9999, 12, 29), timezones=st.just(UTC)))
    digits = draw(st.integers(0, 12))
    kept = int(f"{instant.microsecond:06d}"[: min(digits, 6)].ljust(6, "0"))
    offset = draw(st.integers(-1439, 1439))
    local = (instant + timedelta(minutes=offset)).replace(tzinfo=None)

    def number(value: int) -> str:
        return draw(st.sampled_from([str(value), f"{value:02d}"])) + draw(SPACE)

    year = draw(st.sampled_from([f"{local.year:04d}", f"+{local.year:06d}"]))
    date = f"{draw(SPACE)}{year}{draw(SPACE)}-{number(local.month)}-{draw(SPACE)}{local.day:02d}"
    time = f"{number(local.hour)}:{number(local.minute)}:{draw(SPACE)}{local.second:02d}"
    fraction = "." + f"{local.microsecond:06d}{'0' * 6}"[:digits] if digits else ""
    if offset == 0 and draw(st.booleans()):
        zone = draw(st.sampled_from(["Z", "z", "UTC", "utc"]))
    else:
        sign = "+" if offset >= 0 else draw(st.sampled_from(["-", "\u2212"]))
        hours, minutes = divmod(abs(offset), 60)
        zone = f"{sign}{hours:02d}{draw(st.sampled_from(['', ':', ' ', '::']))}{minutes:02d}"
    text = f"{date}{draw(st.sampled_from('Tt '))}{time}{fraction}{draw(SPACE)}{zone}{draw(SPACE)}"
    return text, instant.replace(microsecond=kept)


@PROPERTY
@given(chrono_times())
def test_a_time_chrono_reads_is_its_instant(case: tuple[str, datetime]) -> None:
    text, instant = case

    (update,) = parse_manifest(with_wave("0", text)).updates

    assert update.waves[0] == instant


T0 = datetime(2024, 1, 1, tzinfo=UTC)
moments = st.integers(-100, 100).map(lambda hours: T0 + timedelta(hours=hours))


def update_with(waves: dict[int, datetime], version: str = "1.0.0", max_version: str = "1.0.0") -> Update:
    return Update.model_validate(
        {
            "variant": "aws-ecs-2",
            "arch": "x86_64",
            "version": version,
            "max_version": max_version,
            "waves": {str(seed): time.isoformat() for seed, time in waves.items()},
            "images": {"boot": "b", "root": "r", "hash": "h"},
        }
    )


@PROPERTY
@given(
    st.dictionaries(st.integers(0, MAX_SEED), moments, max_size=5),
    st.dictionaries(st.integers(MAX_SEED + 1, MAX_WAVE_KEY), moments, min_size=1, max_size=3),
    st.integers(0, MAX_SEED),
    moments,
)
def test_keys_above_max_seed_change_no_host_readiness(
    waves: dict[int, datetime], above: dict[int, datetime], seed: int, now: datetime
) -> None:
    assert update_ready(update_with(waves | above), seed, now) == update_ready(update_with(waves), seed, now)


VERSIONS = ["1.0.0", "1.1.0-rc.1", "1.1.0", "1.2.0", "1.10.0"]


@st.composite
def manifests(draw: st.DrawFn, same_max: bool) -> Manifest:
    """Up to five updates of two variants and arches, with waves; `same_max`: every entry carries the
    manifest's one max_version, as Bottlerocket's updata writes them (update_max_version)."""
    shared_max = draw(st.sampled_from(VERSIONS))
    updates = []
    for _ in range(draw(st.integers(0, 5))):
        update = update_with(
            draw(st.dictionaries(st.sampled_from([0, 20, 512, 1024, 2048, 5000]), moments, max_size=3)),
            draw(st.sampled_from(VERSIONS)),
            shared_max if same_max else draw(st.sampled_from(VERSIONS)),
        )
        variant = draw(st.sampled_from(["aws-ecs-2", "aws-k8s-1.31"]))
        arch = draw(st.sampled_from(["x86_64", "aarch64"]))
        updates.append(update.model_copy(update={"variant": variant, "arch": arch}))
    return Manifest(updates=updates, migrations={})


host = st.tuples(st.sampled_from(VERSIONS).map(Version.parse), st.integers(0, MAX_SEED - 1), moments, st.booleans())


@PROPERTY
@given(manifests(same_max=False), host, st.sampled_from(["latest", *VERSIONS, *(f"v{v}" for v in VERSIONS)]))
def test_the_pick_is_applicable_and_honours_the_lock(manifest: Manifest, host: tuple, lock: str) -> None:
    current, seed, now, ignore_waves = host

    pick = update_required(
        manifest, current, "aws-ecs-2", "x86_64", seed, now, version_lock=lock, ignore_waves=ignore_waves
    )

    if pick is not None:
        assert (pick.variant, pick.arch) == ("aws-ecs-2", "x86_64")
        assert pick.version <= pick.max_version
        assert ignore_waves or update_ready(pick, seed, now)
        if lock == "latest":
            assert current < pick.version or current > pick.max_version
        else:
            assert pick.version == Version.parse(lock.removeprefix("v")) != current


@PROPERTY
@given(manifests(same_max=True), host)
def test_latest_goes_up_to_the_newest_or_steps_down_past_max_version(manifest: Manifest, host: tuple) -> None:
    current, seed, now, ignore_waves = host
    ready = [
        update
        for update in manifest.updates
        if (update.variant, update.arch) == ("aws-ecs-2", "x86_64")
        and update.version <= update.max_version
        and (ignore_waves or update_ready(update, seed, now))
    ]
    newest = max((update.version for update in ready), default=None)

    pick = update_required(manifest, current, "aws-ecs-2", "x86_64", seed, now, ignore_waves=ignore_waves)

    stepping_down = bool(ready) and current > ready[0].max_version
    expected = newest if newest is not None and (newest > current or stepping_down) else None
    assert (pick.version if pick else None) == expected


identifiers = st.one_of(st.integers(0, 30).map(str), st.sampled_from(["rc", "alpha", "beta", "x-1", "0a"]))
builds = st.one_of(st.integers(0, 30).map(str), st.sampled_from(["0", "00", "01", "007", "build", "g1234"]))
versions = st.builds(
    lambda numbers, pre, build: (
        ".".join(map(str, numbers)) + (f"-{'.'.join(pre)}" if pre else "") + (f"+{'.'.join(build)}" if build else "")
    ),
    st.tuples(*[st.integers(0, 12)] * 3),
    st.lists(identifiers, max_size=3),
    st.lists(builds, max_size=2),
)


@PROPERTY
@given(st.lists(versions, min_size=1, max_size=8))
def test_versions_have_one_total_order_consistent_with_equality(texts: list[str]) -> None:
    parsed = [Version.parse(text) for text in texts]

    assert [str(version) for version in parsed] == texts
    assert sorted(parsed) == sorted(reversed(parsed))
    for a in parsed:
        for b in parsed:
            assert (a == b) == (str(a) == str(b))
            assert [a < b, a == b, a > b].count(True) == 1
