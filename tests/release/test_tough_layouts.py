"""verify_repository against the repository layouts and failures tough's own tests exercise.

tough (awslabs/tough) is the TUF client Bottlerocket's updog updates hosts with: a repository it loads
should verify here, and one it refuses should be refused here. Each test names the tough test (and the
test repository under tough/tests/data/ it loads) that it reproduces, all at tough commit
e8f453e7c502ea2bbcbb8f76d38fa2674c895342; none of tough's files is used: every repository here is
built and signed afresh with python-tuf's Metadata API (conftest's TufRepository). Where python-tuf
and tough differ, the test says so and pins what verify_repository does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
from securesystemslib.signer import Signer, SSlibKey
from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, MetaFile, Root, Signature
from tuf.api.serialization.json import JSONSerializer
from tuf.ngclient import FetcherInterface

from updraft.release import MemoryTrustStore, MetadataVersions, UntrustedRelease, VerifiedManifest

if TYPE_CHECKING:
    from conftest import Keys, Manifests, Served, TufRepository

TOUGH = "e8f453e7c502ea2bbcbb8f76d38fa2674c895342"  # the awslabs/tough commit every citation below is at
LONG_AGO = datetime(2001, 1, 1, tzinfo=UTC)
# tough/tests/data/expired-repository numbers every version by the time it was made.
RELEASED_AT = 1589485578
Verify = Callable[..., VerifiedManifest]
NewRepository = Callable[..., "tuple[TufRepository, Served]"]


def refused(run: Callable[[], object], store: MemoryTrustStore, subject: str) -> UntrustedRelease:
    """The verification fails, its message starts with `subject`, and the store is left as it was."""
    before = store.files
    with pytest.raises(UntrustedRelease) as caught:
        run()
    assert str(caught.value).startswith(subject), str(caught.value)
    assert store.files == before
    return caught.value


def one_key_for_everything(new_repository: NewRepository, signer: Signer, **options: Any) -> TufRepository:
    """A repository whose every role, root included, is signed by `signer` alone."""
    repo, _ = new_repository(root_signers=[signer], root_threshold=1, online=signer, **options)
    return repo


# --- layouts tough loads ----------------------------------------------------------------------------


def test_consistent_snapshots_with_one_key_for_every_role(
    new_repository: NewRepository, keys: Keys, store: MemoryTrustStore, verify: Verify, manifests: Manifests
) -> None:
    """tough@e8f453e7 tough/tests/repo_cache.rs test_repo_cache_consistent_snapshots, on
    tests/data/consistent-snapshots: one rsassa-pss-sha256 key signs all four roles (threshold 1),
    metadata is N.snapshot.json and N.targets.json, targets are served as <sha256>.<name>."""
    repo, server = new_repository(root_signers=[keys.root[0]], root_threshold=1, online=keys.root[0])
    repo.publish_manifest(manifests.first)

    result = verify(repo, store)

    assert result.manifest == manifests.first
    assert server.successful_paths() == [
        "/metadata/timestamp.json",
        "/metadata/1.snapshot.json",
        "/metadata/1.targets.json",
        f"/targets/{hashlib.sha256(manifests.first).hexdigest()}.manifest.json",
    ]


def _numbered_by_time(new_repository: NewRepository, keys: Keys) -> tuple[TufRepository, Served]:
    """expired-repository's layout: a key per role, and a snapshot that lists root.json as well."""
    online = {"targets": keys.online, "snapshot": keys.root[1], "timestamp": keys.root[2]}
    repo, server = new_repository(root_signers=[keys.root[0]], root_threshold=1, online=online)
    repo.snapshot.signed.meta["root.json"] = MetaFile(1)
    return repo, server


