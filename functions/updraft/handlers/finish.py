"""Record the rollout's outcome; on the error path, leave no host in a non-final state."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from updraft import rollout
from updraft.handlers._common import logger, step_input, tracer
from updraft.settings import settings


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    step = step_input(event)
    result = rollout.finish(settings(), step.rollout.domain(), step.now, step.error)
    logger.info("rollout finished", extra={"outcome": result["outcome"], "summary": result["summary"]})
    return result
