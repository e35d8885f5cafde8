"""The seven rollout Lambda functions: one code asset, one role each, least privilege from one table."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from stacks.bundling import function_code
from stacks.documents import CommandDocuments
from stacks.nag import acknowledge, nag_arn
from updraft.config import UpdraftConfig
from updraft.domain.lifecycle import SOURCE
from updraft.ledger_schema import AUTO, GROUP, ROLLOUT, idempotency_pk

# One Python version drives the runtime, the wheels pip bundles and the Powertools layer. It is the newest
# runtime aws-cdk-lib knows, which is what cdk-nag's AwsSolutions-L1 requires.
PYTHON_VERSION = "3.14"
RUNTIME = lambda_.Runtime.PYTHON_3_14
# Graviton (ARM_64): the same work costs about 20% less per GB-second than x86_64, and the functions are
# pure Python (plus pydantic_core, which ships aarch64 wheels).
ARCHITECTURE = lambda_.Architecture.ARM_64
WHEEL_PLATFORM = "manylinux2014_aarch64"
LOCK_FILE = Path(__file__).resolve().parent.parent / "requirements.lock"


class PowertoolsVersionError(ValueError):
    """requirements.lock pins no aws_lambda_powertools version to take the layer of."""


def powertools_version(lock: Path = LOCK_FILE) -> str:
    """The Powertools version the project tests with: the layer deployed is that release's, not `latest`."""
    found = re.search(r"^aws[-_]lambda[-_]powertools(?:\[[^\]]*\])?==([\w.]+)$", lock.read_text(), re.MULTILINE)
    if not found:
        raise PowertoolsVersionError(f"{lock} pins no aws_lambda_powertools==X.Y.Z")
    return found[1]


def powertools_layer_parameter(version: str) -> str:
    """Powertools publishes one public parameter per release, runtime and architecture
    (/aws/service/powertools/python/{arch}/{python_version}/{version}: docs, "Lambda Layer", SSM Parameter Store)."""
    return f"/aws/service/powertools/python/arm64/python{PYTHON_VERSION}/{version}"


POWERTOOLS_LAYER_PARAMETER = powertools_layer_parameter(powertools_version())
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS

LEDGER_READS = ("dynamodb:GetItem", "dynamodb:Query")
# Granted only on the partition key prefixes a function owns (updraft.ledger_schema says who owns which). IAM
# checks `dynamodb:LeadingKeys` for each item of a BatchWriteItem, so a batch cannot smuggle a foreign key in.
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html
LEDGER_WRITES = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem")
# What Powertools' idempotency store does with a step's own replay records (functions/updraft/handlers/_common.py).
IDEMPOTENCY_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
# X-Ray takes no resource-level permissions; CDK grants these for active tracing.
TRACING_ACTIONS = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")


