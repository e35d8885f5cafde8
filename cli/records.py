"""Reads of the lock table and the ledger: the group's running rollout, a rollout's waves, its history."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key

from cli.deployment import Deployment
from cli.errors import NotFound
from cli.output import plain
from updraft.adapters.aws import RETRIES
from updraft.adapters.control import ENDED
from updraft.adapters.ledger import Ledger
from updraft.errors import RolloutNotFound
from updraft.ledger_schema import PK, SK, SKIPPED, WAVE, automatic_claim_key, rollout_pk

# Fields kept as JSON strings in the rollout item, shown decoded.
JSON_FIELDS = ("policy", "wave_results")
HISTORY_FIELDS = (
    "rollout_id",
    "target_version",
    "rollback_of",
    "status",
    "requested_by",
    "started_at",
    "finished_at",
    "summary",
)
# What `recorded_hosts` reads of each host item: where the host stands and the versions its record names.
RECORDED_FIELDS = (SK, "instance_id", "az", "wave", "state", "previous_version", "target_version", "version", "failure")


class Records:
    def __init__(self, deployment: Deployment) -> None:
        self.ledger = Ledger(deployment.ledger_table)
        self.locks = boto3.resource("dynamodb", config=RETRIES).Table(deployment.lock_table)

    def lock(self, group: str) -> dict[str, Any] | None:
        return self.locks.get_item(Key={"group": group}, ConsistentRead=True).get("Item")

    def running(self, group: str) -> dict[str, Any] | None:
        """The group's running rollout: the lock's holder, unless the ledger says it already ended."""
        lock = self.lock(group)
        if lock is None or "rollout_id" not in lock:
            return None
        try:
            meta = self.ledger.rollout(lock["rollout_id"])
        except RolloutNotFound:
            return None  # the lock is taken and the rollout item not yet written: nothing to act on yet
        return None if meta.get("status") in ENDED else meta

    def running_id(self, group: str) -> str:
        meta = self.running(group)
        if meta is None:
            raise NotFound(f"no rollout of group {group!r} is running")
        return meta["rollout_id"]

    def rollout(self, rollout_id: str) -> dict[str, Any]:
        try:
            return decoded(self.ledger.rollout(rollout_id))
        except RolloutNotFound:
            raise NotFound(f"no rollout {rollout_id!r} in the ledger") from None

    def history(self, group: str, limit: int) -> list[dict[str, Any]]:
        return self.ledger.group_rollouts(group, newest=limit)

    def recorded_hosts(self, rollout_id: str) -> list[dict[str, Any]]:
        """Every host the rollout recorded, planned (`WAVE#`) or skipped at planning (`SKIPPED#`), only the fields
        of RECORDED_FIELDS: one paged Query of the rollout's partition, not one per kind of item."""
        names = {f"#f{i}": name for i, name in enumerate(RECORDED_FIELDS)}
        condition = Key(PK).eq(rollout_pk(rollout_id))
        items, start = [], None
        while True:
            extra = {"ExclusiveStartKey": start} if start else {}
            page = self.ledger.table.query(
                KeyConditionExpression=condition,
                ProjectionExpression=", ".join(names),
                ExpressionAttributeNames=names,
                ConsistentRead=True,
                **extra,
            )
            items += [item for item in page["Items"] if item[SK].startswith((WAVE, SKIPPED))]
            start = page.get("LastEvaluatedKey")
            if not start:
                return items

    def automatic_claim(self, group: str, version: str) -> dict[str, Any] | None:
        """The execution that took `version` as the group's automatic rollout, if one did (one per version)."""
        item = self.ledger.table.get_item(Key=automatic_claim_key(group, version), ConsistentRead=True)
        return item.get("Item")

    def status(self, rollout_id: str) -> dict[str, Any]:
        """The rollout item, its hosts grouped by wave and its skipped hosts."""
        meta = self.rollout(rollout_id)
        hosts = [host.model_dump(mode="json") for host in self.ledger.all_hosts(rollout_id)]
        skipped = self.ledger.skipped_hosts(rollout_id)
        return {
            "rollout": meta,
            "running": meta.get("status") not in ENDED,
            "waves": waves(meta, hosts),
            "skipped": [_pick(item, ("instance_id", "az", "note")) for item in skipped],
        }

    def timeline(self, rollout_id: str, now: str) -> dict[str, Any]:
        """What the rollout's report draws: its record, every host with its history, the hosts left out at
        planning, and its own events (`now` ends the spans of a rollout still running)."""
        meta = self.rollout(rollout_id)
        return plain(
            {
                "rollout": _pick(meta, TIMELINE_FIELDS),
                "hosts": [
                    host.model_dump(mode="json", include=set(TIMELINE_HOST))
                    for host in self.ledger.all_hosts(rollout_id)
                ],
                "skipped": [
                    _pick(item, ("instance_id", "az", "note")) for item in self.ledger.skipped_hosts(rollout_id)
                ],
                "events": [_pick(item, ("kind", "at", "wave", "detail")) for item in self.ledger.events(rollout_id)],
                "now": meta.get("finished_at") or now,
            }
        )


def decoded(meta: dict[str, Any]) -> dict[str, Any]:
    item = {k: v for k, v in meta.items() if k not in ("pk", "sk", "group_key")}
    for field in JSON_FIELDS:
        if isinstance(item.get(field), str):
            item[field] = json.loads(item[field])
    return item


def waves(meta: dict[str, Any], hosts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per wave: its size, the count of hosts in each state, its gate result and its hosts."""
    by_wave: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for host in hosts:
        by_wave[int(host["wave"])].append(host)
    results = meta.get("wave_results") or {}
    sizes = [int(size) for size in meta.get("wave_sizes") or []]
    return [
        {
            "wave": index,
            "size": size,
            "states": dict(sorted(Counter(h["state"] for h in by_wave[index]).items())),
            "result": results.get(str(index)),
            "hosts": [_pick(h, HOST_FIELDS) for h in sorted(by_wave[index], key=lambda h: h["instance_id"])],
        }
        for index, size in enumerate(sizes)
    ]


TIMELINE_FIELDS = (*HISTORY_FIELDS, "group", "halt_reason", "error", "wave_sizes")
TIMELINE_HOST = (
    "instance_id",
    "az",
    "wave",
    "state",
    "previous_version",
    "target_version",
    "failure",
    "note",
    "history",
)
HOST_FIELDS = ("instance_id", "az", "state", "previous_version", "target_version", "failure", "note", "updated_at")


def _pick(item: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {field: item[field] for field in fields if field in item}


def history_row(item: dict[str, Any]) -> dict[str, Any]:
    return _pick(item, HISTORY_FIELDS)
