"""EventBridge: a group's alarm went to ALARM. Inside the group's rollback window after a successful
rollout, roll that rollout back (a running rollout's own alarm gate handles alarms during it)."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from updraft import flow
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
    if event.detail.state.value != "ALARM":
        return {"started": []}
    started = flow.rollback_on_alarm(settings(), event.detail.alarmName, event.time)
    logger.warning("alarm", extra={"alarm": event.detail.alarmName, "rollbacks": started})
    return {"started": started}
