"""Where the last trusted TUF metadata lives between invocations, so that trust survives cold starts.

TUF's protection against rollback and freeze attacks only works if the client remembers what it
trusted last time: a Lambda's disk does not outlive the sandbox, so `verify_repository` keeps that
memory in a `TrustStore` instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable


@runtime_checkable
class TrustStore(Protocol):
    """Durable key-value storage for one TUF repository's trusted metadata.

    Names are fixed file names: "root.json", "timestamp.json", "snapshot.json", "targets.json" and
    "manifest.json". Values are opaque bytes, stored and returned byte for byte (signatures and
    hashes cover the exact bytes). targets.json can reach a few hundred KB and grows with every
    release; `verify_repository` rejects metadata bigger than its `max_metadata_bytes`, so size a
    backend for that (a DynamoDB item stops at 400 KB: keep large values in S3).

    `save` must be durable when it returns. No transaction across names is needed: files are saved
    root first, manifest last, and python-tuf re-verifies every stored file against the ones before it
    on the next run, so a half-finished save costs at most a re-download, never trust.

    The store is the trust anchor once it holds a root.json: whoever can write to it decides what is
    trusted. Give write access to the release-detection function alone.
    """

    def load(self, name: str) -> bytes | None:
        """The bytes last saved under `name`, or None if nothing was ever saved."""
        ...

    def save(self, name: str, data: bytes) -> None:
        """Store `data` under `name`, replacing what was there."""
        ...


class MemoryTrustStore:
    """A TrustStore in a dict: for tests, and for one-off verification that needs no memory."""

    def __init__(self, files: Mapping[str, bytes] | None = None) -> None:
        self._files: dict[str, bytes] = dict(files or {})

    def load(self, name: str) -> bytes | None:
        return self._files.get(name)

    def save(self, name: str, data: bytes) -> None:
        self._files[name] = bytes(data)

    @property
    def files(self) -> dict[str, bytes]:
        """A copy of everything stored, to compare before and after."""
        return dict(self._files)


class ScopedTrustStore:
    """One repository's view of a shared store: names are prefixed with `scope` ("aws-ecs-2/x86_64").

    Each Bottlerocket variant and architecture is its own TUF repository with its own version
    numbers: sharing names between them would look like a rollback.
    """

    def __init__(self, store: TrustStore, scope: str) -> None:
        self._store = store
        self._prefix = f"{scope.strip('/')}/"

    def load(self, name: str) -> bytes | None:
        return self._store.load(self._prefix + name)

    def save(self, name: str, data: bytes) -> None:
        self._store.save(self._prefix + name, data)
