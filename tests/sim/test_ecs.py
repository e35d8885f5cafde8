"""The simulated ECS scheduler and agents over moto: drains, standalone tasks, reboots, request limits."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from sim.aws.ecs import simulated
from sim.bottlerocket import Fault, Repository
from sim.clock import VirtualClock
from sim.ecs import SERVICE_STOP_SECONDS
from sim.fleet import Fleet

REGION = "us-east-1"
SERVICE = "ecs-svc/0000000000000000042"


class Cluster:
    def __init__(self, fleet: Fleet, ids: list[str]) -> None:
        self.fleet, self.ecs = fleet, boto3.client("ecs", region_name=REGION)
        self.ecs.create_cluster(clusterName="blue")
        self.ecs.register_task_definition(
            family="app", containerDefinitions=[{"name": "app", "image": "a", "memory": 64}]
        )
        self.arns = {
            i: self.ecs.register_container_instance(
                cluster="blue", instanceIdentityDocument=json.dumps({"instanceId": i})
            )["containerInstance"]["containerInstanceArn"]
            for i in ids
        }

    def start(self, instance_id: str, started_by: str, command: list[str] | None = None) -> str:
        overrides = {"containerOverrides": [{"name": "app", "command": command}]} if command else {}
        return self.ecs.start_task(
            cluster="blue",
            taskDefinition="app",
            containerInstances=[self.arns[instance_id]],
            startedBy=started_by,
            overrides=overrides,
        )["tasks"][0]["taskArn"]

    def running(self) -> dict[str, str]:
        """Running task ARN -> the EC2 instance it runs on."""
        by_arn = {arn: i for i, arn in self.arns.items()}
        arns = self.ecs.list_tasks(cluster="blue", desiredStatus="RUNNING")["taskArns"]
        tasks = self.ecs.describe_tasks(cluster="blue", tasks=arns)["tasks"] if arns else []
        return {t["taskArn"]: by_arn[t["containerInstanceArn"]] for t in tasks}

    def instance(self, instance_id: str) -> dict:
        (item,) = self.ecs.describe_container_instances(cluster="blue", containerInstances=[self.arns[instance_id]])[
            "containerInstances"
        ]
        return item


@pytest.fixture
def world() -> Iterator[tuple[Fleet, Cluster]]:
    with mock.patch.dict(os.environ, {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}), mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        ids = [i["InstanceId"] for i in ec2.run_instances(ImageId="ami-12345678", MinCount=3, MaxCount=3)["Instances"]]
        fleet = Fleet(VirtualClock(), [Repository("aws-ecs-2", "x86_64", ["1.26.0", "1.26.1"])], seed=5)
        for index, instance_id in enumerate(ids):
            fleet.add_host(
                instance_id, "us-east-1a", "aws-ecs-2", "1.26.0", {Fault.ECS_AGENT_OFFLINE} if index == 2 else set()
            )
        try:
            with simulated(fleet, fleet.clock):
                yield fleet, Cluster(fleet, ids)
        finally:
            fleet.close()


def test_draining_stops_service_tasks_after_a_delay_and_replaces_them_elsewhere(world) -> None:
    fleet, cluster = world
    a, b, c = cluster.arns
    served = [cluster.start(a, SERVICE) for _ in range(2)]
    job = cluster.start(a, "nightly", ["sleep", "600"])
    cluster.ecs.update_container_instances_state(
        cluster="blue", containerInstances=[cluster.arns[a]], status="DRAINING"
    )
    fleet.clock.advance(SERVICE_STOP_SECONDS - 1)
    assert cluster.instance(a)["runningTasksCount"] == 3
    fleet.clock.advance(2)
    running = cluster.running()
    assert not set(served) & set(running)
    assert running[job] == a  # a task no service owns is not drained away
    # The service's two tasks run again, spread over the other ACTIVE hosts.
    assert sorted(host for task, host in running.items() if task != job) == sorted([b, c])
    assert cluster.instance(a)["runningTasksCount"] == 1
    fleet.clock.advance(600)
    assert cluster.instance(a)["runningTasksCount"] == 0  # its command ended


def test_the_agent_disconnects_while_its_host_reboots_and_its_tasks_stop(world) -> None:
    fleet, cluster = world
    a = next(iter(cluster.arns))
    cluster.start(a, SERVICE)
    assert cluster.instance(a)["agentConnected"] is True
    fleet.ec2_reboot([a])
    fleet.clock.advance(1)
    described = cluster.instance(a)
    assert (described["agentConnected"], described["runningTasksCount"]) == (False, 0)
    fleet.clock.advance(300)
    assert cluster.instance(a)["agentConnected"] is True


def test_an_ecs_agent_fault_shows_only_on_a_new_version(world) -> None:
    fleet, cluster = world
    faulty = list(cluster.arns)[2]
    assert cluster.instance(faulty)["agentConnected"] is True
    fleet.hosts[faulty].version = "1.26.1"
    assert cluster.instance(faulty)["agentConnected"] is False


def test_request_limits_are_enforced(world) -> None:
    _, cluster = world
    too_many = [next(iter(cluster.arns.values()))] * 11
    with pytest.raises(ClientError, match="at most 10"):
        cluster.ecs.update_container_instances_state(cluster="blue", containerInstances=too_many, status="DRAINING")
    with pytest.raises(ClientError, match="at most 100"):
        cluster.ecs.describe_container_instances(cluster="blue", containerInstances=too_many * 10)
