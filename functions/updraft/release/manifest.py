"""Bottlerocket's manifest.json, read as a host reads it; the rules a host follows to pick a release from it are
updraft.release.selection, its versions updraft.release.version.

The manifest is a TUF target: only parse bytes that `verify_repository` returned. It is read the way
Bottlerocket's updater reads it (update_metadata's serde types through serde_json) and releases are
picked the way updog picks them, so that a manifest hosts accept is never refused here, nor the
reverse. A manifest it refuses raises MalformedManifest naming the field.

Upstream facts cite bottlerocket-core-kit at a10182f9 and the crates its sources/Cargo.lock pins:
chrono 0.4.38, semver 1.0.23, serde_json 1.0.128, serde_derive 1.0.210, bottlerocket-modeled-types 0.6.0.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
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
from updraft.release.version import Version

# The seed a host draws is 0..MAX_SEED-1, and waves cover seeds up to MAX_SEED:
# bottlerocket-core-kit a10182f9, sources/api/bork/src/main.rs generate_seed: gen_range(0..2048);
# sources/updater/update_metadata/src/lib.rs: MAX_SEED = 2048, the end of update_wave's seed range.
MAX_SEED = 2048
# A wave's key is any u32, MAX_SEED or not: bottlerocket-core-kit a10182f9,
# sources/updater/update_metadata/src/de.rs deserialize_bound: key.parse::<u32>().
MAX_WAVE_KEY = 2**32 - 1
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
