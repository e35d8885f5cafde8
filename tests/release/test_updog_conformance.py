"""The manifest is read, and releases picked, as Bottlerocket's updater does it.

Each case reproduces a situation of upstream's own tests, with data of our own (tests/release/updog_cases/):
the same parse success or failure, the same pick. Sources are bottlerocket-core-kit at a10182f9:
- U = sources/updater/updog/src/main.rs, its test module, which loads sources/updater/updog/tests/data/*.json;
- M = sources/updater/update_metadata/src/lib.rs, its test module (and tests/data/migrations.json).
The time strings are checked against chrono 0.4.38, the version strings against semver 1.0.23 (the
crates sources/Cargo.lock pins), and the version locks against bottlerocket-modeled-types' FriendlyVersion.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from updraft.release import MalformedManifest, Version, parse_manifest
from updraft.release.manifest import MAX_SEED, Manifest, Update
from updraft.release.selection import applicable_updates, release_time, update_ready, update_required
from updraft.release.version import locked_version

CASES = Path(__file__).parent / "updog_cases"
NOW = datetime(2025, 1, 1, tzinfo=UTC)  # upstream's tests use Utc::now(), after every wave of their data


def case(name: str, arch: str = "x86_64") -> bytes:
    """A case file; for aarch64 its arches swapped, as upstream keeps a file per architecture."""
    data = (CASES / name).read_bytes()
    if arch == "aarch64":
        swapped = data.replace(b'"x86_64"', b'"<other>"').replace(b'"aarch64"', b'"x86_64"')
        data = swapped.replace(b'"<other>"', b'"aarch64"')
    return data


def v(text: str) -> Version:
    return Version.parse(text)


def utc(*fields: int) -> datetime:
    return datetime(*fields, tzinfo=UTC)


# --- parsing --------------------------------------------------------------------------------------


def test_unpadded_months_and_days_parse() -> None:
    """update_metadata/tests/data/migrations.json and updog/tests/data/example_2.json (U test_serde_reader,
    M test_migrations_forward): times like "2019-8-06T15:00:00Z" parse."""
    (update,) = parse_manifest(case("unpadded_dates.json")).updates

    assert update.waves == {0: utc(2021, 4, 5, 10), 600: utc(2021, 4, 6, 10), 1100: utc(2021, 4, 30, 10)}


def test_the_migrations_are_read_by_from_and_to() -> None:
    """updog/tests/data/example.json (U test_manifest_json): updates and migrations parse, the unknown
    "status" is ignored, and the (from, to) key names its migrations in order."""
    manifest = parse_manifest(case("general.json"))

    assert manifest.updates
    assert manifest.migrations[(v("1.18.0"), v("1.19.0"))][0] == "migrate_v1.19.0_alpha"
    assert manifest.migrations[(v("1.19.0"), v("1.20.0"))] == ("migrate_v1.20.0_beta", "migrate_v1.20.0_gamma")


def test_a_bad_wave_key_fails_the_manifest_but_a_key_above_max_seed_does_not() -> None:
    """updog/tests/data/bad-bound.json (U bad_bound): a key that is not a u32 fails the whole manifest;
    its other key above MAX_SEED ("2342352" there) is a valid u32."""
    with pytest.raises(MalformedManifest, match=r"updates\[0\]\.waves: seed '30ab0' is not a whole number"):
        parse_manifest(case("bad_key.json"))

    without_it = case("bad_key.json").replace(b',\n        "30ab0": "2021-06-03T08:00:00Z"', b"")
    (update,) = parse_manifest(without_it).updates
    assert list(update.waves) == [0, 3_000_000]


def test_a_wave_key_twice_fails_the_manifest() -> None:
    """updog/tests/data/duplicate-bound.json (U duplicate_bound)."""
    with pytest.raises(MalformedManifest, match=r"updates\[0\]\.waves: seed '0' appears twice"):
        parse_manifest(case("duplicate_key.json"))


def test_one_wave_and_an_unknown_top_level_field_parse() -> None:
    """updog/tests/data/single_wave.json (read by updog/src/bin/updata.rs test_set_waves): one wave, and
    "datastore_versions", which no struct declares."""
    (update,) = parse_manifest(case("single_wave.json")).updates

    assert update.waves == {0: utc(2021, 6, 1, 8)}


# Times as chrono 0.4.38 reads a DateTime<Utc> (src/format/parse.rs, FromStr for DateTime<FixedOffset>:
# parse_rfc3339_relaxed, whose doc comment shows the space separator and the spaces inside); each
# outcome was checked against chrono itself.
ACCEPTED_TIMES = {
    "2023-3-07T09:30:00Z": utc(2023, 3, 7, 9, 30),
    "2023-3-7T9:30:0Z": utc(2023, 3, 7, 9, 30),
    "2023-03-07t09:30:00z": utc(2023, 3, 7, 9, 30),
    "2023-03-07 09:30:00Z": utc(2023, 3, 7, 9, 30),
    "2023-03-07  09:30:00Z": utc(2023, 3, 7, 9, 30),
    "2023-  03-07T09:  30:00Z": utc(2023, 3, 7, 9, 30),
    " 2023-03-07T09:30:00Z\n": utc(2023, 3, 7, 9, 30),
    "2023-03-07T09:30:00.123456789123Z": utc(2023, 3, 7, 9, 30, 0, 123456),
    "2023-03-07T09:30:00.5+05:30": utc(2023, 3, 7, 4, 0, 0, 500000),
    "2023-03-07T09:30:00+0530": utc(2023, 3, 7, 4),
    "2023-03-07T09:30:00-05 : 30": utc(2023, 3, 7, 15),
    "2023-03-07T09:30:00\u221201:00": utc(2023, 3, 7, 10, 30),  # U+2212 MINUS SIGN
    "2023-03-07T09:30:00UTC": utc(2023, 3, 7, 9, 30),
    "2023-03-07T09:30:00 utc": utc(2023, 3, 7, 9, 30),
    "2023-03-07T09:30:00 Z": utc(2023, 3, 7, 9, 30),
    "2016-12-31T23:59:60Z": utc(2016, 12, 31, 23, 59, 59, 999999),  # a leap second
    "+002023-03-07T09:30:00Z": utc(2023, 3, 7, 9, 30),
    "23-03-07T09:30:00Z": utc(23, 3, 7, 9, 30),  # the year 23, not 2023
    "+20000-01-01T00:00:00Z": datetime.max.replace(tzinfo=UTC),  # chrono's range, beyond Python's
}
REFUSED_TIMES = [
    "2023-03-07T09:30:00",
    "2023-03-07",
    "2023-03-07 T09:30:00Z",
    "2023-03-07_09:30:00Z",
    "2023-03-07T09:30Z",
    "2023-03-07T09:30:00.Z",
    "2023-03-07T09:30:00,5Z",
    "2023-03-07T09:30:00+05",
    "2023-03-07T09:30:00+5:30",
    "2023-03-07T09:30:00+05:60",
    "2023-03-07T09:30:00+24:00",
    "2023-02-29T00:00:00Z",
    "2023-03-07T24:00:00Z",
    "2023-03-07T09:30:61Z",
    "02023-03-07T09:30:00Z",
    "2023-03-07T09:30:00ZZ",
    "2023-03-07T09:30:00GMT",
    "2023-03-07T09:30:00\u200bZ",
    "\u0662023-03-07T09:30:00Z",
    "+262143-01-01T00:00:00Z",
]


def _one_wave(time: str) -> bytes:
    return (CASES / "single_wave.json").read_bytes().replace(b'"2021-06-01T08:00:00Z"', f'"{time}"'.encode())


@pytest.mark.parametrize(("time", "expected"), ACCEPTED_TIMES.items(), ids=repr)
def test_wave_times_chrono_accepts_parse(time: str, expected: datetime) -> None:
    (update,) = parse_manifest(_one_wave(time.encode("unicode_escape").decode())).updates

    assert update.waves[0] == expected


@pytest.mark.parametrize("time", REFUSED_TIMES, ids=repr)
def test_wave_times_chrono_refuses_fail_the_manifest(time: str) -> None:
    with pytest.raises(MalformedManifest, match=r"updates\[0\]\.waves: seed 0"):
        parse_manifest(_one_wave(time.encode("unicode_escape").decode()))


@pytest.mark.parametrize(
    ("key", "seed"),
    [("0", 0), ("2048", 2048), ("2049", 2049), ("4294967295", 4294967295), ("007", 7), ("+5", 5)],
)
def test_wave_keys_are_read_as_u32(key: str, seed: int) -> None:
    """update_metadata/src/de.rs deserialize_bound: key.parse::<u32>(), which takes a "+" and leading zeros."""
    (update,) = parse_manifest(_one_wave("2021-06-01T08:00:00Z").replace(b'"0":', f'"{key}":'.encode())).updates

    assert list(update.waves) == [seed]


@pytest.mark.parametrize("key", ["4294967296", "-1", "-0", "+", "", " 1", "1 ", "1_000", "\\u0661", "0x10"])
def test_wave_keys_that_are_not_u32_fail_the_manifest(key: str) -> None:
    with pytest.raises(MalformedManifest, match=r"updates\[0\]\.waves: seed"):
        parse_manifest(_one_wave("2021-06-01T08:00:00Z").replace(b'"0":', f'"{key}":'.encode()))


def test_structs_may_be_arrays_and_unknown_fields_may_repeat() -> None:
    """serde_derive's struct visitor takes an array of the fields in order, and skips unknown fields,
    repeated or not (checked against serde_json 1.0.128 with update_metadata's types)."""
    data = b"""[[["aws-ecs-2", "x86_64", "1.20.0", "1.20.0", {"0": "2021-6-1T8:00:00Z"}, ["b", "r", "h"]]],
                {"junk (1.19.0, 1.20.0) junk": []}]"""
    manifest = parse_manifest(data)

    assert manifest.updates[0].images.hash == "h"
    assert list(manifest.migrations) == [(v("1.19.0"), v("1.20.0"))]  # the first "(from, to)" in the key
    repeated_unknown = case("general.json").replace(b'"status": "Ready"', b'"status": 1, "status": 2')
    assert parse_manifest(repeated_unknown).updates[0].version == v("1.20.0")
    with pytest.raises(MalformedManifest, match=r"updates\[0\]: field 'arch' appears twice"):
        parse_manifest(case("general.json").replace(b'"status": "Ready"', b'"arch": "aarch64"'))


def test_strings_are_checked_only_where_serde_json_reads_them() -> None:
    """serde_json (IoRead, as Manifest::from_json reads) checks UTF-8 and surrogate escapes in strings it
    reads as a field, not in values it skips."""
    skipped = case("general.json").replace(b'"Ready"', b'"\xff \\ud800"')
    assert parse_manifest(skipped).updates

    for broken in (b'"aws-ecs-\xff"', b'"aws-ecs-\\udc00"'):
        with pytest.raises(MalformedManifest, match=r"updates\[0\]\.variant: .* is not valid UTF-8"):
            parse_manifest(case("general.json").replace(b'"aws-ecs-2"', broken))
    for not_json in (b"\xef\xbb\xbf" + case("general.json"), case("general.json").replace(b'"Ready"', b"NaN")):
        with pytest.raises(MalformedManifest, match="not valid JSON"):
            parse_manifest(not_json)


# --- picking an update ----------------------------------------------------------------------------


def test_an_update_above_its_max_version_is_never_taken() -> None:
    """updog/tests/data/regret.json (U test_versions): version above max_version, seed 123, "latest"."""
    manifest = parse_manifest(case("above_max_version.json"))

    assert update_required(manifest, v("3.8.0"), "aws-ecs-2", "x86_64", 123, NOW) is None


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_a_host_above_every_max_version_steps_down_to_the_newest_valid(arch: str) -> None:
    """updog/tests/data/example_3_{x86_64,aarch64}.json (U older_versions): both updates below the
    running version, seed 1487: the newest whose max_version the host exceeds."""
    manifest = parse_manifest(case("step_down.json", arch))

    update = update_required(manifest, v("2.3.6"), "aws-k8s-1.30", arch, 1487, NOW)

    assert update is not None and update.version == v("2.3.5")


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_the_newest_valid_update_of_the_host_arch_is_taken(arch: str) -> None:
    """updog/tests/data/multiple_{x86_64,aarch64}.json (U test_multiple): not the lower one, not the one
    above max_version, not the other architecture's; wave keys far above MAX_SEED, seed 123."""
    manifest = parse_manifest(case("multiple.json", arch))

    update = update_required(manifest, v("3.0.0"), "aws-ecs-2", arch, 123, NOW)

    assert update is not None and update.version == v("3.4.0")


def test_a_forced_version_is_taken_over_the_newest() -> None:
    """updog/tests/data/multiple_x86_64.json (U force_update_version): `updog update -i` a lower version."""
    manifest = parse_manifest(case("multiple.json"))

    update = update_required(manifest, v("3.0.0"), "aws-ecs-2", "x86_64", 123, NOW, force_version=v("3.1.0"))

    assert update is not None and update.version == v("3.1.0")


def test_a_version_lock_takes_exactly_that_version() -> None:
    """U update_required: a lock other than "latest" picks the applicable update of that version, and
    nothing if the host already runs it (or if it is not applicable)."""
    manifest = parse_manifest(case("multiple.json"))

    def pick(current: str, lock: str) -> str | None:
        update = update_required(manifest, v(current), "aws-ecs-2", "x86_64", 123, NOW, version_lock=lock)
        return str(update.version) if update else None

    assert pick("3.0.0", "v3.1.0") == "3.1.0"
    assert pick("3.4.0", "3.1.0") == "3.1.0"  # a lock may go down
    assert pick("3.1.0", "v3.1.0") is None
    assert pick("3.0.0", "3.9.0") is None  # above its max_version: not applicable
    assert pick("3.0.0", "3.2.0") is None
    with pytest.raises(ValueError, match="not a semantic version"):
        pick("3.0.0", "Latest")


# bottlerocket-modeled-types (bottlerocket-settings-sdk, bottlerocket-settings-models/modeled-types/src/
# shared.rs, test_version): what FriendlyVersion takes as `settings.updates.version-lock`.
@pytest.mark.parametrize(
    ("lock", "expected"),
    [("2.0.0", "2.0.0"), ("v2.0.0", "2.0.0"), ("v2.0.1-beta", "2.0.1-beta"), ("2.0.2-beta+7.1", "2.0.2-beta+7.1"),
     ("v3.1.0-rc.2.1", "3.1.0-rc.2.1"), ("latest", None)],
)  # fmt: skip
def test_version_locks_updog_takes(lock: str, expected: str | None) -> None:
    locked = locked_version(lock)

    assert (str(locked) if locked else None) == expected


@pytest.mark.parametrize(
    "lock", ["hey", "2.0", "2", "v", "v2", "v2.0", "vv2.1.0", "2.0.3-alpha.1.02", "V2.0.0", " 2.0.0"]
)
def test_version_locks_updog_refuses(lock: str) -> None:
    with pytest.raises(ValueError):
        locked_version(lock)


def _update(waves: dict[int, datetime], version: str = "1.1.1") -> Update:
    entry = {
        "variant": "aws-k8s-1.15",
        "arch": "x86_64",
        "version": version,
        "max_version": version,
        "waves": {str(seed): time.isoformat() for seed, time in waves.items()},
        "images": {"boot": "boot", "root": "root", "hash": "hash"},
    }
    return Update.model_validate(entry)


def test_a_later_wave_waits_for_its_start() -> None:
    """U check_update_waves: waves 0 (now), 1024 and 2048 (in an hour): seed 0 is offered, seed 2000 not."""
    now = NOW
    update = _update({0: now, 1024: now + timedelta(hours=1), 2048: now + timedelta(hours=1)}, "1.1.1")
    manifest = Manifest(updates=[update], migrations={})

    assert update_required(manifest, v("1.0.0"), "aws-k8s-1.15", "x86_64", 0, now) is not None
    assert update_required(manifest, v("1.0.0"), "aws-k8s-1.15", "x86_64", 2000, now) is None
    assert update_required(manifest, v("1.0.0"), "aws-k8s-1.15", "x86_64", 2000, now, ignore_waves=True)


def ms(count: float) -> timedelta:
    return timedelta(milliseconds=count)


T0 = utc(2000, 1, 1)  # M test_time(): 2000-01-01T00:00:00Z


def test_no_waves_is_ready() -> None:
    """M test_update_ready_no_wave."""
    assert update_ready(_update({}), 100, T0)


def test_one_wave_gives_each_seed_its_millisecond() -> None:
    """M test_update_ready_single_wave: waves 0 and MAX_SEED over 2048 ms: seed n is ready n ms in."""
    update = _update({0: T0, MAX_SEED: T0 + ms(MAX_SEED)})

    for seed in range(100, 500, 100):
        assert not update_ready(update, seed, T0 + ms(seed - 1))
        assert update_ready(update, seed, T0 + ms(seed))


# M add_test_waves: seeds 0-50 end at 200 ms, 50-100 at 1024 ms, 100-1024 at 4096 ms.
def _three_waves() -> Update:
    return _update({0: T0, 50: T0 + ms(200), 100: T0 + ms(1024), 1024: T0 + ms(4096)})


def test_the_second_wave() -> None:
    """M test_update_ready_second_wave (its loops, stepping as upstream steps)."""
    update, seed = _three_waves(), 60
    position = (1024 - 200) // (100 - 50) * seed

    assert not any(update_ready(update, seed, T0 + ms(d)) for d in range(0, 200, 10))
    assert not any(update_ready(update, seed, T0 + ms(d)) for d in range(200, position, 2))
    assert all(update_ready(update, seed, T0 + ms(200) + ms(d)) for d in range(position, 1024, 4))
    assert all(update_ready(update, seed, T0 + ms(d)) for d in range(1024, 4096, 8))


def test_the_third_wave() -> None:
    """M test_update_ready_third_wave."""
    update, seed = _three_waves(), 148
    position = (4096 - 1024) // (1024 - 100) * seed

    assert not any(update_ready(update, seed, T0 + ms(d)) for d in range(0, 200, 10))
    assert not any(update_ready(update, seed, T0 + ms(d)) for d in range(200, 1024, 4))
    assert not any(update_ready(update, seed, T0 + ms(200) + ms(d)) for d in range(1024, position, 4))
    assert all(update_ready(update, seed, T0 + ms(1024 + 200) + ms(d)) for d in range(position, 4096, 4))


def test_the_final_wave() -> None:
    """M test_update_ready_final_wave: the last wave started an hour ago."""
    update = _update({0: T0 - timedelta(hours=3), 256: T0 - timedelta(hours=2), 512: T0 - timedelta(hours=1)})

    assert update_ready(update, 1024, T0)


def test_keys_above_max_seed_hold_no_host_back() -> None:
    """M Update::update_wave looks for a host's wave end only from its seed up to MAX_SEED."""
    update = _update({0: T0, 2049: T0 + timedelta(days=365), 4294967295: T0 + timedelta(days=3650)})

    assert all(update_ready(update, seed, T0) for seed in (0, 1, 2047, 2048))
    assert release_time(update) == T0
    assert release_time(_update({3000: T0})) is None  # offered at once, as with no waves
    with pytest.raises(ValueError, match="seed 2049"):
        update_ready(update, 2049, T0)  # upstream's BTreeMap::range panics; bork draws 0..2048


def test_applicable_updates_are_newest_first() -> None:
    """U applicable_updates: variant, arch, version <= max_version, ready; sorted by version descending."""
    manifest = parse_manifest(case("multiple.json"))

    assert [str(u.version) for u in applicable_updates(manifest, "aws-ecs-2", "x86_64", 123, NOW)] == ["3.4.0", "3.1.0"]
    assert applicable_updates(manifest, "aws-ecs-2", "x86_64", 123, utc(2021, 8, 31)) == []  # wave 0 not yet
