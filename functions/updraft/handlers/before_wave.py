"""Before every wave: an abort, a kill switch, a pause or a closed maintenance window holds it back."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from updraft import rollout
from updraft.handlers._common import logger, step_input, tracer
from updraft.settings import settings


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    step = step_input(event)
    result = rollout.before_wave(settings(), step.rollout.domain(), step.wave, step.now)
    logger.info("before wave", extra={"progress": result["progress"]})
    return result
