"""Who may steer a rollout: the operator's and the viewer's managed policies, for people and pipelines.

Attach them to the roles (or IAM Identity Center permission sets) of the people who run `updraft`: the viewer
reads status, history and the fleet; the operator also starts, pauses, resumes, aborts and rolls back rollouts
and engages kill switches. Those requests are the only ledger writes the operator may make (the `CONTROL` and
`REQUEST#` partitions, updraft.ledger_schema); what a rollout itself records stays the functions' alone.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.nag import acknowledge, nag_arn
from updraft.ledger_schema import BY_GROUP, CONTROL, REQUEST, ROLLOUT

# Read calls that take no resource-level permissions: `updraft plan` lists the tagged, managed hosts.
FLEET_READS = ("ec2:DescribeInstances", "ssm:DescribeInstanceInformation")


class Access(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        ledger: dynamodb.ITable,
        locks: dynamodb.ITable,
        state_machine: sfn.StateMachine,
        state_machine_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        executions = stack.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        reads = [
            iam.PolicyStatement(actions=["cloudformation:DescribeStacks"], resources=[stack.stack_id]),
            iam.PolicyStatement(
                actions=["dynamodb:GetItem", "dynamodb:Query"],
                resources=[ledger.table_arn, f"{ledger.table_arn}/index/{BY_GROUP}"],
            ),
            iam.PolicyStatement(actions=["dynamodb:GetItem"], resources=[locks.table_arn]),
            iam.PolicyStatement(actions=["states:ListExecutions"], resources=[state_machine.state_machine_arn]),
            iam.PolicyStatement(
                actions=["states:DescribeExecution", "states:GetExecutionHistory"], resources=[executions]
            ),
            iam.PolicyStatement(actions=list(FLEET_READS), resources=["*"]),
        ]
        self.viewer = iam.ManagedPolicy(
            self,
            "Viewer",
            managed_policy_name=f"{stack.stack_name}-viewer",
            description="Updraft: read rollout status, history and the fleet",
            statements=reads,
        )
        self.operator = iam.ManagedPolicy(
            self,
            "Operator",
            managed_policy_name=f"{stack.stack_name}-operator",
            description="Updraft: start, pause, resume, abort and roll back rollouts; engage kill switches",
            statements=[*reads, *self._steering(ledger, state_machine, executions)],
        )
        for policy in (self.viewer, self.operator):
            acknowledge(
                policy,
                "AwsSolutions-IAM5[Resource::*]",
                f"{', '.join(FLEET_READS)}: read calls with no resource-level permissions (updraft plan).",
            )
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::{nag_arn(self, 'states', f'execution:{state_machine_name}:*')}]",
                "Executions are named when they start; the ARN is limited to this project's state machine.",
            )

    @staticmethod
    def _steering(
        ledger: dynamodb.ITable, state_machine: sfn.StateMachine, executions: str
    ) -> list[iam.PolicyStatement]:
        return [
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[state_machine.state_machine_arn]),
            # A hard stop; the stopped execution's settlement records every host it touched.
            iam.PolicyStatement(actions=["states:StopExecution"], resources=[executions]),
            # Kill switches: engaged (put) and released (deleted).
            iam.PolicyStatement(
                actions=["dynamodb:PutItem", "dynamodb:DeleteItem"],
                resources=[ledger.table_arn],
                conditions={"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [CONTROL]}},
            ),
            # Pause, resume, abort: the request item, written in a transaction with a check of the rollout's item.
            iam.PolicyStatement(
                actions=["dynamodb:UpdateItem"],
                resources=[ledger.table_arn],
                conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{REQUEST}*"]}},
            ),
            iam.PolicyStatement(
                actions=["dynamodb:ConditionCheckItem"],
                resources=[ledger.table_arn],
                conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{ROLLOUT}*"]}},
            ),
        ]
