"""After a wave: its alarms must stay OK through the bake time before the next wave starts."""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from updraft import flow
from updraft.handlers._common import emit, logger, metrics, replayable, step_input, tracer
from updraft.settings import settings


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@replayable
def handler(event: dict, context: LambdaContext) -> dict:
    step = step_input(event)
    result = flow.bake(settings(), step.rollout.domain(), step.wave, step.now)
    progress = result["progress"]
    if "wave_duration_seconds" in progress:  # the bake ended: the wave is over
        emit("WaveDurationSeconds", MetricUnit.Seconds, progress["wave_duration_seconds"], step.rollout.group)
    logger.info("baking", extra={"progress": progress})
    return result
