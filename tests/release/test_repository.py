"""verify_repository against a real, signed TUF repository served over HTTP.

Every attack test checks three things: UntrustedRelease is raised, its message names the file and
what failed, and the trust store is left exactly as it was. The file named is the one that failed,
even where python-tuf notices the failure while handling another file (an expired root is found when
timestamp.json arrives).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from tuf.api.metadata import DelegatedRole, Delegations

from updraft.errors import UpdraftError
from updraft.release import (
    MemoryTrustStore,
    MetadataVersions,
    Release,
    UntrustedRelease,
    VerifiedManifest,
    Version,
    is_withdrawn,
    latest_release,
    parse_manifest,
)

if TYPE_CHECKING:
    from conftest import Keys, Manifests, Served, TufRepository

Verify = Callable[..., VerifiedManifest]
EVERYTHING = ("root.json", "timestamp.json", "snapshot.json", "targets.json", "manifest.json")
VARIANT, ARCH = "aws-k8s-1.31", "x86_64"
LONG_AGO = datetime(2001, 1, 1, tzinfo=UTC)


def rejected(run: Callable[[], object], store: MemoryTrustStore, *words: str) -> UntrustedRelease:
    """Run a verification that must fail; the store must not change."""
    before = store.files
    with pytest.raises(UntrustedRelease) as caught:
        run()
    message = str(caught.value)
    assert all(word in message for word in words), message
    assert caught.value.__cause__ is not None or caught.value.reason == "missing"
    assert store.files == before
    return caught.value


def rejected_at(run: Callable[[], object], store: MemoryTrustStore, subject: str) -> UntrustedRelease:
    """`rejected`, and the message starts with `subject`: the file that failed and what failed."""
    error = rejected(run, store)
    assert str(error).startswith(subject), str(error)
    return error


@pytest.fixture
def trusted(repo: TufRepository, store: MemoryTrustStore, verify: Verify, manifests: Manifests) -> MemoryTrustStore:
    """A store that trusts the repository's first release; then a second release is published."""
    repo.publish_manifest(manifests.first)
    verify(repo, store)
    repo.publish_manifest(manifests.second)
    return store


# --- releases ---------------------------------------------------------------------------------------


def test_a_new_release_is_verified_saved_and_selected(
    repo: TufRepository, server: Served, store: MemoryTrustStore, verify: Verify, manifests: Manifests
) -> None:
    repo.publish_manifest(manifests.second)

    result = verify(repo, store)

    assert result.manifest == manifests.second
    assert result.digest == hashlib.sha256(manifests.second).hexdigest()
    assert result.versions == MetadataVersions(root=1, timestamp=1, snapshot=1, targets=1)
    assert result.saved == EVERYTHING
    assert store.files["root.json"] == repo.trusted_root
    assert store.files["manifest.json"] == manifests.second
    # Fetched as a consistent-snapshot target: /targets/<sha256>.manifest.json
    assert server.successful_paths() == [
        "/metadata/timestamp.json",
        "/metadata/1.snapshot.json",
        "/metadata/1.targets.json",
        f"/targets/{result.digest}.manifest.json",
    ]
    released_at = datetime(2024, 10, 25, 18, tzinfo=UTC)
    expected = Release(VARIANT, ARCH, Version.parse("1.26.1"), released_at, result.digest)
    assert latest_release(parse_manifest(result.manifest), VARIANT, ARCH) == expected


def test_an_idle_check_downloads_only_timestamp_json(
    repo: TufRepository, server: Served, store: MemoryTrustStore, verify: Verify, tmp_path: Path, manifests: Manifests
) -> None:
    repo.publish_manifest(manifests.second)
    verify(repo, store)
    server.forget()
    cold_start = tmp_path / "cold-start"
    cold_start.mkdir()

    result = verify(repo, store, work_dir=cold_start)

    # The TUF workflow always probes for the next root: a 404 with no body.
    assert server.requests == [("/metadata/2.root.json", 404), ("/metadata/timestamp.json", 200)]
    assert result.bytes_downloaded == len(repo.read("metadata/timestamp.json"))
    assert result.manifest == manifests.second
    assert result.saved == ()