def test_versions_numbered_by_time(
    new_repository: NewRepository, keys: Keys, store: MemoryTrustStore, verify: Verify, manifests: Manifests
) -> None:
    """tough@e8f453e7 tough/tests/data/expired-repository (loaded by tests/expiration_enforcement.rs):
    timestamp, snapshot and targets all at version 1589485578, a key per role, and a snapshot that also
    lists root.json. Here with valid expiry dates, then a release an hour later."""
    repo, server = _numbered_by_time(new_repository, keys)
    repo.publish_manifest(manifests.first, version=RELEASED_AT)
    assert verify(repo, store).versions == MetadataVersions(1, RELEASED_AT, RELEASED_AT, RELEASED_AT)
    repo.publish_manifest(manifests.second, version=RELEASED_AT + 3600)
    server.forget()

    result = verify(repo, store)

    later = RELEASED_AT + 3600
    assert result.versions == MetadataVersions(root=1, timestamp=later, snapshot=later, targets=later)
    assert f"/metadata/{later}.snapshot.json" in server.successful_paths()
    assert result.manifest == manifests.second


def test_an_expired_timestamp_is_refused(
    new_repository: NewRepository, keys: Keys, store: MemoryTrustStore, verify: Verify, manifests: Manifests
) -> None:
    """tough@e8f453e7 tough/tests/expiration_enforcement.rs test_expiration_enforcement_safe, on
    tests/data/expired-repository: only timestamp.json has expired; tough fails with ExpiredMetadata for
    the timestamp role. (test_expiration_enforcement_unsafe loads it anyway: Updraft has no such mode.)"""
    repo, _ = _numbered_by_time(new_repository, keys)
    repo.timestamp.signed.expires = LONG_AGO
    repo.publish_manifest(manifests.first, version=RELEASED_AT)

    error = refused(lambda: verify(repo, store), store, "timestamp.json: expired")
    assert error.reason == "expired"


def test_a_flat_root_rotation_away_from_an_expired_root(
    new_repository: NewRepository, keys: Keys, store: MemoryTrustStore, verify: Verify, manifests: Manifests
) -> None:
    """tough@e8f453e7 tough/tests/rotated_root.rs, on tests/data/rotated-root: 1.root.json (one key for
    every role, expired in 1998) is the trust anchor; 2.root.json names a new key for every role and is
    signed by the old key and the new one; the client walks 1.root.json -> 2.root.json and ends on version
    2. An intermediate root's expiry does not matter (tough/src/lib.rs load_root, step 1.5)."""
    repo = one_key_for_everything(new_repository, keys.root[0], root_expires=LONG_AGO)
    repo.rotate_root(
        new_keys=[keys.online], threshold=1, new_online=keys.online, expires=datetime(2100, 1, 1, tzinfo=UTC)
    )
    repo.publish_manifest(manifests.first)

    result = verify(repo, store)

    assert result.versions.root == 2
    assert store.files["root.json"] == repo.read("metadata/2.root.json")


def test_an_expired_final_root_is_refused(
    new_repository: NewRepository, keys: Keys, store: MemoryTrustStore, verify: Verify, manifests: Manifests
) -> None:
    """tough@e8f453e7 tough/src/lib.rs load_root: once no newer root is found, the trusted root must not
    have expired (spec 5.2.9), else ExpiredMetadata for the root role. (tough's own test of an expired
    root, src/schema/verify.rs expired_root_json_signature_is_err, is #[ignore]d: "this is not actually
    testing for expired metadata".)"""
    repo = one_key_for_everything(new_repository, keys.root[0])
    repo.rotate_root(new_keys=[keys.online], threshold=1, new_online=keys.online, expires=LONG_AGO)
    repo.publish_manifest(manifests.first)

    error = refused(lambda: verify(repo, store), store, "root.json v2: expired")
    assert error.reason == "expired"


def test_a_next_root_that_repeats_the_current_version_is_refused_where_tough_stops_quietly(
    repo: TufRepository, store: MemoryTrustStore, verify: Verify, manifests: Manifests
) -> None:
    """tough@e8f453e7 tough/src/lib.rs load_root, "Off-spec": when N+1.root.json says version N, tough
    ignores it and carries on with root N. python-tuf refuses it (spec 5.3.5: the version must be N+1),
    so verify_repository fails where updog would not. Pinned: a deliberate difference."""
    repo.publish_manifest(manifests.first)
    repo.write("metadata/2.root.json", repo.trusted_root)

    error = refused(lambda: verify(repo, store), store, "root.json v2: unexpected version")
    assert error.reason == "version"


