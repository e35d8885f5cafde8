"""The rollout engine: SSM documents, the functions and the Standard state machine that drives them."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.definition import definition
from stacks.delivery import FailedDeliveries
from stacks.documents import CommandDocuments
from stacks.functions import FUNCTIONS, LOG_RETENTION, ON_ALARM, RolloutFunctions
from stacks.nag import acknowledge
from updraft.config import UpdraftConfig
from updraft.ledger_schema import BY_GROUP


def substitution_key(function_name: str) -> str:
    """`acquire_lock` -> `AcquireLockFunctionArn`, the placeholder the ASL uses for that function."""
    return "".join(part.capitalize() for part in function_name.split("_")) + "FunctionArn"


class RolloutEngine(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: UpdraftConfig,
        ledger: dynamodb.ITable,
        locks: dynamodb.ITable,
        failures: FailedDeliveries,
    ) -> None:
        super().__init__(scope, construct_id)
        self.failures = failures
        # Named up front so the lock function's policy can name its executions without a dependency cycle.
        self.state_machine_name = f"{Stack.of(self).stack_name}-rollout"
        self.documents = CommandDocuments(self, "Documents", config)
        self.function_factory = RolloutFunctions(
            self,
            "Functions",
            config=config,
            ledger=ledger,
            locks=locks,
            documents=self.documents,
            state_machine_name=self.state_machine_name,
        )
        self.functions = self.function_factory.functions
        self.state_machine = self._state_machine(locks)
        self._settle_ended_executions()
        self._roll_back_on_alarms(config, ledger, locks)

    def _steps(self) -> dict[str, lambda_.IFunction]:
        return {spec.name: self.functions[spec.name] for spec in FUNCTIONS if spec.step}

    def _settle_ended_executions(self) -> None:
        """A stopped or timed-out execution runs none of its own states: EventBridge tells us instead."""
        rule = events.Rule(
            self,
            "ExecutionEnded",
            description="Updraft: settle the ledger and the lock of a rollout execution that ended abnormally",
            event_pattern=events.EventPattern(
                # Only this account's events: the default bus may also receive other accounts' (cross-account
                # rules, bus policies), and a pattern on names alone would match a look-alike resource.
                account=[Stack.of(self).account],
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={
                    "stateMachineArn": [self.state_machine.state_machine_arn],
                    "status": ["ABORTED", "TIMED_OUT", "FAILED"],
                },
            ),
        )
        rule.add_target(
            self.failures.lambda_target(
                self.functions["on_execution_end"], retry_attempts=8, max_event_age=Duration.hours(6)
            )
        )

    def _roll_back_on_alarms(self, config: UpdraftConfig, ledger: dynamodb.ITable, locks: dynamodb.ITable) -> None:
        """Inside a group's rollback window, one of its alarms going to ALARM rolls its last rollout back."""
        watched = [g.alarms for g in config.groups if g.alarms and g.rollback_window_hours]
        if not watched:
            return
        names = sorted({name for gate in watched for name in gate.names})
        prefixes = sorted({prefix for gate in watched for prefix in gate.prefixes})
        function = self.function_factory.add(
            ON_ALARM,
            {"STATE_MACHINE_ARN": self.state_machine.state_machine_arn},
            [
                # The index's partition key is the group: the watched groups' rollouts, no others.
                iam.PolicyStatement(
                    actions=["dynamodb:Query"],
                    resources=[f"{ledger.table_arn}/index/{BY_GROUP}"],
                    conditions={"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": self._watching(config)}},
                ),
                iam.PolicyStatement(actions=["dynamodb:Scan"], resources=[locks.table_arn]),
                iam.PolicyStatement(
                    actions=["states:StartExecution"], resources=[self.state_machine.state_machine_arn]
                ),
            ],
        )
        self.functions[ON_ALARM.name] = function
        rule = events.Rule(
            self,
            "GroupAlarm",
            description="Updraft: a group's alarm fired; roll back its last rollout inside the rollback window",
            event_pattern=events.EventPattern(
                account=[Stack.of(self).account],  # alarm names are not unique across accounts
                source=["aws.cloudwatch"],
                detail_type=["CloudWatch Alarm State Change"],
                detail={
                    "alarmName": [*names, *({"prefix": prefix} for prefix in prefixes)],
                    "state": {"value": ["ALARM"]},
                },
            ),
        )
        rule.add_target(self.failures.lambda_target(function, retry_attempts=8, max_event_age=Duration.hours(1)))

    @staticmethod
    def _watching(config: UpdraftConfig) -> list[str]:
        return sorted(g.name for g in config.groups if g.alarms and g.rollback_window_hours)

    def _state_machine(self, locks: dynamodb.ITable) -> sfn.StateMachine:
        substitutions = {substitution_key(name): fn.function_arn for name, fn in self._steps().items()}
        substitutions["LockTableName"] = locks.table_name
        log_group = logs.LogGroup(
            self,
            "RolloutLogs",
            # The /aws/vendedlogs/ prefix keeps CloudWatch Logs' resource policy small for vended logs.
            log_group_name=f"/aws/vendedlogs/states/{self.state_machine_name}",
            retention=LOG_RETENTION,
        )
        state_machine = sfn.StateMachine(
            self,
            "Rollout",
            state_machine_name=self.state_machine_name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            # Inline, so template tests and cfn-lint see the definition that is deployed: the one the tests run.
            definition_body=sfn.DefinitionBody.from_string(definition()),
            definition_substitutions=substitutions,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True,
        )
        # CDK derives no permissions from an ASL string: grant exactly what the definition calls.
        function_arns = [fn.function_arn for fn in self._steps().values()]
        state_machine.add_to_role_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=function_arns)
        )
        state_machine.add_to_role_policy(
            iam.PolicyStatement(actions=["dynamodb:DeleteItem"], resources=[locks.table_arn])
        )
        acknowledge(
            state_machine.role,
            "AwsSolutions-IAM5[Resource::*]",
            "CloudWatch Logs delivery (logs:*LogDelivery*, logs:*ResourcePolic*, logs:DescribeLogGroups) and "
            "X-Ray (xray:PutTraceSegments, xray:PutTelemetryRecords, xray:GetSampling*) support no "
            "resource-level permissions; CDK grants them for execution logging and tracing.",
        )
        return state_machine