def test_a_re_signed_timestamp_alone_is_saved_without_other_downloads(
    repo: TufRepository, server: Served, store: MemoryTrustStore, verify: Verify, manifests: Manifests
) -> None:
    repo.publish_manifest(manifests.second)
    verify(repo, store)
    repo.publish("timestamp")
    server.forget()

    result = verify(repo, store)

    assert server.successful_paths() == ["/metadata/timestamp.json"]
    assert result.saved == ("timestamp.json",)
    assert result.versions.timestamp == 2


def test_a_later_release_is_found_on_the_next_check(
    repo: TufRepository, server: Served, trusted: MemoryTrustStore, verify: Verify
) -> None:
    server.forget()

    result = verify(repo, trusted)

    assert server.successful_paths() == [
        "/metadata/timestamp.json",
        "/metadata/2.snapshot.json",
        "/metadata/2.targets.json",
        f"/{repo.manifest_path()}",
    ]
    assert result.saved == ("timestamp.json", "snapshot.json", "targets.json", "manifest.json")
    assert latest_release(parse_manifest(result.manifest), VARIANT, ARCH).version == Version.parse("1.26.1")


def test_a_pulled_release_is_withdrawn(
    repo: TufRepository, store: MemoryTrustStore, verify: Verify, manifests: Manifests
) -> None:
    repo.publish_manifest(manifests.second)
    verify(repo, store)
    # Bottlerocket pulls 1.26.1 by lowering every entry's max_version.
    repo.publish_manifest(manifests.document(manifests.entry("1.26.0", "1.26.0"), manifests.entry("1.26.1", "1.26.0")))

    manifest = parse_manifest(verify(repo, store).manifest)

    assert is_withdrawn(manifest, VARIANT, ARCH, "1.26.1")
    assert not is_withdrawn(manifest, VARIANT, ARCH, "1.26.0")
    assert latest_release(manifest, VARIANT, ARCH).version == Version.parse("1.26.0")


def test_a_stored_manifest_is_checked_again_not_trusted(
    repo: TufRepository, server: Served, store: MemoryTrustStore, verify: Verify, manifests: Manifests
) -> None:
    repo.publish_manifest(manifests.second)
    verify(repo, store)
    store.save("manifest.json", manifests.first)  # not what targets.json lists
    server.forget()

    result = verify(repo, store)

    assert result.manifest == manifests.second
    assert f"/{repo.manifest_path()}" in server.successful_paths()
    assert result.saved == ("manifest.json",)


# --- the trust anchor -------------------------------------------------------------------------------


def test_the_configured_root_anchors_only_an_empty_store(
    repo: TufRepository, store: MemoryTrustStore, verify: Verify, manifests: Manifests
) -> None:
    repo.publish_manifest(manifests.second)
    repo.trusted_root = b"not a root"
    error = rejected(lambda: verify(repo, store), store, "configured trusted root", "not valid TUF metadata")
    assert isinstance(error, UpdraftError)

    store.save("root.json", repo.read("metadata/1.root.json"))
    assert verify(repo, store).manifest == manifests.second


def test_a_root_rotation_is_followed_and_the_new_root_becomes_the_anchor(
    repo: TufRepository, server: Served, keys: Keys, trusted: MemoryTrustStore, verify: Verify
) -> None:
    new_root = repo.rotate_root()
    repo.publish("targets")  # re-signed with the new online key

    result = verify(repo, trusted)

    assert result.versions.root == 2
    assert trusted.files["root.json"] == new_root
    assert result.saved[0] == "root.json"

    # Cold start: the configured root is still version 1, the stored one wins.
    server.forget()
    assert verify(repo, trusted).saved == ()
    assert server.requests == [("/metadata/3.root.json", 404), ("/metadata/timestamp.json", 200)]

    # The rotated-out online key no longer counts, even where the mirror hides the new root.
    (repo.metadata_dir / "2.root.json").unlink()
    repo.publish("timestamp", signed_by={"timestamp": keys.online})
    rejected(lambda: verify(repo, trusted), trusted, "timestamp.json", "signature threshold not met")


