"""The two DynamoDB tables: per-group rollout locks and the ledger of rollouts and hosts."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from updraft.ledger_schema import BY_GROUP, EXPIRES, GROUP_KEY, LOCK_KEY, PK, SK, STARTED_AT


def _table(
    scope: Construct, construct_id: str, partition_key: str, sort_key: str | None = None, expires: str | None = None
) -> dynamodb.Table:
    # Plain `Table` rather than TableV2: single-region, and the simulation deploys this template into moto,
    # whose CloudFormation skips AWS::DynamoDB::GlobalTable.
    string = dynamodb.AttributeType.STRING
    return dynamodb.Table(
        scope,
        construct_id,
        partition_key=dynamodb.Attribute(name=partition_key, type=string),
        sort_key=dynamodb.Attribute(name=sort_key, type=string) if sort_key else None,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        # The ledger is the audit trail of every rollout: it outlives the stack, and no DeleteTable call
        # (console, CLI, another stack) removes it while protection is on.
        removal_policy=RemovalPolicy.RETAIN,
        deletion_protection=True,
        # Only the steps' replay records carry it: rollouts and hosts never expire.
        time_to_live_attribute=expires,
    )


class Ledger(Construct):
    """`locks` holds one item per group while a rollout runs; `table` records rollouts and host states
    (laid out as updraft.ledger_schema says)."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.locks = _table(self, "Locks", partition_key=LOCK_KEY)
        self.table = _table(self, "Ledger", partition_key=PK, sort_key=SK, expires=EXPIRES)
        # Only rollout items carry `group_key`: a group's rollouts by start time (history, rollback window).
        self.table.add_global_secondary_index(
            index_name=BY_GROUP,
            partition_key=dynamodb.Attribute(name=GROUP_KEY, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=STARTED_AT, type=dynamodb.AttributeType.STRING),
        )
