"""Pin the target version and apply it on the wave's hosts."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from updraft import flow
from updraft.handlers._common import logger, metrics, replayable, sends_documents, step_input, tracer
from updraft.settings import settings


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@sends_documents
@replayable
def handler(event: dict, context: LambdaContext) -> dict:
    step = step_input(event)
    result = flow.apply_wave(settings(), step.rollout.domain(), step.wave, step.now)
    logger.info("wave started", extra={"progress": result["progress"]})
    return result
