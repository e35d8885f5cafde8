"""Bottlerocket's manifest.json and the rules a host follows to pick a release from it.

The manifest is a TUF target: only parse bytes that `verify_repository` returned. Parsing is strict
about the fields Bottlerocket's updater reads (a mistake raises MalformedManifest naming the field) and,
like Bottlerocket's own parser, ignores fields it does not know.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer, PlainValidator, PrivateAttr, ValidationError

from updraft.release.errors import MalformedManifest

# Hosts draw a seed in 0..MAX_SEED-1; a wave's key is the first seed it covers.
MAX_SEED = 2048
# EC2 and SSM say arm64; Bottlerocket's repository paths and manifest say aarch64.
_REPOSITORY_ARCH = {"x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}

_IDENTIFIER = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    rf"(?:-({_IDENTIFIER}(?:\.{_IDENTIFIER})*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})")
_MIGRATION_KEY = re.compile(r"\(([^ ,]+),[ ]*([^ ,]+)\)")


@functools.total_ordering
@dataclass(frozen=True, repr=False)
class Version:
    """A semantic version, ordered by semver precedence (1.10.0 > 1.9.0 > 1.9.0-rc.1)."""

    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()
    build: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _SEMVER.fullmatch(text)
        if not match:
            raise ValueError(f"{text!r} is not a semantic version like 1.26.1")
        major, minor, patch, pre, build = match.groups()
        return cls(int(major), int(minor), int(patch), _dotted(pre), _dotted(build))

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        text += f"-{'.'.join(self.pre)}" if self.pre else ""
        return text + (f"+{'.'.join(self.build)}" if self.build else "")

    def __repr__(self) -> str:
        return f"Version('{self}')"

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._precedence() < other._precedence()

    def _precedence(self) -> tuple[Any, ...]:
        # A release outranks its pre-releases; numeric identifiers compare as numbers and rank below
        # alphanumeric ones. Build metadata only breaks ties, so that the order is total.
        pre = tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in self.pre)
        return (self.major, self.minor, self.patch, not self.pre, pre, self.build)


def _dotted(text: str | None) -> tuple[str, ...]:
    return tuple(text.split(".")) if text else ()


def _version(value: object) -> Version:
    if isinstance(value, Version):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a version string like 1.26.1, got {type(value).__name__}")
    return Version.parse(value)


def _rfc3339(value: object) -> datetime:
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError(f"expected an RFC 3339 time like 2024-10-25T18:00:00Z, got {value!r}")
    return datetime.fromisoformat(value).astimezone(UTC)


def _waves(value: object) -> dict[int, datetime]:
    """{"<first seed>": "<start time>"} -> {first seed: start time}, as Bottlerocket reads it."""
    if not isinstance(value, dict):
        raise ValueError("expected an object of seed -> start time")
    waves: dict[int, datetime] = {}
    for key, time in value.items():
        if not (key.isascii() and key.isdigit() and int(key) <= MAX_SEED):
            raise ValueError(f"seed {key!r} is not a whole number from 0 to {MAX_SEED}")
        if int(key) in waves:
            raise ValueError(f"seed {int(key)} appears twice")
        try:
            waves[int(key)] = _rfc3339(time)
        except ValueError as error:
            raise ValueError(f"seed {key}: {error}") from None
    return waves


def _migrations(value: object) -> dict[tuple[Version, Version], tuple[str, ...]]:
    """{"(1.25.0, 1.26.0)": ["migrate_..."]} -> {(from, to): names}."""
    if not isinstance(value, dict):
        raise ValueError("expected an object of '(from, to)' -> list of migration names")
    migrations: dict[tuple[Version, Version], tuple[str, ...]] = {}
    for key, names in value.items():
        match = _MIGRATION_KEY.fullmatch(key)
        if not match:
            raise ValueError(f"key {key!r} is not '(from, to)'")
        try:
            step = (Version.parse(match.group(1)), Version.parse(match.group(2)))
        except ValueError as error:
            raise ValueError(f"key {key!r}: {error}") from None
        if step in migrations:
            raise ValueError(f"key {key!r} repeats an earlier one")
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise ValueError(f"{key}: expected a list of migration names")
        migrations[step] = tuple(names)
    return migrations


SemVer = Annotated[Version, PlainValidator(_version), PlainSerializer(str)]
Waves = Annotated[dict[int, datetime], PlainValidator(_waves)]
Migrations = Annotated[dict[tuple[Version, Version], tuple[str, ...]], PlainValidator(_migrations)]


class _Strict(BaseModel):
    # extra="ignore": Bottlerocket's serde parser ignores unknown fields, so a new one must not break us.
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")


class Images(_Strict):
    boot: str
    root: str
    hash: str


class Update(_Strict):
    """One release of one variant and architecture, as the manifest lists it."""

    variant: str
    arch: str
    version: SemVer
    max_version: SemVer
    waves: Waves
    images: Images


class Manifest(_Strict):
    updates: list[Update]
    migrations: Migrations
    _digest: str = PrivateAttr(default="")

    @property
    def digest(self) -> str:
        """sha256 of the manifest.json bytes this was parsed from."""
        return self._digest


@dataclass(frozen=True)
class Release:
    variant: str
    arch: str
    version: Version
    released_at: datetime | None  # start of the first wave; None if the release has no waves
    manifest_digest: str


def parse_manifest(data: bytes) -> Manifest:
    """Parse manifest.json bytes. Raises MalformedManifest naming the field at fault."""
    try:
        document = json.loads(data, object_pairs_hook=_without_duplicate_keys)
    except ValueError as error:  # includes JSONDecodeError and UnicodeDecodeError
        raise MalformedManifest(f"manifest.json: not valid JSON: {error}") from error
    except RecursionError:
        raise MalformedManifest("manifest.json: not valid JSON: nested too deep") from None
    try:
        manifest = Manifest.model_validate(document)
    except ValidationError as error:
        raise MalformedManifest(f"manifest.json: {_first_problem(error)}") from error
    manifest._digest = hashlib.sha256(data).hexdigest()
    return manifest


def _without_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Bottlerocket's parser rejects duplicate keys; json.loads would silently keep the last one.
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"key {key!r} appears twice in one object")
        document[key] = value
    return document


def _first_problem(error: ValidationError) -> str:
    problems = error.errors(include_url=False)
    first = problems[0]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]).lstrip(".")
    message = first["msg"].removeprefix("Value error, ")
    more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
    return f"{where or 'top level'}: {message}{more}"


def repository_arch(arch: str) -> str:
    """The architecture as Bottlerocket's repository and manifest spell it (arm64 -> aarch64)."""
    try:
        return _REPOSITORY_ARCH[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}") from None


