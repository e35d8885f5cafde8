"""A real TUF repository shaped like Bottlerocket's, served over HTTP on 127.0.0.1.

Built with python-tuf's Metadata API and signed with real keys: RSA-PSS (rsassa-pss-sha256, 3072 bits,
as in Bottlerocket's root.json), root threshold 2, one online key for targets, snapshot and timestamp,
consistent snapshots, targets served as <sha256>.<name>. python-tuf checks expiry against the real
clock, so "valid" metadata expires in 2100 and "expired" metadata expired in 2001.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from securesystemslib.signer import CryptoSigner, Signer
from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp
from tuf.api.serialization.json import JSONSerializer

from sim.update_repository import FAR_FUTURE, ONLINE_ROLES, StaticServer, bottlerocket_root, rsa_key
from updraft.release import MemoryTrustStore, VerifiedManifest, verify_repository

LONG_AGO = datetime(2001, 1, 1, tzinfo=UTC)
VARIANT = "aws-k8s-1.31"
ARCH = "x86_64"


@dataclass(frozen=True)
class Keys:
    root: tuple[Signer, ...]  # three RSA keys, threshold 2
    online: Signer  # RSA, signs targets, snapshot and timestamp
    next_root: tuple[Signer, ...]  # for a root rotation
    next_online: Signer
    attacker: Signer


@pytest.fixture(scope="session")
def keys() -> Keys:
    """Generated once per test session: RSA key generation is the slow part."""
    return Keys(
        root=(rsa_key(), rsa_key(), rsa_key()),
        online=rsa_key(),
        next_root=(CryptoSigner.generate_ed25519(), CryptoSigner.generate_ed25519()),
        next_online=CryptoSigner.generate_ed25519(),
        attacker=rsa_key(),
    )


class Manifests:
    """Builds manifest.json documents the way Bottlerocket writes them (test modules get it as a fixture:
    importing conftest would be ambiguous, every test folder has one)."""

    variant = VARIANT
    arch = ARCH

    @staticmethod
    def entry(version: str, max_version: str | None = None, **fields: Any) -> dict[str, Any]:
        """One entry of "updates"; `fields` override or add keys."""
        entry = {
            "variant": VARIANT,
            "arch": ARCH,
            "version": version,
            "max_version": max_version or version,
            "waves": {"0": "2024-10-25T18:00:00Z", "20": "2024-10-25T21:00:00Z", "1843": "2024-10-31T17:00:00Z"},
            "images": {
                "boot": f"bottlerocket-{VARIANT}-{ARCH}-{version}-boot.ext4.lz4",
                "root": f"bottlerocket-{VARIANT}-{ARCH}-{version}-root.ext4.lz4",
                "hash": f"bottlerocket-{VARIANT}-{ARCH}-{version}-root.verity.lz4",
            },
        }
        return entry | fields

    @staticmethod
    def document(*entries: dict[str, Any], migrations: dict[str, list[str]] | None = None) -> bytes:
        return json.dumps({"updates": list(entries), "migrations": migrations or {}}, indent=2).encode()

    @property
    def first(self) -> bytes:
        """A repository's first release: 1.26.0."""
        return self.document(self.entry("1.26.0"))

    @property
    def second(self) -> bytes:
        """The next release, 1.26.1, which raises every entry's max_version."""
        return self.document(self.entry("1.26.0", "1.26.1"), self.entry("1.26.1"))


@pytest.fixture
def manifests() -> Manifests:
    return Manifests()