@dataclass(frozen=True)
class FunctionSpec:
    """What one handler may do, beyond writing the ledger and its own logs and traces."""

    name: str
    timeout_minutes: int = 5
    runs_documents: tuple[str, ...] = ()  # SSM documents it may send, to the configured groups' hosts only
    unscoped_actions: tuple[str, ...] = ()  # read/list actions that take no resource-level permissions
    reboots_hosts: bool = False
    # Writes hosts' inventory or final states to the ledger, and so their compliance to SSM (on the groups' hosts).
    reports_compliance: bool = False
    ecs_actions: tuple[str, ...] = ()  # on the configured ECS groups' clusters only (none when no group uses ECS)
    # Into the configured EKS groups' clusters (eks:DescribeCluster, and an access entry there: stacks/eks_access.py)
    reaches_nodes: bool = False
    takes_lock: bool = False
    releases_lock: bool = False
    step: bool = True  # a task of the rollout state machine (else: invoked by an EventBridge rule)
    memory_mb: int = 512
    reserved_concurrency: int | None = None
    # The ledger partition key prefixes it may write (none: it only reads the ledger, or not at all).
    writes_ledger: tuple[str, ...] = (ROLLOUT,)
    reads_ledger: bool = True
    publishes_events: bool = False  # lifecycle events, on the default bus, with source `updraft` only
    reads_alarms: bool = False  # the groups' CloudWatch alarm gates
    describes_executions: bool = False  # this project's rollout executions

    @property
    def construct_id(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_"))

    @property
    def handler(self) -> str:
        return f"updraft.handlers.{self.name}.handler"


_LIST_INVOCATIONS = "ssm:ListCommandInvocations"
_DESCRIBE_MANAGED = "ssm:DescribeInstanceInformation"
# A retried step finds the commands an earlier attempt sent before it could record them.
_LIST_COMMANDS = "ssm:ListCommands"
# Watching drains and re-activations: container instance state and counts, the tasks no service owns.
_ECS_WATCH = (
    "ecs:DescribeContainerInstances",
    "ecs:UpdateContainerInstancesState",
    "ecs:ListTasks",
    "ecs:DescribeTasks",
)

_ECS_REACTIVATE = ("ecs:UpdateContainerInstancesState",)

# The Service Authorization Reference, "Actions, resources, and condition keys for AWS Systems Manager"
# (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssystemsmanager.html), lists for
# ssm:PutComplianceItems (Write) the resource types `instance` (arn:${Partition}:ec2:${Region}:${Account}:
# instance/${InstanceId}) and `managed-instance` (arn:...:ssm:...:managed-instance/${InstanceId}, hybrid nodes),
# neither required, and the action's own condition keys ssm:SourceInstanceARN and ec2:SourceInstanceARN, which name
# the instance a request comes *from* (its agent) and are absent from a Lambda's request, so a condition on them
# would deny it. The resource types' condition keys, which "apply to an action" naming that resource, include
# aws:ResourceTag/${TagKey}: the grant is scoped as SendCommand's, to EC2 instances tagged into a configured group
# (`managed-instance`, the `mi-` ids of hybrid nodes, is not granted: the groups' hosts are EC2 instances).
_COMPLIANCE = "ssm:PutComplianceItems"

FUNCTIONS = (
    FunctionSpec("check_release", timeout_minutes=1, writes_ledger=(AUTO,)),
    FunctionSpec("acquire_lock", timeout_minutes=1, takes_lock=True),
    FunctionSpec(
        "start_inventory",
        runs_documents=("inventory",),
        unscoped_actions=("ec2:DescribeInstances", _DESCRIBE_MANAGED),
        reports_compliance=True,  # the hosts offline at the inventory
    ),
    FunctionSpec(
        "plan_waves",
        unscoped_actions=("ec2:DescribeInstances", _LIST_INVOCATIONS),
        publishes_events=True,
        reports_compliance=True,
    ),
    FunctionSpec(
        "apply_wave",
        runs_documents=("apply",),
        unscoped_actions=(_DESCRIBE_MANAGED, _LIST_INVOCATIONS, _LIST_COMMANDS),
        ecs_actions=("ecs:ListContainerInstances", *_ECS_WATCH),
        publishes_events=True,
        reads_alarms=True,
        reaches_nodes=True,
        reports_compliance=True,
    ),
    FunctionSpec(
        "check_hosts",
        runs_documents=("verify", "rollback", "health"),
        unscoped_actions=(_LIST_INVOCATIONS, _DESCRIBE_MANAGED, _LIST_COMMANDS, "ec2:DescribeInstanceStatus"),
        reboots_hosts=True,
        publishes_events=True,
        reads_alarms=True,
        ecs_actions=_ECS_WATCH,
        reaches_nodes=True,
        reports_compliance=True,
    ),
    FunctionSpec("bake", timeout_minutes=1, publishes_events=True, reads_alarms=True),
    # Cordons an updated EKS node before its rollback reboots it.
    FunctionSpec(
        "halt",
        runs_documents=("rollback",),
        unscoped_actions=(_LIST_INVOCATIONS, _DESCRIBE_MANAGED, _LIST_COMMANDS),
        reaches_nodes=True,
        reports_compliance=True,
    ),
    FunctionSpec("abort_rollout", timeout_minutes=1, reports_compliance=True),
    # Both put ECS hosts a failed rollout left draining (nothing applied yet) back to ACTIVE, and uncordon such
    # EKS nodes.
    FunctionSpec(
        "finish",
        timeout_minutes=1,
        publishes_events=True,
        ecs_actions=_ECS_REACTIVATE,
        reaches_nodes=True,
        writes_ledger=(ROLLOUT, GROUP),
        reports_compliance=True,
    ),
    # Settles an execution that ended outside its own error handling: stopped, timed out.
    FunctionSpec(
        "on_execution_end",
        timeout_minutes=1,
        releases_lock=True,
        step=False,
        publishes_events=True,
        ecs_actions=_ECS_REACTIVATE,
        reaches_nodes=True,
        writes_ledger=(ROLLOUT, GROUP),
        describes_executions=True,  # the event's word is checked before anything is settled
        reports_compliance=True,
    ),
)

# Rolls a finished rollout back when one of its group's alarms fires inside the rollback window.
ON_ALARM = FunctionSpec(
    "on_alarm", timeout_minutes=1, step=False, writes_ledger=(), reads_ledger=False, reads_alarms=True
)


class RolloutFunctions(Construct):
    """Builds every function in `FUNCTIONS`; `functions[name]` gives each one."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: UpdraftConfig,
        ledger: dynamodb.ITable,
        locks: dynamodb.ITable,
        documents: CommandDocuments,
        state_machine_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.ledger = ledger
        self.locks = locks
        self.documents = documents
        self.state_machine_name = state_machine_name
        self.code = function_code(PYTHON_VERSION, WHEEL_PLATFORM)
        self.powertools = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "Powertools",
            # Resolved by CloudFormation at deploy time: no AWS lookup during synth.
            ssm.StringParameter.value_for_string_parameter(self, POWERTOOLS_LAYER_PARAMETER),
        )
        self.functions = {spec.name: self._function(spec) for spec in FUNCTIONS}

    def environment(self) -> dict[str, str]:
        # Refs rather than the known names: each function then depends on the documents it runs.
        names = {kind: document.ref for kind, document in self.documents.documents.items()}
        documents = {"DOCUMENT_HEALTH": names["health"]} if "health" in names else {}
        # Each document's content digest, fixed at synth, next to its name: a document changed since is refused.
        documents |= {f"DOCUMENT_{kind.upper()}_SHA256": digest for kind, digest in self.documents.digests.items()}
        return documents | {
            "UPDRAFT_CONFIG": self.config.to_env(),
            "LEDGER_TABLE": self.ledger.table_name,
            "LOCK_TABLE": self.locks.table_name,
            "DOCUMENT_INVENTORY": names["inventory"],
            "DOCUMENT_APPLY": names["apply"],
            "DOCUMENT_VERIFY": names["verify"],
            "DOCUMENT_ROLLBACK": names["rollback"],
            "POWERTOOLS_SERVICE_NAME": "updraft",
            "POWERTOOLS_METRICS_NAMESPACE": "Updraft",
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }

    def add(
        self, spec: FunctionSpec, environment: dict[str, str], statements: list[iam.PolicyStatement]
    ) -> lambda_.Function:
        """A function beyond the rollout's own, with more environment and its own extra grants."""
        function = self._function(spec, environment, statements)
        self.functions[spec.name] = function
        return function

    def _function(
        self,
        spec: FunctionSpec,
        environment: dict[str, str] | None = None,
        statements: list[iam.PolicyStatement] | None = None,
    ) -> lambda_.Function:
        log_group = logs.LogGroup(self, f"{spec.construct_id}Logs", retention=LOG_RETENTION)
        role = iam.Role(
            self,
            f"{spec.construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Updraft {spec.name} function",
        )
        log_group.grant_write(role)
        for statement in [*self._statements(spec), *(statements or [])]:
            role.add_to_policy(statement)
        self._acknowledge_wildcards(spec, role)
        return lambda_.Function(
            self,
            spec.construct_id,
            code=self.code,
            handler=spec.handler,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            memory_size=spec.memory_mb,
            reserved_concurrent_executions=spec.reserved_concurrency,
            timeout=Duration.minutes(spec.timeout_minutes),
            role=role,
            layers=[self.powertools],
            environment=self.environment() | (environment or {}),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            system_log_level_v2=lambda_.SystemLogLevel.INFO,
        )

    def _statements(self, spec: FunctionSpec) -> list[iam.PolicyStatement]:
        statements = []
        if spec.reads_ledger:
            statements.append(iam.PolicyStatement(actions=list(LEDGER_READS), resources=[self.ledger.table_arn]))
        if spec.writes_ledger:
            statements.append(self.ledger_writes(spec.writes_ledger))
        if spec.step:
            statements.append(self._replay_records(spec.name))
        if spec.takes_lock:
            statements += self._lock_statements()
        if spec.describes_executions:
            statements.append(self._describe_executions())
        if spec.releases_lock:
            statements.append(iam.PolicyStatement(actions=["dynamodb:DeleteItem"], resources=[self.locks.table_arn]))
        if spec.runs_documents:
            documents = self.documents.arns(spec.runs_documents)
            statements += [
                # GetDocument: each document is checked against its deployed digest before it is sent.
                iam.PolicyStatement(actions=["ssm:GetDocument", "ssm:SendCommand"], resources=documents),
                self._on_group_hosts("ssm:SendCommand"),
            ]
        if spec.reboots_hosts:
            statements.append(self._on_group_hosts("ec2:RebootInstances"))
        if spec.reports_compliance:
            statements.append(self._on_group_hosts(_COMPLIANCE))
        if spec.unscoped_actions or spec.reads_alarms:
            actions = [*spec.unscoped_actions, *(["cloudwatch:DescribeAlarms"] if spec.reads_alarms else [])]
            statements.append(iam.PolicyStatement(actions=sorted(actions), resources=["*"]))
        if spec.publishes_events:
            statements.append(self.publish_lifecycle_events())
        if spec.ecs_actions and self._clusters():
            statements += self._ecs_statements(spec.ecs_actions)
        if spec.reaches_nodes and self.eks_clusters():
            statements.append(self._describe_clusters())
        return statements

    def eks_clusters(self) -> list[str]:
        """The EKS clusters of the configured groups."""
        return sorted({group.eks.cluster for group in self.config.groups if group.eks})

    def _describe_clusters(self) -> iam.PolicyStatement:
        """The endpoint and CA of the groups' EKS clusters: what the functions may do inside them is the
        cluster's own RBAC (eks/rbac.yaml), for the Kubernetes group their access entries map them to."""
        stack = Stack.of(self)
        clusters = [stack.format_arn(service="eks", resource="cluster", resource_name=c) for c in self.eks_clusters()]
        return iam.PolicyStatement(actions=["eks:DescribeCluster"], resources=clusters)

    def ledger_writes(self, prefixes: tuple[str, ...]) -> iam.PolicyStatement:
        """Writes of ledger items whose partition key starts with one of `prefixes`, and of no other."""
        return iam.PolicyStatement(
            actions=list(LEDGER_WRITES),
            resources=[self.ledger.table_arn],
            conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{p}*" for p in prefixes]}},
        )

    def _replay_records(self, step: str) -> iam.PolicyStatement:
        """A step's own idempotency records (one partition, `IDEMPOTENCY#<step>`): kept, read, and deleted when
        its attempt raised, so that the retry runs the step. Another step's records are out of its reach."""
        return iam.PolicyStatement(
            actions=list(IDEMPOTENCY_ACTIONS),
            resources=[self.ledger.table_arn],
            conditions={"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [idempotency_pk(step)]}},
        )

    def publish_lifecycle_events(self) -> iam.PolicyStatement:
        """PutEvents on the default bus, and only events whose source is Updraft's."""
        return iam.PolicyStatement(
            actions=["events:PutEvents"],
            resources=[Stack.of(self).format_arn(service="events", resource="event-bus", resource_name="default")],
            conditions={"StringEquals": {"events:source": SOURCE}},
        )

    def _clusters(self) -> list[str]:
        return sorted({group.ecs.cluster for group in self.config.groups if group.ecs})

    def _ecs_arns(self, resource: str, suffix: str = "") -> list[str]:
        stack = Stack.of(self)
        return [
            stack.format_arn(service="ecs", resource=resource, resource_name=cluster + suffix)
            for cluster in self._clusters()
        ]

    def _ecs_statements(self, actions: tuple[str, ...]) -> list[iam.PolicyStatement]:
        """ECS actions on the configured clusters, each scoped as far as the action allows."""
        in_clusters = {"ArnEquals": {"ecs:cluster": self._ecs_arns("cluster")}}
        scoped = {
            "ecs:ListContainerInstances": (self._ecs_arns("cluster"), None),
            "ecs:DescribeContainerInstances": (self._ecs_arns("container-instance", "/*"), in_clusters),
            "ecs:UpdateContainerInstancesState": (self._ecs_arns("container-instance", "/*"), in_clusters),
            # ListTasks names no resource the policy could match: the cluster condition is its only scope.
            "ecs:ListTasks": (["*"], in_clusters),
            "ecs:DescribeTasks": (self._ecs_arns("task", "/*"), in_clusters),
        }
        grouped: dict[tuple[tuple[str, ...], bool], list[str]] = {}
        for action in actions:
            resources, condition = scoped[action]
            grouped.setdefault((tuple(resources), condition is not None), []).append(action)
        return [
            iam.PolicyStatement(
                actions=sorted(names), resources=list(resources), conditions=in_clusters if conditioned else None
            )
            for (resources, conditioned), names in grouped.items()
        ]

    def _lock_statements(self) -> list[iam.PolicyStatement]:
        return [
            iam.PolicyStatement(actions=["dynamodb:GetItem", "dynamodb:PutItem"], resources=[self.locks.table_arn]),
            # A lock whose holder execution has ended may be taken over.
            self._describe_executions(),
        ]

    def _describe_executions(self) -> iam.PolicyStatement:
        return iam.PolicyStatement(actions=["states:DescribeExecution"], resources=[self._executions_arn()])

    def _on_group_hosts(self, action: str) -> iam.PolicyStatement:
        """`action` on EC2 instances, but only those tagged into one of the configured groups.

        A statement of its own: documents carry no group tag, so the condition would deny them."""
        return iam.PolicyStatement(
            actions=[action],
            resources=[self._instances_arn()],
            conditions={"StringEquals": {f"aws:ResourceTag/{self.config.tag_key}": self._group_names()}},
        )

    def _group_names(self) -> list[str]:
        return [group.name for group in self.config.groups]

    def _instances_arn(self) -> str:
        return Stack.of(self).format_arn(service="ec2", resource="instance", resource_name="*")

    def _executions_arn(self) -> str:
        return Stack.of(self).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{self.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def _acknowledge_wildcards(self, spec: FunctionSpec, role: iam.Role) -> None:
        unscoped = ", ".join((*TRACING_ACTIONS, *sorted(spec.unscoped_actions)))
        reason = f"{unscoped}: no resource-level permissions exist."
        if spec.reads_alarms:
            reason += " cloudwatch:DescribeAlarms (read only) must be granted on * to return composite alarms."
        if "ecs:ListTasks" in spec.ecs_actions and self._clusters():
            reason += " ecs:ListTasks: limited to the configured clusters by the ecs:cluster condition."
        acknowledge(role, "AwsSolutions-IAM5[Resource::*]", reason)
        if spec.ecs_actions:
            kinds = (
                ("container-instance", "task") if "ecs:DescribeTasks" in spec.ecs_actions else ("container-instance",)
            )
            for cluster in self._clusters():
                for kind in kinds:
                    acknowledge(
                        role,
                        f"AwsSolutions-IAM5[Resource::{nag_arn(self, 'ecs', f'{kind}/{cluster}/*')}]",
                        f"Container instances and tasks are only known at run time; limited to cluster {cluster}.",
                    )
        if spec.runs_documents or spec.reboots_hosts or spec.reports_compliance:
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::{nag_arn(self, 'ec2', 'instance/*')}]",
                "Instance ids are only known at run time; the "
                f"aws:ResourceTag/{self.config.tag_key} condition limits it to the configured groups' hosts.",
            )
        if spec.takes_lock or spec.describes_executions:
            executions = nag_arn(self, "states", f"execution:{self.state_machine_name}:*")
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::{executions}]",
                "Executions are named when they start; the ARN is limited to this project's state machine.",
            )
