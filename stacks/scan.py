"""checkov findings this stack accepts, each with the reason it holds here, written into the template.

checkov skips a check on a resource whose `Metadata.checkov.skip` lists `{"id": check, "comment": reason}`
(checkov.io, "Suppressing and Skipping Policies"; checkov/cloudformation/context_parser.py). Every
suppression is a row of `SUPPRESSIONS`; tests/infra/test_scanners.py fails on a finding no row covers and on a
row that suppresses nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import jsii
from aws_cdk import CfnResource, IAspect
from constructs import IConstruct

from stacks.functions import FUNCTIONS

FUNCTION = "AWS::Lambda::Function"
# Construct paths of the state machine's tasks, and of the functions EventBridge rules invoke.
STEPS = "|".join(spec.construct_id for spec in FUNCTIONS if spec.step)
STEP_FUNCTIONS = rf"/Functions/({STEPS})/Resource$"
EVENT_HANDLERS = r"/Functions/(OnExecutionEnd|OnAlarm|OnReleaseWithdrawn)/Resource$"
RULE_TARGETS = rf"/Functions/DetectRelease/Resource$|{EVENT_HANDLERS}"


@dataclass(frozen=True)
class Suppression:
    check: str
    resource_type: str
    reason: str
    path: str | None = None  # a regular expression searched in the resource's construct path

    def applies_to(self, resource: CfnResource) -> bool:
        return resource.cfn_resource_type == self.resource_type and (
            self.path is None or re.search(self.path, resource.node.path) is not None
        )


# AWS facts the reasons rest on: Step Functions' lambda:invoke is RequestResponse unless the task sets an
# InvocationType (docs.aws.amazon.com/step-functions/latest/dg/connect-lambda.html); a function's DLQ receives
# only asynchronous invocations that failed (lambda/latest/dg/invocation-async-retain-records.html), after Lambda's
# 2 retries (invocation-async-error-handling.html); Lambda keeps 100 of the account's concurrency unreserved
# (lambda/latest/dg/configuration-concurrency.html); Lambda encrypts environment variables at rest with an AWS
# managed key (configuration-envvars-encryption.html); CloudWatch Logs encrypts log data at rest
# (AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html).
SUPPRESSIONS = (
    Suppression(
        "CKV_AWS_116",
        FUNCTION,
        "A task of the rollout state machine: Step Functions invokes it synchronously (lambda:invoke, "
        "RequestResponse), retries it by the definition's policy and catches its errors; a DLQ only receives "
        "failed asynchronous invocations.",
        STEP_FUNCTIONS,
    ),
    Suppression(
        "CKV_AWS_116",
        FUNCTION,
        "Invoked asynchronously by an EventBridge rule: a run that fails Lambda's two retries goes, with its "
        "error, to the stack's failed-deliveries queue through an on-failure destination (EventInvokeConfig), "
        "which records more than a dead-letter queue would; the check looks only for DeadLetterConfig.",
        RULE_TARGETS,
    ),
    Suppression(
        "CKV_AWS_117",
        FUNCTION,
        "Calls only AWS service APIs (DynamoDB, SSM, EC2, ECS, CloudWatch, EventBridge, Step Functions, S3) "
        "and, for detect_release, Bottlerocket's public update repository over HTTPS: there is no private "
        "resource to reach, and a VPC would only add NAT or interface endpoints.",
    ),
    Suppression(
        "CKV_AWS_115",
        FUNCTION,
        "Bounded by the rollouts: an execution runs one task at a time (no Map or Parallel state), the group "
        "lock lets one execution per group past acquire_lock, and the rule-invoked handlers run once per "
        "execution end, alarm or withdrawal; reserving concurrency for each would take it from the account's "
        "unreserved pool, which Lambda keeps at 100 or more.",
        rf"{STEP_FUNCTIONS}|{EVENT_HANDLERS}",
    ),
    Suppression(
        "CKV_AWS_173",
        FUNCTION,
        "Lambda encrypts environment variables at rest with its AWS managed key; these hold table, document, "
        "bus and bucket names, the fleet config and the trusted root's SHA-512: no credential or secret.",
    ),
    Suppression(
        "CKV_AWS_119",
        "AWS::DynamoDB::Table",
        "Encrypted at rest with the AWS managed key (aws/dynamodb); the tables hold locks and rollout "
        "records (versions, instance ids, states), no secret, so a customer managed key would add key "
        "grants to every function role for no control this stack uses.",
    ),
    Suppression(
        "CKV_AWS_158",
        "AWS::Logs::LogGroup",
        "CloudWatch Logs encrypts every log group at rest; the function logs and execution history hold "
        "rollout and host states, no secret, and a customer managed key would need a key policy for the "
        "regional Logs service principal.",
    ),
    Suppression(
        "CKV_AWS_27",
        "AWS::SQS::Queue",
        "The failed-deliveries queue is encrypted at rest with SQS-managed keys (SqsManagedSseEnabled); the check "
        "recognises only a KMS key, which would need key-policy grants for EventBridge and every function role.",
        r"/FailedDeliveries/Queue/Resource$",
    ),
    Suppression(
        "CKV_AWS_18",
        "AWS::S3::Bucket",
        "The trust bucket holds only public TUF metadata, written by the detection function alone; "
        "versioning keeps every state, and CloudTrail data events can audit access without a second bucket.",
        r"/ReleaseWatch/Trust/Resource$",
    ),
)


@jsii.implements(IAspect)
class CheckovSuppressions:
    """Writes each applicable row of `suppressions` into its resource's checkov metadata."""

    def __init__(self, suppressions: tuple[Suppression, ...] = SUPPRESSIONS) -> None:
        self.suppressions = suppressions

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, CfnResource):
            return
        skips = [{"id": s.check, "comment": s.reason} for s in self.suppressions if s.applies_to(node)]
        if not skips:
            return
        present = (node.get_metadata("checkov") or {}).get("skip", [])
        node.add_metadata("checkov", {"skip": [*present, *(skip for skip in skips if skip not in present)]})
