"""Verify Bottlerocket's TUF update repository and fetch its manifest.json as a verified target.

python-tuf's ngclient runs the TUF client workflow: root rotation, signature thresholds, expiry,
rollback and mix-and-match checks, lengths and hashes. This module gives it the metadata trusted last
time (from a TrustStore: a Lambda's disk does not survive), and saves what it trusts now only after
everything verified, manifest included. It also refuses what tough (the TUF client Bottlerocket hosts
update with) refuses and python-tuf does not check: keys listed under IDs that are not their own.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from securesystemslib.exceptions import FormatError
from securesystemslib.formats import encode_canonical
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
    anchor_root = stored.get("root.json", trusted_root)
    anchor = _File("root.json", _version(anchor_root), "stored" if "root.json" in stored else "configured trusted root")
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="tuf-") as scratch:
        metadata_dir, targets_dir = _restore(stored, Path(scratch))
        with _untrusted_on_failure(recorder, anchor, metadata_dir):
            _check_key_ids(anchor_root)
            updater = Updater(
                str(metadata_dir),
                metadata_base_url,
                str(targets_dir),
                targets_base_url,
                recorder,
                _config(max_metadata_bytes),
                bootstrap=anchor_root,
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


def _version(data: bytes) -> int | None:
    """The version of a metadata file, or None where it has none to read (it is checked elsewhere)."""
    try:
        version = json.loads(data)["signed"]["version"]
    except (ValueError, KeyError, TypeError):
        return None
    return version if isinstance(version, int) else None


class _KeyIdError(tuf_errors.RepositoryError):
    """Metadata lists a key under an ID that is not the key's own, or lists one ID twice."""


class _JsonObject(dict[str, Any]):
    """A JSON object that remembers the names it held more than once (json keeps the last value)."""

    duplicates: tuple[str, ...] = ()

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, Any]]) -> _JsonObject:
        obj = cls(pairs)
        if len(obj) != len(pairs):
            names = [name for name, _ in pairs]
            obj.duplicates = tuple(sorted({name for name in names if names.count(name) > 1}))
        return obj


def _check_key_ids(data: bytes) -> None:
    """Refuse a root or delegating targets file whose keys are not listed under their own key IDs.

    tough computes every key ID (sha256 of the key's canonical JSON) and refuses metadata where one
    differs or appears twice; python-tuf takes the IDs as given, so a single key listed under two IDs
    would count twice towards a threshold. Anything not shaped like metadata is left to python-tuf.
    """
    if b'"keys"' not in data:
        return  # timestamp, snapshot and targets without delegations: nothing to check, nothing to parse
    try:
        if not _keys_of(json.loads(data)):
            return  # a targets.json that delegates nothing (tough writes empty delegations): parsed once
        keys = _keys_of(json.loads(data, object_pairs_hook=_JsonObject.from_pairs))
    except (ValueError, KeyError, TypeError, AttributeError):
        return
    if not isinstance(keys, _JsonObject):
        return
    if keys.duplicates:
        raise _KeyIdError(f"key ID {keys.duplicates[0]} is listed more than once")
    for keyid, key in keys.items():
        try:
            calculated = hashlib.sha256(encode_canonical(key).encode()).hexdigest()
        except FormatError as error:
            raise _KeyIdError(f"key {keyid} has no canonical form: {error}") from error
        if keyid.lower() != calculated:
            raise _KeyIdError(f"key ID {keyid} is not the ID of its key ({calculated})")


def _keys_of(document: Any) -> Any:
    """The "keys" of a root, or of a targets file's delegations (None where there are none)."""
    signed = document["signed"]
    if signed.get("_type") == "root":
        return signed["keys"]
    return (signed.get("delegations") or {}).get("keys")


class _RecordingFetcher(FetcherInterface):
    """Logs every request with its size (an idle check must download timestamp.json alone) and caps
    metadata size whatever length signed metadata announces."""

    def __init__(self, inner: FetcherInterface, max_metadata_bytes: int) -> None:
        self._inner = inner
        self._max_metadata_bytes = max_metadata_bytes
        self.downloads: list[Download] = []

    @property
    def current_file(self) -> _File | None:
        return _file_of(self.downloads[-1].url) if self.downloads else None

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
        data = super().download_bytes(url, min(max_length, self._max_metadata_bytes))
        _check_key_ids(data)
        return data


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


