"""Release watch: a scheduled check of Bottlerocket's signed update repositories, announcing releases
on Updraft's event bus. Deployed when the config has a `detection` section."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.delivery import FailedDeliveries
from stacks.functions import FunctionSpec, RolloutFunctions
from stacks.nag import acknowledge
from updraft.config import Detection, GroupPolicy, UpdraftConfig
from updraft.ledger_schema import RELEASES

ROOT = Path(__file__).resolve().parent.parent
EVENT_SOURCE = "updraft"  # what the detector's events carry as their source
TRUST_HISTORY = Duration.days(90)
TRUST_VERSIONS_KEPT = 10
# Every object-level call that changes or removes a stored object or version, or who may read it.
TRUST_WRITES = (
    "s3:PutObject",
    "s3:PutObjectAcl",
    "s3:PutObjectVersionAcl",
    "s3:PutObjectRetention",
    "s3:PutObjectLegalHold",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:ReplicateObject",
    "s3:ReplicateDelete",
)


class TrustedRootError(ValueError):
    """The configured root.json is missing, is not a TUF root, or is not the one its SHA-512 names: synth
    stops, naming the field."""


def read_trusted_root(detection: Detection, base: Path = ROOT) -> Path:
    """The root.json file the stack deploys, checked against the SHA-512 the operator wrote down."""
    path = base / detection.trusted_root_file
    field = "updraft.detection.trusted_root_file"
    if not path.is_file():
        raise TrustedRootError(f"{field}: {path} does not exist (see the README: Trusting Bottlerocket's root)")
    data = path.read_bytes()
    try:
        role = json.loads(data)["signed"]["_type"]
    except (ValueError, KeyError, TypeError):
        role = None
    if role != "root":
        raise TrustedRootError(f"{field}: {path} is not a TUF root.json")
    digest = hashlib.sha512(data).hexdigest()
    if digest != detection.trusted_root_sha512:
        raise TrustedRootError(
            f"updraft.detection.trusted_root_sha512: {path} has SHA-512 {digest}, not the one configured "
            "(check the file against the checksum Bottlerocket publishes before trusting it)"
        )
    return path


class ReleaseWatch(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: UpdraftConfig,
        functions: RolloutFunctions,
        state_machine: sfn.IStateMachine,
        failures: FailedDeliveries,
    ) -> None:
        detection = config.detection
        assert detection is not None
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.failures = failures
        # The name, not a Ref, wherever the bus is named: it is fixed, and reads the same everywhere.
        self.bus_name = f"{stack.stack_name}-releases"
        self.bus = events.EventBus(self, "Bus", event_bus_name=self.bus_name)
        self.named_bus = events.EventBus.from_event_bus_name(self, "NamedBus", self.bus_name)
        self.trust = self._trust_bucket()
        # A file asset: `cdk deploy` uploads it to the bootstrap bucket, which holds any size (Bottlerocket's
        # root is about 13.6 KB, more than an SSM parameter's 8 KB); the detector checks its SHA-512.
        self.root = s3_assets.Asset(self, "TrustedRoot", path=str(read_trusted_root(detection)))
        self.detector = functions.add(
            # One run at a time: the trust store is last-writer-wins.
            FunctionSpec(
                "detect_release",
                timeout_minutes=5,
                step=False,
                memory_mb=1024,
                reserved_concurrency=1,
                writes_ledger=(RELEASES,),  # the release ledger, and no other part
            ),
            environment={
                "EVENT_BUS": self.bus_name,
                "TRUST_BUCKET": self.trust.bucket_name,
                "TRUSTED_ROOT_BUCKET": self.root.s3_bucket_name,
                "TRUSTED_ROOT_KEY": self.root.s3_object_key,
                "TRUSTED_ROOT_SHA512": detection.trusted_root_sha512,
            },
            statements=self._detector_statements(stack),
        )
        self._only_the_detector_writes(self.detector.role)
        acknowledge(
            self.detector.role,
            f"AwsSolutions-IAM5[Resource::<{stack.get_logical_id(self.trust.node.default_child)}.Arn>/trust/*]",
            "Trusted metadata files are named per repository at run time; the prefix is this bucket's trust/.",
        )
        region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
        acknowledge(
            self.detector.role,
            f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:{region}::parameter/aws/service/bottlerocket/*]",
            "AWS's public Bottlerocket parameters (latest image version per variant and arch), read to "
            "cross-check the verified repository; which variants is only known from the config at run time.",
        )
        self._only_the_detector_publishes(self.detector.role)
        schedule = events.Rule(
            self,
            "Schedule",
            description="Updraft: check the Bottlerocket update repositories for new and withdrawn releases",
            schedule=events.Schedule.expression(detection.schedule),
        )
        schedule.add_target(failures.lambda_target(self.detector, retry_attempts=2, max_event_age=Duration.hours(1)))
        automatic = [group for group in config.groups if group.auto_rollout]
        if automatic:
            role = self._starter_role(stack, automatic)
            for group in automatic:
                self._start_rollouts(group, state_machine, role)
        self._halt_withdrawn(functions)

    def _only_the_detector_publishes(self, detector: iam.IRole | None) -> None:
        """The bus takes releases from the detector's role alone. Within one account an Allow in either the
        identity or the resource policy suffices, so an Allow here would not stop a role whose own policy
        grants PutEvents on `*`: the explicit Deny for every other principal does (an explicit Deny wins).
        https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html"""
        assert detector is not None
        publish = {"actions": ["events:PutEvents"], "resources": [self.bus.event_bus_arn]}
        # Each statement is an AWS::Events::EventBusPolicy of its own, named by its sid.
        self.bus.add_to_resource_policy(
            iam.PolicyStatement(sid="DetectorPublishes", principals=[iam.ArnPrincipal(detector.role_arn)], **publish)
        )
        self.bus.add_to_resource_policy(
            iam.PolicyStatement(
                sid="NobodyElsePublishes",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": detector.role_arn}},
                **publish,
            )
        )

    @staticmethod
    def release_rule_name(group: GroupPolicy) -> str:
        # Unique on the bus, which is this stack's own: at most 39 characters of EventBridge's 64.
        return f"release-{group.name}"

    def _starter_role(self, stack: Stack, groups: list[GroupPolicy]) -> iam.Role:
        """The role the release rules start rollouts with, only on behalf of those rules in this account
        (https://docs.aws.amazon.com/eventbridge/latest/userguide/cross-service-confused-deputy-prevention.html).
        Their ARNs are built from their names: `rule.rule_arn` would make the rules and the role need each other."""
        rule_arns = [
            stack.format_arn(
                service="events", resource="rule", resource_name=f"{self.bus_name}/{self.release_rule_name(g)}"
            )
            for g in groups
        ]
        return iam.Role(
            self,
            "StartRolloutsRole",
            description="Updraft: the release rules start rollout executions",
            assumed_by=iam.ServicePrincipal(
                "events.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnEquals": {"aws:SourceArn": rule_arns},
                },
            ),
        )

    def _halt_withdrawn(self, functions: RolloutFunctions) -> None:
        # Running rollouts of a pulled release are found through the locks they hold.
        function = functions.add(
            FunctionSpec("on_release_withdrawn", timeout_minutes=1, step=False),
            environment={},
            statements=[iam.PolicyStatement(actions=["dynamodb:Scan"], resources=[functions.locks.table_arn])],
        )
        rule = events.Rule(
            self,
            "Withdrawn",
            description="Updraft: halt and roll back the running rollouts of a withdrawn release",
            event_bus=self.named_bus,
            event_pattern=events.EventPattern(source=[EVENT_SOURCE], detail_type=["Bottlerocket Release Withdrawn"]),
        )
        rule.node.add_dependency(self.bus)
        rule.add_target(self.failures.lambda_target(function, retry_attempts=8, max_event_age=Duration.hours(6)))

    def _start_rollouts(self, group: GroupPolicy, state_machine: sfn.IStateMachine, role: iam.IRole) -> None:
        """A release of the group's variant and arch starts its rollout; the release policy then decides when."""
        rule = events.Rule(
            self,
            f"Release{group.name.title().replace('-', '')}",
            rule_name=self.release_rule_name(group),
            description=f"Updraft: start a rollout of group {group.name} when a release of {group.variant} is verified",
            event_bus=self.named_bus,
            event_pattern=events.EventPattern(
                source=[EVENT_SOURCE],
                detail_type=["Bottlerocket Release Available"],
                detail={"variant": [group.variant], "arch": [group.arch]},
            ),
        )
        request = {
            "group": group.name,
            "target_version": events.EventField.from_path("$.detail.version"),
            "released_at": events.EventField.from_path("$.detail.released_at"),
            "requested_by": "release-event",
        }
        rule.node.add_dependency(self.bus)
        rule.add_target(
            self.failures.state_machine_target(
                state_machine,
                role=role,
                input=events.RuleTargetInput.from_object(request),
                retry_attempts=8,
                max_event_age=Duration.hours(24),
            )
        )

    def _trust_bucket(self) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            "Trust",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            versioned=True,  # every trusted metadata version stays recoverable for TRUST_HISTORY
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="trust-history",
                    # The detector saves each file the repository re-signed (timestamp.json and snapshot.json
                    # often, up to every run): without expiry their old versions pile up forever. 90 days covers
                    # an investigation of what was trusted when; each file's newest 10 previous versions (root.json
                    # rotates rarely) stay whatever their age.
                    noncurrent_version_expiration=TRUST_HISTORY,
                    noncurrent_versions_to_retain=TRUST_VERSIONS_KEPT,
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
        )
        acknowledge(
            bucket,
            "AwsSolutions-S1",
            "The trust bucket holds only public TUF metadata, which its policy lets the detection function "
            "alone write or delete; versioning keeps 90 days of states (and each file's newest 10 previous "
            "versions), and CloudTrail data events can audit access without a second bucket.",
        )
        return bucket

    def _only_the_detector_writes(self, detector_role: iam.IRole) -> None:
        """What trust.py assumes (whoever writes the store decides what is trusted), enforced: no other
        principal, administrators included, may write or delete trusted metadata. They keep reading it and
        managing the bucket (its policy too: a deliberate change of this rule stays possible). S3 Lifecycle
        expires versions as the service, not as a principal: the policy does not stop it."""
        self.trust.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheDetectorWritesTrust",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=list(TRUST_WRITES),
                resources=[self.trust.arn_for_objects("*")],
                # aws:PrincipalArn is the role's ARN for any of its sessions.
                conditions={"ArnNotEquals": {"aws:PrincipalArn": detector_role.role_arn}},
            )
        )

    def _detector_statements(self, stack: Stack) -> list[iam.PolicyStatement]:
        public = stack.format_arn(
            service="ssm", account="", resource="parameter", resource_name="aws/service/bottlerocket/*"
        )
        objects = self.trust.arn_for_objects("trust/*")
        return [
            iam.PolicyStatement(actions=["s3:GetObject", "s3:PutObject"], resources=[objects]),
            # Without ListBucket a missing key answers AccessDenied, not NoSuchKey.
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[self.trust.bucket_arn],
                conditions={"StringLike": {"s3:prefix": ["trust/*"]}},
            ),
            # The one object of the bootstrap bucket that is the deployed root.json.
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[self.root.bucket.arn_for_objects(self.root.s3_object_key)]
            ),
            iam.PolicyStatement(actions=["ssm:GetParameter"], resources=[public]),
            iam.PolicyStatement(actions=["events:PutEvents"], resources=[self.bus.event_bus_arn]),
        ]
