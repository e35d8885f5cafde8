"""The ledger's layout: its key attributes, key prefixes, index, and the shape of every kind of item.

The adapters (updraft.adapters), the in-memory ports of the step tests, the simulation and the stack all read
it here, so the layout is spelled once. It is plain data and string building (no boto3, no AWS): the stack
imports it as it imports the config schema.

The ledger table, partition key `pk`, sort key `sk`:

    ROLLOUT#<rollout>  / META                     the rollout's record
    ROLLOUT#<rollout>  / WAVE#<wave:04d>#<host>   a host the plan put into a wave, with its write count
                                                  (`revision`): a wave is one Query
    ROLLOUT#<rollout>  / SKIPPED#<host>           a host the plan left out, and why
    ROLLOUT#<rollout>  / EVENT#<kind>[#<wave>...] the rollout's own events (waves, bakes, alarms, halt, pauses):
                                                  one item each, keyed by what it is, written once
    REQUEST#<rollout>  / META                     an operator's pause, resume and abort of a running rollout
    GROUP#<group>      / VERSION#<version>        how the group's last rollout to that version ended
    AUTO#<group>       / <version>                the execution that took that release for an automatic rollout
    CONTROL            / GLOBAL | GROUP#<group>   kill switches
    RELEASES#<variant>/<arch> / <version>         every verified release seen, and its announcements
    IDEMPOTENCY#<step> / ...                      the steps' results, kept for replays; they expire

Each partition key prefix has one kind of writer, and the stack grants writes by prefix (IAM's
`dynamodb:LeadingKeys`): operators alone write CONTROL and REQUEST#, the release detector alone RELEASES#, the
rollout's steps ROLLOUT#, GROUP# and AUTO#, each step only its own IDEMPOTENCY#<step>. So the detector, which
parses data from the network, cannot turn a kill switch off, and no step can pause, resume or abort a rollout.

The lock table holds one item per group (partition key `group`) while a rollout of the group runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from updraft.domain.host_record import HostRecord

# -- the ledger table's attributes and its index ----------------------------------------------------------
PK = "pk"
SK = "sk"
# Only rollout items carry `group_key`: the sparse index of a group's rollouts by start time (history,
# rollback window), newest last.
BY_GROUP = "by-group"
GROUP_KEY = "group_key"
STARTED_AT = "started_at"
# The time-to-live attribute: only the steps' replay records carry it; rollouts and hosts never expire.
EXPIRES = "expiration"
# On a host item: its write count when last written; each write expects the count it read.
REVISION = "revision"
# On a host item: when the settlement of a stopped execution wrote it last. No step writes it after that.
CLOSED = "closed_at"

# -- key prefixes ------------------------------------------------------------------------------------------
ROLLOUT = "ROLLOUT#"
META = "META"
WAVE = "WAVE#"
SKIPPED = "SKIPPED#"
EVENT = "EVENT#"
REQUEST = "REQUEST#"
GROUP = "GROUP#"
VERSION = "VERSION#"
AUTO = "AUTO#"
CONTROL = "CONTROL"
GLOBAL = "GLOBAL"
RELEASES = "RELEASES#"
IDEMPOTENCY = "IDEMPOTENCY#"

# -- the lock table ----------------------------------------------------------------------------------------
LOCK_KEY = "group"


# -- keys --------------------------------------------------------------------------------------------------
def rollout_pk(rollout_id: str) -> str:
    return f"{ROLLOUT}{rollout_id}"


def rollout_key(rollout_id: str) -> dict[str, str]:
    return {PK: rollout_pk(rollout_id), SK: META}


def wave_prefix(wave: int) -> str:
    return f"{WAVE}{wave:04d}#"


def host_key(rollout_id: str, wave: int, instance_id: str) -> dict[str, str]:
    return {PK: rollout_pk(rollout_id), SK: f"{wave_prefix(wave)}{instance_id}"}


def skipped_key(rollout_id: str, instance_id: str) -> dict[str, str]:
    return {PK: rollout_pk(rollout_id), SK: f"{SKIPPED}{instance_id}"}


def event_item_key(rollout_id: str, key: str) -> dict[str, str]:
    return {PK: rollout_pk(rollout_id), SK: f"{EVENT}{key}"}


def group_outcome_key(group: str, version: str) -> dict[str, str]:
    return {PK: f"{GROUP}{group}", SK: f"{VERSION}{version}"}


def automatic_claim_key(group: str, version: str) -> dict[str, str]:
    return {PK: f"{AUTO}{group}", SK: version}


def request_key(rollout_id: str) -> dict[str, str]:
    """Where an operator's requests on a running rollout are kept, beside (not in) its record."""
    return {PK: f"{REQUEST}{rollout_id}", SK: META}


def switch_sk(group: str | None) -> str:
    """A kill switch's sort key: the group's, or the global one (None)."""
    return f"{GROUP}{group}" if group else GLOBAL


def switch_key(group: str | None) -> dict[str, str]:
    return {PK: CONTROL, SK: switch_sk(group)}


def releases_pk(variant: str, arch: str) -> str:
    return f"{RELEASES}{variant}/{arch}"


def release_key(variant: str, arch: str, version: str) -> dict[str, str]:
    return {PK: releases_pk(variant, arch), SK: version}


def idempotency_pk(step: str) -> str:
    return f"{IDEMPOTENCY}{step}"


# -- items -------------------------------------------------------------------------------------------------
def rollout_item(fields: dict[str, Any]) -> dict[str, Any]:
    """A new rollout's item: its record's fields, keyed, and indexed by its group."""
    return {**rollout_key(fields["rollout_id"]), GROUP_KEY: fields["group"], **fields}


def host_item(record: HostRecord, revision: int) -> dict[str, Any]:
    item = record.model_dump(mode="json", exclude_none=True) | {REVISION: revision}
    return {**host_key(record.rollout_id, record.wave, record.instance_id), **item}


def skipped_item(rollout_id: str, host: dict[str, Any]) -> dict[str, Any]:
    return {**skipped_key(rollout_id, host["instance_id"]), **host}


def event_item(rollout_id: str, key: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {**event_item_key(rollout_id, key), **fields}


def group_outcome_item(group: str, version: str, outcome: str, rollout_id: str, now: str) -> dict[str, Any]:
    return {**group_outcome_key(group, version), "outcome": outcome, "rollout_id": rollout_id, "finished_at": now}


def automatic_claim_item(group: str, version: str, execution_id: str, now: str) -> dict[str, Any]:
    return {**automatic_claim_key(group, version), "holder": execution_id, "claimed_at": now}


def request_item(rollout_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {**request_key(rollout_id), **fields}


# The fields of a request item, merged into the rollout's record when it is read.
REQUEST_FIELDS = ("paused", "pause", "resumed", "abort_requested")


def switch_item(group: str | None, reason: str, by: str, now: str) -> dict[str, Any]:
    return {**switch_key(group), "engaged": True, "reason": reason, "by": by, "at": now}


def release_item(variant: str, arch: str, version: str) -> dict[str, Any]:
    return {**release_key(variant, arch, version), "variant": variant, "arch": arch, "version": version}


def lock_item(group: str, execution_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The lock table's item while an execution holds the group's lock."""
    return {LOCK_KEY: group, "holder": execution_id, **fields}
