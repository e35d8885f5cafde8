"""The rules a host follows to pick a release from a parsed manifest, as updog picks them: which updates it is
offered, when its wave lets it take one, which one it moves to, and when a release counts as withdrawn.

Upstream facts cite bottlerocket-core-kit at a10182f9 and chrono 0.4.38, as updraft.release.manifest does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from updraft.release.manifest import MAX_SEED, Manifest, Update
from updraft.release.version import Version, locked_version

# EC2 and SSM say arm64; Bottlerocket's repository paths and manifest say aarch64.
_REPOSITORY_ARCH = {"x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}


@dataclass(frozen=True)
class Release:
    variant: str
    arch: str
    version: Version
    released_at: datetime | None  # start of the first wave; None if no wave holds any host back
    manifest_digest: str


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
