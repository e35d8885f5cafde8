"""Every change the simulation makes to moto 5.2.5 (and botocore's retry sleep), in one place.

What moto lacks for running Updraft for real (see the project's reference on moto):
- Wait states, retry intervals, `$$.State.EnteredTime` and botocore's retry backoff follow the
  virtual clock;
- Lambda functions run their real handler in-process, with their deployed environment;
- SSM Run Command is answered by the simulated fleet, which runs the real document scripts;
- EC2 status checks and RebootInstances reach the simulated hosts;
- CloudFormation creates the state machine where executions run, with its substitutions, and
  stores documents whose content is an object;
- `start_execution` without a name gets a unique one, as in AWS;
- an execution's end is published to EventBridge as "Step Functions Execution Status Change", and
  rules deliver events to Lambda and Step Functions targets (moto delivers none of these).
A moto upgrade that moves these internals breaks here and nowhere else.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import re
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any
from unittest import mock

import botocore.endpoint as botocore_endpoint
import jsonpath_ng
from aws_lambda_powertools.utilities.idempotency.persistence import base as idempotency_base
from aws_lambda_powertools.utilities.idempotency.persistence import datarecord as idempotency_record
from aws_lambda_powertools.utilities.idempotency.persistence import dynamodb as idempotency_dynamodb
from botocore import retryhandler
from botocore.retries.standard import ExponentialBackoff
from moto.awslambda import models as lambda_models
from moto.awslambda.models import LambdaFunction
from moto.cloudwatch import models as cloudwatch_models
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.ec2 import models as ec2_models
from moto.ec2.models.instances import Instance, InstanceBackend
from moto.ecs import models as ecs_models
from moto.events import models as events_models
from moto.moto_api._internal import mock_random
from moto.ssm import models as ssm_models
from moto.ssm.responses import SimpleSystemManagerResponse
from moto.stepfunctions import models as sfn_models
from moto.stepfunctions.parser import models as parser_models
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state import state as state_module
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils as lambda_tasks
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_dynamodb as dynamodb_tasks,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for as moto_boto_client_for
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.utils import TMP_THREADS

from sim import faults, notifications, service_limits
from sim.clock import VirtualClock
from sim.ecs import simulated as simulated_ecs
from sim.fleet import Fleet, SimulatedApiError, load_document
from updraft.adapters.aws import PerSession

MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}}
PAGE_LIMIT = 50
LOG = logging.getLogger("sim")

_RUNNING = threading.local()


def running_function() -> str | None:
    """The Lambda function whose handler this thread is running, if any."""
    return getattr(_RUNNING, "name", None)


def publish_public_parameter(name: str, value: str, account: str, region: str) -> None:
    """Seed an AWS-owned public parameter (`/aws/service/...`), which PutParameter refuses."""
    parameter = ssm_models.Parameter(
        account_id=account,
        name=name,
        value=value,
        parameter_type="String",
        description=None,
        allowed_pattern=None,
        keyid=None,
        last_modified_date=datetime.now(UTC),
        version=1,
        data_type="text",
    )
    ssm_models.ssm_backends[account][region]._parameters[name] = [parameter]


def fire_schedules(account: str, region: str, clock: VirtualClock) -> int:
    """One tick of every scheduled rule, now (moto stores schedules but never fires them); how many fired."""
    backend = events_models.events_backends[account][region]
    event = {
        "version": "0",
        "id": str(uuid.UUID(int=clock.random.getrandbits(128), version=4)),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "detail": {},
    }
    fired = 0
    for bus in backend.event_buses.values():
        for rule in bus.rules.values():
            if rule.scheduled_expression and rule.state == "ENABLED":
                rule.send_to_targets({**event, "resources": [rule.arn]})
                fired += 1
    return fired


def seed(value: int) -> None:
    """Make moto's generated ids (instances, commands) repeatable."""
    mock_random.seed(value)


