"""Find the group's running, SSM-online hosts and send them the inventory document."""

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
    return flow.start_inventory(settings(), step.rollout.domain(), step.now)
