"""The Updraft stack: the ledger and the rollout engine, plus the outputs the CLI and the simulation read."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aspects, CfnOutput, Stack
from constructs import Construct

from stacks.access import Access
from stacks.delivery import FailedDeliveries
from stacks.eks_access import ClusterAccess
from stacks.functions import FUNCTIONS
from stacks.ledger import Ledger
from stacks.observability import Observability
from stacks.release_watch import ReleaseWatch
from stacks.rollout_engine import RolloutEngine
from stacks.scan import CheckovSuppressions
from updraft.config import UpdraftConfig


class UpdraftStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: UpdraftConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        Aspects.of(self).add(CheckovSuppressions())
        ledger = Ledger(self, "Ledger")
        failures = FailedDeliveries(self, "FailedDeliveries")
        engine = RolloutEngine(
            self, "RolloutEngine", config=config, ledger=ledger.table, locks=ledger.locks, failures=failures
        )
        reaching = {spec.name: engine.functions[spec.name] for spec in FUNCTIONS if spec.reaches_nodes}
        ClusterAccess(self, "ClusterAccess", config=config, functions=reaching)
        if config.detection:
            watch = ReleaseWatch(
                self,
                "ReleaseWatch",
                config=config,
                functions=engine.function_factory,
                state_machine=engine.state_machine,
                failures=failures,
            )
            CfnOutput(self, "ReleaseBusName", value=watch.bus_name)
            CfnOutput(self, "TrustBucketName", value=watch.trust.bucket_name)

        observability = Observability(
            self,
            "Observability",
            config=config,
            state_machine=engine.state_machine,
            functions=engine.functions,
            undelivered=failures.queue,
        )
        CfnOutput(self, "FailedDeliveriesQueueUrl", value=failures.queue.queue_url)
        CfnOutput(self, "NotificationTopicArn", value=observability.topic.topic_arn)
        CfnOutput(self, "DashboardName", value=observability.dashboard.dashboard_name)
        for alarm in observability.alarms:
            CfnOutput(self, f"{alarm.node.id}AlarmName", value=alarm.alarm_name)
        access = Access(
            self,
            "Access",
            ledger=ledger.table,
            locks=ledger.locks,
            state_machine=engine.state_machine,
            state_machine_name=engine.state_machine_name,
        )
        CfnOutput(self, "OperatorPolicyArn", value=access.operator.managed_policy_arn)
        CfnOutput(self, "ViewerPolicyArn", value=access.viewer.managed_policy_arn)
        CfnOutput(self, "RolloutStateMachineArn", value=engine.state_machine.state_machine_arn)
        CfnOutput(self, "LedgerTableName", value=ledger.table.table_name)
        CfnOutput(self, "LockTableName", value=ledger.locks.table_name)
        for kind, document in engine.documents.documents.items():
            CfnOutput(self, f"{kind.capitalize()}DocumentName", value=document.ref)