@dataclass(frozen=True)
class _File:
    """A file as an error names it: 'snapshot.json v3', 'root.json v1 (configured trusted root)'."""

    name: str
    version: int | None = None
    origin: str = ""

    def __str__(self) -> str:
        text = self.name if self.version is None else f"{self.name} v{self.version}"
        return f"{text} ({self.origin})" if self.origin else text


def _file_of(url: str) -> _File:
    """'3.snapshot.json' -> snapshot.json v3; '<sha256>.manifest.json' -> manifest.json;
    '1.a%2Fb.json' -> a/b.json v1 (role names are percent-encoded in file names)."""
    segment = url.rsplit("/", 1)[-1]
    prefix, dot, rest = segment.partition(".")
    if dot and prefix.isdigit() and rest.endswith(".json"):
        return _File(unquote(rest), int(prefix))
    if dot and len(prefix) in (64, 128) and all(c in "0123456789abcdef" for c in prefix):
        return _File(unquote(rest))
    return _File(unquote(segment))


# python-tuf names the file itself where the failure is not in the file just downloaded: the final
# root is found expired once timestamp.json arrives, a trusted timestamp that expired since (and is
# served unchanged) once snapshot.json arrives, and a role missing from the snapshot before its download.
_NAMED_IN_MESSAGE = (
    re.compile(r"^Final (?P<file>root\.json) is expired$"),
    re.compile(r"^(?P<file>timestamp\.json|snapshot\.json) is expired$"),
    re.compile(r"^Role (?P<role>.+) was delegated but is not part of snapshot$"),
)


def _failed_file(error: Exception, recorder: _RecordingFetcher, anchor: _File, metadata_dir: Path) -> _File:
    current = recorder.current_file
    named = next((match for pattern in _NAMED_IN_MESSAGE if (match := pattern.match(str(error)))), None)
    if named is None:
        # Before any download, only the root given as the trust anchor can have failed.
        return current or anchor
    name = named.group("file") if "file" in named.groupdict() else f"{named.group('role')}.json"
    if current is not None and current.name == name:
        return current
    # The metadata dir holds what python-tuf trusts: root.json links the newest root verified. (A role
    # name is never made a path here: it comes from the repository.)
    local = metadata_dir / name if name in METADATA_FILES else None
    version = _version(local.read_bytes()) if local is not None and local.is_file() else None
    if name == "root.json" and version == anchor.version:
        return anchor
    return _File(name, version)


# Most specific first: (error class, reason, what it means).
_FAILURES: tuple[tuple[type[Exception], str, str], ...] = (
    (tuf_errors.UnsignedMetadataError, "signature", "signature threshold not met"),
    (tuf_errors.ExpiredMetadataError, "expired", "expired"),
    (tuf_errors.BadVersionNumberError, "version", "unexpected version (rollback or mix-and-match)"),
    (tuf_errors.LengthOrHashMismatchError, "hash", "length/hash mismatch"),
    (DeserializationError, "invalid", "not valid TUF metadata"),
    (_KeyIdError, "invalid", "key IDs do not match their keys"),
    (tuf_errors.RepositoryError, "invalid", "rejected"),
    (tuf_errors.DownloadLengthMismatchError, "size", "bigger than allowed"),
    (tuf_errors.DownloadHTTPError, "download", "download refused"),
    (tuf_errors.SlowRetrievalError, "download", "download too slow"),
    (tuf_errors.DownloadError, "download", "download failed"),
)


@contextmanager
def _untrusted_on_failure(recorder: _RecordingFetcher, anchor: _File, metadata_dir: Path) -> Iterator[None]:
    try:
        yield
    except (tuf_errors.RepositoryError, tuf_errors.DownloadError) as error:
        reason, meaning = next((r, m) for kind, r, m in _FAILURES if isinstance(error, kind))
        subject = _failed_file(error, recorder, anchor, metadata_dir)
        raise UntrustedRelease(f"{subject}: {meaning}: {error or type(error).__name__}", reason) from error
