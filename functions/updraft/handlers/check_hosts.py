"""Advance every host in scope one step; gate the wave on the error budget when it is done."""

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from updraft import flow
from updraft.handlers._common import emit, logger, metrics, replayable, sends_documents, step_input, tracer
from updraft.settings import settings

COUNTED = {"HostsUpdated": "updated", "HostsRolledBack": "rolled-back", "HostsRollbackFailed": "rollback-failed"}
# When a wave's gate runs, its hosts that failed have all ended rolled back or rollback-failed; hosts rolled
# back only because the rollout halted are rolled back after the gate.
FAILED_AT_GATE = ("rolled-back", "rollback-failed")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@sends_documents
@replayable
def handler(event: dict, context: LambdaContext) -> dict:
    step = step_input(event)
    result = flow.check_hosts(settings(), step.rollout.domain(), step.wave, step.scope, step.now)
    progress = result["progress"]
    if progress["done"]:
        group = step.rollout.group
        states = progress["states"]
        for name, state in COUNTED.items():
            emit(name, MetricUnit.Count, states.get(state, 0), group)
        if "verdict" in progress:  # the wave's gate ran
            emit("HostsFailed", MetricUnit.Count, sum(states.get(state, 0) for state in FAILED_AT_GATE), group)
        if "wave_duration_seconds" in progress:
            emit("WaveDurationSeconds", MetricUnit.Seconds, progress["wave_duration_seconds"], group)
        logger.info("scope done", extra={"progress": progress})
    return result
