"""Advance every host in scope one step; gate the wave on the error budget when it is done."""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from updraft import rollout
from updraft.handlers._common import logger, metrics, step_input, tracer
from updraft.settings import settings


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    step = step_input(event)
    result = rollout.check_hosts(settings(), step.rollout.domain(), step.wave, step.scope, step.now)
    progress = result["progress"]
    if progress["done"]:
        states = progress["states"]
        metrics.add_dimension(name="group", value=step.rollout.group)
        metrics.add_metric(name="HostsUpdated", unit=MetricUnit.Count, value=states.get("updated", 0))
        metrics.add_metric(name="HostsRolledBack", unit=MetricUnit.Count, value=states.get("rolled-back", 0))
        metrics.add_metric(name="HostsRollbackFailed", unit=MetricUnit.Count, value=states.get("rollback-failed", 0))
        logger.info("scope done", extra={"progress": progress})
    return result
