"""The rollout state machine's routing: the definition the stack deploys (stacks/definition.py) on moto's
interpreter, on virtual time, with every Lambda step answering from a script of canned results (no handler runs).
What is under test is the definition itself: its choices, retries, catches, waits and the data it passes between
states."""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import boto3
from moto import mock_aws
from moto.awslambda.models import LambdaFunction

from sim import aws
from sim.aws.lambda_ import LambdaServiceError
from sim.clock import VirtualClock
from stacks.definition import definition, substitute
from stacks.functions import FUNCTIONS
from stacks.rollout_engine import substitution_key

STEPS = tuple(spec.name for spec in FUNCTIONS if spec.step)  # the state machine's Lambda steps
LOCKS = "locks"
ROLLOUT = {"rollout_id": "r-1", "group": "web", "target_version": "1.26.1"}


@dataclass(frozen=True)
class Raise:
    """The handler raised: Step Functions names the error after the exception's class."""

    error_type: str
    message: str = "scripted"


@dataclass(frozen=True)
class Refuse:
    """The Lambda service refused the Invoke before any handler ran: the error is `Lambda.<code>`."""

    code: str = "ServiceException"


@dataclass
class Call:
    step: str
    payload: dict[str, Any]
    at: float  # virtual seconds


@dataclass
class Script:
    """Per step, the answers it gives in order (a result, Raise, Refuse, or a function of the step's input
    returning one); the last answer of a step repeats."""

    answers: dict[str, list[Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    def on(self, step: str, *answers: Any) -> Script:
        assert step in STEPS, step
        self.answers.setdefault(step, []).extend(answers)
        return self

    def answer(self, step: str, payload: dict[str, Any], at: float) -> Any:
        self.calls.append(Call(step, payload, at))
        queued = self.answers.get(step)
        if not queued:
            return Raise("UnscriptedStep", f"{step} has no scripted answer")
        answer = queued.pop(0) if len(queued) > 1 else queued[0]
        return answer(payload) if callable(answer) else answer

    def payloads(self, step: str) -> list[dict[str, Any]]:
        return [call.payload for call in self.calls if call.step == step]


@dataclass
class Run:
    status: str
    error: str | None
    output: Any
    states: list[str]  # every state entered, in order
    history: list[dict[str, Any]]


class Machine:
    """The deployed-shape state machine with scripted steps; `run(input, script)` runs one execution."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.script = Script()
        self.sfn = boto3.client("stepfunctions")
        self.locks = boto3.resource("dynamodb").Table(LOCKS)
        role = boto3.client("iam").create_role(RoleName="routing", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        functions = boto3.client("lambda")
        substitutions: dict[str, str] = {"LockTableName": LOCKS}
        for step in STEPS:
            name = substitution_key(step).removesuffix("FunctionArn")
            arn = functions.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=role,
                Handler=f"{step}.handler",
                Code={"ZipFile": _empty_zip()},
            )["FunctionArn"]
            substitutions[substitution_key(step)] = arn
        self.substitutions = substitutions  # what the deployed definition's placeholders stand for here
        self.arn = self.sfn.create_state_machine(
            name="rollout", definition=substitute(definition(), substitutions), roleArn=role
        )["stateMachineArn"]

    def invoke(self, function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        step = function.handler.removesuffix(".handler")
        payload = event if isinstance(event, dict) else json.loads(event or "{}")
        answer = self.script.answer(step, payload, self.clock.seconds)
        if isinstance(answer, Refuse):
            raise LambdaServiceError(answer.code, step)
        if isinstance(answer, Raise):
            return json.dumps({"errorType": answer.error_type, "errorMessage": answer.message}), True, ""
        return json.dumps(answer), False, ""

    def run(self, request: Any, script: Script) -> Run:
        self.script = script
        body = request if isinstance(request, str) else json.dumps(request)
        arn = self.sfn.start_execution(stateMachineArn=self.arn, input=body)["executionArn"]
        status = lambda: self.sfn.describe_execution(executionArn=arn)["status"]  # noqa: E731
        assert self.clock.run_until(lambda: status() != "RUNNING", "the execution to end", within=40 * 86_400)
        described = self.sfn.describe_execution(executionArn=arn)
        history = self.sfn.get_execution_history(executionArn=arn)["events"]
        states = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
        output = json.loads(described["output"]) if described.get("output") else None
        return Run(described["status"], described.get("error"), output, states, history)

    def hold_lock(self, holder: str) -> None:
        self.locks.put_item(Item={"group": ROLLOUT["group"], "holder": holder})


def _empty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "")
    return buffer.getvalue()


# -- canned step results, in the shapes the handlers return ---------------------------------------------------
def acquired(acquired: bool = True) -> dict[str, Any]:
    return {"acquired": acquired, "holder": "arn:holder", "rollout": ROLLOUT}


def progress(wave: int | None = None, **fields: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"rollout": ROLLOUT, "progress": {"next_poll_seconds": 30, **fields}}
    if wave is not None:
        result["wave"] = wave
    return result


def finished(outcome: str) -> dict[str, Any]:
    return {"rollout": ROLLOUT, "outcome": outcome, "summary": {}}


@contextmanager
def deployed() -> Iterator[Machine]:
    """The state machine in a fresh moto, its steps scripted, on a clock of its own."""
    saved = dict(os.environ)
    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    )
    clock = VirtualClock()
    try:
        with mock_aws(config=aws.MOTO_CONFIG), clock.harness(), aws.scheduled(clock):
            boto3.setup_default_session()
            boto3.client("dynamodb").create_table(
                TableName=LOCKS,
                KeySchema=[{"AttributeName": "group", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "group", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            machine = Machine(clock)
            with mock.patch.object(
                LambdaFunction, "_invoke_lambda", lambda function, event=None: machine.invoke(function, event)
            ):
                yield machine
    finally:
        os.environ.clear()
        os.environ.update(saved)
