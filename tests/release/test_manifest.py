"""manifest.json parsing and the rules a Bottlerocket host follows to pick a release."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from updraft.errors import UpdraftError
from updraft.release import (
    MalformedManifest,
    Version,
    is_withdrawn,
    latest_release,
    offered_releases,
    parse_manifest,
    release_time,
    repository_arch,
)

if TYPE_CHECKING:
    from conftest import Manifests

VARIANT, ARCH = "aws-k8s-1.31", "x86_64"

# The example in the project's reference notes on Bottlerocket updates.
REFERENCE_EXAMPLE = b"""{"updates": [
  {"variant": "aws-k8s-1.31", "arch": "x86_64", "version": "1.26.1", "max_version": "1.26.1",
   "waves": {"0": "2024-10-25T18:00:00Z", "20": "2024-10-25T21:00:00Z", "102": "2024-10-26T17:00:00Z",
             "307": "2024-10-27T17:00:00Z", "819": "2024-10-29T17:00:00Z", "1228": "2024-10-30T17:00:00Z",
             "1843": "2024-10-31T17:00:00Z"},
   "images": {"boot": "...-boot.ext4.lz4", "root": "...-root.ext4.lz4", "hash": "...-root.verity.lz4"}}],
 "migrations": {"(1.25.0, 1.26.0)": [], "(1.26.0, 1.26.1)": []}}"""


def versions(releases: list) -> list[str]:
    return [str(release.version) for release in releases]


def test_the_reference_example_parses() -> None:
    manifest = parse_manifest(REFERENCE_EXAMPLE)

    (update,) = manifest.updates
    assert update.version == Version.parse("1.26.1")
    assert update.waves[1843] == datetime(2024, 10, 31, 17, tzinfo=UTC)
    assert update.images.hash == "...-root.verity.lz4"
    assert manifest.migrations[(Version.parse("1.26.0"), Version.parse("1.26.1"))] == ()
    assert manifest.digest == hashlib.sha256(REFERENCE_EXAMPLE).hexdigest()


def test_wave_keys_above_max_seed_are_accepted_like_updog_does(manifests: Manifests) -> None:
    waves = {"0": "2024-10-25T18:00:00Z", "2049": "2024-10-26T18:00:00Z", "4294967295": "2024-10-27T18:00:00Z"}
    (update,) = parse_manifest(manifests.document(manifests.entry("1.26.0", waves=waves))).updates

    assert list(update.waves) == [0, 2049, 4294967295]
    assert release_time(update) == datetime(2024, 10, 25, 18, tzinfo=UTC)


def test_unknown_fields_are_ignored_like_bottlerocket_does(manifests: Manifests) -> None:
    document = json.loads(manifests.document(manifests.entry("1.26.0", status="Ready")))
    document["datastore_versions"] = {}

    assert parse_manifest(json.dumps(document).encode()).updates[0].version == Version.parse("1.26.0")


# --- selection --------------------------------------------------------------------------------------


def test_the_newest_release_wins_by_semver_not_by_text(manifests: Manifests) -> None:
    data = manifests.document(
        manifests.entry("1.9.0", "1.10.0"), manifests.entry("1.10.0"), manifests.entry("1.9.9", "1.10.0")
    )
    manifest = parse_manifest(data)

    latest = latest_release(manifest, VARIANT, ARCH)

    assert str(latest.version) == "1.10.0"
    assert latest.manifest_digest == hashlib.sha256(data).hexdigest()
    assert versions(offered_releases(manifest, VARIANT, ARCH)) == ["1.10.0", "1.9.9", "1.9.0"]


def test_a_release_above_its_max_version_is_not_offered(manifests: Manifests) -> None:
    manifest = parse_manifest(
        manifests.document(
            manifests.entry("1.25.0", "1.26.0"), manifests.entry("1.26.0"), manifests.entry("1.27.0", "1.26.0")
        )
    )

    assert str(latest_release(manifest, VARIANT, ARCH).version) == "1.26.0"
    assert versions(offered_releases(manifest, VARIANT, ARCH)) == ["1.26.0", "1.25.0"]


def test_other_variants_and_arches_are_ignored(manifests: Manifests) -> None:
    manifest = parse_manifest(
        manifests.document(
            manifests.entry("1.26.0"),
            manifests.entry("1.30.0", variant="aws-k8s-1.31-nvidia"),
            manifests.entry("1.31.0", arch="aarch64"),
        )
    )

    assert str(latest_release(manifest, VARIANT, ARCH).version) == "1.26.0"
    assert str(latest_release(manifest, VARIANT, "aarch64").version) == "1.31.0"
    assert latest_release(manifest, "aws-ecs-2", ARCH) is None


def test_pre_releases_rank_below_their_release(manifests: Manifests) -> None:
    manifest = parse_manifest(
        manifests.document(
            manifests.entry("1.10.0-rc.2", "1.10.0"),
            manifests.entry("1.10.0"),
            manifests.entry("1.10.0-rc.10", "1.10.0"),
        )
    )

    assert versions(offered_releases(manifest, VARIANT, ARCH)) == ["1.10.0", "1.10.0-rc.10", "1.10.0-rc.2"]


@given(st.lists(st.tuples(*[st.integers(0, 30)] * 3), min_size=2, max_size=6, unique=True))
def test_semver_order_is_numeric_order(triples: list[tuple[int, int, int]]) -> None:
    texts = [".".join(map(str, triple)) for triple in triples]

    assert [str(v) for v in sorted(map(Version.parse, texts))] == [".".join(map(str, t)) for t in sorted(triples)]


def test_withdrawn_means_above_max_version_or_delisted(manifests: Manifests) -> None:
    manifest = parse_manifest(
        manifests.document(
            manifests.entry("1.25.0", "1.25.1"), manifests.entry("1.25.1"), manifests.entry("1.26.0", "1.25.1")
        )
    )

    assert is_withdrawn(manifest, VARIANT, ARCH, "1.26.0")  # pulled: above max_version
    assert is_withdrawn(manifest, VARIANT, ARCH, "1.24.0")  # no longer listed
    assert not is_withdrawn(manifest, VARIANT, ARCH, "1.25.1")
    assert not is_withdrawn(manifest, VARIANT, ARCH, "v1.25.0")  # a version-lock spelling
    assert is_withdrawn(manifest, VARIANT, "aarch64", "1.25.1")  # listed for another arch only


def test_release_time_is_the_first_wave_start(manifests: Manifests) -> None:
    waves = {"1024": "2024-10-27T00:00:00Z", "512": "2024-10-26T00:00:00+02:00"}
    manifest = parse_manifest(
        manifests.document(manifests.entry("1.26.0", waves=waves), manifests.entry("1.25.0", "1.26.0", waves={}))
    )
    with_waves, without_waves = manifest.updates

    assert release_time(with_waves) == datetime(2024, 10, 25, 22, tzinfo=UTC)  # seed 512, in UTC
    assert release_time(without_waves) is None  # no waves: Bottlerocket offers it at once


def test_arm64_is_aarch64_in_the_repository() -> None:
    assert repository_arch("arm64") == "aarch64"
    assert repository_arch("x86_64") == "x86_64"
    with pytest.raises(ValueError, match="unknown architecture"):
        repository_arch("riscv64")


# --- malformed manifests ----------------------------------------------------------------------------


def _entry_with(manifests: Manifests, **fields: Any) -> bytes:
    return manifests.document(manifests.entry("1.26.0") | fields)


def _without(manifests: Manifests, field: str) -> bytes:
    document = json.loads(manifests.first)
    del document["updates"][0][field]
    return json.dumps(document).encode()


MALFORMED = {
    "not-json": (lambda m: b"{", "not valid JSON"),
    "not-utf8": (lambda m: b"\xff\xfe", "not valid JSON"),
    "top-level-list": (lambda m: b"[]", "top level"),
    "no-updates": (lambda m: b'{"migrations": {}}', "updates: Field required"),
    "no-migrations": (lambda m: b'{"updates": []}', "migrations: Field required"),
    "version-not-semver": (lambda m: _entry_with(m, version="1.26"), "updates[0].version: '1.26' is not a semantic"),
    "version-with-v": (lambda m: _entry_with(m, version="v1.26.0"), "updates[0].version"),
    "max-version-a-number": (lambda m: _entry_with(m, max_version=1.26), "updates[0].max_version"),
    "variant-a-number": (lambda m: _entry_with(m, variant=131), "updates[0].variant"),
    "no-images": (lambda m: _without(m, "images"), "updates[0].images: Field required"),
    "no-hash-image": (lambda m: _entry_with(m, images={"boot": "b", "root": "r"}), "updates[0].images.hash"),
    "seed-not-a-number": (lambda m: _entry_with(m, waves={"first": "2024-10-25T18:00:00Z"}), "seed 'first'"),
    "seed-above-u32": (
        lambda m: _entry_with(m, waves={"4294967296": "2024-10-25T18:00:00Z"}),
        "updates[0].waves: seed '4294967296'",
    ),
    "seed-negative": (lambda m: _entry_with(m, waves={"-1": "2024-10-25T18:00:00Z"}), "updates[0].waves: seed '-1'"),
    "seed-twice": (
        lambda m: _entry_with(m, waves={"20": "2024-10-25T18:00:00Z", "020": "2024-10-26T18:00:00Z"}),
        "seed 20 appears twice",
    ),
    "wave-without-zone": (lambda m: _entry_with(m, waves={"0": "2024-10-25T18:00:00"}), "updates[0].waves: seed 0"),
    "wave-a-date": (lambda m: _entry_with(m, waves={"0": "2024-10-25"}), "RFC 3339"),
    "waves-a-list": (lambda m: _entry_with(m, waves=[]), "updates[0].waves"),
    "migration-key": (
        lambda m: m.document(m.entry("1.26.0"), migrations={"1.25.0 -> 1.26.0": []}),
        "migrations: key '1.25.0 -> 1.26.0'",
    ),
    "migration-version": (lambda m: m.document(m.entry("1.26.0"), migrations={"(1.25, 1.26.0)": []}), "'1.25' is not"),
    "migration-names": (
        lambda m: m.document(m.entry("1.26.0"), migrations={"(1.25.0, 1.26.0)": "m"}),
        "expected a list",
    ),
    "duplicate-key": (
        lambda m: m.first.replace(b'"version": "1.26.0"', b'"version": "1.26.0", "version": "9.0.0"'),
        "'version' appears twice",
    ),
}


@pytest.mark.parametrize(("build", "named"), MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_manifest_is_named(manifests: Manifests, build: Any, named: str) -> None:
    with pytest.raises(MalformedManifest) as caught:
        parse_manifest(build(manifests))

    assert str(caught.value).startswith("manifest.json: ")
    assert named in str(caught.value)
    assert isinstance(caught.value, UpdraftError)
