"""The plan's reads of the fleet: the group's running instances and what SSM knows of their agents."""

from __future__ import annotations

from typing import Any

from updraft.adapters.aws import chunks, client
from updraft.adapters.ec2 import running_group_instances

# DescribeInstanceInformation's InstanceIds filter takes at most 50 ids.
INFORMATION_BATCH = 50


def running_instances(tag_key: str, group: str) -> dict[str, str]:
    """Running instances tagged for the group: instance id -> Availability Zone."""
    return running_group_instances(tag_key, group)


def agent_information(instance_ids: list[str]) -> dict[str, dict[str, Any]]:
    """SSM's record of each instance's agent (PingStatus, PlatformName, PlatformVersion); absent if none."""
    ssm = client("ssm")
    found: dict[str, dict[str, Any]] = {}
    for batch in chunks(sorted(instance_ids), INFORMATION_BATCH):
        pages = ssm.get_paginator("describe_instance_information").paginate(
            Filters=[{"Key": "InstanceIds", "Values": batch}]
        )
        for page in pages:
            found.update({item["InstanceId"]: item for item in page["InstanceInformationList"]})
    return found