@pytest.mark.parametrize(
    "signers",
    [
        pytest.param(lambda keys: [keys.root[0], *keys.next_root], id="one-old-root-key-of-two"),
        pytest.param(lambda keys: list(keys.root), id="not-signed-by-its-own-keys"),
        pytest.param(lambda keys: [keys.attacker, *keys.next_root], id="attacker-key"),
    ],
)
def test_an_untrusted_root_rotation_is_rejected(
    repo: TufRepository, keys: Keys, trusted: MemoryTrustStore, verify: Verify, signers: Callable
) -> None:
    repo.rotate_root(signed_by=signers(keys))
    repo.publish("targets")

    error = rejected(lambda: verify(repo, trusted), trusted, "root.json v2", "signature threshold not met")
    assert error.reason == "signature"


# --- attacks on the files ---------------------------------------------------------------------------


def test_a_tampered_manifest_is_rejected(repo: TufRepository, trusted: MemoryTrustStore, verify: Verify) -> None:
    repo.tamper(repo.manifest_path(), lambda data: data.replace(b"1.26.1", b"1.99.9"))

    error = rejected(lambda: verify(repo, trusted), trusted, "manifest.json: length/hash mismatch")
    assert error.reason == "hash"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        pytest.param(lambda data: data + b"\n", "size", id="longer"),
        pytest.param(lambda data: data[:-1], "hash", id="shorter"),
    ],
)
def test_a_manifest_of_the_wrong_length_is_rejected(
    repo: TufRepository, trusted: MemoryTrustStore, verify: Verify, change: Callable, reason: str
) -> None:
    repo.tamper(repo.manifest_path(), change)

    error = rejected(lambda: verify(repo, trusted), trusted, "manifest.json:")
    assert error.reason == reason


def test_a_manifest_missing_from_targets_is_rejected(
    repo: TufRepository, trusted: MemoryTrustStore, verify: Verify
) -> None:
    del repo.targets.signed.targets["manifest.json"]
    repo.publish("targets")

    rejected(lambda: verify(repo, trusted), trusted, "manifest.json: not listed")


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda signed: signed.update(version=signed["version"] + 1), id="content-changed"),
        pytest.param(lambda signed: signed.update(expires="2101-01-01T00:00:00Z"), id="expiry-extended"),
    ],
)
def test_a_timestamp_with_a_bad_signature_is_rejected(
    repo: TufRepository, trusted: MemoryTrustStore, verify: Verify, forge: Callable
) -> None:
    repo.unsigned_change("metadata/timestamp.json", forge)

    error = rejected(lambda: verify(repo, trusted), trusted, "timestamp.json", "signature threshold not met")
    assert error.reason == "signature"


@pytest.mark.parametrize("first_check", [True, False], ids=["empty-store", "trusting-store"])
@pytest.mark.parametrize("role", ["targets", "snapshot", "timestamp"])
def test_metadata_signed_with_a_wrong_key_is_rejected(
    repo: TufRepository,
    keys: Keys,
    store: MemoryTrustStore,
    verify: Verify,
    role: str,
    first_check: bool,
    manifests: Manifests,
) -> None:
    if not first_check:
        repo.publish_manifest(manifests.first)
        verify(repo, store)
    repo.targets.signed.targets.clear()  # the attacker's own manifest would go here
    repo.publish_manifest(manifests.second)
    repo.publish("targets", signed_by={role: keys.attacker})

    rejected(lambda: verify(repo, store), store, f"{role}.json", "signature threshold not met")


@pytest.mark.parametrize(
    ("role", "subject"),
    [("targets", "targets.json v3"), ("snapshot", "snapshot.json v3"), ("timestamp", "timestamp.json")],
)
def test_expired_metadata_is_rejected(
    repo: TufRepository, trusted: MemoryTrustStore, verify: Verify, role: str, subject: str
) -> None:
    repo.expire(role)

    error = rejected_at(lambda: verify(repo, trusted), trusted, f"{subject}: expired")
    assert error.reason == "expired"


