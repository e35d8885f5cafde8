"""EventBridge: a rollout execution ended ABORTED, TIMED_OUT or FAILED. Settle what it left behind."""

from typing import Literal

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from updraft import flow
from updraft.adapters import executions
from updraft.adapters.ledger import Ledger
from updraft.domain.rollout_record import RolloutRecord
from updraft.errors import RolloutNotFound
from updraft.handlers._common import logger, tracer
from updraft.settings import settings

# What the rule delivers (stacks/rollout_engine.py); a successful end settles itself through its Finish state.
ENDED_ABNORMALLY = ("ABORTED", "TIMED_OUT", "FAILED")


class ExecutionStatusChange(BaseModel):
    executionArn: str
    name: str
    status: Literal["ABORTED", "TIMED_OUT", "FAILED", "SUCCEEDED", "RUNNING"]


class ExecutionEnded(EventBridgeModel):
    detail: ExecutionStatusChange


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_parser(model=ExecutionEnded)
def handler(event: ExecutionEnded, context: LambdaContext) -> dict:
    env, change = settings(), event.detail
    # The event's word is checked with Step Functions itself (its role may describe only this project's
    # executions): an execution still running is not settled, and the status settled is the one described.
    status = executions.status(change.executionArn)
    logger.append_keys(rollout_id=change.name, status=status)
    if status not in ENDED_ABNORMALLY:
        logger.warning("the event says the execution ended abnormally; Step Functions says %s: nothing settled", status)
        return {"settled": False, "status": status}
    try:
        record = RolloutRecord.from_item(Ledger(env.ledger_table).rollout(change.name))
    except RolloutNotFound:
        logger.info("no rollout recorded for this execution (rejected or never started)")
        return {"settled": False}
    result = flow.settle(env, record.reference, change.executionArn, status, event.time)
    logger.info("execution settled", extra=result)
    return {"settled": True, **result}
