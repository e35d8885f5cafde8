"""A real TUF repository shaped like Bottlerocket's, served over HTTP on 127.0.0.1.

Built with python-tuf's Metadata API and signed with real keys: RSA-PSS (rsassa-pss-sha256, 3072 bits,
as in Bottlerocket's root.json), root threshold 2, one online key for targets, snapshot and timestamp,
consistent snapshots, targets served as <sha256>.<name>. python-tuf checks expiry against the real
clock, so "valid" metadata expires in 2100 and "expired" metadata expired in 2001. The same builder lays
out the other repositories a TUF client meets (see TufRepository), tough's test repositories among them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from securesystemslib.signer import CryptoSigner, Signer
from tuf.api.metadata import (
    DelegatedRole,
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from sim.update_repository import FAR_FUTURE, ONLINE_ROLES, StaticServer, rsa_key
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
    delegates: tuple[Signer, ...]  # three ed25519 keys for delegated targets roles


@pytest.fixture(scope="session")
def keys() -> Keys:
    """Generated once per test session: RSA key generation is the slow part."""
    return Keys(
        root=(rsa_key(), rsa_key(), rsa_key()),
        online=rsa_key(),
        next_root=(CryptoSigner.generate_ed25519(), CryptoSigner.generate_ed25519()),
        next_online=CryptoSigner.generate_ed25519(),
        attacker=rsa_key(),
        delegates=tuple(CryptoSigner.generate_ed25519() for _ in range(3)),
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
    them the way an attacker who controls the network or the mirror would.

    By default laid out like Bottlerocket's repository (see the module docstring); the options give the
    other layouts a TUF client meets: one key for every role (`root_signers=[k], root_threshold=1,
    online=k`), a key per online role (`online={"targets": ..., ...}`), no consistent snapshots
    (`snapshot.json`, `role.json`, targets under their own names), a root published elsewhere and
    loaded as it is, cross-signatures included (`root=<bytes>`, with `root_signers` able to sign the
    next one), and delegated targets roles (`delegate`).
    """

    def __init__(
        self,
        directory: Path,
        keys: Keys,
        *,
        hashes_in_meta: bool = True,
        root: bytes | None = None,
        root_signers: Sequence[Signer] | None = None,
        root_threshold: int = 2,
        root_expires: datetime = FAR_FUTURE,
        online: Signer | Mapping[str, Signer] | None = None,
        consistent_snapshot: bool = True,
    ) -> None:
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
        online = keys.online if online is None else online
        self.online: dict[str, Signer] = (
            dict(online) if isinstance(online, Mapping) else dict.fromkeys(ONLINE_ROLES, online)
        )
        self.root_signers: list[Signer] = list(keys.root if root_signers is None else root_signers)
        self.targets = Metadata(Targets(expires=FAR_FUTURE))
        self.snapshot = Metadata(Snapshot(expires=FAR_FUTURE))
        self.timestamp = Metadata(Timestamp(expires=FAR_FUTURE))
        # Delegated targets roles, in the order they were delegated, and the keys each is signed with.
        self.delegated: dict[str, Metadata[Targets]] = {}
        self.delegate_signers: dict[str, list[Signer]] = {}
        self._published: set[str] = set()
        self._changed: set[str] = set()  # targets roles edited since they were last written
        if root is None:
            self.root = Metadata(Root(expires=root_expires, consistent_snapshot=consistent_snapshot))
            _set_role_keys(self.root.signed, Root.type, self.root_signers)
            self.root.signed.roles[Root.type].threshold = root_threshold
            for role in ONLINE_ROLES:
                _set_role_keys(self.root.signed, role, [self.online[role]])
            self.trusted_root = self._write_root(self.root_signers)
        else:
            self.root = Metadata[Root].from_bytes(root)
            self.trusted_root = root
            self.write(f"metadata/{self.root.signed.version}.root.json", root)
        self.base_url = ""  # set once the server listens

    @property
    def metadata_url(self) -> str:
        return f"{self.base_url}/metadata/"

    @property
    def targets_url(self) -> str:
        return f"{self.base_url}/targets/"

    @property
    def consistent_snapshot(self) -> bool:
        return self.root.signed.consistent_snapshot

    # --- publishing -------------------------------------------------------------------------------

    def publish_manifest(
        self, data: bytes, *, role: str = "targets", hash_algorithms: Sequence[str] = ("sha256",), **publishing: Any
    ) -> None:
        """A release: a new manifest.json target in `role`, then new versions of it, snapshot and timestamp
        (`publishing`: as `publish` takes them)."""
        target = TargetFile.from_data("manifest.json", data, list(hash_algorithms))
        self.write(self._target_path(target), data)
        self._metadata(role).signed.targets["manifest.json"] = target
        self.publish(role, **publishing)

    def delegate(
        self,
        name: str,
        signers: Sequence[Signer],
        *,
        paths: list[str],
        threshold: int = 1,
        parent: str = "targets",
        terminating: bool = False,
    ) -> None:
        """`parent` trusts a new targets role `name` for `paths`, signed by a threshold of `signers`.
        Both are written by the next publish of either."""
        delegator = self._metadata(parent).signed
        if delegator.delegations is None:
            delegator.delegations = Delegations(keys={}, roles={})
        assert delegator.delegations.roles is not None
        delegator.delegations.roles[name] = DelegatedRole(name, [], threshold, terminating, paths=paths)
        for signer in signers:
            delegator.add_key(signer.public_key, name)
        self.delegated[name] = Metadata(Targets(expires=FAR_FUTURE))
        self.delegate_signers[name] = list(signers)
        self._changed |= {parent, name}

    def publish(
        self,
        start: str = "timestamp",
        *,
        signed_by: Mapping[str, Signer | Sequence[Signer]] | None = None,
        version: int | None = None,
    ) -> None:
        """Bump and re-sign `start` and every role after it (targets roles -> snapshot -> timestamp),
        each with its own keys unless `signed_by` names other signers for it. Targets roles edited
        since they were last written go out with `start`. `version` sets the new versions instead of
        bumping them (repositories that number versions by time)."""
        if start in ("snapshot", "timestamp"):
            roles = list(ONLINE_ROLES[ONLINE_ROLES.index(start) :])
        else:
            edited = [role for role in ("targets", *self.delegated) if role in self._changed and role != start]
            roles = [start, *edited, "snapshot", "timestamp"]
        for role in roles:
            chosen = (signed_by or {}).get(role)
            signers = self._signers(role) if chosen is None else _as_list(chosen)
            self._write_role(role, signers, version)

    def point_timestamp_at_snapshot(self, version: int) -> None:
        """A new, validly signed timestamp that points at an older snapshot (a rollback)."""
        old = self.read(f"metadata/{version}.snapshot.json")
        self.timestamp.signed.version += 1
        self.timestamp.signed.snapshot_meta = MetaFile.from_data(version, old, ["sha256"])
        self.timestamp.sign(self.online["timestamp"])
        self.write("metadata/timestamp.json", self._serialize(self.timestamp, "timestamp"))

    def point_snapshot_at_targets(self, version: int) -> None:
        """A new, validly signed snapshot (and timestamp) that lists an older targets.json."""
        old = self.read(f"metadata/{version}.targets.json")
        self.snapshot.signed.version += 1
        self.snapshot.signed.meta["targets.json"] = MetaFile.from_data(version, old, ["sha256"])
        self.snapshot.sign(self.online["snapshot"])
        self.write(self._path("snapshot"), self._serialize(self.snapshot, "snapshot"))
        self.publish("timestamp")

    def expire(self, role: str) -> None:
        """A frozen role: its newest version has run out (published as a new, validly signed version)."""
        self._metadata(role).signed.expires = LONG_AGO
        self.publish(role)

    def rotate_root(
        self,
        *,
        signed_by: list[Signer] | None = None,
        new_keys: Sequence[Signer] | None = None,
        threshold: int | None = None,
        new_online: Signer | None = None,
        expires: datetime | None = None,
    ) -> bytes:
        """Root version N+1 with new root keys (`keys.next_root` unless given; the threshold unchanged
        unless given) and a new online key for every online role (`keys.next_online` unless given):
        signed by the old root's threshold and by the new keys, unless `signed_by` says otherwise.
        Returns its bytes."""
        root = self.root.signed
        old_signers, old_threshold = self.root_signers, root.roles[Root.type].threshold
        self.root_signers = list(self.keys.next_root if new_keys is None else new_keys)
        _set_role_keys(root, Root.type, self.root_signers)
        if threshold is not None:
            root.roles[Root.type].threshold = threshold
        online = self.keys.next_online if new_online is None else new_online
        for role in ONLINE_ROLES:
            _set_role_keys(root, role, [online])
            self.online[role] = online
        if expires is not None:
            root.expires = expires
        root.version += 1
        return self._write_root(signed_by or [*old_signers[:old_threshold], *self.root_signers])

    def _write_root(self, signers: list[Signer]) -> bytes:
        self.root.signatures.clear()
        for signer in signers:
            self.root.sign(signer, append=True)
        data = self.root.to_bytes(JSONSerializer())
        self.write(f"metadata/{self.root.signed.version}.root.json", data)
        return data

    def _write_role(self, role: str, signers: list[Signer], version: int | None) -> None:
        metadata = self._metadata(role)
        if version is not None:
            metadata.signed.version = version
        elif role in self._published:
            metadata.signed.version += 1
        self._published.add(role)
        self._changed.discard(role)
        if role == "snapshot":
            for name in ("targets", *self.delegated):
                if name in self._published:
                    self.snapshot.signed.meta[f"{name}.json"] = self._meta(self._metadata(name), name)
        if role == "timestamp":
            self.timestamp.signed.snapshot_meta = self._meta(self.snapshot, "snapshot")
        metadata.signatures.clear()
        for signer in signers:
            metadata.sign(signer, append=True)
        self.write(self._path(role), self._serialize(metadata, role))

    def _signers(self, role: str) -> list[Signer]:
        return self.delegate_signers[role] if role in self.delegated else [self.online[role]]

    def _meta(self, metadata: Metadata, role: str) -> MetaFile:
        version = metadata.signed.version
        if not self.hashes_in_meta:
            return MetaFile(version)
        return MetaFile.from_data(version, self.read(self._path(role)), ["sha256"])

    def _serialize(self, metadata: Metadata, role: str) -> bytes:
        return metadata.to_bytes(JSONSerializer()) + b" " * self.padding.get(role, 0)

    def _metadata(self, role: str) -> Metadata:
        if role in self.delegated:
            return self.delegated[role]
        return {"targets": self.targets, "snapshot": self.snapshot, "timestamp": self.timestamp}[role]

    def _path(self, role: str) -> str:
        """Where clients look for `role`: role names percent-encoded as python-tuf and tough both do."""
        if role == "timestamp":
            return "metadata/timestamp.json"
        name = quote(role, safe="")
        if not self.consistent_snapshot:
            return f"metadata/{name}.json"
        return f"metadata/{self._metadata(role).signed.version}.{name}.json"

    def _target_path(self, target: TargetFile) -> str:
        if not self.consistent_snapshot:
            return f"targets/{target.path}"
        return f"targets/{next(iter(target.hashes.values()))}.{target.path}"

    # --- files, as an attacker or a broken mirror sees them ---------------------------------------

    def read(self, path: str) -> bytes:
        return (self.directory / path).read_bytes()

    def write(self, path: str, data: bytes) -> None:
        (self.directory / path).write_bytes(data)

    def tamper(self, path: str, change: Callable[[bytes], bytes]) -> None:
        self.write(path, change(self.read(path)))

    def manifest_path(self) -> str:
        """The path of the manifest.json the newest targets metadata lists, in whichever role lists it."""
        for role in ("targets", *self.delegated):
            target = self._metadata(role).signed.targets.get("manifest.json")
            if target is not None:
                return self._target_path(target)
        raise LookupError("no targets role lists manifest.json")

    def current(self, role: str) -> str:
        """The path of the newest published file of `role`."""
        return self._path(role)

    def unsigned_change(self, path: str, change: Callable[[dict[str, Any]], None]) -> None:
        """Edit the signed part of a metadata file and keep the old signatures (now invalid)."""
        document = json.loads(self.read(path))
        change(document["signed"])
        self.write(path, json.dumps(document).encode())


def _set_role_keys(root: Root, role: str, signers: Sequence[Signer]) -> None:
    for keyid in list(root.roles[role].keyids):
        root.revoke_key(keyid, role)
    for signer in signers:
        root.add_key(signer.public_key, role)


def _as_list(signers: Signer | Sequence[Signer]) -> list[Signer]:
    return list(signers) if isinstance(signers, Sequence) else [signers]


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
def new_repository(tmp_path: Path, keys: Keys) -> Iterator[Callable[..., tuple[TufRepository, Served]]]:
    """Builds and serves a TufRepository laid out as the options say (TufRepository's keyword options)."""
    servers: list[Served] = []

    def build(**options: Any) -> tuple[TufRepository, Served]:
        directory = tmp_path / f"layout-{len(servers)}"
        repo = TufRepository(directory, keys, **options)
        served = Served(directory)
        servers.append(served)
        repo.base_url = served.url
        return repo, served

    try:
        yield build
    finally:
        for served in servers:
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
