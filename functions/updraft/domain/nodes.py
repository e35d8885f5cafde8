"""EKS nodes: which ones an update may take, what their drain still waits on, how refused evictions back off.

An update takes a node only when nothing else has a claim on it: Karpenter disrupting it (its `disrupted`
taint, https://karpenter.sh/docs/concepts/disruption/), the Bottlerocket update operator (the label its agents
select nodes by, bottlerocket-update-operator README), someone who cordoned it, a node annotated do-not-disrupt,
or a kubelet that is not Ready. A drain evicts what `kubectl drain --ignore-daemonsets` does: every pod but
those of DaemonSets (their controller ignores cordons) and mirror pods (the kubelet's own), which stay.
"""

from __future__ import annotations

import re

from updraft.domain.host_actions import NodeView, PodView

DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"
# Karpenter v1 taints a node it disrupts `karpenter.sh/disrupted:NoSchedule`; before v1, `karpenter.sh/disruption`.
KARPENTER_DISRUPTING = ("karpenter.sh/disrupted", "karpenter.sh/disruption")
UPDATE_OPERATOR_LABEL = "bottlerocket.aws/updater-interface-version"
# The kubelet reports os-release's PRETTY_NAME: "Bottlerocket OS 1.26.1 (aws-k8s-1.31)".
_OS_IMAGE = re.compile(r"^Bottlerocket OS (\S+) \(")
# A refused eviction is tried again after one poll, then after twice as long each time, up to five minutes.
MAX_EVICTION_BACKOFF_SECONDS = 300


def leave_alone(node: NodeView) -> str | None:
    """Why the update must not take this node, or None."""
    disrupting = [key for key in KARPENTER_DISRUPTING if key in node.taints]
    if disrupting:
        return f"Karpenter is disrupting node {node.name} (taint {disrupting[0]})"
    if UPDATE_OPERATOR_LABEL in node.labels:
        return f"node {node.name} is labelled {UPDATE_OPERATOR_LABEL}: the Bottlerocket update operator updates it"
    if node.do_not_disrupt:
        return f"node {node.name} is annotated {DO_NOT_DISRUPT}"
    if node.unschedulable:
        return f"node {node.name} was already cordoned: someone else is working on it"
    if not node.ready:
        return f"the kubelet of node {node.name} is not Ready"
    return None


def os_version(os_image: str) -> str | None:
    """The Bottlerocket version a node's osImage names, or None if it names none."""
    matched = _OS_IMAGE.match(os_image)
    return matched.group(1) if matched else None


def runs(node: NodeView | None, version: str) -> bool:
    """The node is Ready and its kubelet reports this Bottlerocket version."""
    return node is not None and node.ready and os_version(node.os_image) == version


def stays(pod: PodView) -> bool:
    """A pod the drain leaves on the node: a DaemonSet's, a mirror pod, or one that has finished."""
    return pod.owner_kind == "DaemonSet" or pod.mirror or pod.finished


def waited_on(node: NodeView) -> list[PodView]:
    """The pods that must be gone before the node is drained."""
    return [pod for pod in node.pods if not stays(pod)]


def protected(node: NodeView) -> list[PodView]:
    """The pods an eviction must not touch: annotated do-not-disrupt by their owners."""
    return [pod for pod in waited_on(node) if pod.do_not_disrupt and not pod.terminating]


def next_evictions(node: NodeView, concurrency: int) -> tuple[str, ...]:
    """The pods to evict now: at most `concurrency` terminating at once, none annotated do-not-disrupt."""
    pods = waited_on(node)
    in_flight = sum(1 for pod in pods if pod.terminating)
    candidates = sorted(pod.key for pod in pods if not pod.terminating and not pod.do_not_disrupt)
    return tuple(candidates[: max(0, concurrency - in_flight)])


def eviction_backoff_seconds(refusals: int, poll_seconds: int) -> int:
    """How long to wait before evicting again after `refusals` refusals in a row."""
    return min(poll_seconds * 2 ** max(0, refusals - 1), MAX_EVICTION_BACKOFF_SECONDS)