class TufRepository:
    """The server side: publishes new states the way Bottlerocket's release process would, and breaks
    them the way an attacker who controls the network or the mirror would."""

    def __init__(self, directory: Path, keys: Keys, *, hashes_in_meta: bool = True) -> None:
        self.directory = directory
        self.metadata_dir = directory / "metadata"
        self.targets_dir = directory / "targets"
        self.metadata_dir.mkdir(parents=True)
        self.targets_dir.mkdir()
        self.keys = keys
        # Bottlerocket's snapshot and timestamp meta carry length and hashes; without them python-tuf
        # falls back on version checks alone (exercised by the mix-and-match tests).
        self.hashes_in_meta = hashes_in_meta
        self.padding: dict[str, int] = {}  # role -> whitespace bytes appended (signatures stay valid)
        self.online_signer: Signer = keys.online
        self.root = bottlerocket_root(list(keys.root), keys.online)
        self.targets = Metadata(Targets(expires=FAR_FUTURE))
        self.snapshot = Metadata(Snapshot(expires=FAR_FUTURE))
        self.timestamp = Metadata(Timestamp(expires=FAR_FUTURE))
        self._published: set[str] = set()
        self.trusted_root = self._write_root(list(keys.root))
        self.base_url = ""  # set once the server listens

    @property
    def metadata_url(self) -> str:
        return f"{self.base_url}/metadata/"

    @property
    def targets_url(self) -> str:
        return f"{self.base_url}/targets/"

    # --- publishing -------------------------------------------------------------------------------

    def publish_manifest(self, data: bytes) -> None:
        """A release: a new manifest.json target, then new targets, snapshot and timestamp versions."""
        target = TargetFile.from_data("manifest.json", data, ["sha256"])
        (self.targets_dir / f"{target.hashes['sha256']}.manifest.json").write_bytes(data)
        self.targets.signed.targets["manifest.json"] = target
        self.publish("targets")

    def publish(self, start: str = "timestamp", *, signed_by: dict[str, Signer] | None = None) -> None:
        """Bump and re-sign `start` and every role after it (targets -> snapshot -> timestamp), each
        with the online key unless `signed_by` names another signer for it."""
        for role in ONLINE_ROLES[ONLINE_ROLES.index(start) :]:
            self._write_role(role, (signed_by or {}).get(role, self.online_signer))

    def point_timestamp_at_snapshot(self, version: int) -> None:
        """A new, validly signed timestamp that points at an older snapshot (a rollback)."""
        old = self.read(f"metadata/{version}.snapshot.json")
        self.timestamp.signed.version += 1
        self.timestamp.signed.snapshot_meta = MetaFile.from_data(version, old, ["sha256"])
        self.timestamp.sign(self.online_signer)
        self.write("metadata/timestamp.json", self._serialize(self.timestamp, "timestamp"))

    def point_snapshot_at_targets(self, version: int) -> None:
        """A new, validly signed snapshot (and timestamp) that lists an older targets.json."""
        old = self.read(f"metadata/{version}.targets.json")
        self.snapshot.signed.version += 1
        self.snapshot.signed.meta["targets.json"] = MetaFile.from_data(version, old, ["sha256"])
        self.snapshot.sign(self.online_signer)
        self.write(self._path("snapshot"), self._serialize(self.snapshot, "snapshot"))
        self.publish("timestamp")

    def expire(self, role: str) -> None:
        """A frozen role: its newest version has run out (published as a new, validly signed version)."""
        self._metadata(role).signed.expires = LONG_AGO
        self.publish(role)

    def rotate_root(self, *, signed_by: list[Signer] | None = None, new_online: bool = True) -> bytes:
        """Root version N+1 with new root keys (and a new online key): signed by the old root's
        threshold and by the new keys, unless `signed_by` says otherwise. Returns its bytes."""
        root = self.root.signed
        for keyid in list(root.roles[Root.type].keyids):
            root.revoke_key(keyid, Root.type)
        for signer in self.keys.next_root:
            root.add_key(signer.public_key, Root.type)
        if new_online:
            for role in ONLINE_ROLES:
                root.revoke_key(self.online_signer.public_key.keyid, role)
                root.add_key(self.keys.next_online.public_key, role)
            self.online_signer = self.keys.next_online
        root.version += 1
        return self._write_root(signed_by or [*self.keys.root[:2], *self.keys.next_root])

    def _write_root(self, signers: list[Signer]) -> bytes:
        self.root.signatures.clear()
        for signer in signers:
            self.root.sign(signer, append=True)
        data = self.root.to_bytes(JSONSerializer())
        self.write(f"metadata/{self.root.signed.version}.root.json", data)
        return data

    def _write_role(self, role: str, signer: Signer) -> None:
        metadata = self._metadata(role)
        if role in self._published:
            metadata.signed.version += 1
        self._published.add(role)
        if role == "snapshot":
            self.snapshot.signed.meta["targets.json"] = self._meta(self.targets, "targets")
        if role == "timestamp":
            self.timestamp.signed.snapshot_meta = self._meta(self.snapshot, "snapshot")
        metadata.sign(signer)
        self.write(self._path(role), self._serialize(metadata, role))

    def _meta(self, metadata: Metadata, role: str) -> MetaFile:
        version = metadata.signed.version
        if not self.hashes_in_meta:
            return MetaFile(version)
        return MetaFile.from_data(version, self.read(self._path(role)), ["sha256"])

    def _serialize(self, metadata: Metadata, role: str) -> bytes:
        return metadata.to_bytes(JSONSerializer()) + b" " * self.padding.get(role, 0)

    def _metadata(self, role: str) -> Metadata:
        return {"targets": self.targets, "snapshot": self.snapshot, "timestamp": self.timestamp}[role]

    def _path(self, role: str) -> str:
        if role == "timestamp":
            return "metadata/timestamp.json"
        return f"metadata/{self._metadata(role).signed.version}.{role}.json"

    # --- files, as an attacker or a broken mirror sees them ---------------------------------------

    def read(self, path: str) -> bytes:
        return (self.directory / path).read_bytes()

    def write(self, path: str, data: bytes) -> None:
        (self.directory / path).write_bytes(data)

    def tamper(self, path: str, change: Callable[[bytes], bytes]) -> None:
        self.write(path, change(self.read(path)))

    def manifest_path(self) -> str:
        return f"targets/{self.targets.signed.targets['manifest.json'].hashes['sha256']}.manifest.json"

    def current(self, role: str) -> str:
        """The path of the newest published file of `role`."""
        return self._path(role)

    def unsigned_change(self, path: str, change: Callable[[dict[str, Any]], None]) -> None:
        """Edit the signed part of a metadata file and keep the old signatures (now invalid)."""
        document = json.loads(self.read(path))
        change(document["signed"])
        self.write(path, json.dumps(document).encode())


