"""Lambda: functions run their real handler in-process, with their deployed environment, and sign their requests
with their execution role's session.

One patch, of `LambdaFunction._invoke_lambda`, does what an Invoke call does, in this order:
1. the planned Lambda service error due now, if any (sim/faults.py), fails the Invoke call before the handler
   runs, as the service does (`LambdaServiceError`: Step Functions names it `Lambda.<code>`);
2. the handler runs under the function's identity (`running_function`), with the variables the Lambda runtime
   sets (AWS_LAMBDA_FUNCTION_NAME, ...), its AWS calls charged to its run (`INVOCATIONS`); an exception it
   raises is reported as the Lambda runtime reports it;
3. the hooks registered for the step (`AFTER_STEP`) run, outside the function's identity, before the
   execution goes on.
A second patch, of botocore's `RequestSigner.get_auth_instance`, signs what a running handler sends with the
credentials of its execution role's session (`running_credentials`), as Lambda hands them to the runtime: one
STS role session per function per world, named after the function, opened through moto's STS backend (so
moto, sim/aws/iam.py and the simulated EKS authenticator resolve its keys). The sessions of the deployed
functions are opened right after the deployment (`open_sessions`), so that opening one never draws moto's ids
in the middle of a test. Outside a handler, the harness's own credentials sign, as before.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import threading
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from botocore.credentials import Credentials
from botocore.signers import RequestSigner
from moto.awslambda.models import LambdaFunction, lambda_backends
from moto.core.exceptions import JsonRESTError
from moto.sts.models import sts_backends
from moto.sts.utils import DEFAULT_STS_SESSION_DURATION

from sim import faults
from sim.clock import VirtualClock

_RUNNING = threading.local()


class LambdaServiceError(JsonRESTError):
    """The Lambda service refusing an Invoke call (throttled or broken), before or after the handler ran."""

    def __init__(self, code: str, step: str) -> None:
        super().__init__(code, f"simulated {code} invoking the {step} step")
        self.code = faults.LAMBDA_ERROR_STATUS[code]


def running_function() -> str | None:
    """The Lambda function whose handler this thread is running, if any."""
    return getattr(_RUNNING, "name", None)


def running_credentials() -> Credentials | None:
    """The credentials of the running function's role session, if a handler runs in this thread."""
    return getattr(_RUNNING, "credentials", None)


# (account, region, function name) -> its execution role's session, for the life of the wiring.
_SESSIONS: dict[tuple[str, str, str], Credentials] = {}


def _session(function: LambdaFunction) -> Credentials:
    """The function's role session (AssumeRole, session name = the function's), opened once."""
    key = (function.account_id, function.region, function.function_name)
    if key not in _SESSIONS:
        session = sts_backends[function.account_id]["aws"].assume_role(
            region_name=function.region,
            role_session_name=function.function_name,
            role_arn=function.role,
            policy=None,
            duration=DEFAULT_STS_SESSION_DURATION,
            external_id=None,
        )
        _SESSIONS[key] = Credentials(session.access_key_id, session.secret_access_key, session.session_token)
    return _SESSIONS[key]


def open_sessions(account: str, region: str) -> None:
    """Open the session of every function deployed in the account and region (see the module docstring)."""
    for function in lambda_backends[account][region].list_functions():
        _session(function)


@dataclass
class Invocation:
    """One handler run: its function and the AWS calls it made (by service), for its billed duration."""

    function: str
    calls: Counter[str] = field(default_factory=Counter)


# Every handler run of the simulation, in order.
INVOCATIONS: list[Invocation] = []

# Callbacks run right after a handler returns, before its execution goes on: `AFTER_STEP["bake"]` etc.
# A test acts at an exact point of a rollout (an alarm fires mid-bake) without racing it.
AFTER_STEP: dict[str, list[Callable[[dict[str, Any], Any], None]]] = {}


def count_function_call(service: str) -> None:
    """Charge an AWS call to the handler run making it (botocore's before-call event calls this)."""
    invocation = getattr(_RUNNING, "invocation", None)
    if invocation is not None:
        invocation.calls[service] += 1


def patches(clock: VirtualClock, overrides: dict[str, str]) -> list[Any]:
    _SESSIONS.clear()
    return [
        mock.patch.object(LambdaFunction, "_invoke_lambda", _in_process_invoker(clock, overrides)),
        mock.patch.object(RequestSigner, "get_auth_instance", _signed_as_running_function()),
    ]


def _signed_as_running_function() -> Any:
    original = RequestSigner.get_auth_instance

    def get_auth_instance(
        self: RequestSigner, signing_name: str, region_name: str, signature_version=None, request_credentials=None, **kw
    ) -> Any:
        credentials = request_credentials or running_credentials()
        return original(self, signing_name, region_name, signature_version, credentials, **kw)

    return get_auth_instance


class _Context:
    def __init__(self, function: LambdaFunction, request_id: str) -> None:
        self.function_name = function.function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function.function_arn
        self.memory_limit_in_mb = int(function.memory_size or 128)
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function.function_name}"
        self.log_stream_name = "simulated"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 300_000


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _in_process_invoker(clock: VirtualClock, overrides: dict[str, str]) -> Any:
    def invoke(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        module_name, _, function_name = self.handler.rpartition(".")
        step = module_name.rsplit(".", 1)[-1]
        environment = {
            **{key: str(value) for key, value in self.environment_vars.items()},
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_LAMBDA_FUNCTION_NAME": self.function_name,  # the Lambda runtime's own variables
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
            **overrides,
        }
        payload = event if isinstance(event, dict) else json.loads(event or "{}")
        code = faults.LAMBDA_ERRORS.due(step)  # the Invoke call may fail as the service would
        if code is not None:
            raise LambdaServiceError(code, step)
        request_id = str(uuid.UUID(int=clock.random.getrandbits(128), version=4))
        # One Lambda runs at a time (the scheduler's turn), but a function may invoke another in its own
        # thread (an event it publishes reaches a Lambda target): the caller's identity comes back after.
        with _environment(environment):
            caller, _RUNNING.name = running_function(), self.function_name
            caller_keys, _RUNNING.credentials = running_credentials(), _session(self)
            caller_run, _RUNNING.invocation = getattr(_RUNNING, "invocation", None), Invocation(self.function_name)
            INVOCATIONS.append(_RUNNING.invocation)
            try:
                handler = getattr(importlib.import_module(module_name), function_name)
                result = handler(payload, _Context(self, request_id))
            except Exception as error:  # the Lambda runtime reports any exception as the error type
                body = {
                    "errorType": type(error).__name__,
                    "errorMessage": str(error),
                    "stackTrace": traceback.format_exc().splitlines()[-12:],
                }
                return json.dumps(body), True, ""
            finally:
                _RUNNING.name, _RUNNING.invocation, _RUNNING.credentials = caller, caller_run, caller_keys
        # Outside the function's identity: what a hook does is the operator's doing, not the function's.
        for hook in list(AFTER_STEP.get(step, ())):
            hook(payload, result)
        return json.dumps(result, default=str), False, ""

    return invoke
