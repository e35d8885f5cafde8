"""cdk-nag acknowledgements: one finding at a time, each with the reason it is acceptable."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Token, Validations
from constructs import Construct


def acknowledge(scope: Construct, finding: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding on `scope` and everything under it."""
    Validations.of(scope).acknowledge(Acknowledgment(id=f"AwsSolutions::{finding}", reason=reason))


def nag_arn(scope: Construct, service: str, resource: str) -> str:
    """An ARN as cdk-nag spells it in a finding id, unresolved pseudo parameters written `<AWS::Region>`."""
    stack = Stack.of(scope)
    region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
    account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
    return f"arn:<AWS::Partition>:{service}:{region}:{account}:{resource}"
