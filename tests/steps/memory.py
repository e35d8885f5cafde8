"""In-memory implementations of the rollout's ports (updraft.ports), for testing the steps without AWS.

Each keeps what DynamoDB would keep, with its conditions (a host write expects the revision it read, a
closed rollout takes no host write, a rollout's end is recorded once, a lock has one holder) and its value
types (numbers come back as Decimal, as boto3 returns them). tests/steps/test_contract.py runs the same
checks against these and against the DynamoDB adapters on moto, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from updraft.adapters.control import ENDED
from updraft.adapters.lock import LockState
from updraft.adapters.releases import STALE_CLAIM
from updraft.config import AlarmGate
from updraft.domain.host_record import HostRecord
from updraft.domain.lifecycle import LifecycleDetail
from updraft.errors import AlarmNotFound, RolloutNotFound
from updraft.ledger_schema import (
    CLOSED,
    CONTROL,
    EVENT,
    GLOBAL,
    GROUP_KEY,
    META,
    PK,
    REQUEST_FIELDS,
    REVISION,
    SK,
    SKIPPED,
    STARTED_AT,
    WAVE,
    automatic_claim_item,
    automatic_claim_key,
    event_item,
    group_outcome_item,
    group_outcome_key,
    host_item,
    host_key,
    lock_item,
    release_item,
    release_key,
    releases_pk,
    request_key,
    rollout_item,
    rollout_key,
    rollout_pk,
    skipped_item,
    switch_item,
    switch_key,
    switch_sk,
    wave_prefix,
)
from updraft.ports import Ports

_SERIALIZE, _DESERIALIZE = TypeSerializer(), TypeDeserializer()


def _stored(item: dict[str, Any]) -> dict[str, Any]:
    """The item as DynamoDB keeps and returns it (ints become Decimal; floats are refused, as boto3 does)."""
    return {key: _DESERIALIZE.deserialize(_SERIALIZE.serialize(value)) for key, value in item.items()}


def _refused(operation: str) -> ClientError:
    error = {"Code": "ConditionalCheckFailedException", "Message": "The conditional request failed"}
    return ClientError({"Error": error}, operation)


@dataclass
class Table:
    """A DynamoDB table's items by (partition key, sort key)."""

    items: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def get(self, key: dict[str, str]) -> dict[str, Any] | None:
        item = self.items.get((key[PK], key[SK]))
        return _stored(item) if item is not None else None

    def put(self, item: dict[str, Any]) -> None:
        self.items[(item[PK], item[SK])] = _stored(item)

    def update(self, key: dict[str, str], fields: dict[str, Any]) -> None:
        self.items[(key[PK], key[SK])] = {**self.items[(key[PK], key[SK])], **_stored(fields)}

    def delete(self, key: dict[str, str]) -> None:
        self.items.pop((key[PK], key[SK]), None)

    def query(self, pk: str, prefix: str = "") -> list[dict[str, Any]]:
        found = [item for (p, s), item in self.items.items() if p == pk and s.startswith(prefix)]
        return [_stored(item) for item in sorted(found, key=lambda item: item[SK])]