def test_the_python_reference_layout_with_delegations(
    new_repository: NewRepository, keys: Keys, store: MemoryTrustStore, verify: Verify, manifests: Manifests
) -> None:
    """tough@e8f453e7 tough/tests/interop.rs test_tuf_reference_impl, on tests/data/tuf-reference-impl
    (written by the Python reference implementation): no consistent snapshots (snapshot.json,
    targets.json, role1.json; targets under their own names), an rsassa-pss-sha256 root key, an ed25519
    key per online role, snapshot meta with versions only, targets hashed with sha256 and sha512, and
    targets delegating to role1, which delegates to role2 for no paths. Here role1 lists manifest.json."""
    online = {"targets": keys.next_root[0], "snapshot": keys.next_root[1], "timestamp": keys.next_online}
    repo, server = new_repository(
        root_signers=[keys.root[0]], root_threshold=1, online=online, consistent_snapshot=False, hashes_in_meta=False
    )
    repo.delegate("role1", keys.delegates[:1], paths=["manifest.json"])
    repo.delegate("role2", keys.delegates[:1], paths=[], parent="role1")
    repo.publish_manifest(manifests.first, role="role1", hash_algorithms=("sha256", "sha512"))

    result = verify(repo, store)

    assert result.manifest == manifests.first
    assert server.requests == [
        ("/metadata/2.root.json", 404),
        ("/metadata/timestamp.json", 200),
        ("/metadata/snapshot.json", 200),
        ("/metadata/targets.json", 200),
        ("/metadata/role1.json", 200),
        ("/targets/manifest.json", 200),
    ]


def test_two_levels_of_delegation(
    repo: TufRepository, server: Served, keys: Keys, store: MemoryTrustStore, verify: Verify, manifests: Manifests
) -> None:
    """tough@e8f453e7 tough/tests/repo_editor.rs create_role_flow: targets delegates to A ('*.txt'),
    which delegates to B ('file?.txt'), each role with its own key, threshold 1; the reloaded repository
    has both roles. Here A has '*.json' and B 'manifest.js?n', and B lists manifest.json."""
    repo.delegate("A", keys.delegates[:1], paths=["*.json"])
    repo.delegate("B", keys.delegates[1:2], paths=["manifest.js?n"], parent="A")
    repo.publish_manifest(manifests.first, role="B")

    result = verify(repo, store)

    assert result.manifest == manifests.first
    assert server.fetched() == [
        "timestamp.json",
        "1.snapshot.json",
        "1.targets.json",
        "1.A.json",
        "1.B.json",
        f"{result.digest}.manifest.json",
    ]


def _delegated_twice(
    repo: TufRepository, keys: Keys, manifest: bytes, *, threshold: int = 1, **publishing: Any
) -> None:
    repo.delegate("A", keys.delegates[:1], paths=["*.json"])
    repo.delegate("B", keys.delegates[1 : 1 + threshold], paths=["manifest.js?n"], parent="A", threshold=threshold)
    repo.publish_manifest(manifest, role="B", **publishing)


@pytest.mark.parametrize(
    ("publish", "subject"),
    [
        pytest.param(
            lambda repo, keys, manifest: _delegated_twice(repo, keys, manifest, signed_by={"B": keys.attacker}),
            "B.json v1: signature threshold not met",
            id="signed-by-a-key-not-delegated",
        ),
        pytest.param(
            lambda repo, keys, manifest: _delegated_twice(
                repo, keys, manifest, threshold=2, signed_by={"B": keys.delegates[1]}
            ),
            "B.json v1: signature threshold not met",
            id="one-signature-of-a-threshold-of-two",
        ),
        pytest.param(
            lambda repo, keys, manifest: (
                _delegated_twice(repo, keys, manifest),
                repo.tamper(repo.manifest_path(), lambda data: data.replace(b"1.26.0", b"1.99.9")),
            ),
            "manifest.json: length/hash mismatch",
            id="target-not-matching-its-hash",
        ),
    ],
)
def test_a_delegated_target_without_its_signatures_or_hash_is_refused(
    repo: TufRepository,
    keys: Keys,
    store: MemoryTrustStore,
    verify: Verify,
    manifests: Manifests,
    publish: Callable,
    subject: str,
) -> None:
    """tough@e8f453e7 tough/src/schema/verify.rs Delegations::verify_role (a delegated role needs a
    threshold of signatures by the keys its delegation names, else SignatureThreshold) and
    tough/src/io.rs DigestAdapter, tested by test_digest_adapter (a target whose sha256 differs from the
    one listed fails with HashMismatch), on create_role_flow's two-level delegation."""
    publish(repo, keys, manifests.first)

    refused(lambda: verify(repo, store), store, subject)


