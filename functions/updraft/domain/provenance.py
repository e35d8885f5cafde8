"""Whether a release announcement is a fact the detector established, or only an event's word.

The release ledger's records (`RELEASES#<variant>/<arch>`) are written by the detector alone, after it verified
the repository's signed metadata (the stack grants that partition to no other function). An announcement on
the release bus moves a fleet only when such a record vouches for it; the release time a rollout soaks from
is the record's, never the event's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

# What the detector writes when it first verifies a release (updraft.detection.check_repository).
VERIFIED_FIELDS = ("manifest_digest", "first_seen_at", "released_at")
# What it writes before (claimed) and after (announced) sending a withdrawal.
WITHDRAWAL_FIELDS = ("claimed_withdrawn", "announced_withdrawn")


def unverified_release(record: dict[str, Any] | None, version: str, released_at: datetime | None) -> str | None:
    """Why the announcement of `version` is not the detector's, or None when its record vouches for it."""
    if record is None:
        return f"{version} is not in the release ledger: the detector never verified it"
    missing = [name for name in VERIFIED_FIELDS if not record.get(name)]
    if missing:
        return f"{version}'s release record lacks {', '.join(missing)}: it is not the detector's"
    if released_at is not None and verified_release_time(record) != released_at:
        return (
            f"{version} was released at {record['released_at']} by the detector's record, not {released_at.isoformat()}"
        )
    return None


def unverified_withdrawal(record: dict[str, Any] | None, version: str) -> str | None:
    """Why a withdrawal of `version` is not the detector's, or None when the detector withdrew it."""
    if record is None:
        return f"{version} is not in the release ledger: the detector never verified it"
    if not any(record.get(name) for name in WITHDRAWAL_FIELDS):
        return f"the detector has not withdrawn {version}"
    return None


def verified_release_time(record: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(record["released_at"])
