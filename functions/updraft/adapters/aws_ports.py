"""The rollout's ports on AWS: DynamoDB tables, EventBridge's default bus, CloudWatch alarms. The ledger reports
each host it writes to SSM Compliance as well (updraft.adapters.compliance)."""

from __future__ import annotations

from updraft.adapters.alarms import CloudWatchAlarms
from updraft.adapters.compliance import ComplianceReportingLedger
from updraft.adapters.control import Controls
from updraft.adapters.ledger import Ledger
from updraft.adapters.lifecycle import LifecycleBus
from updraft.adapters.lock import GroupLock
from updraft.adapters.releases import ReleaseLedger
from updraft.ports import Ports


def aws_ports(ledger_table: str, lock_table: str) -> Ports:
    return Ports(
        ledger=ComplianceReportingLedger(Ledger(ledger_table)),  # one per step: its call budget is the step's
        locks=GroupLock(lock_table),
        controls=Controls(ledger_table),
        releases=ReleaseLedger(ledger_table),
        events=LifecycleBus(),
        alarms=CloudWatchAlarms(),
    )
