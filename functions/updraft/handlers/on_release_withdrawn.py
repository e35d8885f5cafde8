"""EventBridge: a release was pulled. Running rollouts to it halt and roll back what they updated."""

from typing import Literal

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from updraft import flow
from updraft.handlers._common import logger, tracer
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
def handler(event: ReleaseWithdrawn, context: LambdaContext) -> dict:
    pulled = event.detail
    flagged = flow.withdraw(settings(), pulled.variant, pulled.arch, pulled.version, event.time)
    logger.warning("release withdrawn", extra={"version": pulled.version, "rollouts": flagged})
    return {"halting": flagged}
