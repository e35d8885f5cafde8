"""Faults of the AWS side that the fleet model alone cannot cause, for the fault campaign: what is planned and
what it does to the fleet. The AWS services answer them through their patches in sim/aws/.

- Lambda service errors: the Invoke call of a step fails before (or after) its handler runs, the way
  the Lambda service answers when it is throttled or broken (sim/aws/lambda_.py raises the error the
  plan says is due). Step Functions' `lambda:invoke` task names such an error `Lambda.<code>` (moto builds
  the name from the Invoke call's error code), which is what the state machine's Retry blocks match; an
  exception raised by the handler itself would instead be named after its class.
- Terminated instances: TerminateInstances takes the simulated host away (its agent never connects
  again, nothing reboots it: `terminate`, called by sim/aws/ec2.py), and SendCommand naming an instance
  that is not running fails as a whole with InvalidInstanceId, as SSM does (sim/aws/ssm.py).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields

from sim.bottlerocket import INFINITY, SimHost
from sim.fleet import Fleet

# The status the Lambda service answers each error with.
LAMBDA_ERROR_STATUS = {"ServiceException": 500, "TooManyRequestsException": 429, "SdkClientException": 500}


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

    def due(self, step: str) -> str | None:
        """Called with the handler's module name as Lambda is about to run it: counts the call, and returns the
        error code the Invoke call fails with now (recorded as raised), or None."""
        with self._lock:
            call = self._calls[step] = self._calls.get(step, 0) + 1
            due = next((p for p in self._planned if p.step == step and p.on_call <= call < p.on_call + p.times), None)
            if due is None:
                return None
            self.raised.append((step, due.code))
            return due.code


LAMBDA_ERRORS = LambdaErrors()


@dataclass
class TerminatedHost(SimHost):
    """A host whose instance was terminated: its disk keeps the version it ran, nothing runs on it."""

    def sync(self, now: float) -> None:
        self.reboot_at = None

    def online(self, now: float) -> bool:
        return False

    def ec2_reboot(self, now: float) -> None:
        return None


def terminate(fleet: Fleet, instance_id: str) -> None:
    """The instance was terminated: its simulated host goes away (once; an unknown instance is ignored)."""
    host = fleet.hosts.get(instance_id)
    if host is None or isinstance(host, TerminatedHost):
        return
    gone = TerminatedHost(**{f.name: getattr(host, f.name) for f in fields(SimHost)})
    gone.boot_id, gone.online_at, gone.hung = host.boot_id, INFINITY, False
    fleet.hosts[instance_id] = gone