@contextlib.contextmanager
def wired(fleet: Fleet, clock: VirtualClock, lambda_env: dict[str, str] | None = None) -> Iterator[Wiring]:
    """Apply every patch for the life of the block."""
    INVOCATIONS.clear()
    with contextlib.ExitStack() as stack:
        for patcher in _patches(fleet, clock, {} if lambda_env is None else lambda_env):
            stack.enter_context(patcher)
        stack.enter_context(notifications.wired())  # after the EventBridge patches, which it wraps
        ecs = stack.enter_context(simulated_ecs(fleet, clock))  # ECS's scheduler and agents, in sim/ecs.py
        stack.enter_context(faults.injected(fleet))  # terminations and Lambda service errors, in sim/faults.py
        try:
            yield Wiring(ecs)
        finally:
            TMP_THREADS.clear()  # moto keeps every thread it ever started in this list


@dataclass
class Wiring:
    """What the patches keep of the simulated services' state beyond moto's own."""

    ecs: Any  # sim.ecs.SimulatedEcs


@dataclass(frozen=True)
class Deployed:
    """The account as a deployment left it: moto's id generator, and every alarm's state."""

    random_state: Any
    alarm_states: dict[str, str]


def deployed(account: str, region: str) -> Deployed:
    # Backends are made on first use, and making one draws ids: make those `back_to` reaches now, so that
    # a test after a reset draws exactly what the first test after the deployment does.
    for backends in (ssm_models.ssm_backends, ec2_models.ec2_backends, ecs_models.ecs_backends):
        backends[account][region]
    alarms = cloudwatch_models.cloudwatch_backends[account][region].alarms
    return Deployed(mock_random.getstate(), {name: alarm.state_value for name, alarm in alarms.items()})


def back_to(deployment: Deployed, wiring: Wiring, account: str, region: str) -> None:
    """Put the account back as the deployment left it, for the next test: no SSM command, instance, ECS
    cluster or execution any more, the stack's alarms in their first state, and moto drawing the same ids
    as it did right after the deployment. moto keeps these in its backends, out of reach of any delete call;
    what the harness created through the APIs, it deletes itself (World.reset)."""
    ssm_models.ssm_backends[account][region]._commands.clear()
    ec2_models.ec2_backends[account][region].reservations.clear()
    wiring.ecs.forget(ecs_models.ecs_backends[account][region])
    ecs_models.ecs_backends[account][region].task_definitions.clear()
    for machine in parser_models.stepfunctions_parser_backends[account][region].state_machines:
        machine.executions.clear()
    for name, alarm in cloudwatch_models.cloudwatch_backends[account][region].alarms.items():
        if name in deployment.alarm_states:
            alarm.state_value = deployment.alarm_states[name]
    mock_random.setstate(deployment.random_state)
    INVOCATIONS.clear()


@contextlib.contextmanager
def scheduled(clock: VirtualClock) -> Iterator[None]:
    """Only the scheduler's part: executions as actors on virtual time, named from the seed (for tests of the
    state machine's routing that bring their own Lambda answers)."""
    with contextlib.ExitStack() as stack:
        for patcher in _scheduled(clock):
            stack.enter_context(patcher)
        yield


def _scheduled(clock: VirtualClock) -> list[Any]:
    return [
        *_virtual_time(clock),
        mock.patch.object(parser_models.StepFunctionsParserBackend, "start_execution", _named_start(clock)),
        # moto's task integrations make a new boto3 client for every task; one per service does (and is faster).
        *(mock.patch.object(module, "boto_client_for", _task_client) for module in (lambda_tasks, dynamodb_tasks)),
    ]


def _task_client(region: str, service: str, state_credentials: Any = None) -> Any:
    return _task_clients(f"{region}/{service}")


_task_clients = PerSession(lambda session, key: moto_boto_client_for(*key.split("/")))


def _patches(fleet: Fleet, clock: VirtualClock, lambda_env: dict[str, str]) -> list[Any]:
    return [
        *_scheduled(clock),
        mock.patch.object(LambdaFunction, "_invoke_lambda", _in_process_invoker(clock, lambda_env)),
        *_ssm(fleet),
        *_ec2(fleet),
        *_cloudformation(),
        *_eventbridge(clock),
        *_cloudwatch(clock),
    ]


