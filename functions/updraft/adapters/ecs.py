"""ECS container instances of the groups' hosts, batched as the API allows."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from updraft.adapters.aws import chunks, client
from updraft.domain.host_actions import ContainerView

UPDATE_STATE_LIMIT = 10  # UpdateContainerInstancesState
DESCRIBE_LIMIT = 100  # DescribeContainerInstances, DescribeTasks
# A service's tasks carry the id of the deployment (or task set) that started them; nothing else does.
SERVICE_STARTED_BY = "ecs-svc/"


def container_instances(cluster: str, instance_ids: list[str]) -> dict[str, str]:
    """The container instance ARN of each of these EC2 instances that is one in the cluster."""
    ecs = client("ecs")
    arns = [
        arn
        for page in ecs.get_paginator("list_container_instances").paginate(cluster=cluster)
        for arn in page["containerInstanceArns"]
    ]
    wanted = set(instance_ids)
    found: dict[str, str] = {}
    for batch in chunks(arns, DESCRIBE_LIMIT):
        for item in ecs.describe_container_instances(cluster=cluster, containerInstances=batch)["containerInstances"]:
            if item["ec2InstanceId"] in wanted:
                found[item["ec2InstanceId"]] = item["containerInstanceArn"]
    return found


def describe(cluster: str, arns: list[str]) -> dict[str, ContainerView]:
    """Status, running task count and agent connection of each container instance still in the cluster."""
    ecs = client("ecs")
    views: dict[str, ContainerView] = {}
    for batch in chunks(sorted(arns), DESCRIBE_LIMIT):
        for item in ecs.describe_container_instances(cluster=cluster, containerInstances=batch)["containerInstances"]:
            views[item["containerInstanceArn"]] = ContainerView(
                status=item["status"],
                running_tasks=int(item.get("runningTasksCount", 0)),
                agent_connected=bool(item.get("agentConnected")),
            )
    return views


def unmanaged_tasks(cluster: str, arns: list[str]) -> dict[str, tuple[str, ...]]:
    """The running tasks no service owns on each container instance, named by group and task id."""
    ecs = client("ecs")
    on_instance: dict[str, str] = {}
    paginator = ecs.get_paginator("list_tasks")
    for arn in sorted(arns):
        pages = paginator.paginate(cluster=cluster, containerInstance=arn, desiredStatus="RUNNING")
        on_instance.update({task: arn for page in pages for task in page["taskArns"]})
    found: dict[str, list[str]] = {arn: [] for arn in arns}
    for batch in chunks(sorted(on_instance), DESCRIBE_LIMIT):
        for task in ecs.describe_tasks(cluster=cluster, tasks=batch)["tasks"]:
            if task.get("lastStatus") != "STOPPED" and not task.get("startedBy", "").startswith(SERVICE_STARTED_BY):
                name = f"{task.get('group', 'task')}/{task['taskArn'].rsplit('/', 1)[-1]}"
                found[on_instance[task["taskArn"]]].append(name)
    return {arn: tuple(sorted(names)) for arn, names in found.items()}


def set_state(cluster: str, arns: list[str], status: str) -> None:
    """DRAINING or ACTIVE; a container instance that left the cluster meanwhile is no error here."""
    ecs = client("ecs")
    for batch in chunks(sorted(arns), UPDATE_STATE_LIMIT):
        ecs.update_container_instances_state(cluster=cluster, containerInstances=batch, status=status)


def reactivate(cluster: str, arns: list[str]) -> str | None:
    """Set ACTIVE again for a settlement that must record its hosts whatever ECS says: None if done, else
    why not."""
    try:
        set_state(cluster, arns, "ACTIVE")
    except (BotoCoreError, ClientError) as error:
        return str(error)
    return None