# --- the file named is the one that failed ----------------------------------------------------------


@pytest.mark.parametrize("stored", [False, True], ids=["configured-root", "stored-root"])
def test_an_expired_trust_anchor_is_named_as_the_root(
    new_repository: Callable, store: MemoryTrustStore, verify: Verify, manifests: Manifests, stored: bool
) -> None:
    repo, _ = new_repository(root_expires=LONG_AGO)
    repo.publish_manifest(manifests.first)
    if stored:
        store.save("root.json", repo.trusted_root)
    origin = "stored" if stored else "configured trusted root"

    # python-tuf checks the final root's expiry once timestamp.json has arrived: the root is at fault.
    error = rejected_at(lambda: verify(repo, store), store, f"root.json v1 ({origin}): expired")
    assert error.reason == "expired"


def test_an_expired_new_root_is_named_with_its_version(
    repo: TufRepository, trusted: MemoryTrustStore, verify: Verify
) -> None:
    repo.rotate_root(expires=LONG_AGO)
    repo.publish("targets")

    rejected_at(lambda: verify(repo, trusted), trusted, "root.json v2: expired")


def test_a_trusted_timestamp_that_expired_since_is_named_not_the_snapshot(
    repo: TufRepository, trusted: MemoryTrustStore, verify: Verify
) -> None:
    verify(repo, trusted)
    repo.expire("timestamp")  # timestamp v3, expired: trusted as if it had been valid when last checked
    trusted.save("timestamp.json", repo.read("metadata/timestamp.json"))

    # The mirror still serves that same timestamp: python-tuf keeps the trusted one and finds it expired
    # only when it comes to load snapshot.json.
    rejected_at(lambda: verify(repo, trusted), trusted, "timestamp.json v3: expired")


@pytest.mark.parametrize(
    ("attack", "subject"),
    [
        pytest.param(
            lambda repo, keys: repo.publish("A", signed_by={"A": keys.attacker}),
            "A.json v2: signature threshold not met",
            id="signed-by-another-key",
        ),
        pytest.param(lambda repo, keys: repo.expire("A"), "A.json v2: expired", id="expired"),
        pytest.param(
            lambda repo, keys: repo.tamper(repo.current("A"), lambda data: data[:-1]),
            "A.json v1: length/hash mismatch",
            id="not-what-the-snapshot-lists",
        ),
    ],
)
def test_a_failing_delegated_role_is_named(
    repo: TufRepository,
    keys: Keys,
    store: MemoryTrustStore,
    verify: Verify,
    manifests: Manifests,
    attack: Callable,
    subject: str,
) -> None:
    repo.delegate("A", keys.delegates[:1], paths=["manifest.json"])
    repo.publish_manifest(manifests.first, role="A")
    attack(repo, keys)

    rejected_at(lambda: verify(repo, store), store, subject)


def test_a_delegated_role_missing_from_the_snapshot_is_named(
    repo: TufRepository, store: MemoryTrustStore, verify: Verify, manifests: Manifests
) -> None:
    repo.publish_manifest(manifests.first)
    del repo.targets.signed.targets["manifest.json"]
    ghost = DelegatedRole("ghost", [], 1, False, paths=["manifest.json"])
    repo.targets.signed.delegations = Delegations(keys={}, roles={"ghost": ghost})
    repo.publish("targets")

    # python-tuf refuses before downloading anything for it: the last download was targets.json.
    rejected_at(lambda: verify(repo, store), store, "ghost.json: rejected: Role ghost was delegated")


@pytest.mark.parametrize("cold_start", [False, True], ids=["same-work-dir", "cold-start"])
def test_an_older_timestamp_after_a_newer_one_is_rejected(
    repo: TufRepository, store: MemoryTrustStore, verify: Verify, tmp_path: Path, cold_start: bool, manifests: Manifests
) -> None:
    repo.publish_manifest(manifests.first)
    old_timestamp = repo.read("metadata/timestamp.json")
    repo.publish_manifest(manifests.second)
    verify(repo, store)
    repo.write("metadata/timestamp.json", old_timestamp)
    options = {"work_dir": tmp_path} if cold_start else {}

    error = rejected(
        lambda: verify(repo, store, **options), store, "timestamp.json", "New timestamp version 1 must be >= 2"
    )
    assert error.reason == "version"