def test_a_target_outside_its_roles_paths_is_not_trusted(
    repo: TufRepository, keys: Keys, store: MemoryTrustStore, verify: Verify, manifests: Manifests
) -> None:
    """tough@e8f453e7 tough/src/schema/mod.rs Targets::validate, run on load by tough/src/lib.rs
    load_targets: a target listed by a role whose delegation paths do not cover it fails the load with
    InvalidPath. python-tuf looks a target up only in roles delegated its path, so manifest.json here is
    simply not found: refused either way."""
    repo.delegate("A", keys.delegates[:1], paths=["*.txt"])
    repo.publish_manifest(manifests.first, role="A")

    error = refused(lambda: verify(repo, store), store, "manifest.json: not listed")
    assert error.reason == "missing"


def test_a_broken_delegated_role_off_the_manifests_path_is_not_fetched(
    repo: TufRepository, server: Served, keys: Keys, store: MemoryTrustStore, verify: Verify, manifests: Manifests
) -> None:
    """tough@e8f453e7 tough/src/lib.rs load_delegations: tough fetches and verifies every delegated role
    when it loads a repository, so updog would refuse this one (A is signed by a key not delegated).
    python-tuf fetches only the roles on the path to manifest.json, and manifest.json is listed by
    targets.json itself: verify_repository accepts it. Pinned: a difference (Bottlerocket's repositories
    delegate nothing)."""
    repo.delegate("A", keys.delegates[:1], paths=["variants/*"])
    repo.publish_manifest(manifests.first, signed_by={"A": keys.attacker})

    assert verify(repo, store).manifest == manifests.first
    assert not any("A.json" in path for path in server.fetched())


class _FilesFetcher(FetcherInterface):
    """Serves `base_url` + <name> from `directory` / <name>, the name exactly as requested: no decoding
    of %2F into a path separator, as a web server would do."""

    def __init__(self, base_url: str, directory: Path) -> None:
        self._base_url, self._directory = base_url, directory

    def _fetch(self, url: str) -> Iterator[bytes]:
        path = self._directory / url.removeprefix(self._base_url)
        if not path.is_file():
            raise tuf_errors.DownloadHTTPError(f"{url} not found", 404)
        return iter([path.read_bytes()])


# tough/tests/data/dubious-role-names: a beer mug, runes with their names, and a path out of the datastore.
RUNES = "\u16a9 os, \u16b1 rad, \u16b3 cen, \u16b7 gyfu, \u16b9 \u01bfynn, \u16bb h\u00e6gl, ..."
DUBIOUS_ROLES = ("\U0001f37a/30", RUNES, "../../path/like/dubious")


