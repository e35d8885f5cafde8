"""Advance every host in scope one step; gate the wave on the error budget when it is done."""

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from updraft import rollout
from updraft.handlers._common import logger, step_input, tracer
from updraft.settings import settings

COUNTED = {"HostsUpdated": "updated", "HostsRolledBack": "rolled-back", "HostsRollbackFailed": "rollback-failed"}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    step = step_input(event)
    result = rollout.check_hosts(settings(), step.rollout.domain(), step.wave, step.scope, step.now)
    progress = result["progress"]
    if progress["done"]:
        for name, state in COUNTED.items():
            # One metric at a time, dimensioned by this rollout's group (a warm function serves many).
            with single_metric(
                name=name,
                unit=MetricUnit.Count,
                value=progress["states"].get(state, 0),
                default_dimensions={"group": step.rollout.group},
            ):
                pass
        logger.info("scope done", extra={"progress": progress})
    return result
