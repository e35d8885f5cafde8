"""SNS, as the other services reach it: a topic named by its ARN. moto's SNS fans a message out to its
subscribers itself and needs no patch; EventBridge's and CloudWatch's deliveries to it are patched in
events.py and cloudwatch.py, its CloudFormation resources in cloudformation.py."""

from __future__ import annotations

from moto.sns import models as sns_models


def is_topic(arn: str) -> bool:
    return arn.split(":")[2:3] == ["sns"]


def backend(arn: str) -> sns_models.SNSBackend:
    """The SNS backend of the account and region the ARN names."""
    _, _, _, region, account, _ = arn.split(":", 5)
    return sns_models.sns_backends[account][region]
