"""Rollout executions: started from inside Updraft (an alarm that rolls a finished rollout back), and read back
before an event about one is acted on."""

from __future__ import annotations

import json
from typing import Any

from updraft.adapters.aws import client


def start(state_machine_arn: str, name: str, request: dict[str, Any]) -> bool:
    """Start an execution named `name`; False if one by that name already ran (names are unique for
    90 days, which makes a repeated start harmless)."""
    sfn = client("stepfunctions")
    try:
        sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(request))
    except sfn.exceptions.ExecutionAlreadyExists:
        return False
    return True


def status(execution_arn: str) -> str | None:
    """What Step Functions says of the execution now (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, ...), or
    None if it has no such execution."""
    sfn = client("stepfunctions")
    try:
        return sfn.describe_execution(executionArn=execution_arn)["status"]
    except sfn.exceptions.ExecutionDoesNotExist:
        return None