class MemoryLedger:
    def __init__(self, table: Table) -> None:
        self.table = table

    # -- rollouts ----------------------------------------------------------------------------------------
    def create_rollout(self, rollout: dict[str, Any]) -> None:
        if self.table.get(rollout_key(rollout["rollout_id"])) is None:
            self.table.put(rollout_item(rollout))

    def rollout(self, rollout_id: str) -> dict[str, Any]:
        item = self.table.get(rollout_key(rollout_id))
        if item is None:
            raise RolloutNotFound(rollout_id)
        requests = self.table.get(request_key(rollout_id)) or {}
        return item | {name: requests[name] for name in REQUEST_FIELDS if name in requests}

    def update_rollout(self, rollout_id: str, **fields: Any) -> None:
        if self.table.get(rollout_key(rollout_id)) is None:
            raise _refused("UpdateItem")
        self.table.update(rollout_key(rollout_id), fields)

    def close_rollout(self, rollout_id: str, **fields: Any) -> bool:
        item = self.table.get(rollout_key(rollout_id))
        if item is None or "finished_at" in item:
            return False
        self.table.update(rollout_key(rollout_id), fields)
        return True

    def group_rollouts(self, group: str, newest: int = 20) -> list[dict[str, Any]]:
        # The by-group index holds the items that have both its keys, sorted by its sort key.
        indexed = [
            _stored(item)
            for (_, sk), item in self.table.items.items()
            if sk == META and item.get(GROUP_KEY) == group and STARTED_AT in item
        ]
        return sorted(indexed, key=lambda item: item[STARTED_AT], reverse=True)[:newest]

    # -- groups --------------------------------------------------------------------------------------------
    def record_group_outcome(self, group: str, version: str, outcome: str, rollout_id: str, now: str) -> None:
        self.table.put(group_outcome_item(group, version, outcome, rollout_id, now))

    def group_outcome(self, group: str, version: str) -> str | None:
        return (self.table.get(group_outcome_key(group, version)) or {}).get("outcome")

    def claim_automatic(self, group: str, version: str, execution_id: str, now: str) -> bool:
        claim = self.table.get(automatic_claim_key(group, version))
        if claim is not None and claim["holder"] != execution_id:
            return False
        self.table.put(automatic_claim_item(group, version, execution_id, now))
        return True

    # -- hosts -------------------------------------------------------------------------------------------
    def put_planned(self, records: list[HostRecord]) -> None:
        for record in records:
            self.table.put(host_item(record, record.revision + 1))

    def put_hosts(self, records: list[HostRecord], closing_at: str | None = None) -> list[HostRecord]:
        written = []
        for record in records:
            item = host_item(record, record.revision + 1)
            current = self.table.get(item)
            read = int(current[REVISION]) if current and REVISION in current else 0
            if read != record.revision or (current and CLOSED in current and not closing_at):
                continue  # another run wrote the host since it was read, or the rollout was closed
            self.table.put({**item, CLOSED: closing_at} if closing_at else item)
            written.append(record.model_copy(update={"revision": record.revision + 1}))
        return written

    def host(self, rollout_id: str, wave: int, instance_id: str) -> HostRecord | None:
        item = self.table.get(host_key(rollout_id, wave, instance_id))
        return HostRecord.model_validate(item) if item else None

    def put_skipped(self, rollout_id: str, skipped: list[dict[str, str]]) -> None:
        for host in skipped:
            self.table.put(skipped_item(rollout_id, host))

    def wave_hosts(self, rollout_id: str, wave: int) -> list[HostRecord]:
        items = self.table.query(rollout_pk(rollout_id), wave_prefix(wave))
        return [HostRecord.model_validate(item) for item in items]

    def all_hosts(self, rollout_id: str) -> list[HostRecord]:
        return [HostRecord.model_validate(item) for item in self.table.query(rollout_pk(rollout_id), WAVE)]

    def skipped_hosts(self, rollout_id: str) -> list[dict[str, Any]]:
        return self.table.query(rollout_pk(rollout_id), SKIPPED)

    # -- the rollout's own events --------------------------------------------------------------------------
    def record_event(self, rollout_id: str, key: str, fields: dict[str, Any]) -> bool:
        item = event_item(rollout_id, key, fields)
        if self.table.get(item) is not None:
            return False
        self.table.put(item)
        return True

    def events(self, rollout_id: str) -> list[dict[str, Any]]:
        return self.table.query(rollout_pk(rollout_id), EVENT)


class MemoryLocks:
    """One holder per group; a holder whose execution no longer runs may be taken over."""

    def __init__(self, running: Callable[[str], bool]) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.running = running

    def acquire(self, group: str, execution_id: str, item: dict) -> LockState:
        holder = self.items.get(group, {}).get("holder")
        if holder and holder != execution_id and self.running(holder):
            return LockState(False, holder)
        if holder != execution_id:
            self.items[group] = _stored(lock_item(group, execution_id, item))
        return LockState(True, execution_id)

    def held(self) -> list[dict]:
        return [_stored(item) for item in self.items.values()]

    def release(self, group: str, holder: str) -> bool:
        if self.items.get(group, {}).get("holder") != holder:
            return False
        del self.items[group]
        return True


