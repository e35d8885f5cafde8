"""SSM Compliance's store, which moto 5.2.5 lacks: per resource, its items of each compliance type.

What the API reference says of it, and what is kept here
(https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutComplianceItems.html):
- a put "overwrites existing compliance information on the resource" for its compliance type (COMPLETE, the only
  upload type a custom type takes: PARTIAL is "only valid for association compliance");
- "If the content hashes match, the request to put compliance information is ignored": the items, and the
  execution summary with them, stay as they were;
- a resource takes at most 10 custom compliance types (ComplianceTypeCountLimitExceededException);
- ListComplianceItems answers for one resource per call ("Currently, you can only specify one resource ID"),
  ListResourceComplianceSummaries one summary per resource and compliance type.
Filters: the keys ComplianceType, Status and Severity (OverallSeverity for summaries), compared EQUAL, NOT_EQUAL
or BEGIN_WITH; any other key or comparison is refused (InvalidFilter) rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sim.service_limits import CUSTOM_COMPLIANCE_TYPES, LimitRefused

SEVERITY_ORDER = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNSPECIFIED")  # most severe first
_COUNT_NAMES = {
    "CRITICAL": "CriticalCount",
    "HIGH": "HighCount",
    "MEDIUM": "MediumCount",
    "LOW": "LowCount",
    "INFORMATIONAL": "InformationalCount",
    "UNSPECIFIED": "UnspecifiedCount",
}
_COMPARISONS = {
    "EQUAL": lambda value, wanted: value in wanted,
    "NOT_EQUAL": lambda value, wanted: value not in wanted,
    "BEGIN_WITH": lambda value, wanted: any(value.startswith(w) for w in wanted),
}


@dataclass(frozen=True)
class Stored:
    """One resource's items of one compliance type, as the last put that changed them left them."""

    resource_id: str
    resource_type: str
    compliance_type: str
    execution: dict[str, Any]  # ExecutionTime (a datetime), ExecutionId, ExecutionType
    items: tuple[dict[str, Any], ...]
    content_hash: str

    def views(self) -> list[dict[str, Any]]:
        """Its items as ListComplianceItems answers them."""
        return [
            {
                "ComplianceType": self.compliance_type,
                "ResourceType": self.resource_type,
                "ResourceId": self.resource_id,
                "Id": item.get("Id", ""),
                "Title": item.get("Title", ""),
                "Status": item["Status"],
                "Severity": item["Severity"],
                "ExecutionSummary": self.execution,
                "Details": dict(item.get("Details") or {}),
            }
            for item in self.items
        ]

    def summary(self) -> dict[str, Any]:
        """Its ListResourceComplianceSummaries entry."""
        compliant = [item["Severity"] for item in self.items if item["Status"] == "COMPLIANT"]
        non_compliant = [item["Severity"] for item in self.items if item["Status"] != "COMPLIANT"]
        severities = compliant + non_compliant
        return {
            "ComplianceType": self.compliance_type,
            "ResourceType": self.resource_type,
            "ResourceId": self.resource_id,
            "Status": "NON_COMPLIANT" if non_compliant else "COMPLIANT",
            "OverallSeverity": min(severities, key=SEVERITY_ORDER.index) if severities else "UNSPECIFIED",
            "ExecutionSummary": self.execution,
            "CompliantSummary": {"CompliantCount": len(compliant), "SeveritySummary": _counts(compliant)},
            "NonCompliantSummary": {"NonCompliantCount": len(non_compliant), "SeveritySummary": _counts(non_compliant)},
        }


class ComplianceStore:
    """The compliance items of one account and region."""

    def __init__(self) -> None:
        self._by_resource: dict[str, dict[str, Stored]] = {}
        self.puts = 0  # requests that changed something (a matching content hash changes nothing)

    def put(
        self,
        resource_id: str,
        resource_type: str,
        compliance_type: str,
        execution: dict[str, Any],
        items: list[dict[str, Any]],
        content_hash: str = "",
    ) -> bool:
        """Replace the resource's items of `compliance_type`; False if the content hash says nothing changed."""
        types = self._by_resource.setdefault(resource_id, {})
        current = types.get(compliance_type)
        if current is not None and content_hash and current.content_hash == content_hash:
            return False
        custom = {name for name in types if name.startswith("Custom:")}
        new_type = compliance_type.startswith("Custom:") and compliance_type not in custom
        if new_type and len(custom) >= CUSTOM_COMPLIANCE_TYPES:
            raise LimitRefused(
                "ComplianceTypeCountLimitExceededException",
                "You specified too many custom compliance types. You can specify a maximum of "
                f"{CUSTOM_COMPLIANCE_TYPES} different types.",
            )
        types[compliance_type] = Stored(
            resource_id, resource_type, compliance_type, dict(execution), tuple(items), content_hash
        )
        self.puts += 1
        return True

    def items(self, resource_id: str, filters: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """The resource's items, every compliance type, in the order of their types' names."""
        views = [v for _, stored in sorted(self._by_resource.get(resource_id, {}).items()) for v in stored.views()]
        return [view for view in views if _matches(view, filters, {"ComplianceType", "Status", "Severity"})]

    def summaries(self, filters: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """One summary per resource and compliance type, by resource id."""
        summaries = [
            stored.summary() for _, types in sorted(self._by_resource.items()) for _, stored in sorted(types.items())
        ]
        keys = {"ComplianceType", "Status", "OverallSeverity"}
        return [summary for summary in summaries if _matches(summary, filters, keys)]

    def clear(self) -> None:
        self._by_resource.clear()
        self.puts = 0


def _matches(view: dict[str, Any], filters: list[dict[str, Any]] | None, keys: set[str]) -> bool:
    for found in filters or []:
        key, kind = found.get("Key", ""), found.get("Type") or "EQUAL"
        if key not in keys:
            raise LimitRefused("InvalidFilter", f"the simulation filters by {sorted(keys)}, not by {key!r}")
        if kind not in _COMPARISONS:
            raise LimitRefused("InvalidFilter", f"the simulation compares {key} {sorted(_COMPARISONS)}, not {kind}")
        if not _COMPARISONS[kind](str(view[key]), tuple(found.get("Values") or ())):
            return False
    return True


def _counts(severities: list[str]) -> dict[str, int]:
    return {name: severities.count(severity) for severity, name in _COUNT_NAMES.items()}


def execution_summary(summary: dict[str, Any], time: datetime) -> dict[str, Any]:
    """The execution summary as stored: its time parsed, its optional fields only when given."""
    return {"ExecutionTime": time} | {k: summary[k] for k in ("ExecutionId", "ExecutionType") if summary.get(k)}
