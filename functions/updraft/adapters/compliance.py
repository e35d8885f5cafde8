"""SSM custom compliance: each host's Bottlerocket currency (updraft.domain.compliance), reported as the ledger
records it, so that SSM Compliance, AWS Config and Security Hub show it without Updraft.

`ComplianceReportingLedger` wraps the rollout ledger: every method goes to the ledger, and after the writes that
matter the hosts written are reported, one PutComplianceItems call per instance (the API takes one ResourceId):
- `put_planned`: every planned host, NON_COMPLIANT (it runs its previous version);
- `put_hosts`: the records written that reached a final state in that write;
- `put_skipped`: the hosts the plan left out (an offline one with its version unknown).
A host whose item would say what its last one said is not sent again: the settlement's closing rewrite of hosts
already final costs no call. The ledger is the record and compliance its projection: a call that fails after
botocore's retries is logged and counted (metric `ComplianceNotReported`), and the step goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from updraft.adapters.aws import client
from updraft.domain.compliance import ComplianceItem, host_item, skipped_item
from updraft.domain.host_record import HostRecord
from updraft.errors import RolloutNotFound
from updraft.ports import RolloutLedger

LOG = logging.getLogger(__name__)
NAMESPACE, SERVICE = "Updraft", "updraft"  # as the handlers' Powertools metrics
NOT_REPORTED = "ComplianceNotReported"
# The calls one step may make (a ledger, and so its decorator, is built per step). They go one at a time, about
# 35 ms each: a thousand take about 35 s, well inside the shortest step's minute with its ledger writes. Beyond
# that (a plan of more than a thousand hosts), the rest are counted as not reported, and the step goes on.
CALLS_PER_STEP = 1000


def put_item(item: ComplianceItem) -> None:
    client("ssm").put_compliance_items(**item.request())


class ComplianceReportingLedger:
    """A `RolloutLedger` that reports each host's compliance after writing it (see the module docstring)."""

    def __init__(
        self,
        ledger: RolloutLedger,
        put: Callable[[ComplianceItem], None] = put_item,
        calls_per_step: int = CALLS_PER_STEP,
    ) -> None:
        self._ledger = ledger
        self._put = put
        self._calls_left = calls_per_step
        self._rollouts: dict[str, dict[str, Any]] = {}  # as read by this step
        self._said: dict[tuple[str, str], str] = {}  # (rollout, instance) -> content hash of its last item
        self._read: dict[tuple[str, str], HostRecord] = {}  # hosts read in a final state, not compared yet

    # -- rollouts: delegated; a rollout read is kept for the items' target, group and time ----------------------
    def create_rollout(self, rollout: dict[str, Any]) -> None:
        self._ledger.create_rollout(rollout)

    def rollout(self, rollout_id: str) -> dict[str, Any]:
        item = self._ledger.rollout(rollout_id)
        self._rollouts[rollout_id] = item
        return item

    def update_rollout(self, rollout_id: str, **fields: Any) -> None:
        self._ledger.update_rollout(rollout_id, **fields)

    def close_rollout(self, rollout_id: str, **fields: Any) -> bool:
        return self._ledger.close_rollout(rollout_id, **fields)

    def record_event(self, rollout_id: str, key: str, fields: dict[str, Any]) -> bool:
        return self._ledger.record_event(rollout_id, key, fields)

    def events(self, rollout_id: str) -> list[dict[str, Any]]:
        return self._ledger.events(rollout_id)

    def group_rollouts(self, group: str, newest: int = 20) -> list[dict[str, Any]]:
        return self._ledger.group_rollouts(group, newest)

    def record_group_outcome(self, group: str, version: str, outcome: str, rollout_id: str, now: str) -> None:
        self._ledger.record_group_outcome(group, version, outcome, rollout_id, now)

    def group_outcome(self, group: str, version: str) -> str | None:
        return self._ledger.group_outcome(group, version)

    def claim_automatic(self, group: str, version: str, execution_id: str, now: str) -> bool:
        return self._ledger.claim_automatic(group, version, execution_id, now)

    # -- hosts: written, then reported ----------------------------------------------------------------------------
    def put_planned(self, records: list[HostRecord]) -> None:
        self._ledger.put_planned(records)
        for rollout_id, members in _by_rollout(records).items():
            self._report(rollout_id, [self._host_item(record) for record in members])

    def put_hosts(self, records: list[HostRecord], closing_at: str | None = None) -> list[HostRecord]:
        written = self._ledger.put_hosts(records, closing_at)
        for rollout_id, members in _by_rollout([record for record in written if record.final]).items():
            self._report(rollout_id, [self._host_item(record) for record in members])
        return written

    def put_skipped(self, rollout_id: str, skipped: list[dict[str, str]]) -> None:
        self._ledger.put_skipped(rollout_id, skipped)
        if not skipped:
            return
        # The inventory's own skips (offline hosts) say neither the target nor when: the rollout's record does.
        rollout = self._rollout(rollout_id)
        target, started = str(rollout.get("target_version", "")), _time(rollout.get("started_at"))
        if not (target and started):
            LOG.warning("rollout %s has no target or start recorded: its skipped hosts are not reported", rollout_id)
            return
        self._report(rollout_id, [skipped_item(rollout_id, host, target, started) for host in skipped])

    # -- hosts: read, and what their items say remembered --------------------------------------------------------
    def host(self, rollout_id: str, wave: int, instance_id: str) -> HostRecord | None:
        found = self._ledger.host(rollout_id, wave, instance_id)
        self._remember([found] if found else [])
        return found

    def wave_hosts(self, rollout_id: str, wave: int) -> list[HostRecord]:
        return self._remember(self._ledger.wave_hosts(rollout_id, wave))

    def all_hosts(self, rollout_id: str) -> list[HostRecord]:
        return self._remember(self._ledger.all_hosts(rollout_id))

    def skipped_hosts(self, rollout_id: str) -> list[dict[str, Any]]:
        return self._ledger.skipped_hosts(rollout_id)

    # -- reporting ------------------------------------------------------------------------------------------------
    def _remember(self, records: list[HostRecord]) -> list[HostRecord]:
        """A host read in a final state was reported when it reached it: the same item is not sent again."""
        self._read.update({(r.rollout_id, r.instance_id): r for r in records if r.final})
        return records

    def _last_said(self, rollout_id: str, instance_id: str) -> str | None:
        """The content hash of the host's last item: sent by this step, or implied by its final state as read."""
        key = (rollout_id, instance_id)
        if key not in self._said and key in self._read:
            self._said[key] = self._host_item(self._read.pop(key)).content_hash
        return self._said.get(key)

    def _host_item(self, record: HostRecord) -> ComplianceItem:
        # Every record a step writes carries the step's clock (`updated_at`); the rollout's start stands in else.
        started = _time(self._rollouts.get(record.rollout_id, {}).get("started_at"))
        return host_item(record, started or _EPOCH)

    def _rollout(self, rollout_id: str) -> dict[str, Any]:
        if rollout_id not in self._rollouts:
            try:
                self.rollout(rollout_id)
            except RolloutNotFound:
                self._rollouts[rollout_id] = {}
        return self._rollouts[rollout_id]

    def _report(self, rollout_id: str, items: list[ComplianceItem]) -> None:
        """Send each item that says something new, within the step's calls; log and count what is not sent."""
        fresh = [item for item in items if self._last_said(rollout_id, item.instance_id) != item.content_hash]
        failed: dict[str, str] = {}
        for item in fresh:
            if self._calls_left <= 0:
                failed[item.instance_id] = f"more than {CALLS_PER_STEP} reports in one step"
                continue
            self._calls_left -= 1
            try:
                self._put(item)
            except Exception as error:  # a projection's failure, whatever it is, never fails the step
                failed[item.instance_id] = _why(error)
                continue
            self._said[(rollout_id, item.instance_id)] = item.content_hash
        if failed:
            self._not_reported(rollout_id, failed)

    def _not_reported(self, rollout_id: str, failed: dict[str, str]) -> None:
        first = next(iter(failed.items()))
        LOG.warning(
            "compliance not reported to SSM for %d host(s) (the ledger has them): %s: %s%s",
            len(failed),
            *first,
            f" and {len(failed) - 1} more" if len(failed) > 1 else "",
            extra={"rollout_id": rollout_id, "instances": sorted(failed)[:50]},
        )
        if is_metrics_disabled():
            return
        group = str(self._rollouts.get(rollout_id, {}).get("group", ""))
        dimensions = {"service": SERVICE, **({"group": group} if group else {})}
        # Its own EMF record, flushed now: not every step flushes the handler's metric set.
        count = len(failed)
        with single_metric(NOT_REPORTED, MetricUnit.Count, count, namespace=NAMESPACE, default_dimensions=dimensions):
            pass


_EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


def _time(text: Any) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) and text else None


def _why(error: Exception) -> str:
    response = getattr(error, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return f"{code or type(error).__name__}: {error}"


def _by_rollout(records: list[HostRecord]) -> dict[str, list[HostRecord]]:
    grouped: dict[str, list[HostRecord]] = {}
    for record in records:
        grouped.setdefault(record.rollout_id, []).append(record)
    return grouped
