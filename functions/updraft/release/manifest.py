"""Bottlerocket's manifest.json and the rules a host follows to pick a release from it.

The manifest is a TUF target: only parse bytes that `verify_repository` returned. It is read the way
Bottlerocket's updater reads it (update_metadata's serde types through serde_json) and releases are
picked the way updog picks them, so that a manifest hosts accept is never refused here, nor the
reverse. A manifest it refuses raises MalformedManifest naming the field.

Upstream facts cite bottlerocket-core-kit at a10182f9 and the crates its sources/Cargo.lock pins:
chrono 0.4.38, semver 1.0.23, serde_json 1.0.128, serde_derive 1.0.210, bottlerocket-modeled-types 0.6.0.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from updraft.release.errors import MalformedManifest

# The seed a host draws is 0..MAX_SEED-1, and waves cover seeds up to MAX_SEED:
# bottlerocket-core-kit a10182f9, sources/api/bork/src/main.rs generate_seed: gen_range(0..2048);
# sources/updater/update_metadata/src/lib.rs: MAX_SEED = 2048, the end of update_wave's seed range.
MAX_SEED = 2048
# A wave's key is any u32, MAX_SEED or not: bottlerocket-core-kit a10182f9,
# sources/updater/update_metadata/src/de.rs deserialize_bound: key.parse::<u32>().
MAX_WAVE_KEY = 2**32 - 1
# EC2 and SSM say arm64; Bottlerocket's repository paths and manifest say aarch64.
_REPOSITORY_ARCH = {"x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}

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

# Rust's char::is_whitespace (Unicode White_Space), which chrono's trimming uses.
_SPACE = r"\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_WS = f"[{_SPACE}]*"
# What chrono 0.4.38 reads as a DateTime<Utc> (src/datetime/serde.rs: DateTime<FixedOffset>'s FromStr,
# then with_timezone(&Utc)), per src/format/parse.rs parse_rfc3339_relaxed and src/format/scan.rs:
# whitespace before every number, around "-" and ":" and at the end; a year of 1 to 4 digits, or a sign
# and any number of digits; 1 or 2 digits for month, day, hour, minute and second; "T", "t" or one
# space between date and time; any number of fraction digits (the first 9 count); then "UTC" in any
# case, "Z", "z", or a sign (+, - or U+2212 minus) with 2 digits of hours, any colons or whitespace,
# and 2 of minutes (00-59).
_CHRONO_TIME = re.compile(
    rf"{_WS}(?P<year>[+-][0-9]+|[0-9]{{1,4}}){_WS}-{_WS}(?P<month>[0-9]{{1,2}}){_WS}-{_WS}(?P<day>[0-9]{{1,2}})"
    rf"[Tt ]{_WS}(?P<hour>[0-9]{{1,2}}){_WS}:{_WS}(?P<minute>[0-9]{{1,2}}){_WS}:{_WS}(?P<second>[0-9]{{1,2}})"
    rf"(?:\.(?P<fraction>[0-9]+))?{_WS}"
    rf"(?:[Uu][Tt][Cc]|[Zz]|(?P<sign>[-+\u2212])(?P<offset_hours>[0-9]{{2}})[:{_SPACE}]*(?P<offset_minutes>[0-5][0-9]))"
    rf"{_WS}"
)
# chrono 0.4.38, src/naive/date/mod.rs: MIN_YEAR = (i32::MIN >> 13) + 1, MAX_YEAR = (i32::MAX >> 13) - 1.
_MIN_YEAR, _MAX_YEAR = -262143, 262142
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TIME_FIELDS = ("year", "month", "day", "hour", "minute", "second")

# bottlerocket-core-kit a10182f9, sources/updater/update_metadata/src/de.rs deserialize_migration: the
# first "(from, to)" found anywhere in the key (Regex::captures, not a whole-key match).
_MIGRATION_KEY = re.compile(r"\((?P<from_ver>[^ ,]+),[ ]*(?P<to_ver>[^ ,]+)\)")


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


def _checked(text: str) -> str:
    # serde_json refuses invalid UTF-8 and lone surrogate escapes in a string it reads as a field, but
    # not in a value it skips; parse_manifest decodes with surrogateescape, so both arrive here as
    # surrogates and are refused only where upstream refuses them.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{text!r} is not valid UTF-8") from None
    return text


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return _checked(value)


def _version(value: object) -> Version:
    if isinstance(value, Version):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a version string like 1.26.1, got {type(value).__name__}")
    return Version.parse(value)


def _chrono_time(value: object) -> datetime:
    """A wave's start time, read as chrono reads it (see _CHRONO_TIME), in UTC.

    Python keeps microseconds (chrono nanoseconds: the rest is cut), a leap second (:60, which chrono
    takes at any minute) is kept as :59.999999, and a time outside Python's years 1 to 9999 (chrono
    takes -262143 to 262142) becomes datetime.min or datetime.max: order against today holds.
    """
    match = _CHRONO_TIME.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"expected an RFC 3339 time like 2024-10-25T18:00:00Z, got {value!r}")
    year, month, day, hour, minute, second = (int(match[name]) for name in _TIME_FIELDS)
    offset = int(match["offset_hours"] or 0) * 3600 + int(match["offset_minutes"] or 0) * 60
    offset *= -1 if match["sign"] in ("-", "\u2212") else 1
    # chrono's Parsed setters and FixedOffset::east_opt (src/format/parsed.rs, src/offset/fixed.rs).
    if not (hour <= 23 and minute <= 59 and second <= 60 and abs(offset) < 86400 and 1 <= month <= 12):
        raise ValueError(f"{value!r} is out of range")
    if not _MIN_YEAR <= year <= _MAX_YEAR:
        raise ValueError(f"{value!r}: year out of range")
    try:
        seconds = _days_since_epoch(year, month, day) * 86400 + hour * 3600 + minute * 60 + min(second, 59) - offset
    except ValueError:
        raise ValueError(f"{value!r}: no such day") from None
    # The UTC time must fit chrono's range too (from_local_datetime: checked_sub_offset).
    if not _FIRST_SECOND <= seconds <= _LAST_SECOND:
        raise ValueError(f"{value!r} is out of range")
    microseconds = 999_999 if second == 60 else int((match["fraction"] or "")[:6].ljust(6, "0"))
    try:
        return _EPOCH + timedelta(seconds=seconds, microseconds=microseconds)
    except OverflowError:
        return (datetime.min if seconds < 0 else datetime.max).replace(tzinfo=UTC)


def _days_since_epoch(year: int, month: int, day: int) -> int:
    # The Gregorian calendar repeats every 400 years (146097 days): count in a year Python can hold.
    cycles, year_in_cycle = divmod(year, 400)
    return date(2000 + year_in_cycle, month, day).toordinal() - _EPOCH.toordinal() + (cycles - 5) * 146097


_FIRST_SECOND = _days_since_epoch(_MIN_YEAR, 1, 1) * 86400
_LAST_SECOND = _days_since_epoch(_MAX_YEAR, 12, 31) * 86400 + 86399


def _wave_key(key: str) -> int | None:
    # Rust's u32::from_str: an optional "+", then ASCII digits (leading zeros allowed), at most u32::MAX.
    digits = key.removeprefix("+")
    if not (digits.isascii() and digits.isdigit()):
        return None
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 10 and int(digits) <= MAX_WAVE_KEY else None


def _waves(value: object) -> dict[int, datetime]:
    """{"<first seed>": "<start time>"} -> {first seed: start time}, in key order, as update_metadata
    reads it (de.rs deserialize_bound: a bad key, a bad time or a key twice fails the whole manifest)."""
    if not isinstance(value, dict):
        raise ValueError("expected an object of seed -> start time")
    if repeated := _repeated(value):
        raise ValueError(f"seed {min(repeated)!r} appears twice")
    waves: dict[int, datetime] = {}
    for key, time in value.items():
        seed = _wave_key(key)
        if seed is None:
            raise ValueError(f"seed {key!r} is not a whole number from 0 to {MAX_WAVE_KEY}")
        if seed in waves:
            raise ValueError(f"seed {seed} appears twice")
        try:
            waves[seed] = _chrono_time(time)
        except ValueError as error:
            raise ValueError(f"seed {key}: {error}") from None
    return dict(sorted(waves.items()))


def _migrations(value: object) -> dict[tuple[Version, Version], tuple[str, ...]]:
    """{"(1.25.0, 1.26.0)": ["migrate_..."]} -> {(from, to): names}, as de.rs deserialize_migration reads it."""
    if not isinstance(value, dict):
        raise ValueError("expected an object of '(from, to)' -> list of migration names")
    if repeated := _repeated(value):
        raise ValueError(f"key {min(repeated)!r} appears twice")
    migrations: dict[tuple[Version, Version], tuple[str, ...]] = {}
    for key, names in value.items():
        match = _MIGRATION_KEY.search(_checked(key))
        if not match:
            raise ValueError(f"key {key!r} is not '(from, to)'")
        try:
            step = (Version.parse(match["from_ver"]), Version.parse(match["to_ver"]))
        except ValueError as error:
            raise ValueError(f"key {key!r}: {error}") from None
        if step in migrations:
            raise ValueError(f"key {key!r} repeats an earlier one")
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise ValueError(f"{key}: expected a list of migration names")
        migrations[step] = tuple(_checked(name) for name in names)
    return dict(sorted(migrations.items()))


Text = Annotated[str, PlainValidator(_text)]
SemVer = Annotated[Version, PlainValidator(_version), PlainSerializer(str)]
Waves = Annotated[dict[int, datetime], PlainValidator(_waves)]
Migrations = Annotated[dict[tuple[Version, Version], tuple[str, ...]], PlainValidator(_migrations)]


class _Strict(BaseModel):
    # extra="ignore": update_metadata's structs do not deny unknown fields, so a new one must not break us.
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _as_serde_reads_it(cls, value: Any) -> Any:
        fields = list(cls.model_fields)
        if isinstance(value, list):
            # serde_derive's visit_seq: serde_json also reads a struct from an array of its fields, in order.
            if len(value) != len(fields):
                raise ValueError(f"expected an object, or an array of the {len(fields)} fields {', '.join(fields)}")
            return dict(zip(fields, value, strict=True))
        if isinstance(value, dict):
            for key in value:
                _checked(key)  # serde_json reads every field name of a struct as a string
            for key in _repeated(value):
                if key in fields:  # serde_derive: "duplicate field"; a repeated unknown field is skipped
                    raise ValueError(f"field {key!r} appears twice")
        return value


class Images(_Strict):
    boot: Text
    root: Text
    hash: Text


class Update(_Strict):
    """One release of one variant and architecture, as the manifest lists it."""

    variant: Text
    arch: Text
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
    released_at: datetime | None  # start of the first wave; None if no wave holds any host back
    manifest_digest: str


class _JsonObject(dict[str, Any]):
    """A JSON object, and the keys it repeats: json.loads would silently keep the last one."""

    repeated: frozenset[str] = frozenset()


def _repeated(value: dict[str, Any]) -> frozenset[str]:
    return getattr(value, "repeated", frozenset())


def _json_object(pairs: list[tuple[str, Any]]) -> _JsonObject:
    document = _JsonObject(pairs)
    if len(document) < len(pairs):
        counts = Counter(key for key, _ in pairs)
        document.repeated = frozenset(key for key, count in counts.items() if count > 1)
    return document


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def parse_manifest(data: bytes) -> Manifest:
    """Parse manifest.json bytes. Raises MalformedManifest naming the field at fault."""
    try:
        # serde_json reads UTF-8 bytes only (no BOM, no UTF-16, which json.loads would guess), and does
        # not check the text of a string it skips (surrogateescape: see _checked). No field updog reads
        # is a number, so integers are read as floats: int() refuses more than 4300 digits.
        text = data.decode("utf-8", "surrogateescape")
        document = json.loads(text, object_pairs_hook=_json_object, parse_constant=_not_json, parse_int=float)
    except ValueError as error:  # includes JSONDecodeError
        raise MalformedManifest(f"manifest.json: not valid JSON: {error}") from error
    except RecursionError:
        raise MalformedManifest("manifest.json: not valid JSON: nested too deep") from None
    try:
        manifest = Manifest.model_validate(document)
    except ValidationError as error:
        raise MalformedManifest(f"manifest.json: {_first_problem(error)}") from error
    manifest._digest = hashlib.sha256(data).hexdigest()
    return manifest


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


def offered_updates(manifest: Manifest, variant: str, arch: str) -> list[Update]:
    """What a host of this variant and arch may pick when it ignores waves, newest first.

    bottlerocket-core-kit a10182f9, sources/updater/updog/src/main.rs applicable_updates: same variant
    and arch, version <= max_version, sorted by version descending (sort_unstable: entries of one
    version come in no set order upstream; here they keep the manifest's).
    """
    offered = [update for update in updates_for(manifest, variant, arch) if update.version <= update.max_version]
    return sorted(offered, key=lambda update: update.version, reverse=True)


def update_ready(update: Update, seed: int, now: datetime) -> bool:
    """Whether a host of this seed may take `update` at `now`: its wave has begun and so has its turn.

    bottlerocket-core-kit a10182f9, sources/updater/update_metadata/src/lib.rs Update::update_wave and
    update_ready, step by step (in nanoseconds, as chrono counts). A host's wave runs from
    the last key below its seed to the first key from its seed up to MAX_SEED: keys above MAX_SEED are
    never looked at. A seed below every key is offered at once, and so is an update without waves.
    """
    if not 0 <= seed <= MAX_SEED:
        # Upstream's BTreeMap::range(seed..=MAX_SEED) panics for such a seed; bork never draws one.
        raise ValueError(f"seed {seed} is not from 0 to {MAX_SEED}")
    before = [key for key in update.waves if key < seed]
    after = [key for key in update.waves if seed <= key <= MAX_SEED]
    if not after:  # the last wave, open-ended: ready once it starts (or no waves at all)
        return not before or update.waves[max(before)] <= now
    if not before:  # the "initial" wave, before the first key: offered at once
        return True
    start_seed, end_seed = max(before), min(after)
    start, end = update.waves[start_seed], update.waves[end_seed]
    if end <= now:
        return True
    if now < start:
        return False
    # The wave's time is shared out evenly between its seeds, but the host's turn is counted with its
    # whole seed, not its place in the wave: target = start + (end - start) / (end_seed - start_seed) * seed.
    per_seed = _chrono_div(_nanoseconds(end - start), end_seed - start_seed)
    return _nanoseconds(now - start) >= per_seed * seed


def _nanoseconds(duration: timedelta) -> int:
    return duration // timedelta(microseconds=1) * 1000


def _chrono_div(nanoseconds: int, divisor: int) -> int:
    """chrono 0.4.38's TimeDelta / i32 (src/time_delta.rs checked_div) for a divisor above 0: whole
    seconds and nanoseconds are divided apart, each rounded toward zero (so up to 1 ns short)."""

    def toward_zero(number: int) -> int:
        return number // divisor if number >= 0 else -(-number // divisor)

    seconds, nanos = divmod(nanoseconds, 10**9)  # as TimeDelta holds it: 0 <= nanos < 10**9
    carry = seconds - toward_zero(seconds) * divisor  # Rust's %: the sign of the dividend
    return toward_zero(seconds) * 10**9 + toward_zero(carry * 10**9) + nanos // divisor


def applicable_updates(
    manifest: Manifest, variant: str, arch: str, seed: int, now: datetime, *, ignore_waves: bool = False
) -> list[Update]:
    """What a host of this variant, arch and seed may pick at `now`, newest first (updog main.rs
    applicable_updates); `ignore_waves` as `settings.updates.ignore-waves` or `updog --now`."""
    offered = offered_updates(manifest, variant, arch)
    return [update for update in offered if ignore_waves or update_ready(update, seed, now)]


def update_required(
    manifest: Manifest,
    current: Version,
    variant: str,
    arch: str,
    seed: int,
    now: datetime,
    *,
    version_lock: str = "latest",
    ignore_waves: bool = False,
    force_version: Version | None = None,
) -> Update | None:
    """The update a host running `current` moves to, or None: updog main.rs update_required.

    `force_version` (`updog update -i`) takes that version if applicable. A version lock takes exactly
    the locked version, and nothing if the host runs it already. "latest" takes the newest update that
    is newer than `current`, or any update (newest first) whose max_version is below `current`: the
    step down off a withdrawn release. Raises ValueError for a version lock updog refuses.
    """
    updates = applicable_updates(manifest, variant, arch, seed, now, ignore_waves=ignore_waves)
    if force_version is not None:
        return next((update for update in updates if update.version == force_version), None)
    locked = locked_version(version_lock)
    if locked is not None:
        return None if locked == current else next((update for update in updates if update.version == locked), None)
    return next((update for update in updates if current < update.version or current > update.max_version), None)


def offered_releases(manifest: Manifest, variant: str, arch: str) -> list[Release]:
    """What a host of this variant and arch may pick, newest first (a host ignoring waves sees all)."""
    return [
        Release(update.variant, update.arch, update.version, release_time(update), manifest.digest)
        for update in offered_updates(manifest, variant, arch)
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
    """When the release started reaching hosts: the start of its first wave (the smallest key).

    Keys above MAX_SEED hold no host back (update_ready never looks at them), so they are left out:
    an update whose keys are all above MAX_SEED is offered at once, like one without waves (None).
    """
    seeds = [key for key in update.waves if key <= MAX_SEED]
    return update.waves[min(seeds)] if seeds else None
