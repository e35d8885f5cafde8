"""Faults of the AWS side that the fleet model alone cannot cause, for the fault campaign.

- Lambda service errors: the Invoke call of a step fails before (or after) its handler runs, the way
  the Lambda service answers when it is throttled or broken. Step Functions' `lambda:invoke` task names
  such an error `Lambda.<code>` (moto builds the name from the Invoke call's error code), which is what
  the state machine's Retry blocks match; an exception raised by the handler itself would instead be
  named after its class.
- Terminated instances: TerminateInstances takes the simulated host away (its agent never connects
  again, nothing reboots it), and SendCommand naming an instance that is not running fails as a whole
  with InvalidInstanceId, as SSM does.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any
from unittest import mock

from moto.core.exceptions import JsonRESTError
from moto.ec2 import models as ec2_models
from moto.ec2.models.instances import InstanceBackend
from moto.ssm import models as ssm_models

from sim.bottlerocket import INFINITY, SimHost
from sim.fleet import Fleet

# The status the Lambda service answers each error with.
LAMBDA_ERROR_STATUS = {"ServiceException": 500, "TooManyRequestsException": 429, "SdkClientException": 500}
RUNNING = 16  # EC2's instance state code


class LambdaServiceError(JsonRESTError):
    def __init__(self, code: str, step: str) -> None:
        super().__init__(code, f"simulated {code} invoking the {step} step")
        self.code = LAMBDA_ERROR_STATUS[code]


@dataclass
class _Planned:
    step: str
    code: str
    on_call: int  # fail from this call of the step on (1 = its first call)
    times: int  # this many calls in a row


class LambdaErrors:
    """The Lambda errors planned for this simulation: `fail(step, code, on_call, times)`."""

    def __init__(self) -> None:
        self._planned: list[_Planned] = []
        self._calls: dict[str, int] = {}
        self.raised: list[tuple[str, str]] = []  # (step, code), in the order they were raised
        self._lock = threading.Lock()

    def fail(self, step: str, code: str, on_call: int = 1, times: int = 1) -> None:
        if code not in LAMBDA_ERROR_STATUS:
            raise ValueError(f"unknown Lambda error {code}; one of {sorted(LAMBDA_ERROR_STATUS)}")
        with self._lock:
            self._planned.append(_Planned(step, code, on_call, times))

    def clear(self) -> None:
        with self._lock:
            self._planned.clear()
            self._calls.clear()
            self.raised.clear()

    def before_handler(self, step: str) -> None:
        """Called with the handler's module name as Lambda is about to run it; may raise the Invoke error."""
        with self._lock:
            call = self._calls[step] = self._calls.get(step, 0) + 1
            due = next((p for p in self._planned if p.step == step and p.on_call <= call < p.on_call + p.times), None)
            if due is None:
                return
            self.raised.append((step, due.code))
        raise LambdaServiceError(due.code, step)


LAMBDA_ERRORS = LambdaErrors()


def before_handler(step: str) -> None:
    LAMBDA_ERRORS.before_handler(step)


@dataclass
class TerminatedHost(SimHost):
    """A host whose instance was terminated: its disk keeps the version it ran, nothing runs on it."""

    def sync(self, now: float) -> None:
        self.reboot_at = None

    def online(self, now: float) -> bool:
        return False

    def ec2_reboot(self, now: float) -> None:
        return None


def _terminate_host(fleet: Fleet, instance_id: str) -> None:
    host = fleet.hosts.get(instance_id)
    if host is None or isinstance(host, TerminatedHost):
        return
    gone = TerminatedHost(**{f.name: getattr(host, f.name) for f in fields(SimHost)})
    gone.boot_id, gone.online_at, gone.hung = host.boot_id, INFINITY, False
    fleet.hosts[instance_id] = gone


def _not_running(account_id: str, region: str, instance_ids: list[str]) -> list[str]:
    states = {i.id: i.state_code for i in ec2_models.ec2_backends[account_id][region].all_instances()}
    return [i for i in instance_ids if states.get(i) != RUNNING]


@contextlib.contextmanager
def injected(fleet: Fleet) -> Iterator[None]:
    """Terminations reach the fleet and SSM; the planned Lambda errors are forgotten when the block ends."""
    original_terminate = InstanceBackend.terminate_instances
    original_send = ssm_models.SimpleSystemManagerBackend.send_command

    def terminate_instances(self: Any, instance_ids: list[str]) -> Any:
        terminated = original_terminate(self, instance_ids)
        for instance_id in instance_ids:
            _terminate_host(fleet, instance_id)
        return terminated

    def send_command(self: Any, **kwargs: Any) -> Any:
        gone = _not_running(self.account_id, self.region_name, kwargs.get("instance_ids") or [])
        if gone:
            raise JsonRESTError("InvalidInstanceId", f"Instances {gone} not in a valid state for account")
        return original_send(self, **kwargs)

    patches = [
        mock.patch.object(InstanceBackend, "terminate_instances", terminate_instances),
        mock.patch.object(ssm_models.SimpleSystemManagerBackend, "send_command", send_command),
    ]
    try:
        with contextlib.ExitStack() as stack:
            for patcher in patches:
                stack.enter_context(patcher)
            yield
    finally:
        LAMBDA_ERRORS.clear()
