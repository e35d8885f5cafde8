"""EventBridge events, the state machine's step input and the rollout request: parsed or refused by name."""

from __future__ import annotations

import pytest
from hypothesis import given
from property_strategies import documents, only_named_errors, pathological, texts
from pydantic import BaseModel

from updraft.config import RolloutRequest
from updraft.handlers._common import StepInput
from updraft.handlers.on_alarm import AlarmStateChange
from updraft.handlers.on_execution_end import ExecutionEnded
from updraft.handlers.on_release_withdrawn import ReleaseWithdrawn


def event(source: str, detail_type: str, detail: dict) -> dict:
    return {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "detail-type": detail_type,
        "source": source,
        "account": "123456789012",
        "time": "2026-01-05T09:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:prod-errors"],
        "detail": detail,
    }


ALARM = event(
    "aws.cloudwatch",
    "CloudWatch Alarm State Change",
    {
        "alarmName": "prod-errors",
        "state": {"value": "ALARM", "reason": "Threshold Crossed", "timestamp": "2026-01-05T09:00:00.000+0000"},
        "previousState": {"value": "OK"},
    },
)
WITHDRAWN = event(
    "updraft.releases",
    "Bottlerocket release withdrawn",
    {"variant": "aws-ecs-2", "arch": "x86_64", "version": "1.26.1"},
)
EXECUTION_ENDED = event(
    "aws.states",
    "Step Functions Execution Status Change",
    {
        "executionArn": "arn:aws:states:us-east-1:123456789012:execution:Updraft-rollout:r-1",
        "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:Updraft-rollout",
        "name": "r-1",
        "status": "FAILED",
        "startDate": 1767603600000,
    },
)
STEP_INPUT = {
    "rollout": {"rollout_id": "r-1", "group": "web", "target_version": "1.26.1"},
    "now": "2026-01-05T09:00:00+00:00",
    "wave": 2,
    "scope": "wave",
    "error": None,
}
ROLLOUT_REQUEST = {
    "group": "prod",
    "target_version": "v1.26.1",
    "requested_by": "release watch",
    "released_at": "2026-01-05T09:00:00Z",
}
MODELS: list[tuple[type[BaseModel], dict]] = [
    (AlarmStateChange, ALARM),
    (ReleaseWithdrawn, WITHDRAWN),
    (ExecutionEnded, EXECUTION_ENDED),
    (StepInput, STEP_INPUT),
    (RolloutRequest, ROLLOUT_REQUEST),
]
IDS = [model.__name__ for model, _ in MODELS]


@pytest.mark.parametrize(("model", "valid"), MODELS, ids=IDS)
def test_the_valid_example_parses(model: type[BaseModel], valid: dict) -> None:
    assert model.model_validate(valid)


@pytest.mark.parametrize(("model", "valid"), MODELS, ids=IDS)
def test_any_document_parses_or_is_refused_by_name(model: type[BaseModel], valid: dict) -> None:
    @given(documents(valid))
    def check(data: object) -> None:
        parsed = only_named_errors(model.model_validate, data)
        assert parsed is None or isinstance(parsed, model)

    check()


@pytest.mark.parametrize(("model", "valid"), MODELS, ids=IDS)
def test_any_text_parses_or_is_refused_by_name(model: type[BaseModel], valid: dict) -> None:
    # Powertools' event_parser validates a str event as JSON text.
    @given(texts(valid))
    def check(text: str) -> None:
        parsed = only_named_errors(model.model_validate_json, text)
        assert parsed is None or isinstance(parsed, model)

    check()


@pytest.mark.parametrize(("model", "valid"), MODELS, ids=IDS)
def test_nesting_deeper_than_the_recursion_limit_is_refused_by_name(model: type[BaseModel], valid: dict) -> None:
    for data in pathological(valid):
        only_named_errors(model.model_validate, data)
