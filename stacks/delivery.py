"""No lost events: the one queue that keeps what EventBridge could not deliver and what an asynchronously
invoked function failed to handle, and the targets that use it.

- A Lambda function invoked by a rule runs asynchronously: Lambda retries a failed run twice, then sends the
  invocation record to the function's on-failure destination (this queue).
  https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
- A target EventBridge could not deliver to (Invoke or StartExecution refused after its retry policy) goes to
  the target's dead-letter queue (this queue), the error in the message attributes.
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html
"""

from __future__ import annotations

from typing import Any

import jsii
from aws_cdk import Duration
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.nag import acknowledge

RETENTION = Duration.days(14)  # SQS's longest: time to look at a failure and replay it
# Lambda's own default, written out so that the template (and the simulation) say it.
ASYNC_RETRY_ATTEMPTS = 2


@jsii.implements(lambda_.IDestination)
class _QueueDestination:
    """The queue as an on-failure destination, granting the function's role sqs:SendMessage alone (CDK's
    SqsDestination grants GetQueueAttributes and GetQueueUrl too, which Lambda does not use)."""

    def __init__(self, queue: sqs.IQueue) -> None:
        self._queue = queue

    def bind(self, _scope: Construct, fn: lambda_.IFunction, _options: Any = None) -> lambda_.DestinationConfig:
        fn.add_to_role_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self._queue.queue_arn]))
        return lambda_.DestinationConfig(destination=self._queue.queue_arn)


class FailedDeliveries(Construct):
    """`queue` takes every undelivered event and failed asynchronous invocation; build the rules' targets with
    `lambda_target` and `state_machine_target` so that theirs end there too."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        # SSE-SQS rather than a KMS key: EventBridge and Lambda then send to the queue with no key policy
        # statement and no kms: grant (a customer managed key would need both, for every sender), and the
        # notification key's policy stays limited to the topic's publishers. The messages are events and
        # invocation records, which the ledger and the logs hold as well.
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=RETENTION,
        )
        acknowledge(
            self.queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue of the stack's rule targets and the on-failure "
            "destination of its asynchronously invoked functions; its alarm pages on the first message.",
        )
        self._configured: set[str] = set()

    def lambda_target(
        self, function: lambda_.Function, *, retry_attempts: int, max_event_age: Duration
    ) -> targets.LambdaFunction:
        """A rule's Lambda target: undelivered events, and runs that failed every attempt, end on the queue."""
        self._on_failure(function)
        return targets.LambdaFunction(
            function, dead_letter_queue=self.queue, retry_attempts=retry_attempts, max_event_age=max_event_age
        )

    def state_machine_target(
        self,
        state_machine: sfn.IStateMachine,
        *,
        role: iam.IRole,
        input: Any,
        retry_attempts: int,
        max_event_age: Duration,
    ) -> targets.SfnStateMachine:
        """A rule's Step Functions target: a start EventBridge could not make ends on the queue."""
        return targets.SfnStateMachine(
            state_machine,
            input=input,
            role=role,
            dead_letter_queue=self.queue,
            retry_attempts=retry_attempts,
            max_event_age=max_event_age,
        )

    def _on_failure(self, function: lambda_.Function) -> None:
        if function.node.path in self._configured:
            return
        self._configured.add(function.node.path)
        function.configure_async_invoke(on_failure=_QueueDestination(self.queue), retry_attempts=ASYNC_RETRY_ATTEMPTS)