# -- virtual time and the scheduler's actors ------------------------------------------------------------
def _virtual_time(clock: VirtualClock) -> list[Any]:
    def wait_interval(self: WaitFunction, env: Any, wait_seconds: int) -> None:
        if env.is_running():  # a StopExecution cuts the Wait short, as in AWS
            state = env.states.context_object.context_object_data.get("State", {}).get("Name", "?")
            clock.sleep(wait_seconds, reason=f"Wait state {state}", interruptible=True)

    class VirtualDatetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return clock.now() if tz is None else clock.now().astimezone(tz)

    def delay_amount(self: ExponentialBackoff, context: Any) -> float:
        self._random = clock.random.random  # botocore's jitter, drawn in turn order
        return original_delay(self, context)

    original_delay = ExponentialBackoff.delay_amount
    virtual = SimpleNamespace(datetime=VirtualDatetime, timedelta=timedelta, timezone=timezone)
    # Backoff and retry intervals are the sleeping actor's own: the rest of the world goes on meanwhile.
    backoff = SimpleNamespace(sleep=lambda seconds: clock.sleep(seconds, reason="botocore backoff"), time=time.time)
    retry = SimpleNamespace(sleep=lambda seconds: clock.sleep(seconds, reason="retry interval"))
    return [
        mock.patch.object(botocore_endpoint, "time", backoff),
        mock.patch.object(ExponentialBackoff, "delay_amount", delay_amount),
        mock.patch.object(retryhandler, "random", clock.random),  # legacy mode's jitter (aws-sdk tasks)
        mock.patch.object(WaitFunction, "_wait_interval", wait_interval),
        mock.patch.object(retrier_decl, "time", retry),
        mock.patch.object(state_module, "datetime", virtual),  # $$.State.EnteredTime
        # Powertools' idempotency records expire on the clock of the world they were written in.
        *(mock.patch.object(m, "dt", virtual) for m in (idempotency_base, idempotency_record, idempotency_dynamodb)),
        *_executions_as_actors(clock),
    ]


def _executions_as_actors(clock: VirtualClock) -> list[Any]:
    """Each execution is an actor of the scheduler: started in the turn of whoever started it, run in turns."""
    original_environment = ExecutionWorker._get_evaluation_environment
    original_stop = ExecutionWorker.stop

    def environment(self: ExecutionWorker) -> Any:
        if self.env is None:
            self.env = original_environment(self)
        return self.env

    def start(self: ExecutionWorker) -> None:
        self._get_evaluation_environment()  # now: a StopExecution may come before the execution's first turn
        actor = clock.spawn(f"execution {self._evaluation_details.execution_details.name}")
        self.simulated_actor = actor
        thread = threading.Thread(target=clock.run, args=(actor, self._execution_logic), daemon=True)
        TMP_THREADS.append(thread)
        thread.start()

    def stop(self: ExecutionWorker, stop_date: Any, error: Any, cause: Any) -> None:
        original_stop(self, stop_date, error, cause)
        clock.interrupt(getattr(self, "simulated_actor", None))

    return [
        mock.patch.object(ExecutionWorker, "_get_evaluation_environment", environment),
        mock.patch.object(ExecutionWorker, "start", start),
        mock.patch.object(ExecutionWorker, "stop", stop),
    ]


def pipeline_call(clock: VirtualClock) -> bool:
    """Whether an AWS call now is the pipeline's (a Lambda, or an execution's own task), not the harness's."""
    return running_function() is not None or not clock.in_harness_turn()


# -- Lambda ---------------------------------------------------------------------------------------------
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


@dataclass
class Invocation:
    """One handler run: its function and the AWS calls it made (by service), for its billed duration."""

    function: str
    calls: Counter[str] = field(default_factory=Counter)


# Every handler run of the simulation, in order.
INVOCATIONS: list[Invocation] = []


