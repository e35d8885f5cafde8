"""Step Functions: moto's interpreter runs the real definition, on the scheduler's virtual time.

- every execution is an actor of the scheduler, started in the turn of whoever started it and run in turns;
  Wait states, retry intervals and `$$.State.EnteredTime` follow the virtual clock, and a StopExecution cuts
  a Wait short, as in AWS;
- `start_execution` without a name gets a unique one (from the seed), and an input over the service's limit
  is refused;
- the task integrations share one boto3 client per service (moto makes one per task);
- an execution's end is published to EventBridge as "Step Functions Execution Status Change".
"""

from __future__ import annotations

import json
import threading
import uuid
from types import SimpleNamespace
from typing import Any
from unittest import mock

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

from sim import service_limits
from sim.aws import events
from sim.aws.common import virtual_datetime, within_limits
from sim.clock import VirtualClock
from updraft.adapters.aws import PerSession


def scheduler(clock: VirtualClock) -> list[Any]:
    """Executions as actors on virtual time, named from the seed, with shared task clients."""
    return [
        *_virtual_time(clock),
        *_executions_as_actors(clock),
        mock.patch.object(parser_models.StepFunctionsParserBackend, "start_execution", _named_start(clock)),
        # moto's task integrations make a new boto3 client for every task; one per service does (and is faster).
        *(mock.patch.object(module, "boto_client_for", _task_client) for module in (lambda_tasks, dynamodb_tasks)),
    ]


def status_changes(clock: VirtualClock) -> list[Any]:
    """An execution's end, published to the default bus in its last turn (its end is settled in it)."""
    original_terminated = BaseExecutionWorkerCommunication.terminated

    def terminated(self: BaseExecutionWorkerCommunication) -> None:
        original_terminated(self)
        _publish_status_change(self.execution, clock)

    return [mock.patch.object(BaseExecutionWorkerCommunication, "terminated", terminated)]


def forget(account: str, region: str) -> None:
    """No execution of any state machine any more."""
    for machine in parser_models.stepfunctions_parser_backends[account][region].state_machines:
        machine.executions.clear()


def forget_threads() -> None:
    TMP_THREADS.clear()  # moto keeps every thread it ever started in this list


def _virtual_time(clock: VirtualClock) -> list[Any]:
    def wait_interval(self: WaitFunction, env: Any, wait_seconds: int) -> None:
        if env.is_running():  # a StopExecution cuts the Wait short, as in AWS
            state = env.states.context_object.context_object_data.get("State", {}).get("Name", "?")
            clock.sleep(wait_seconds, reason=f"Wait state {state}", interruptible=True)

    # Retry intervals are the sleeping actor's own: the rest of the world goes on meanwhile.
    retry = SimpleNamespace(sleep=lambda seconds: clock.sleep(seconds, reason="retry interval"))
    return [
        mock.patch.object(WaitFunction, "_wait_interval", wait_interval),
        mock.patch.object(retrier_decl, "time", retry),
        mock.patch.object(state_module, "datetime", virtual_datetime(clock)),  # $$.State.EnteredTime
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


def _named_start(clock: VirtualClock) -> Any:
    original = parser_models.StepFunctionsParserBackend.start_execution

    def start_execution(self: Any, state_machine_arn: str, name: Any = None, *args: Any, **kwargs: Any) -> Any:
        # AWS names an unnamed execution with a UUID; here it comes from the seed.
        name = name or str(uuid.UUID(int=clock.random.getrandbits(128), version=4))
        within_limits(service_limits.check_execution_input, kwargs.get("execution_input", args[0] if args else None))
        return original(self, state_machine_arn, name, *args, **kwargs)

    return start_execution


def _task_client(region: str, service: str, state_credentials: Any = None) -> Any:
    return _task_clients(f"{region}/{service}")


_task_clients = PerSession(lambda session, key: moto_boto_client_for(*key.split("/")))


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
    events.service_event(
        execution.account_id,
        execution.region_name,
        "aws.states",
        "Step Functions Execution Status Change",
        detail,
        execution.exec_arn,
        clock,
    )
