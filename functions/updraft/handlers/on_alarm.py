"""EventBridge: a group's alarm went to ALARM. Inside the group's rollback window after a successful
rollout, roll that rollout back (a running rollout's own alarm gate handles alarms during it)."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from updraft import flow
from updraft.adapters import alarms
from updraft.handlers._common import logger, tracer
from updraft.settings import settings


class AlarmState(BaseModel):
    value: str


class AlarmChange(BaseModel):
    alarmName: str  # CloudWatch's field name
    state: AlarmState


class AlarmStateChange(EventBridgeModel):
    detail: AlarmChange


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_parser(model=AlarmStateChange)
def handler(event: AlarmStateChange, context: LambdaContext) -> dict[str, Any]:
    name = event.detail.alarmName
    if event.detail.state.value != "ALARM":
        return {"started": []}
    # The event's word is checked with CloudWatch: the alarm must be this account's and in ALARM still. An
    # alarm holds a state for at least one period (10 s or more), longer than an asynchronous invocation waits.
    now = alarms.state(name)
    if now != "ALARM":
        logger.warning("the event says alarm %s fired; CloudWatch says %s: nothing rolled back", name, now)
        return {"started": [], "alarm_state": now}
    started = flow.rollback_on_alarm(settings(), name, event.time)
    logger.warning("alarm", extra={"alarm": name, "rollbacks": started})
    return {"started": started}
