"""Detecting new Bottlerocket releases, trusted only once Bottlerocket's TUF repository verified.

verify_repository() -> VerifiedManifest (manifest.json bytes, verified), then parse_manifest() and
the selection rules (latest_release, is_withdrawn) decide what a host would pick.
"""

from updraft.release.errors import MalformedManifest, UntrustedRelease
from updraft.release.manifest import Manifest, Update, parse_manifest
from updraft.release.repository import MetadataVersions, VerifiedManifest, verify_repository
from updraft.release.selection import (
    Release,
    is_withdrawn,
    latest_release,
    offered_releases,
    release_time,
    repository_arch,
)
from updraft.release.trust import MemoryTrustStore, ScopedTrustStore, TrustStore
from updraft.release.version import Version

__all__ = [
    "MalformedManifest",
    "Manifest",
    "MemoryTrustStore",
    "MetadataVersions",
    "Release",
    "ScopedTrustStore",
    "TrustStore",
    "UntrustedRelease",
    "Update",
    "VerifiedManifest",
    "Version",
    "is_withdrawn",
    "latest_release",
    "offered_releases",
    "parse_manifest",
    "release_time",
    "repository_arch",
    "verify_repository",
]