def _in_process_invoker(clock: VirtualClock, overrides: dict[str, str]) -> Any:
    def invoke(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        module_name, _, function_name = self.handler.rpartition(".")
        environment = {
            **{key: str(value) for key, value in self.environment_vars.items()},
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon here
            **overrides,
        }
        payload = event if isinstance(event, dict) else json.loads(event or "{}")
        faults.before_handler(module_name.rsplit(".", 1)[-1])  # the Invoke call may fail as the service would
        request_id = str(uuid.UUID(int=clock.random.getrandbits(128), version=4))
        # One Lambda runs at a time (the scheduler's turn), but a function may invoke another in its own
        # thread (an event it publishes reaches a Lambda target): the caller's identity comes back after.
        with _environment(environment):
            caller, _RUNNING.name = running_function(), self.function_name
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
                _RUNNING.name, _RUNNING.invocation = caller, caller_run
        # Outside the function's identity: what a hook does is the operator's doing, not the function's.
        for hook in list(AFTER_STEP.get(module_name.rsplit(".", 1)[-1], ())):
            hook(payload, result)
        return json.dumps(result, default=str), False, ""

    return invoke


def count_function_call(service: str) -> None:
    """Charge an AWS call to the handler run making it (botocore's before-call event calls this)."""
    invocation = getattr(_RUNNING, "invocation", None)
    if invocation is not None:
        invocation.calls[service] += 1


# Callbacks run right after a handler returns, before its execution goes on: `AFTER_STEP["bake"]` etc.
# A test acts at an exact point of a rollout (an alarm fires mid-bake) without racing it.
AFTER_STEP: dict[str, list[Callable[[dict[str, Any], Any], None]]] = {}


def _named_start(clock: VirtualClock) -> Any:
    original = parser_models.StepFunctionsParserBackend.start_execution

    def start_execution(self: Any, state_machine_arn: str, name: Any = None, *args: Any, **kwargs: Any) -> Any:
        # AWS names an unnamed execution with a UUID; here it comes from the seed.
        name = name or str(uuid.UUID(int=clock.random.getrandbits(128), version=4))
        _within_limits(service_limits.check_execution_input, kwargs.get("execution_input", args[0] if args else None))
        return original(self, state_machine_arn, name, *args, **kwargs)

    return start_execution


# -- SSM ------------------------------------------------------------------------------------------------
def _api_error(error: SimulatedApiError) -> JsonRESTError:
    return JsonRESTError(error.code, str(error))


def _within_limits(check: Callable[..., None], *args: Any) -> None:
    """Run a service limit check; a refusal answers as the service does."""
    try:
        check(*args)
    except service_limits.LimitRefused as error:
        raise JsonRESTError(error.code, str(error)) from None


def _ssm(fleet: Fleet) -> list[Any]:
    backend_class = ssm_models.SimpleSystemManagerBackend
    original_send = backend_class.send_command

    def send_command(self: Any, **kwargs: Any) -> Any:
        _bind_documents(fleet, self)
        if kwargs.get("targets"):
            raise JsonRESTError("InvalidParameters", "the simulated fleet takes InstanceIds, not Targets")
        command = original_send(self, **kwargs)
        try:
            fleet.send_command(
                command.command_id,
                kwargs["document_name"],
                kwargs.get("parameters") or {},
                kwargs.get("instance_ids") or [],
                int(kwargs.get("timeout_seconds") or 3600),
            )
        except SimulatedApiError as error:
            self._commands.remove(command)
            raise _api_error(error) from None
        return command

    original_request = SimpleSystemManagerResponse.send_command

    def send_command_request(self: SimpleSystemManagerResponse) -> Any:
        # The request's own limits are checked first, before anything looks at the instances.
        timeout = self._get_int_param("TimeoutSeconds") or 3600
        _within_limits(service_limits.check_send_command, self._get_param("InstanceIds", []), timeout)
        return original_request(self)

    def get_command_invocation(self: Any, command_id: str, instance_id: str, plugin_name: Any) -> dict:
        view = next((v for v in _views(fleet, command_id) if v["InstanceId"] == instance_id), None)
        if view is None:
            raise JsonRESTError("InvocationDoesNotExist", "no such invocation")
        return {
            "CommandId": command_id,
            "InstanceId": instance_id,
            "DocumentName": view["DocumentName"],
            "PluginName": "aws:runShellScript",
            "ResponseCode": view["CommandPlugins"][0]["ResponseCode"],
            "Status": view["Status"],
            "StatusDetails": view["StatusDetails"],
            "StandardOutputContent": view["_stdout"],
            "StandardErrorContent": view["_stderr"],
        }

    def list_command_invocations(self: SimpleSystemManagerResponse) -> ActionResult:
        command_id = self._get_param("CommandId")
        details = self._get_bool_param("Details", False)
        views = []
        for view in _views(fleet, command_id):
            view = {k: v for k, v in view.items() if not k.startswith("_")}
            if not details:
                view.pop("CommandPlugins")
            views.append(view)
        page, token = _page(views, self._get_param("NextToken"), self._get_int_param("MaxResults") or PAGE_LIMIT)
        return ActionResult({"CommandInvocations": page, **({"NextToken": token} if token else {})})

    def list_commands(self: SimpleSystemManagerResponse) -> ActionResult:
        # moto applies neither Filters nor paging, and stamps commands with the wall clock.
        commands = self.ssm_backend.list_commands(self._get_param("CommandId"), self._get_param("InstanceId"))
        sent = [(command, fleet.clock.at(fleet.commands[command.command_id].sent_at)) for command in commands]
        for item in self._get_param("Filters") or []:
            sent = [(command, at) for command, at in sent if _command_matches(command, at, item["key"], item["value"])]
        views = [{**command.response_object(), "RequestedDateTime": at} for command, at in sent]
        page, token = _page(views, self._get_param("NextToken"), self._get_int_param("MaxResults") or PAGE_LIMIT)
        return ActionResult({"Commands": page, **({"NextToken": token} if token else {})})

    def describe_instance_information(self: SimpleSystemManagerResponse) -> ActionResult:
        wanted = None
        for item in self._get_param("Filters") or []:
            if item["Key"] == "InstanceIds":
                wanted = item["Values"]
        for item in self._get_param("InstanceInformationFilterList") or []:
            if item["key"] == "InstanceIds":
                wanted = item["valueSet"]
        found = fleet.instance_information(wanted)
        page, token = _page(found, self._get_param("NextToken"), self._get_int_param("MaxResults") or PAGE_LIMIT)
        return ActionResult({"InstanceInformationList": page, **({"NextToken": token} if token else {})})

    return [
        mock.patch.object(backend_class, "send_command", send_command),
        mock.patch.object(backend_class, "get_command_invocation", get_command_invocation),
        mock.patch.object(ssm_models.Command, "_get_instance_ids_from_targets", _targets_only),
        mock.patch.object(
            SimpleSystemManagerResponse, "list_command_invocations", list_command_invocations, create=True
        ),
        mock.patch.object(
            SimpleSystemManagerResponse, "describe_instance_information", describe_instance_information, create=True
        ),
        mock.patch.object(SimpleSystemManagerResponse, "list_commands", list_commands),
        mock.patch.object(SimpleSystemManagerResponse, "send_command", send_command_request),
    ]


def _command_matches(command: Any, sent_at: datetime, key: str, value: str) -> bool:
    """One ListCommands filter, as SSM applies it (the ones Updraft may use)."""
    if key == "DocumentName":
        return command.document_name == value
    if key in ("InvokedAfter", "InvokedBefore"):
        bound = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return sent_at >= bound if key == "InvokedAfter" else sent_at <= bound
    raise JsonRESTError("InvalidFilterKey", f"the simulated fleet does not filter commands by {key}")


def _targets_only(self: Any) -> list[str]:
    # moto resolves an empty Targets list to every instance in the region; AWS resolves it to none.
    return [] if not self.targets else _original_targets(self)


_original_targets = ssm_models.Command._get_instance_ids_from_targets


def _views(fleet: Fleet, command_id: str) -> list[dict]:
    try:
        return fleet.invocations(command_id)
    except SimulatedApiError as error:
        raise _api_error(error) from None


def _page(items: list, token: str | None, limit: int) -> tuple[list, str | None]:
    start = int(token or 0)
    end = start + min(limit, PAGE_LIMIT)
    return items[start:end], (str(end) if end < len(items) else None)


def _bind_documents(fleet: Fleet, backend: Any) -> None:
    def source(name: str) -> dict:
        try:
            stored = backend.get_document(name, None, None, "JSON")
        except Exception as error:
            raise SimulatedApiError("InvalidDocument", f"document {name} does not exist") from error
        return load_document(stored["Content"])

    fleet.document_source = source


# -- EC2 ------------------------------------------------------------------------------------------------
def _ec2(fleet: Fleet) -> list[Any]:
    original_status = Instance.instance_status.fget  # type: ignore[attr-defined]
    original_reboot = InstanceBackend.reboot_instances

    def instance_status(self: Instance) -> dict:
        status = fleet.instance_status(self.id) if self.state_code == 16 else None
        if status is None:
            return original_status(self)
        check = {"ok": "passed", "impaired": "failed"}.get(status, "initializing")
        return {"Status": status, "Details": [{"Name": "reachability", "Status": check}]}

    def reboot_instances(self: Any, instance_ids: list[str]) -> Any:
        instances = original_reboot(self, instance_ids)
        fleet.ec2_reboot(instance_ids)
        return instances

    return [
        mock.patch.object(Instance, "instance_status", property(instance_status)),
        mock.patch.object(InstanceBackend, "reboot_instances", reboot_instances),
    ]


# -- CloudFormation -------------------------------------------------------------------------------------
def _cloudformation() -> list[Any]:
    def create_state_machine(
        cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        properties = cloudformation_json["Properties"]
        definition = properties.get("DefinitionString", "")
        if isinstance(definition, dict):
            definition = json.dumps(definition)
        for key, value in (properties.get("DefinitionSubstitutions") or {}).items():
            definition = definition.replace("${" + key + "}", str(value))
        backend = parser_models.stepfunctions_parser_backends[account_id][region_name]
        return backend.create_state_machine(
            properties.get("StateMachineName", resource_name),
            definition,
            properties.get("RoleArn", ""),
            tags=[{"key": t["Key"], "value": t["Value"]} for t in properties.get("Tags", [])],
        )

    original_document = ssm_models.Document.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create_document(
        cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        properties = cloudformation_json["Properties"]
        if isinstance(properties.get("Content"), dict):
            cloudformation_json = {
                **cloudformation_json,
                "Properties": {**properties, "Content": json.dumps(properties["Content"])},
            }
        return original_document(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)

    return [
        mock.patch.object(
            sfn_models.StateMachine, "create_from_cloudformation_json", classmethod(create_state_machine)
        ),
        mock.patch.object(ssm_models.Document, "create_from_cloudformation_json", classmethod(create_document)),
    ]


# -- EventBridge ------------------------------------------------------------------------------------------
def _eventbridge(clock: VirtualClock) -> list[Any]:
    original_terminated = BaseExecutionWorkerCommunication.terminated
    original_send = events_models.Rule.send_to_targets

    def terminated(self: BaseExecutionWorkerCommunication) -> None:
        original_terminated(self)
        _publish_status_change(self.execution, clock)  # in the execution's last turn: its end is settled in it

    def send_to_targets(self: Any, original_event: dict, transform_input: bool = True) -> None:
        if self.scheduled_expression and original_event.get("detail-type") != "Scheduled Event":
            return  # moto matches every event against a schedule rule's empty pattern; AWS does not
        ours = [t for t in self.targets if ":lambda:" in t["Arn"] or ":stateMachine:" in t["Arn"]]
        others = [t for t in self.targets if t not in ours]
        if others:
            with mock.patch.object(self, "targets", others):
                original_send(self, original_event, transform_input)
        if not ours or not self.event_pattern.matches_event(original_event):
            return
        for target in ours:
            body = json.dumps(_target_input(target, original_event))
            if ":lambda:" in target["Arn"]:
                _invoke_target_function(self, target["Arn"], body)
            else:
                backend = parser_models.stepfunctions_parser_backends[self.account_id][self.region_name]
                backend.start_execution(target["Arn"], None, body)

    original_put = events_models.EventsBackend.put_events

    def put_events(self: Any, events: list[dict[str, Any]]) -> Any:
        _within_limits(service_limits.check_put_events, events)
        return original_put(self, events)

    return [
        mock.patch.object(BaseExecutionWorkerCommunication, "terminated", terminated),
        mock.patch.object(events_models.Rule, "send_to_targets", send_to_targets),
        mock.patch.object(events_models.EventsBackend, "put_events", put_events),
    ]


def _cloudwatch(clock: VirtualClock) -> list[Any]:
    """CloudWatch tells the default bus of every alarm state change; moto keeps them to itself."""
    original = cloudwatch_models.CloudWatchBackend.set_alarm_state

    def set_alarm_state(self: Any, alarm_name: str, reason: str, reason_data: str, state_value: str) -> None:
        alarm = self.alarms.get(alarm_name)
        before = alarm.state_value if alarm else None
        original(self, alarm_name, reason, reason_data, state_value)
        if before != state_value:
            _publish_alarm_change(self, alarm_name, before, state_value, reason, clock)

    original_describe = CloudWatchResponse.describe_alarms

    def describe_alarms(self: CloudWatchResponse) -> ActionResult:
        # moto drops the StateValue filter when names or a prefix are given too; CloudWatch applies both.
        state = self._get_param("StateValue")
        found = original_describe(self).result
        if state:
            found = {kind: [a for a in alarms if a.state_value == state] for kind, alarms in found.items()}
        return ActionResult(found)

    return [
        mock.patch.object(cloudwatch_models.CloudWatchBackend, "set_alarm_state", set_alarm_state),
        mock.patch.object(CloudWatchResponse, "describe_alarms", describe_alarms),
    ]


def _publish_alarm_change(
    backend: Any, name: str, before: str | None, after: str, reason: str, clock: VirtualClock
) -> None:
    stamp = clock.now().strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    alarm = backend.alarms[name]
    detail = {
        "alarmName": name,
        "state": {"value": after, "reason": reason, "timestamp": stamp},
        "previousState": {"value": before, "timestamp": stamp},
        "configuration": {"description": getattr(alarm, "description", "") or ""},
    }
    entry = {
        "Source": "aws.cloudwatch",
        "DetailType": "CloudWatch Alarm State Change",
        "Detail": json.dumps(detail),
        "Time": clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Resources": [alarm.alarm_arn],
    }
    events_models.events_backends[backend.account_id][backend.region_name].put_events([entry])


def _publish_status_change(execution: Any, clock: VirtualClock) -> None:
    """What Step Functions sends to the default bus when an execution ends."""
    detail = {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name,
        "status": execution.exec_status.value,
        "input": json.dumps(execution.input_data),
        "error": execution.error,
        "cause": execution.cause,
    }
    entry = {
        "Source": "aws.states",
        "DetailType": "Step Functions Execution Status Change",
        "Detail": json.dumps(detail),
        "Time": clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Resources": [execution.exec_arn],
    }
    events_models.events_backends[execution.account_id][execution.region_name].put_events([entry])


def _target_input(target: dict, event: dict) -> Any:
    """What a target receives: the event, or its Input, InputPath or InputTransformer."""
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        (match,) = jsonpath_ng.parse(target["InputPath"]).find(event)
        return match.value
    if "InputTransformer" in target:
        return _transform(target["InputTransformer"], event)
    return event


def _transform(transformer: dict, event: dict) -> Any:
    """EventBridge's input transformer: a bare `<name>` becomes the JSON value (a string quoted), a
    `"<name>"` the string, and a placeholder inside a longer string its text (moto quotes nothing)."""
    values = {}
    for name, path in transformer.get("InputPathsMap", {}).items():
        matches = jsonpath_ng.parse(path).find(event)
        values[name] = matches[0].value if matches else None

    def as_text(name: str) -> str:
        value = values[name]
        return value if isinstance(value, str) else json.dumps(value)

    placeholder = re.compile(r"<([\w.-]+)>")

    def fill(piece: str, in_string: bool) -> str:
        if in_string:  # the text, escaped for its place inside a JSON string
            return placeholder.sub(lambda m: json.dumps(as_text(m[1]))[1:-1], piece)
        return placeholder.sub(lambda m: json.dumps(values[m[1]]), piece)

    # Odd pieces are the template's string literals.
    pieces = re.split(r'("(?:[^"\\]|\\.)*")', transformer["InputTemplate"])
    return json.loads("".join(fill(piece, index % 2 == 1) for index, piece in enumerate(pieces)))


def _invoke_target_function(rule: Any, arn: str, body: str) -> None:
    function = lambda_models.lambda_backends[rule.account_id][rule.region_name].get_function(arn)
    response: dict[str, str] = {}
    payload = function.invoke(body, {"x-amz-invocation-type": "Event"}, response)
    if "x-amz-function-error" in response:
        LOG.warning("EventBridge target %s failed: %s", arn, payload)
