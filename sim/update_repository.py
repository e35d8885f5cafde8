"""A simulated Bottlerocket update repository: real TUF metadata, real signatures, served on 127.0.0.1.

Laid out like Bottlerocket's: metadata under `<base>/<variant>/<arch>/` (timestamp.json,
`<N>.root.json`, `<N>.snapshot.json`, `<N>.targets.json`; consistent snapshots) and targets named
`<sha256>.<name>` under one targets URL. Keys are RSA-PSS (rsassa-pss-sha256) as in Bottlerocket's
root, root threshold 2. Releases are published the way Bottlerocket's release process does: a new
manifest.json target, then new targets, snapshot and timestamp versions.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from securesystemslib.signer import CryptoSigner, Signer
from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp
from tuf.api.serialization.json import JSONSerializer

FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)  # python-tuf checks expiry against the real clock
# Publishing order: each role's file is described by the next one's meta.
ONLINE_ROLES = ("targets", "snapshot", "timestamp")


def rsa_key() -> Signer:
    return CryptoSigner.generate_rsa(scheme="rsassa-pss-sha256", size=3072)


def bottlerocket_root(root_signers: list[Signer], online: Signer) -> Metadata[Root]:
    """Version 1 of a root shaped like Bottlerocket's: root threshold 2, one online key for the rest."""
    root = Root(expires=FAR_FUTURE, consistent_snapshot=True)
    for signer in root_signers:
        root.add_key(signer.public_key, Root.type)
    root.roles[Root.type].threshold = 2
    for role in ONLINE_ROLES:
        root.add_key(online.public_key, role)
    return Metadata(root)


class _RecordingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Any) -> None:
        super().__init__(address, handler)
        self.requests: list[tuple[str, int]] = []


class _RecordingHandler(SimpleHTTPRequestHandler):
    server: _RecordingServer

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.server.requests.append((self.path, int(code)))

    def log_message(self, format: str, *args: Any) -> None:
        pass


class StaticServer:
    """Serves a folder on 127.0.0.1 and records every request as (path, status)."""

    def __init__(self, directory: Path) -> None:
        self._server = _RecordingServer(("127.0.0.1", 0), partial(_RecordingHandler, directory=str(directory)))
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[tuple[str, int]]:
        return self._server.requests

    def successful_paths(self) -> list[str]:
        return [path for path, status in self.requests if status == 200]

    def fetched(self) -> list[str]:
        """The file names served successfully, in order."""
        return [path.rsplit("/", 1)[-1] for path in self.successful_paths()]

    def forget(self) -> None:
        self._server.requests.clear()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class UpdateRepository:
    """One variant and arch's repository, with a manifest that lists every release published so far."""

    def __init__(self, directory: Path, variant: str, arch: str = "x86_64", root_keys: int = 3) -> None:
        self.variant, self.arch = variant, arch
        self.directory = directory
        self.metadata_dir = directory / variant / arch
        self.targets_dir = directory / "targets"
        self.metadata_dir.mkdir(parents=True)
        self.targets_dir.mkdir()
        self.root_signers = [rsa_key() for _ in range(root_keys)]
        self.online = rsa_key()
        self.releases: dict[str, dict[str, Any]] = {}
        self.root = bottlerocket_root(self.root_signers, self.online)
        self.targets = Metadata(Targets(expires=FAR_FUTURE))
        self.snapshot = Metadata(Snapshot(expires=FAR_FUTURE))
        self.timestamp = Metadata(Timestamp(expires=FAR_FUTURE))
        self._published: set[str] = set()
        self.trusted_root = self._write_root()
        self.server = StaticServer(directory)

    def close(self) -> None:
        self.server.stop()

    @property
    def metadata_base_url(self) -> str:
        """The URL template the detection config takes."""
        return f"{self.server.url}/{{variant}}/{{arch}}/"

    @property
    def targets_base_url(self) -> str:
        return f"{self.server.url}/targets/"

    # -- releases ------------------------------------------------------------------------------------
    def release(self, version: str, released_at: datetime) -> None:
        """Publish `version`: every listed release may now step up to it."""
        start = released_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        self.releases[version] = {"version": version, "waves": {"0": start, "1843": start}}
        self._publish_manifest(max_version=version)

    def withdraw(self, version: str, back_to: str) -> None:
        """Pull `version`: max_version drops to `back_to`, as Bottlerocket does to step hosts down."""
        self._publish_manifest(max_version=back_to)

    def manifest(self, max_version: str) -> bytes:
        updates = [
            {
                "variant": self.variant,
                "arch": self.arch,
                "version": release["version"],
                "max_version": max_version,
                "waves": release["waves"],
                "images": {
                    part: f"bottlerocket-{self.variant}-{self.arch}-{release['version']}-{part}.ext4.lz4"
                    for part in ("boot", "root", "hash")
                },
            }
            for release in self.releases.values()
        ]
        return json.dumps({"updates": updates, "migrations": {}}, indent=2).encode()

    def tamper_manifest(self) -> None:
        """Change the served manifest.json without re-signing anything (a compromised mirror)."""
        target = self.targets.signed.targets["manifest.json"]
        path = self.targets_dir / f"{target.hashes['sha256']}.manifest.json"
        path.write_bytes(path.read_bytes().replace(b'"max_version"', b'"max_version" ', 1))

    def expire_timestamp(self) -> None:
        """A validly signed timestamp that has run out (a freeze attack, or a stalled release process)."""
        self.timestamp.signed.expires = datetime(2001, 1, 1, tzinfo=UTC)
        self._write_role("timestamp")

    def sign_timestamp_with_another_key(self) -> None:
        """A new timestamp signed by a key the root does not trust."""
        self._write_role("timestamp", signer=rsa_key())

    # -- TUF ---------------------------------------------------------------------------------------
    def _publish_manifest(self, max_version: str) -> None:
        data = self.manifest(max_version)
        target = TargetFile.from_data("manifest.json", data, ["sha256"])
        (self.targets_dir / f"{target.hashes['sha256']}.manifest.json").write_bytes(data)
        self.targets.signed.targets["manifest.json"] = target
        self.timestamp.signed.expires = FAR_FUTURE  # a release process repairs an expired timestamp
        for role in ONLINE_ROLES:
            self._write_role(role)

    def _write_root(self) -> bytes:
        for signer in self.root_signers:
            self.root.sign(signer, append=True)
        data = self.root.to_bytes(JSONSerializer())
        (self.metadata_dir / f"{self.root.signed.version}.root.json").write_bytes(data)
        return data

    def _write_role(self, role: str, signer: Signer | None = None) -> None:
        metadata = {"targets": self.targets, "snapshot": self.snapshot, "timestamp": self.timestamp}[role]
        if role in self._published:
            metadata.signed.version += 1
        self._published.add(role)
        if role == "snapshot":
            self.snapshot.signed.meta["targets.json"] = self._meta(self.targets, "targets")
        if role == "timestamp":
            self.timestamp.signed.snapshot_meta = self._meta(self.snapshot, "snapshot")
        metadata.sign(signer or self.online)
        (self.metadata_dir / self._file(role, metadata)).write_bytes(metadata.to_bytes(JSONSerializer()))

    def _meta(self, metadata: Metadata, role: str) -> MetaFile:
        data = (self.metadata_dir / self._file(role, metadata)).read_bytes()
        return MetaFile.from_data(metadata.signed.version, data, ["sha256"])

    @staticmethod
    def _file(role: str, metadata: Metadata) -> str:
        return "timestamp.json" if role == "timestamp" else f"{metadata.signed.version}.{role}.json"
