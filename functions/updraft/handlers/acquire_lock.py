"""Validate the rollout request and take the group's lock."""

from datetime import datetime

from aws_lambda_powertools.utilities.typing import LambdaContext

from updraft import flow
from updraft.handlers._common import logger, replayable, tracer
from updraft.settings import settings


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@replayable
def handler(event: dict, context: LambdaContext) -> dict:
    now = datetime.fromisoformat(event["now"])
    result = flow.acquire(settings(), event.get("request"), event["execution_id"], event["rollout_id"], now)
    logger.info("lock", extra={"acquired": result["acquired"], "holder": result["holder"]})
    return result
