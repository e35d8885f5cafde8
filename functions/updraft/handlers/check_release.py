"""Apply the group's release policy to a rollout that a release announcement started, if the detector made it."""

from datetime import datetime

from aws_lambda_powertools.utilities.typing import LambdaContext

from updraft import flow
from updraft.handlers._common import forged_announcement, logger, metrics, replayable, tracer
from updraft.settings import settings


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@replayable
def handler(event: dict, context: LambdaContext) -> dict:
    now = datetime.fromisoformat(event["now"])
    result = flow.check_release(settings(), event.get("request"), event["execution_id"], now)
    if result["verdict"] == flow.FORGED:
        request = result["request"]
        forged_announcement("available", request.get("target_version", ""), result["reason"], event["execution_id"])
    else:
        logger.info("release policy", extra={k: v for k, v in result.items() if k != "request"})
    return result