def test_a_new_timestamp_pointing_at_an_older_snapshot_is_rejected(
    repo: TufRepository, trusted: MemoryTrustStore, verify: Verify
) -> None:
    verify(repo, trusted)  # trusts snapshot 2
    repo.point_timestamp_at_snapshot(1)

    rejected(lambda: verify(repo, trusted), trusted, "timestamp.json", "snapshot version must be >= 2")


def test_a_new_snapshot_pointing_at_older_targets_is_rejected(
    repo: TufRepository, trusted: MemoryTrustStore, verify: Verify
) -> None:
    verify(repo, trusted)  # trusts targets 2
    repo.point_snapshot_at_targets(1)

    error = rejected(lambda: verify(repo, trusted), trusted, "snapshot.json v3", "targets.json")
    assert error.reason == "version"


@pytest.mark.parametrize(
    ("serving_fixture", "reason", "words"),
    [
        pytest.param("serving", "hash", "length/hash mismatch", id="meta-with-hashes"),
        pytest.param("serving_without_hashes", "version", "Expected targets v2, got v1", id="meta-versions-only"),
    ],
)
def test_targets_not_matching_the_snapshot_are_rejected(
    request: pytest.FixtureRequest,
    store: MemoryTrustStore,
    verify: Verify,
    serving_fixture: str,
    reason: str,
    words: str,
    manifests: Manifests,
) -> None:
    repo, _ = request.getfixturevalue(serving_fixture)
    repo.publish_manifest(manifests.first)
    verify(repo, store)
    repo.publish_manifest(manifests.second)
    repo.write("metadata/2.targets.json", repo.read("metadata/1.targets.json"))  # mix and match

    error = rejected(lambda: verify(repo, store), store, "targets.json v2", words)
    assert error.reason == reason


@pytest.mark.parametrize(
    ("serving_fixture", "reason"),
    [pytest.param("serving", "hash", id="meta-with-hashes"), pytest.param("serving_without_hashes", "version")],
)
def test_a_snapshot_not_matching_the_timestamp_is_rejected(
    request: pytest.FixtureRequest,
    store: MemoryTrustStore,
    verify: Verify,
    serving_fixture: str,
    reason: str,
    manifests: Manifests,
) -> None:
    repo, _ = request.getfixturevalue(serving_fixture)
    repo.publish_manifest(manifests.first)
    verify(repo, store)
    repo.publish_manifest(manifests.second)
    repo.write("metadata/2.snapshot.json", repo.read("metadata/1.snapshot.json"))

    error = rejected(lambda: verify(repo, store), store, "snapshot.json v2")
    assert error.reason == reason


def test_a_timestamp_bigger_than_the_limit_is_rejected(
    repo: TufRepository, trusted: MemoryTrustStore, verify: Verify
) -> None:
    repo.padding["timestamp"] = 20_000  # whitespace: still validly signed
    repo.publish("timestamp")

    error = rejected(lambda: verify(repo, trusted), trusted, "timestamp.json", "bigger than allowed")
    assert error.reason == "size"


def test_the_configured_metadata_limit_wins_over_signed_lengths(
    repo: TufRepository, trusted: MemoryTrustStore, verify: Verify
) -> None:
    repo.padding["snapshot"] = 6_000  # the timestamp signs this padded length
    repo.publish("snapshot")

    rejected(
        lambda: verify(repo, trusted, max_metadata_bytes=5_000), trusted, "snapshot.json v3", "bigger than allowed"
    )
    assert verify(repo, trusted).versions.snapshot == 3  # within the default limit


def test_an_unreachable_file_is_reported_as_a_download_failure(
    repo: TufRepository, trusted: MemoryTrustStore, verify: Verify
) -> None:
    (repo.metadata_dir / "timestamp.json").unlink()

    error = rejected(lambda: verify(repo, trusted), trusted, "timestamp.json: download refused", "404")
    assert error.reason == "download"
