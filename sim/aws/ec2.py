"""EC2: status checks and RebootInstances reach the simulated hosts; TerminateInstances takes a host away
(fault injection: sim/faults.py)."""

from __future__ import annotations

from typing import Any
from unittest import mock

from moto.ec2 import models as ec2_models
from moto.ec2.models.instances import Instance, InstanceBackend

from sim import faults
from sim.fleet import Fleet

RUNNING = 16  # EC2's instance state code


def patches(fleet: Fleet) -> list[Any]:
    original_status = Instance.instance_status.fget  # type: ignore[attr-defined]
    original_reboot = InstanceBackend.reboot_instances
    original_terminate = InstanceBackend.terminate_instances

    def instance_status(self: Instance) -> dict:
        status = fleet.instance_status(self.id) if self.state_code == RUNNING else None
        if status is None:
            return original_status(self)
        check = {"ok": "passed", "impaired": "failed"}.get(status, "initializing")
        return {"Status": status, "Details": [{"Name": "reachability", "Status": check}]}

    def reboot_instances(self: Any, instance_ids: list[str]) -> Any:
        instances = original_reboot(self, instance_ids)
        fleet.ec2_reboot(instance_ids)
        return instances

    def terminate_instances(self: Any, instance_ids: list[str]) -> Any:
        terminated = original_terminate(self, instance_ids)
        for instance_id in instance_ids:
            faults.terminate(fleet, instance_id)
        return terminated

    return [
        mock.patch.object(Instance, "instance_status", property(instance_status)),
        mock.patch.object(InstanceBackend, "reboot_instances", reboot_instances),
        mock.patch.object(InstanceBackend, "terminate_instances", terminate_instances),
    ]


def not_running(account_id: str, region: str, instance_ids: list[str]) -> list[str]:
    """Those of the instances that are not running (terminated, stopped, or unknown)."""
    states = {i.id: i.state_code for i in ec2_models.ec2_backends[account_id][region].all_instances()}
    return [i for i in instance_ids if states.get(i) != RUNNING]


def backend(account: str, region: str) -> Any:
    """EC2's backend of the account and region (made now if it is not yet)."""
    return ec2_models.ec2_backends[account][region]


def forget(account: str, region: str) -> None:
    """No instance any more."""
    ec2_models.ec2_backends[account][region].reservations.clear()


def tags(account: str, region: str, instance_id: str) -> dict[str, str]:
    """The instance's tags (none for an instance EC2 does not know)."""
    return dict(ec2_models.ec2_backends[account][region].tags.get(instance_id, {}))
