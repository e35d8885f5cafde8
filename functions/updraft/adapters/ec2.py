"""EC2 inventory, status checks and out-of-band reboots."""

from __future__ import annotations

from updraft.adapters.aws import chunks, client

STATUS_BATCH = 100  # DescribeInstanceStatus and RebootInstances: at most 100 explicit instance ids
INSTANCES_PAGE = 1000  # DescribeInstances' largest page


def running_group_instances(tag_key: str, group: str) -> dict[str, str]:
    """Running instances tagged for the group: instance id -> Availability Zone."""
    paginator = client("ec2").get_paginator("describe_instances")
    filters = [
        {"Name": f"tag:{tag_key}", "Values": [group]},
        {"Name": "instance-state-name", "Values": ["running"]},
    ]
    found: dict[str, str] = {}
    for page in paginator.paginate(Filters=filters, PaginationConfig={"PageSize": INSTANCES_PAGE}):
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                found[instance["InstanceId"]] = instance["Placement"]["AvailabilityZone"]
    return found


def _combined(item: dict) -> str:
    checks = {item["InstanceStatus"]["Status"], item["SystemStatus"]["Status"]}
    if "impaired" in checks:
        return "impaired"
    if checks == {"ok"}:
        return "ok"
    return sorted(checks - {"ok"})[0]


def instance_status(instance_ids: list[str]) -> dict[str, str]:
    """EC2 status checks per host: ok, impaired, initializing, insufficient-data, ..."""
    ec2 = client("ec2")
    statuses: dict[str, str] = {}
    for batch in chunks(sorted(instance_ids), STATUS_BATCH):
        response = ec2.describe_instance_status(InstanceIds=batch, IncludeAllInstances=True)
        statuses.update({item["InstanceId"]: _combined(item) for item in response["InstanceStatuses"]})
    return statuses


def reboot(instance_ids: list[str]) -> None:
    ec2 = client("ec2")
    for batch in chunks(sorted(instance_ids), STATUS_BATCH):
        ec2.reboot_instances(InstanceIds=batch)