class MemoryControls:
    """Kill switches and requests, kept in the ledger's table as the DynamoDB adapter keeps them."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def engage(self, group: str | None, reason: str, by: str, now: str) -> None:
        self.table.put(switch_item(group, reason, by, now))

    def release(self, group: str | None) -> None:
        self.table.delete(switch_key(group))

    def switches(self) -> list[dict[str, Any]]:
        return self.table.query(CONTROL)

    def kill_switch_for(self, group: str) -> dict[str, Any] | None:
        engaged = {item[SK]: item for item in self.switches() if item.get("engaged")}
        return engaged.get(GLOBAL) or engaged.get(switch_sk(group))

    def pause(self, rollout_id: str, reason: str, by: str, now: str) -> None:
        self._request(rollout_id, paused=True, pause={"reason": reason, "by": by, "at": now})

    def resume(self, rollout_id: str, by: str, now: str) -> None:
        self._request(rollout_id, paused=False, resumed={"by": by, "at": now})

    def abort(self, rollout_id: str, reason: str, by: str, now: str) -> None:
        self._request(rollout_id, abort_requested={"reason": reason, "by": by, "at": now})

    def _request(self, rollout_id: str, **fields: Any) -> None:
        item = self.table.get(rollout_key(rollout_id))
        if item is None or item.get("status") in ENDED:
            raise RolloutNotFound(f"{rollout_id}: no such rollout is running")
        if self.table.get(request_key(rollout_id)) is None:
            self.table.put(request_key(rollout_id))
        self.table.update(request_key(rollout_id), fields)


class MemoryReleases:
    def __init__(self, table: Table) -> None:
        self.table = table

    def record(self, variant: str, arch: str, version: str, fields: dict[str, Any]) -> None:
        if self.table.get(release_key(variant, arch, version)) is None:
            self.table.put(release_item(variant, arch, version) | fields)

    def claim(self, variant: str, arch: str, version: str, kind: str, now: datetime) -> bool:
        item = self.table.get(release_key(variant, arch, version)) or {}
        claimed = item.get(f"claimed_{kind}")
        if f"announced_{kind}" in item or (claimed is not None and claimed >= (now - STALE_CLAIM).isoformat()):
            return False
        self._set(variant, arch, version, {f"claimed_{kind}": now.isoformat()})
        return True

    def mark_sent(self, variant: str, arch: str, version: str, kind: str, now: datetime) -> None:
        self._set(variant, arch, version, {f"announced_{kind}": now.isoformat()})

    def _set(self, variant: str, arch: str, version: str, fields: dict[str, Any]) -> None:
        key = release_key(variant, arch, version)
        self.table.put({**(self.table.get(key) or key), **fields})

    def withdrawn(self, variant: str, arch: str, version: str) -> bool:
        return "announced_withdrawn" in (self.table.get(release_key(variant, arch, version)) or {})

    def release(self, variant: str, arch: str, version: str) -> dict[str, Any] | None:
        return self.table.get(release_key(variant, arch, version))

    def releases(self, variant: str, arch: str) -> list[dict[str, Any]]:
        return self.table.query(releases_pk(variant, arch))


@dataclass
class MemoryEvents:
    published: list[LifecycleDetail] = field(default_factory=list)

    def publish(self, details: list[LifecycleDetail]) -> int:
        self.published.extend(details)
        return 0

    def kinds(self) -> list[str]:
        return [str(detail.kind) for detail in self.published]


@dataclass
class MemoryAlarms:
    """Alarms by name and their state (OK, ALARM, INSUFFICIENT_DATA)."""

    states: dict[str, str] = field(default_factory=dict)

    def _watched(self, gate: AlarmGate) -> list[str]:
        return [
            name
            for name in self.states
            if name in gate.names or any(name.startswith(prefix) for prefix in gate.prefixes)
        ]

    def firing(self, gate: AlarmGate) -> list[str]:
        return sorted(name for name in self._watched(gate) if self.states[name] == "ALARM")

    def check_exist(self, gate: AlarmGate) -> None:
        missing = [name for name in gate.names if name not in self.states]
        missing += [f"{p}*" for p in gate.prefixes if not any(name.startswith(p) for name in self.states)]
        if missing:
            raise AlarmNotFound(f"the group's alarm gate watches alarms that do not exist: {', '.join(missing)}")


@dataclass
class Memory:
    """Every port in memory, sharing one ledger table as the DynamoDB ones do."""

    table: Table = field(default_factory=Table)
    running: set[str] = field(default_factory=set)  # executions still running (for taking a lock over)
    events: MemoryEvents = field(default_factory=MemoryEvents)
    alarms: MemoryAlarms = field(default_factory=MemoryAlarms)

    def __post_init__(self) -> None:
        self.ledger = MemoryLedger(self.table)
        self.locks = MemoryLocks(lambda execution: execution in self.running)
        self.controls = MemoryControls(self.table)
        self.releases = MemoryReleases(self.table)

    def ports(self) -> Ports:
        return Ports(self.ledger, self.locks, self.controls, self.releases, self.events, self.alarms)
