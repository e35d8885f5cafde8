"""Verify Bottlerocket's TUF update repository and fetch its manifest.json as a verified target.

python-tuf's ngclient runs the TUF client workflow: root rotation, signature thresholds, expiry,
rollback and mix-and-match checks, lengths and hashes. This module gives it the metadata trusted last
time (from a TrustStore: a Lambda's disk does not survive), and saves what it trusts now only after
everything verified, manifest included.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tuf.api import exceptions as tuf_errors
from tuf.api.serialization import DeserializationError
from tuf.ngclient import FetcherInterface, Updater, UpdaterConfig, Urllib3Fetcher

from updraft.release.errors import UntrustedRelease
from updraft.release.trust import TrustStore

MANIFEST = "manifest.json"
# Saved in this order: each file is verified against the ones before it.
METADATA_FILES = ("root.json", "timestamp.json", "snapshot.json", "targets.json")
# python-tuf's own ceiling for targets.json; Bottlerocket's targets.json grows with every release.
DEFAULT_MAX_METADATA_BYTES = 5_000_000
USER_AGENT = "updraft"


@dataclass(frozen=True)
class MetadataVersions:
    root: int
    timestamp: int
    snapshot: int
    targets: int


@dataclass(slots=True)
class Download:
    """One request to the repository. A 403/404 probe for the next root.json is normal on every check."""

    url: str
    size: int = 0  # bytes received
    http_status: int | None = None  # set when the server answered with an error


@dataclass(frozen=True)
class VerifiedManifest:
    manifest: bytes
    digest: str  # sha256 of `manifest`, hex
    versions: MetadataVersions
    downloads: tuple[Download, ...]
    saved: tuple[str, ...]  # the names written to the store; empty when nothing changed

    @property
    def bytes_downloaded(self) -> int:
        return sum(download.size for download in self.downloads)


def verify_repository(
    metadata_base_url: str,
    targets_base_url: str,
    trusted_root: bytes,
    store: TrustStore,
    *,
    work_dir: str | Path,
    fetcher: FetcherInterface | None = None,
    max_metadata_bytes: int = DEFAULT_MAX_METADATA_BYTES,
) -> VerifiedManifest:
    """Refresh the repository's metadata from what `store` trusts and return its verified manifest.json.

    `trusted_root` (Bottlerocket's root.json, shipped with Updraft) anchors trust only while the store
    is empty; afterwards the stored root is the anchor, so root rotations followed once stay followed
    and nothing is ever trusted on first use from the network. `work_dir` must be writable (/tmp on
    Lambda); a private directory is made in it and removed. Metadata files bigger than
    `max_metadata_bytes` are refused, even where signed metadata announces a bigger length.

    Raises UntrustedRelease if anything fails to verify or download; the store is then left as it was.
    """
    stored = _load_stored(store)
    recorder = _RecordingFetcher(fetcher or Urllib3Fetcher(app_user_agent=USER_AGENT), max_metadata_bytes)
    anchor = "stored root.json" if "root.json" in stored else "configured trusted root"
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="tuf-") as scratch:
        metadata_dir, targets_dir = _restore(stored, Path(scratch))
        with _untrusted_on_failure(recorder, anchor):
            updater = Updater(
                str(metadata_dir),
                metadata_base_url,
                str(targets_dir),
                targets_base_url,
                recorder,
                _config(max_metadata_bytes),
                bootstrap=stored.get("root.json", trusted_root),
            )
            updater.refresh()
            manifest = _verified_manifest(updater)
        # The metadata dir now holds exactly what python-tuf trusts (root.json links the newest root).
        trusted = {name: (metadata_dir / name).read_bytes() for name in METADATA_FILES}
    trusted[MANIFEST] = manifest
    return VerifiedManifest(
        manifest=manifest,
        digest=hashlib.sha256(manifest).hexdigest(),
        versions=_versions(trusted),
        downloads=tuple(recorder.downloads),
        saved=_save_changes(store, stored, trusted),
    )


def _load_stored(store: TrustStore) -> dict[str, bytes]:
    files = {name: store.load(name) for name in (*METADATA_FILES, MANIFEST)}
    return {name: data for name, data in files.items() if data is not None}


def _restore(stored: dict[str, bytes], scratch: Path) -> tuple[Path, Path]:
    """Lay the stored files out as python-tuf's local cache; the root goes in as `bootstrap` instead."""
    metadata_dir, targets_dir = scratch / "metadata", scratch / "targets"
    metadata_dir.mkdir()
    targets_dir.mkdir()
    for name in METADATA_FILES[1:]:
        if name in stored:
            (metadata_dir / name).write_bytes(stored[name])
    if MANIFEST in stored:
        # Re-verified against the trusted targets metadata by find_cached_target: a stale copy is ignored.
        (targets_dir / MANIFEST).write_bytes(stored[MANIFEST])
    return metadata_dir, targets_dir


def _config(max_metadata_bytes: int) -> UpdaterConfig:
    defaults = UpdaterConfig()
    return UpdaterConfig(
        root_max_length=min(defaults.root_max_length, max_metadata_bytes),
        timestamp_max_length=min(defaults.timestamp_max_length, max_metadata_bytes),
        snapshot_max_length=min(defaults.snapshot_max_length, max_metadata_bytes),
        targets_max_length=min(defaults.targets_max_length, max_metadata_bytes),
        prefix_targets_with_hash=True,  # targets are served as <sha256>.<name>
    )


def _verified_manifest(updater: Updater) -> bytes:
    info = updater.get_targetinfo(MANIFEST)
    if info is None:
        raise UntrustedRelease(f"{MANIFEST}: not listed in the trusted targets metadata", "missing")
    path = updater.find_cached_target(info) or updater.download_target(info)
    return Path(path).read_bytes()


def _versions(trusted: dict[str, bytes]) -> MetadataVersions:
    # Already verified: reading the version field is enough.
    versions = {name.removesuffix(".json"): json.loads(trusted[name])["signed"]["version"] for name in METADATA_FILES}
    return MetadataVersions(**versions)


def _save_changes(store: TrustStore, stored: dict[str, bytes], trusted: dict[str, bytes]) -> tuple[str, ...]:
    changed = tuple(name for name in (*METADATA_FILES, MANIFEST) if stored.get(name) != trusted[name])
    for name in changed:
        store.save(name, trusted[name])
    return changed


class _RecordingFetcher(FetcherInterface):
    """Logs every request with its size (an idle check must download timestamp.json alone) and caps
    metadata size whatever length signed metadata announces."""

    def __init__(self, inner: FetcherInterface, max_metadata_bytes: int) -> None:
        self._inner = inner
        self._max_metadata_bytes = max_metadata_bytes
        self.downloads: list[Download] = []

    @property
    def current_file(self) -> str | None:
        return _file_label(self.downloads[-1].url) if self.downloads else None

    def _fetch(self, url: str) -> Iterator[bytes]:
        download = Download(url)
        self.downloads.append(download)
        try:
            chunks = self._inner.fetch(url)
        except tuf_errors.DownloadHTTPError as error:
            download.http_status = error.status_code
            raise
        return _counted(chunks, download)

    def download_bytes(self, url: str, max_length: int) -> bytes:
        # python-tuf downloads metadata through download_bytes and targets through download_file.
        return super().download_bytes(url, min(max_length, self._max_metadata_bytes))


def _counted(chunks: Iterator[bytes], download: Download) -> Iterator[bytes]:
    try:
        for chunk in chunks:
            download.size += len(chunk)
            yield chunk
    except tuf_errors.DownloadError:
        raise
    except Exception as error:
        # python-tuf wraps errors from opening a download, not from reading it (a connection dropped).
        raise tuf_errors.DownloadError(f"Failed to download {download.url}") from error


def _file_label(url: str) -> str:
    """'3.snapshot.json' -> 'snapshot.json v3'; '<sha256>.manifest.json' -> 'manifest.json'."""
    name = url.rsplit("/", 1)[-1]
    prefix, dot, rest = name.partition(".")
    if dot and prefix.isdigit():
        return f"{rest} v{prefix}"
    if dot and len(prefix) == 64 and all(c in "0123456789abcdef" for c in prefix):
        return rest
    return name


# Most specific first: (error class, reason, what it means).
_FAILURES: tuple[tuple[type[Exception], str, str], ...] = (
    (tuf_errors.UnsignedMetadataError, "signature", "signature threshold not met"),
    (tuf_errors.ExpiredMetadataError, "expired", "expired"),
    (tuf_errors.BadVersionNumberError, "version", "unexpected version (rollback or mix-and-match)"),
    (tuf_errors.LengthOrHashMismatchError, "hash", "length/hash mismatch"),
    (DeserializationError, "invalid", "not valid TUF metadata"),
    (tuf_errors.RepositoryError, "invalid", "rejected"),
    (tuf_errors.DownloadLengthMismatchError, "size", "bigger than allowed"),
    (tuf_errors.DownloadHTTPError, "download", "download refused"),
    (tuf_errors.SlowRetrievalError, "download", "download too slow"),
    (tuf_errors.DownloadError, "download", "download failed"),
)


@contextmanager
def _untrusted_on_failure(recorder: _RecordingFetcher, anchor: str) -> Iterator[None]:
    try:
        yield
    except (tuf_errors.RepositoryError, tuf_errors.DownloadError) as error:
        reason, meaning = next((r, m) for kind, r, m in _FAILURES if isinstance(error, kind))
        # Before any download, only the root given as the trust anchor can have failed.
        subject = recorder.current_file or anchor
        raise UntrustedRelease(f"{subject}: {meaning}: {error or type(error).__name__}", reason) from error