def test_dubious_role_names_stay_file_names(
    repo: TufRepository,
    keys: Keys,
    store: MemoryTrustStore,
    verify: Verify,
    manifests: Manifests,
    tmp_path: Path,
    work_dir: Path,
) -> None:
    """tough@e8f453e7 tough/tests/interop.rs test_dubious_role_name, on tests/data/dubious-role-names:
    delegated roles named '../../path/like/dubious', '\U0001f37a/30' and a line of runes load, and their
    metadata is stored under percent-encoded names inside the datastore. tough encodes role names as
    urllib.parse.quote does (tough/src/lib.rs encode_filename), as python-tuf does: the same file names.
    Here each role is delegated manifest.json, and the last one lists it."""
    for name in DUBIOUS_ROLES:
        repo.delegate(name, keys.delegates[:1], paths=["manifest.json"])
    repo.publish_manifest(manifests.first, role=DUBIOUS_ROLES[-1])
    fetcher = _FilesFetcher(repo.base_url + "/", repo.directory)

    result = verify(repo, store, fetcher=fetcher)

    assert result.manifest == manifests.first
    requested = [download.url.rsplit("/", 1)[-1] for download in result.downloads]
    assert requested[4:7] == [
        "1.%F0%9F%8D%BA%2F30.json",
        f"1.{quote(RUNES, safe='')}.json",
        "1...%2F..%2Fpath%2Flike%2Fdubious.json",
    ]
    assert not list(work_dir.iterdir())  # python-tuf's cache went with verify_repository's private directory
    assert not [path for path in tmp_path.rglob("*") if path.name in ("dubious.json", "30.json")]


# --- signatures on the root -------------------------------------------------------------------------