def updates_for(manifest: Manifest, variant: str, arch: str) -> list[Update]:
    return [update for update in manifest.updates if update.variant == variant and update.arch == arch]


def offered_releases(manifest: Manifest, variant: str, arch: str) -> list[Release]:
    """What a host of this variant and arch may pick, newest first (a host ignoring waves sees all)."""
    offered = [update for update in updates_for(manifest, variant, arch) if update.version <= update.max_version]
    offered.sort(key=lambda update: update.version, reverse=True)
    return [
        Release(update.variant, update.arch, update.version, release_time(update), manifest.digest)
        for update in offered
    ]


def latest_release(manifest: Manifest, variant: str, arch: str) -> Release | None:
    """The newest release offered to this variant and arch: same variant and arch, version <= max_version."""
    offered = offered_releases(manifest, variant, arch)
    return offered[0] if offered else None


def is_withdrawn(manifest: Manifest, variant: str, arch: str, version: Version | str) -> bool:
    """True if `version` was pulled: above the max_version of its entry, or no longer listed.
    `version` may be a version-lock string ("v1.26.0").

    Bottlerocket withdraws a release by lowering max_version; hosts above it are stepped down.
    """
    version = Version.parse(version.removeprefix("v")) if isinstance(version, str) else version
    entries = [update for update in updates_for(manifest, variant, arch) if update.version == version]
    return not entries or all(version > update.max_version for update in entries)


def release_time(update: Update) -> datetime | None:
    """When the release started reaching hosts: the start of its first wave (seed 0, or the smallest)."""
    return update.waves[min(update.waves)] if update.waves else None
