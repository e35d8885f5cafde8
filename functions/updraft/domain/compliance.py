"""Each host's Bottlerocket currency as an SSM custom compliance item: what PutComplianceItems is sent for it.

Bottlerocket reports no patch compliance of its own (SSM shows it "Not Reported"); Updraft knows what each host
runs, so it writes one item per instance under `Custom:BottlerocketRelease`. SSM Compliance, AWS Config and Security
Hub then show the fleet's currency without asking Updraft. The item is a projection of the ledger, never its record.

- COMPLIANT: the host runs the newest release its group may take, which for a rollout is the host's target: it
  was updated, or the plan found it already on the target.
- NON_COMPLIANT: anything else: planned and not yet updated, rolled back, skipped, rollback-failed, needs-attention.

Limits are those of the API (botocore's model of PutComplianceItems, and
https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutComplianceItems.html); this module keeps
every request inside them, and the simulation refuses any that is not (sim/service_limits.py).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from updraft.domain.host_record import HostRecord, HostState
from updraft.domain.planning import already_on

COMPLIANCE_TYPE = "Custom:BottlerocketRelease"  # ComplianceTypeName: 1-100 characters, `Custom:[a-zA-Z0-9_\-]\w+`
RESOURCE_TYPE = "ManagedInstance"  # "currently the only supported resource type"
EXECUTION_TYPE = "Custom:Updraft"  # ComplianceExecutionType: at most 50 characters
ITEM_ID = "BottlerocketRelease"  # one item per instance: a COMPLETE upload replaces the last one
UNKNOWN = "unknown"
# The model's bounds: Title at most 500 characters; Details keys 1-64, values at most 4,096; ExecutionId at most 100.
TITLE_LIMIT = 500
DETAIL_VALUE_LIMIT = 4096
EXECUTION_ID_LIMIT = 100


class Status(StrEnum):
    COMPLIANT = "COMPLIANT"
    NON_COMPLIANT = "NON_COMPLIANT"


class Severity(StrEnum):
    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"
    INFORMATIONAL = "INFORMATIONAL"


# How much a host's state should worry whoever reads the compliance view (a severity is required even when
# compliant, and Security Hub ranks findings by it):
SEVERITY = {
    # Runs the target: nothing to act on.
    HostState.UPDATED: Severity.INFORMATIONAL,
    # Failed after its update and could not be rolled back: it may still run the release that failed its checks.
    HostState.ROLLBACK_FAILED: Severity.CRITICAL,
    # The rollout stopped while the host was mid-update: what it runs is unknown until a person looks.
    HostState.NEEDS_ATTENTION: Severity.HIGH,
    # Back on the previous release, which works, but the target failed on it: behind, for a reason.
    HostState.ROLLED_BACK: Severity.MEDIUM,
    # Untouched on the previous release (its wave never started, or it was left out): only behind.
    HostState.SKIPPED: Severity.LOW,
    HostState.PENDING: Severity.LOW,
}
# A host the plan finds already on the target is current; one left out for any other reason is only behind.
CURRENT_SEVERITY = Severity.INFORMATIONAL
SKIPPED_SEVERITY = Severity.LOW
# A state in flight is never reported (only final states and the plan are), but is still mapped: unknown.
IN_FLIGHT_SEVERITY = Severity.HIGH


class ComplianceItem(BaseModel):
    """One host's item: what it runs against what its group may take, in this rollout, and why."""

    model_config = ConfigDict(frozen=True)

    instance_id: str
    status: Status
    severity: Severity
    running: str  # the version it runs, or "unknown"
    target: str
    rollout_id: str
    state: str
    reason: str
    at: datetime  # the step's clock when the host reached this state

    def details(self) -> dict[str, str]:
        return {
            "RunningVersion": self.running,
            "TargetVersion": self.target,
            "RolloutId": self.rollout_id,
            "HostState": self.state,
            "Reason": self.reason[:DETAIL_VALUE_LIMIT],
        }

    def content(self) -> dict[str, Any]:
        """What the item says, without when: the same words reported again are a repeat SSM ignores."""
        title = f"Bottlerocket {self.running} (target {self.target})"[:TITLE_LIMIT]
        return {
            "ComplianceType": COMPLIANCE_TYPE,
            "ExecutionId": self.rollout_id[:EXECUTION_ID_LIMIT],  # rollout ids are execution names: 80 at most
            "ExecutionType": EXECUTION_TYPE,
            "Items": [
                {
                    "Id": ITEM_ID,
                    "Title": title,
                    "Severity": str(self.severity),
                    "Status": str(self.status),
                    "Details": self.details(),
                }
            ],
        }

    @property
    def content_hash(self) -> str:
        """SHA-256 of the content: "If the content hashes match, the request to put compliance information is
        ignored" (ItemContentHash, API reference), so a repeat keeps the time the host first reached it."""
        text = json.dumps(self.content(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def request(self) -> dict[str, Any]:
        """PutComplianceItems' parameters (boto3 spelling). COMPLETE: the resource's items of this type are
        replaced by this one, so an instance keeps one item, the newest, across rollouts."""
        content = self.content()
        return {
            "ResourceId": self.instance_id,
            "ResourceType": RESOURCE_TYPE,
            "ComplianceType": content["ComplianceType"],
            "ExecutionSummary": {
                "ExecutionTime": self.at,
                "ExecutionId": content["ExecutionId"],
                "ExecutionType": content["ExecutionType"],
            },
            "Items": content["Items"],
            "ItemContentHash": self.content_hash,
            "UploadType": "COMPLETE",
        }


def running_version(record: HostRecord) -> str:
    """What a host of the ledger runs, as far as its state says: verified on the target once updated, untouched
    or verified back on its previous version when skipped or rolled back, unknown otherwise."""
    if record.state is HostState.UPDATED:
        return record.target_version
    if record.state in (HostState.PENDING, HostState.SKIPPED, HostState.ROLLED_BACK):
        return record.previous_version
    return UNKNOWN


def host_item(record: HostRecord, fallback: datetime) -> ComplianceItem:
    """The item of a planned host, or of one that reached a final state (`fallback`: when, if it has no stamp)."""
    updated = record.state is HostState.UPDATED
    return ComplianceItem(
        instance_id=record.instance_id,
        status=Status.COMPLIANT if updated else Status.NON_COMPLIANT,
        severity=SEVERITY.get(record.state, IN_FLIGHT_SEVERITY),
        running=running_version(record),
        target=record.target_version,
        rollout_id=record.rollout_id,
        state=str(record.state),
        reason=record.note,
        at=stamp(record.updated_at, fallback),
    )


def skipped_item(rollout_id: str, skipped: dict[str, Any], target: str, fallback: datetime) -> ComplianceItem:
    """The item of a host the plan left out (updraft.domain.planning.skipped_host): current only if it already
    runs the target; `target` and `fallback` stand in for what the entry does not say."""
    target = skipped.get("target_version") or target
    version = skipped.get("version") or UNKNOWN
    reason = str(skipped.get("note", ""))
    current = version == target and reason == already_on(target)
    return ComplianceItem(
        instance_id=str(skipped["instance_id"]),
        status=Status.COMPLIANT if current else Status.NON_COMPLIANT,
        severity=CURRENT_SEVERITY if current else SKIPPED_SEVERITY,
        running=version,
        target=target,
        rollout_id=rollout_id,
        state=str(HostState.SKIPPED),
        reason=reason,
        at=stamp(str(skipped.get("skipped_at", "")), fallback),
    )


def stamp(text: str, fallback: datetime) -> datetime:
    """A ledger timestamp (ISO 8601), or `fallback` where there is none."""
    return datetime.fromisoformat(text) if text else fallback
