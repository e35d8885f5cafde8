"""What is seen of a host (its command, its agent, its status checks, its container instance or node), and what a
transition asks to be done to it (send a document, reboot it through EC2, set its container instance's state,
cordon or uncordon its node, evict pods from it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from updraft.domain.host_record import Doc, HostRecord, HostState


@dataclass(frozen=True)
class Invocation:
    status: str
    stdout: str = ""
    stderr: str = ""


@dataclass(frozen=True)
class ContainerView:
    """What ECS says of a host's container instance."""

    status: str  # ACTIVE | DRAINING | ...
    running_tasks: int
    agent_connected: bool
    unmanaged_tasks: tuple[str, ...] = ()  # running tasks no service owns (looked up while draining)


@dataclass(frozen=True)
class PodView:
    """A pod on a node, as much of it as a drain needs."""

    namespace: str
    name: str
    owner_kind: str = ""  # its controller's kind: ReplicaSet, StatefulSet, Job, DaemonSet, Node (a mirror pod)...
    mirror: bool = False  # a static pod's API mirror: the kubelet runs it, the API cannot remove it
    do_not_disrupt: bool = False  # annotated karpenter.sh/do-not-disrupt: "true"
    terminating: bool = False  # evicted or deleted, within its grace period
    finished: bool = False  # phase Succeeded or Failed: nothing runs

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class NodeView:
    """What the Kubernetes API says of a host's node."""

    name: str
    ready: bool  # condition Ready is True
    unschedulable: bool  # cordoned
    os_image: str  # status.nodeInfo.osImage: "Bottlerocket OS <version> (<variant>)"
    taints: tuple[str, ...] = ()  # their keys
    labels: tuple[str, ...] = ()  # their keys
    do_not_disrupt: bool = False  # the node itself annotated karpenter.sh/do-not-disrupt: "true"
    pods: tuple[PodView, ...] = ()  # looked up while the node drains


@dataclass(frozen=True)
class Observation:
    invocation: Invocation | None = None  # of the record's current command
    online: bool = False  # SSM agent PingStatus Online
    instance_status: str | None = None  # EC2 instance status: ok | impaired | initializing | ...
    container: ContainerView | None = None  # ECS groups: None when the container instance is gone
    node: NodeView | None = None  # EKS groups: None when the node is gone


@dataclass(frozen=True)
class SendDocument:
    doc: Doc
    version: str  # the document's version parameter


@dataclass(frozen=True)
class RebootThroughEc2:
    pass


@dataclass(frozen=True)
class SetContainerState:
    """UpdateContainerInstancesState for the record's container instance."""

    status: str  # DRAINING | ACTIVE


@dataclass(frozen=True)
class SetSchedulable:
    """Cordon (False) or uncordon (True) the record's node."""

    schedulable: bool


@dataclass(frozen=True)
class EvictPods:
    """Evict these pods (namespace/name) from the record's node, through the Eviction API."""

    pods: tuple[str, ...]


Action = SendDocument | RebootThroughEc2 | SetContainerState | SetSchedulable | EvictPods


def send_key(rollout_id: str, doc: Doc, now: datetime) -> str:
    """The same for every attempt of one step (Step Functions retries a task with the state's entry time),
    different for every other step and rollout: names the step's command in SSM."""
    return hashlib.sha256(f"{rollout_id}|{doc}|{now.isoformat()}".encode()).hexdigest()[:24]


def intended_send(record: HostRecord) -> SendDocument | None:
    """The send a record awaits: a rollback's documents carry the previous version, the rest the target."""
    if not record.unsent or record.command_doc is None:
        return None
    version = record.previous_version if record.state is HostState.ROLLING_BACK else record.target_version
    return SendDocument(record.command_doc, version)


@dataclass(frozen=True)
class Step:
    record: HostRecord
    action: Action | None = None