# The same recording HTTP server the simulation serves its update repository with.
Served = StaticServer


@pytest.fixture(autouse=True)
def _no_proxy_for_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    # python-tuf's default fetcher honours *_proxy variables: keep 127.0.0.1 direct.
    monkeypatch.setenv("no_proxy", "127.0.0.1")


def _serve(directory: Path, keys: Keys, hashes_in_meta: bool) -> Iterator[tuple[TufRepository, Served]]:
    repo = TufRepository(directory, keys, hashes_in_meta=hashes_in_meta)
    served = Served(directory)
    repo.base_url = served.url
    try:
        yield repo, served
    finally:
        served.stop()


@pytest.fixture
def serving(tmp_path: Path, keys: Keys) -> Iterator[tuple[TufRepository, Served]]:
    yield from _serve(tmp_path / "repository", keys, hashes_in_meta=True)


@pytest.fixture
def repo(serving: tuple[TufRepository, Served]) -> TufRepository:
    return serving[0]


@pytest.fixture
def server(serving: tuple[TufRepository, Served]) -> Served:
    return serving[1]


@pytest.fixture
def serving_without_hashes(tmp_path: Path, keys: Keys) -> Iterator[tuple[TufRepository, Served]]:
    yield from _serve(tmp_path / "repository-without-hashes", keys, hashes_in_meta=False)


@pytest.fixture
def store() -> MemoryTrustStore:
    return MemoryTrustStore()


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def verify(work_dir: Path) -> Callable[..., VerifiedManifest]:
    """verify_repository against a TufRepository, anchored on its first root unless told otherwise."""

    def run(repo: TufRepository, store: MemoryTrustStore, **options: Any) -> VerifiedManifest:
        options.setdefault("work_dir", work_dir)
        return verify_repository(repo.metadata_url, repo.targets_url, repo.trusted_root, store, **options)

    return run
