"""EventBridge: a release was pulled. Running rollouts to it halt and roll back what they updated, if the
detector's release record says it withdrew that release."""

from typing import Literal

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from updraft import flow
from updraft.handlers._common import forged_announcement, logger, metrics, tracer
from updraft.settings import settings


class Withdrawal(BaseModel):
    variant: str
    arch: Literal["x86_64", "arm64"]
    version: str


class ReleaseWithdrawn(EventBridgeModel):
    detail: Withdrawal


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_parser(model=ReleaseWithdrawn)
@metrics.log_metrics
def handler(event: ReleaseWithdrawn, context: LambdaContext) -> dict:
    pulled = event.detail
    result = flow.withdraw(settings(), pulled.variant, pulled.arch, pulled.version, event.time)
    if "forged" in result:
        forged_announcement("withdrawn", pulled.version, result["forged"], event.account, event.source)
    else:
        logger.warning("release withdrawn", extra={"version": pulled.version, "rollouts": result["halting"]})
    return result
