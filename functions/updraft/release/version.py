"""Bottlerocket's versions: semantic versions as the semver crate reads and orders them, and the version a
host's `settings.updates.version-lock` pins."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

# semver 1.0.23, src/parse.rs (Version::from_str): ASCII only; major, minor and patch are u64 without
# leading zeros; pre-release identifiers are alphanumeric or numbers without leading zeros; build
# identifiers are alphanumeric, leading zeros allowed; no "v" prefix, no whitespace.
_NUMBER = r"(0|[1-9][0-9]*)"
_IDENTIFIER = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER = re.compile(
    rf"{_NUMBER}\.{_NUMBER}\.{_NUMBER}"
    rf"(?:-({_IDENTIFIER}(?:\.{_IDENTIFIER})*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)
_U64_MAX = 2**64 - 1


@functools.total_ordering
@dataclass(frozen=True, repr=False)
class Version:
    """A semantic version, ordered as the semver crate orders it (1.10.0 > 1.9.0 > 1.9.0-rc.1)."""

    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()
    build: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _SEMVER.fullmatch(text)
        if not match or max(int(number) for number in match.groups()[:3]) > _U64_MAX:
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
        # semver 1.0.23, src/impls.rs (Ord for Prerelease and BuildMetadata) and Version's derived Ord:
        # a release outranks its pre-releases; numeric identifiers rank below alphanumeric ones and
        # compare as numbers; build metadata compares too (numbers as numbers, then the one with more
        # leading zeros higher), so versions differing only in build are ordered, not equal.
        pre = tuple((0, len(part), part) if _numeric(part) else (1, 0, part) for part in self.pre)
        build = tuple(
            (0, len(part.lstrip("0")), part.lstrip("0"), len(part)) if _numeric(part) else (1, 0, part, 0)
            for part in self.build or ("",)
        )
        return (self.major, self.minor, self.patch, not self.pre, pre, build)


def _dotted(text: str | None) -> tuple[str, ...]:
    return tuple(text.split(".")) if text else ()


def _numeric(part: str) -> bool:
    # As Rust's part.bytes().all(is_ascii_digit): true for "" too (a version without build metadata).
    return all("0" <= char <= "9" for char in part)


def locked_version(version_lock: str) -> Version | None:
    """The version `settings.updates.version-lock` pins, or None for "latest". Raises ValueError if it
    is neither, as updog then fails.

    bottlerocket-core-kit a10182f9, sources/updater/updog/src/main.rs update_required: "latest" exactly,
    else FriendlyVersion (bottlerocket-modeled-types src/shared.rs): one leading "v" dropped, then semver.
    """
    return None if version_lock == "latest" else Version.parse(version_lock.removeprefix("v"))
