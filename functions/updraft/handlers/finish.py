"""Record the rollout's outcome; on the error path, leave no host in a non-final state."""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from updraft import flow
from updraft.domain.rollout_record import RolloutStatus
from updraft.handlers._common import emit, logger, metrics, replayable, step_input, tracer
from updraft.settings import settings

# How a rollout ended -> the metric that counts it (a rollout with nothing to do succeeded).
OUTCOME_METRICS = {
    RolloutStatus.SUCCEEDED: "RolloutsSucceeded",
    RolloutStatus.NOTHING_TO_DO: "RolloutsSucceeded",
    RolloutStatus.HALTED: "RolloutsHalted",
    RolloutStatus.FAILED: "RolloutsFailed",
    RolloutStatus.TIMED_OUT: "RolloutsFailed",
    RolloutStatus.ABORTED: "RolloutsAborted",
}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@replayable
def handler(event: dict, context: LambdaContext) -> dict:
    step = step_input(event)
    result = flow.finish(settings(), step.rollout.domain(), step.now, step.error)
    outcome = result["outcome"]
    emit(OUTCOME_METRICS[outcome], MetricUnit.Count, 1, step.rollout.group)
    logger.info("rollout finished", extra={"outcome": outcome, "summary": result["summary"]})
    return result