def _json(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def _without_signatures(root: Metadata[Root], signer: Signer) -> bytes:
    document = root.to_dict()
    document["signatures"] = []
    return _json(document)


def _forged_signature(root: Metadata[Root], signer: Signer) -> bytes:
    document = root.to_dict()
    document["signatures"][0]["sig"] = "ff" * 384
    return _json(document)


def _role_naming_an_unknown_key(root: Metadata[Root], signer: Signer) -> bytes:
    root.signed.roles["root"].keyids = ["f" * 64]
    root.sign(signer)
    return root.to_bytes(JSONSerializer())


def _same_signature_twice(root: Metadata[Root], signer: Signer) -> bytes:
    root.signed.roles["root"].threshold = 2
    root.sign(signer)
    document = root.to_dict()
    document["signatures"] *= 2
    return _json(document)


def _two_signatures_by_one_key(root: Metadata[Root], signer: Signer) -> bytes:
    root.signed.roles["root"].threshold = 2
    root.sign(signer)
    document = root.to_dict()
    document["signatures"].append(signer.sign(root.signed_bytes).to_dict())  # rsassa-pss: a new signature
    return _json(document)


@pytest.mark.parametrize(
    ("anchor", "subject"),
    [
        pytest.param(_without_signatures, "signature threshold not met", id="no-root-json-signatures"),
        pytest.param(_forged_signature, "signature threshold not met", id="invalid-root-json-signature"),
        pytest.param(_role_naming_an_unknown_key, "signature threshold not met", id="mismatched-root-json-keyids"),
        # tough counts one of the two (SignatureThreshold); python-tuf refuses to read them at all.
        pytest.param(_same_signature_twice, "not valid TUF metadata", id="duplicate-sigs"),
        pytest.param(_two_signatures_by_one_key, "not valid TUF metadata", id="duplicate-sig-keys"),
    ],
)
def test_a_trust_anchor_without_a_threshold_of_signatures_is_refused(
    new_repository: NewRepository,
    keys: Keys,
    store: MemoryTrustStore,
    verify: Verify,
    manifests: Manifests,
    anchor: Callable[[Metadata[Root], Signer], bytes],
    subject: str,
) -> None:
    """tough@e8f453e7 tough/src/schema/verify.rs tests no_root_json_signatures_is_err,
    invalid_root_json_signatures_is_err, mismatched_root_json_keyids_is_err, duplicate_sigs_is_err and
    duplicate_sig_keys_is_err, on the root.json of the test repositories of those names: a root signed by
    one rsassa-pss-sha256 key (simple-rsa) with no signature, a forged one, its root role naming another
    key ID, or (threshold 2) the same signature twice or two signatures by the one key."""
    repo = one_key_for_everything(new_repository, keys.root[0])
    repo.publish_manifest(manifests.first)
    assert verify(repo, MemoryTrustStore()).versions.root == 1  # simple-rsa itself verifies
    repo.trusted_root = anchor(Metadata[Root].from_bytes(repo.trusted_root), keys.root[0])

    refused(lambda: verify(repo, store), store, f"root.json v1 (configured trusted root): {subject}")


# --- key IDs ----------------------------------------------------------------------------------------


def _one_key_under_two_ids(root: Metadata[Root], signer: Signer) -> bytes:
    """Root threshold 2, met by `signer` alone: its key listed a second time under a made-up ID."""
    key = signer.public_key
    twin = SSlibKey("0" * 64, key.keytype, key.scheme, key.keyval)
    root.signed.add_key(twin, "root")
    root.signed.roles["root"].threshold = 2
    root.sign(signer)
    root.signatures[twin.keyid] = Signature(twin.keyid, signer.sign(root.signed_bytes).signature)
    # Without Updraft's check python-tuf would trust it: two "keys" signed.
    assert root.signed.get_verification_result("root", root.signed_bytes, root.signatures).verified
    return root.to_bytes(JSONSerializer())


def _key_listed_twice(root: Metadata[Root], signer: Signer) -> bytes:
    """The same key ID twice in "keys" (json keeps the last, so python-tuf would not notice)."""
    root.sign(signer)
    entry = json.dumps({signer.public_key.keyid: signer.public_key.to_dict()})[1:-1]
    text = root.to_bytes(JSONSerializer()).decode()
    assert text.count('"keys": {') == 1
    return text.replace('"keys": {', '"keys": {' + entry + ",").encode()


@pytest.mark.parametrize(
    "anchor",
    [
        pytest.param(_one_key_under_two_ids, id="key-under-another-id"),
        pytest.param(_key_listed_twice, id="duplicate-keyid"),
    ],
)
def test_a_root_listing_a_key_under_an_id_not_its_own_is_refused(
    new_repository: NewRepository,
    keys: Keys,
    store: MemoryTrustStore,
    verify: Verify,
    manifests: Manifests,
    anchor: Callable[[Metadata[Root], Signer], bytes],
) -> None:
    """tough@e8f453e7 tough/src/schema/de.rs deserialize_keys: every key ID must be the sha256 of the
    key's canonical JSON (InvalidKeyId) and appear once (DuplicateKeyId; test duplicate_keyid, on
    tests/data/duplicate-keyid). python-tuf takes key IDs as given: one key listed under two IDs would
    count twice towards a threshold, which verify_repository refuses, as tough does."""
    repo = one_key_for_everything(new_repository, keys.root[0])
    repo.publish_manifest(manifests.first)
    repo.trusted_root = anchor(Metadata[Root].from_bytes(repo.trusted_root), keys.root[0])

    error = refused(lambda: verify(repo, store), store, "root.json v1 (configured trusted root): key IDs")
    assert error.reason == "invalid"


def test_key_ids_are_checked_in_new_roots_and_delegations(
    repo: TufRepository, keys: Keys, store: MemoryTrustStore, verify: Verify, manifests: Manifests
) -> None:
    """tough@e8f453e7 tough/src/schema/de.rs deserialize_keys, which tough runs on every root.json and on
    every delegations "keys" map it reads: the same check on 2.root.json and on targets.json."""
    repo.publish_manifest(manifests.first)
    verify(repo, store)
    repo.rotate_root()
    repo.write("metadata/2.root.json", _renamed_first_key(repo.read("metadata/2.root.json")))

    refused(lambda: verify(repo, store), store, "root.json v2: key IDs do not match their keys")

    repo.write("metadata/2.root.json", repo.root.to_bytes(JSONSerializer()))
    # A validly signed targets.json delegating to a key under an ID not its own.
    repo.delegate("A", keys.delegates[:1], paths=["variants/*"])
    delegations = repo.targets.signed.delegations
    delegations.keys["1" * 64] = delegations.keys.pop(keys.delegates[0].public_key.keyid)
    delegations.roles["A"].keyids = ["1" * 64]
    repo.publish("targets")

    refused(lambda: verify(repo, store), store, "targets.json v2: key IDs do not match their keys")


def _renamed_first_key(data: bytes) -> bytes:
    """The root with its first key under another ID (its signatures kept: no longer valid either)."""
    document = json.loads(data)
    keys = document["signed"]["keys"]
    keys["1" * 64] = keys.pop(next(iter(keys)))
    return _json(document)
