"""The Kubernetes side of an EKS cluster whose nodes are the simulated Bottlerocket hosts: what the kubelets,
the controllers and the API server's registry do, over nodes, pods, ReplicaSets, DaemonSets, mirror pods and
PodDisruptionBudgets. Objects come out as the Kubernetes API's JSON (dicts); sim/kubernetes_api.py serves
them over HTTPS. This module imports nothing of moto and knows nothing of HTTP.

What is modelled, and from where (kubernetes/kubernetes unless said otherwise):
- A node's kubelet posts status while its host is up: from the host's `online_at` of each boot until it
  next goes down (`SimHost.boot_log`; the kubelet is taken to start with the host's agents). It reports
  Ready=False (KubeletNotReady: the CNI is not up yet) for `kubelet_ready_seconds`, then Ready=True
  (KubeletReady). Once it is silent for the node monitor grace period, the node lifecycle controller sets
  Ready=Unknown (NodeStatusUnknown) and marks the node's pods not ready; until then the API shows the last
  status it posted (pkg/controller/nodelifecycle/node_lifecycle_controller.go). Bottlerocket leaves the
  kubelet's graceful node shutdown off (no shutdown-grace-period), so a reboot posts nothing first.
- The controller's taints (TaintNodesByCondition): `node.kubernetes.io/unschedulable:NoSchedule` while
  cordoned, `not-ready` / `unreachable` (NoSchedule and NoExecute) while Ready is False / Unknown. Pods
  that do not tolerate a NoExecute taint are deleted once their toleration runs out: every pod gets 300 s
  for not-ready and unreachable (plugin/pkg/admission/defaulttolerationseconds), DaemonSet pods tolerate
  them for ever (pkg/controller/daemon/util/daemonset_util.go), static pods tolerate every NoExecute taint
  (pkg/kubelet/config/common.go).
- `node.nodeInfo.osImage` is the PRETTY_NAME of /etc/os-release as Bottlerocket writes it,
  `Bottlerocket OS <version> (<variant>)` (bottlerocket-os/twoliter, twoliter/embedded/rpm2img), of the
  image the host runs, as the kubelet last reported it (the old one until the kubelet posts after a boot).
- A deleted pod terminates for its grace period (`spec.terminationGracePeriodSeconds`, 30 by default;
  0 for an unscheduled or finished pod: pkg/registry/core/pod/strategy.go, CheckGracefulDelete) and is gone
  once the kubelet confirms it, which it can only do while it posts. `deletionTimestamp` is when the
  grace period ends (k8s.io/apiserver pkg/registry/rest/delete.go, BeforeDelete).
- A ReplicaSet replaces a pod as soon as it is terminating (it counts active pods only:
  pkg/controller/controller_utils.go, FilterActivePods); the scheduler binds the new pod to the least
  loaded node it fits (no untolerated NoSchedule/NoExecute taint, not cordoned, not excluded by the
  workload's node affinity), then by name; none fits: it stays Pending, Unschedulable. It becomes Ready
  `startup_seconds` after it is bound. A DaemonSet recreates its pod on the same node once the old one is
  gone; the kubelet recreates a deleted mirror pod (its static pod never stopped). Bare pods stay deleted.
- A node whose instance is terminated is deleted once it is not ready (k8s.io/cloud-provider,
  controllers/nodelifecycle), and its pods with it (pkg/controller/podgc, orphaned pods; its 40 s
  quarantine is left out).
- PodDisruptionBudget status as the disruption controller computes it (pkg/controller/disruption/
  disruption.go), and eviction as the API server's eviction subresource decides it
  (pkg/registry/core/pod/storage/eviction.go): see `budget_status` and `evict`.
Everything is on the virtual clock, settled lazily whenever the cluster is read or written (`settle`):
what fell due since the last settle happens at the moment it was due, in time order. Names and uids are
drawn from the cluster's own seeded random.
"""

from __future__ import annotations

import copy
import itertools
import math
import random
import threading
import uuid
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sim.bottlerocket import INFINITY, SimHost
from sim.clock import VirtualClock
from sim.faults import TerminatedHost
from sim.fleet import Fleet

# kube-controller-manager's --node-monitor-grace-period: 40 s up to Kubernetes 1.31, 50 s from 1.32
# (kubernetes/kubernetes#126287, pkg/controller/nodelifecycle/config/v1alpha1/defaults.go).
NODE_MONITOR_GRACE_SECONDS = {"1.31": 40.0, "1.32": 50.0}
DEFAULT_TOLERATION_SECONDS = 300  # plugin/pkg/admission/defaulttolerationseconds/admission.go
TERMINATION_GRACE_SECONDS = 30  # pkg/apis/core/v1/defaults.go (DefaultTerminationGracePeriodSeconds)
KUBELET_READY_SECONDS = 10.0  # from the kubelet's start until the VPC CNI is ready (an estimate)
POD_STARTUP_SECONDS = 15.0  # a new pod, from binding to passing its readiness probe (an estimate)
# A name's random suffix: generateName's 5 characters of apimachinery pkg/util/rand/rand.go.
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"  # Karpenter's; the API server never reads it
CNI_NOT_READY = (
    "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
    "message:Network plugin returns error: cni plugin not initialized"
)
# The pressure conditions the kubelet posts next to Ready (pkg/kubelet/nodestatus/setters.go).
PRESSURES = (
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
)
PROVIDER_ID_FORBIDDEN = 'spec.providerID: Forbidden: node updates may not change providerID except from "" to valid'
BUDGET_MESSAGE = "Cannot evict pod as it would violate the pod's disruption budget."
MANY_BUDGETS = "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
ARCHES = {"x86_64": "amd64", "aarch64": "arm64"}


# -- the API's errors -------------------------------------------------------------------------------------------
class ApiError(Exception):
    """A request the API server refuses: the `Status` it answers with, and its HTTP code."""

    def __init__(self, status: dict[str, Any]) -> None:
        super().__init__(status["message"])
        self.status = status
        self.code = int(status["code"])


def failure(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """A `Status` of a refused request (k8s.io/apimachinery pkg/api/errors/errors.go)."""
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message}
    if reason:
        status["reason"] = reason
    if details:
        status["details"] = details
    return status | {"code": code}


def qualified(resource: str, group: str) -> str:
    """GroupResource.String(): `pods`, `poddisruptionbudgets.policy`."""
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, name: str, group: str = "") -> ApiError:
    details = {"name": name, "group": group, "kind": resource} if group else {"name": name, "kind": resource}
    return ApiError(failure(404, "NotFound", f'{qualified(resource, group)} "{name}" not found', details))


def invalid(kind: str, name: str, message: str) -> ApiError:
    return ApiError(failure(422, "Invalid", f'{kind} "{name}" is invalid: {message}', {"name": name, "kind": kind}))


SUCCESS = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


# -- a node's kubelet over time -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Health:
    """A node's Ready condition at some moment, as the API shows it."""

    status: str  # True | False | Unknown
    reason: str
    message: str
    since: float  # lastTransitionTime
    heartbeat: float  # lastHeartbeatTime
    posting: bool  # the kubelet posts now: what the API shows is fresh


@dataclass(frozen=True)
class Timeline:
    """When a node's kubelet posts status: the [start, end) intervals its host is up, in order."""

    intervals: tuple[tuple[float, float], ...]
    ready_after: float
    grace: float
    registered: float

    def containing(self, t: float) -> tuple[float, float] | None:
        return next((iv for iv in self.intervals if iv[0] <= t < iv[1]), None)

    def last_before(self, t: float) -> tuple[float, float] | None:
        """The last interval that ended by `t`."""
        ended = [iv for iv in self.intervals if iv[1] <= t]
        return ended[-1] if ended else None

    def health(self, t: float) -> Health:
        current = self.containing(t)
        if current is not None:
            ready_from = current[0] + self.ready_after
            if t >= ready_from:
                return Health("True", "KubeletReady", "kubelet is posting ready status", ready_from, t, True)
            return Health("False", "KubeletNotReady", CNI_NOT_READY, current[0], t, True)
        previous = self.last_before(t)
        if previous is None:
            never = "Kubelet never posted node status."
            return Health("Unknown", "NodeStatusNeverUpdated", never, self.registered, self.registered, False)
        silent = previous[1]
        if t >= silent + self.grace:
            stopped = "Kubelet stopped posting node status."
            return Health("Unknown", "NodeStatusUnknown", stopped, silent + self.grace, silent, False)
        last = self.health(max(previous[0], silent - 1e-6))  # what it posted last, still shown
        return Health(last.status, last.reason, last.message, last.since, silent, False)

    def ready_starts(self, after: float, until: float) -> list[float]:
        """The moments in (after, until] the kubelet turned Ready."""
        starts = (iv[0] + self.ready_after for iv in self.intervals if iv[0] + self.ready_after < iv[1])
        return [t for t in starts if after < t <= until]

    def silences(self, until: float) -> Iterator[tuple[float, float]]:
        """Each (went silent, posted again) up to `until` (posted again: infinity while still silent)."""
        for index, (_, end) in enumerate(self.intervals):
            if end <= until:
                following = self.intervals[index + 1][0] if index + 1 < len(self.intervals) else INFINITY
                yield end, following

    def posting_from(self, t: float) -> float | None:
        """The first moment at or after `t` the kubelet posts."""
        for start, end in self.intervals:
            if end > t:
                return max(start, t)
        return None


def posting_intervals(host: SimHost, registered: float, ended: float) -> tuple[tuple[float, float], ...]:
    """The host's up intervals, clipped to the node's life: from each boot's `online_at` (a host is up from
    before it is first seen) until the next boot went down, or `ended` (termination; infinity)."""
    starts = [-INFINITY, *(online for _, online in host.boot_log)]
    ends = [*(down for down, _ in host.boot_log), ended]
    clipped = ((max(start, registered), end) for start, end in zip(starts, ends, strict=True))
    return tuple((start, end) for start, end in clipped if start < end)


# -- the objects ----------------------------------------------------------------------------------------------------
@dataclass
class Node:
    name: str
    instance_id: str
    instance_type: str
    private_ip: str
    uid: str
    created: float
    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    unschedulable: bool = False
    cordoned_at: float = 0.0
    taints: list[dict[str, Any]] = field(default_factory=list)  # the users' (not the controllers')
    reported: tuple[str, str] = ("", "")  # (version, boot id) as the kubelet last posted them
    terminated_at: float = INFINITY  # first seen terminated
    evicted_silences: set[float] = field(default_factory=set)  # silences whose NoExecute evictions ran
    resource_version: int = 0
    state: tuple = ()  # what its status looked like at the last settle, to move its resourceVersion


@dataclass
class Owner:
    api_version: str
    kind: str
    name: str
    uid: str

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


@dataclass
class Pod:
    namespace: str
    name: str
    uid: str
    created: float
    labels: dict[str, str]
    annotations: dict[str, str]
    owner: Owner | None
    tolerations: list[dict[str, Any]]
    grace_seconds: int = TERMINATION_GRACE_SECONDS
    startup_seconds: float = POD_STARTUP_SECONDS
    avoid: frozenset[str] = frozenset()  # node names its node affinity excludes
    only_node: str | None = None  # a DaemonSet pod's node affinity
    node: str | None = None
    bound_at: float = 0.0
    first_ready_at: float = 0.0
    final_phase: str | None = None  # Succeeded / Failed: a finished bare pod
    deletion_at: float | None = None  # deletionTimestamp
    deletion_grace: int = 0
    disruption: tuple[str, str, float] | None = None  # the DisruptionTarget condition (reason, message, when)
    resource_version: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name

    @property
    def mirror(self) -> bool:
        return MIRROR_ANNOTATION in self.annotations

    def tolerates(self, taint: dict[str, Any]) -> bool:
        return any(_tolerates(toleration, taint) for toleration in self.tolerations)


@dataclass
class ReplicaSet:
    namespace: str
    name: str
    uid: str
    replicas: int
    labels: dict[str, str]
    annotations: dict[str, str]
    startup_seconds: float
    grace_seconds: int
    avoid: frozenset[str]


@dataclass
class DaemonSet:
    namespace: str
    name: str
    uid: str
    labels: dict[str, str]
    grace_seconds: int


@dataclass
class StaticPod:
    """A manifest in a node's /etc/kubernetes/manifests: the kubelet mirrors it as `<name>-<node>`."""

    namespace: str
    name: str
    node: str
    labels: dict[str, str]
    hash: str


@dataclass
class Budget:
    namespace: str
    name: str
    uid: str
    created: float
    selector: dict[str, str]
    min_available: int | str | None
    max_unavailable: int | str | None
    unhealthy_pod_eviction_policy: str | None
    resource_version: int = 0


@dataclass(frozen=True)
class BudgetStatus:
    expected_pods: int
    current_healthy: int
    desired_healthy: int
    disruptions_allowed: int
    sync_error: str | None = None


def _tolerates(toleration: dict[str, Any], taint: dict[str, Any]) -> bool:
    """core/v1 Toleration.ToleratesTaint."""
    if toleration.get("effect") and toleration["effect"] != taint["effect"]:
        return False
    if toleration.get("key") and toleration["key"] != taint["key"]:
        return False
    if toleration.get("operator", "Equal") == "Exists":
        return True
    return toleration.get("value", "") == taint.get("value", "")


def _default_tolerations() -> list[dict[str, Any]]:
    return [
        {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": DEFAULT_TOLERATION_SECONDS}
        for key in (NOT_READY, UNREACHABLE)
    ]


def _daemon_tolerations() -> list[dict[str, Any]]:
    no_execute = [{"key": key, "operator": "Exists", "effect": "NoExecute"} for key in (NOT_READY, UNREACHABLE)]
    pressures = ("disk-pressure", "memory-pressure", "pid-pressure", "unschedulable")
    no_schedule = [
        {"key": f"node.kubernetes.io/{name}", "operator": "Exists", "effect": "NoSchedule"} for name in pressures
    ]
    return no_execute + no_schedule


def node_name(private_ip: str, region: str) -> str:
    """EC2's private DNS name of an address, which Bottlerocket's pluto gives the kubelet as its node name
    (bottlerocket-core-kit sources/api/pluto/src/main.rs, generate_node_name)."""
    domain = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    return f"ip-{private_ip.replace('.', '-')}.{domain}"


def grace_period(version: str) -> float:
    minor = int(version.split(".")[1])
    return NODE_MONITOR_GRACE_SECONDS["1.31"] if minor <= 31 else NODE_MONITOR_GRACE_SECONDS["1.32"]


def _scaled(value: int | str, total: int) -> int:
    """intstr.GetScaledValueFromIntOrPercent, rounding up (as the disruption controller asks)."""
    if isinstance(value, int):
        return value
    return math.ceil(int(value.rstrip("%")) * total / 100)


# -- the cluster ----------------------------------------------------------------------------------------------------
class SimulatedCluster:
    """One EKS cluster's Kubernetes objects and the behaviour of its kubelets and controllers."""

    def __init__(
        self,
        name: str,
        fleet: Fleet,
        clock: VirtualClock,
        version: str = "1.32",
        region: str = "us-east-1",
        seed: int = 7,
    ) -> None:
        self.name, self.fleet, self.clock, self.version, self.region = name, fleet, clock, version, region
        self.seed = seed
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """No node, workload or budget; counters at zero; timing as by default; names drawn as from a new
        cluster."""
        with self._lock:
            # Timing, settable by a test: seconds.
            self.kubelet_ready_seconds = KUBELET_READY_SECONDS
            self.node_monitor_grace_seconds = grace_period(self.version)
            self.toleration_seconds = DEFAULT_TOLERATION_SECONDS
            self.nodes: dict[str, Node] = {}
            self.pods: dict[tuple[str, str], Pod] = {}
            self.replica_sets: dict[tuple[str, str], ReplicaSet] = {}
            self.daemon_sets: dict[tuple[str, str], DaemonSet] = {}
            self.static_pods: dict[tuple[str, str], StaticPod] = {}
            self.budgets: dict[tuple[str, str], Budget] = {}
            self.evictions: dict[str, Counter[str]] = defaultdict(Counter)  # node -> accepted / refused
            self.api_requests: Counter[tuple[str, str]] = Counter()  # (verb, resource) -> requests
            self.rng = random.Random(f"{self.name}:{self.seed}")
            self._revision = itertools.count(1)
            self.revision = next(self._revision)
            self._settled_at: float | None = None  # nothing to settle before the first node joins
            self._by_node: dict[str, set[tuple[str, str]]] = defaultdict(set)
            self._timelines: dict[str, tuple[tuple, Timeline]] = {}

    # -- ids and versions ---------------------------------------------------------------------------------------
    def _uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _suffix(self) -> str:
        return "".join(self.rng.choice(NAME_ALPHABET) for _ in range(5))

    def _touch(self, thing: Any) -> None:
        self.revision = next(self._revision)
        thing.resource_version = self.revision

    # -- nodes ----------------------------------------------------------------------------------------------------
    def join(
        self,
        instance_id: str,
        name: str | None = None,
        private_ip: str | None = None,
        instance_type: str = "m7g.large",
        registered: bool = True,
    ) -> str:
        """The host's kubelet registers its node (named after its EC2 private DNS name); its name. A node of a
        running cluster (`registered`) has registered `kubelet_ready_seconds` ago, so it is Ready now if its host
        is up; otherwise its kubelet registers now, and the node is Ready once its CNI is."""
        with self._lock:
            self.settle()
            host = self.fleet.hosts[instance_id]
            since = self.clock.seconds - (self.kubelet_ready_seconds if registered else 0.0)
            address = private_ip or _address_of(instance_id)
            name = name or node_name(address, self.region)
            labels = {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": ARCHES.get(host.repo.arch, host.repo.arch),
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": ARCHES.get(host.repo.arch, host.repo.arch),
                "node.kubernetes.io/instance-type": instance_type,
                "beta.kubernetes.io/instance-type": instance_type,
                "topology.kubernetes.io/region": self.region,
                "topology.kubernetes.io/zone": host.az,
                "failure-domain.beta.kubernetes.io/region": self.region,
                "failure-domain.beta.kubernetes.io/zone": host.az,
            }
            annotations = {
                "alpha.kubernetes.io/provided-node-ip": address,
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            }
            node = Node(name, instance_id, instance_type, address, self._uid(), since, labels, annotations)
            node.reported = (host.version, host.boot_id)
            self.nodes[name] = node
            self._touch(node)
            self._reconcile(self.clock.seconds)
            return name

    def instance_terminated(self, instance_id: str) -> None:
        """The node's instance was terminated now: its kubelet stops posting from this moment. (Without this
        word, the model learns of a termination when it next settles.)"""
        with self._lock:
            self.settle()
            for node in self.nodes.values():
                if node.instance_id == instance_id and node.terminated_at == INFINITY:
                    node.terminated_at = max(self.clock.seconds, node.created)

    def node_of(self, instance_id: str) -> str | None:
        """The name of the instance's node now (None once it is deleted, or before it joins)."""
        with self._lock:
            self.settle()
            return next((n.name for n in self.nodes.values() if n.instance_id == instance_id), None)

    def _timeline(self, node: Node) -> Timeline:
        """The node's kubelet timeline, made again only when its host booted, or anything it depends on changed."""
        host = self.fleet.hosts[node.instance_id]
        timing = (self.kubelet_ready_seconds, self.node_monitor_grace_seconds)
        key = (id(host), node.created, len(host.boot_log), node.terminated_at, timing)
        cached = self._timelines.get(node.name)
        if cached is None or cached[0] != key:
            intervals = posting_intervals(host, node.created, node.terminated_at)
            timeline = Timeline(intervals, self.kubelet_ready_seconds, self.node_monitor_grace_seconds, node.created)
            cached = self._timelines[node.name] = (key, timeline)
        return cached[1]

    def _controller_taints(self, node: Node, health: Health) -> list[dict[str, Any]]:
        taints = []
        if node.unschedulable:
            taints.append({"key": UNSCHEDULABLE, "effect": "NoSchedule", "at": node.cordoned_at})
        if health.status != "True":
            key = UNREACHABLE if health.status == "Unknown" else NOT_READY
            taints += [{"key": key, "effect": effect, "at": health.since} for effect in ("NoSchedule", "NoExecute")]
        return taints

    def _taints_at(self, node: Node, t: float) -> list[dict[str, Any]]:
        return [*node.taints, *self._controller_taints(node, self._timeline(node).health(t))]

    def _fits(self, pod: Pod, node: Node, t: float) -> str | None:
        """Why the scheduler would not bind the pod to the node at `t` (None: it fits): the reasons of
        kube-scheduler's NodeUnschedulable, TaintToleration and NodeAffinity filters."""
        if node.name in pod.avoid or (pod.only_node is not None and pod.only_node != node.name):
            return "node(s) didn't match Pod's node affinity/selector"
        for taint in self._taints_at(node, t):
            if taint["effect"] in ("NoSchedule", "NoExecute") and not pod.tolerates(taint):
                if taint["key"] == UNSCHEDULABLE:
                    return "node(s) were unschedulable"
                return f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value', '')}}}"
        return None

    # -- settling -------------------------------------------------------------------------------------------------
    def settle(self) -> None:
        """Bring the cluster up to the current virtual time: what fell due since the last settle happens now,
        each thing at the moment it was due."""
        with self._lock:
            now = self.clock.seconds
            if self._settled_at is not None and now <= self._settled_at:
                return  # nothing falls due while time stands still
            for node in list(self.nodes.values()):
                self._observe_host(node, now)
            for moment in self._moments(self._settled_at if self._settled_at is not None else now, now):
                self._happen(moment)
                self._reconcile(moment)
            self._settled_at = now
            for node in self.nodes.values():
                self._note_state(node, now)

    def _observe_host(self, node: Node, now: float) -> None:
        host = self.fleet.hosts[node.instance_id]
        host.sync(now)
        if isinstance(host, TerminatedHost) and node.terminated_at == INFINITY:
            node.terminated_at = max(now, node.created)  # the model learns of it now
        future_boot = bool(host.boot_log) and host.boot_log[-1][0] > now
        if self._timeline(node).containing(now) is not None and not future_boot:
            node.reported = (host.version, host.boot_id)

    def _moments(self, after: float, now: float) -> list[float]:
        """Every moment in [after, now] at which something is due, then now."""
        moments = {now}
        for node in self.nodes.values():
            timeline = self._timeline(node)
            moments.update(timeline.ready_starts(after, now))
            moments.update(t for t in self._evictions_due(node, timeline, now))
            if node.terminated_at < INFINITY:
                moments.add(min(max(node.terminated_at + timeline.grace, after), now))
        moments.update(t for t in (self._removal_time(pod, now) for pod in self._terminating()) if t is not None)
        return sorted(t for t in moments if after <= t <= now)

    def _evictions_due(self, node: Node, timeline: Timeline, now: float) -> Iterator[float]:
        for silent, back in timeline.silences(now):
            due = silent + timeline.grace + self.toleration_seconds
            if silent not in node.evicted_silences and due < back and due <= now:
                yield due

    def _happen(self, t: float) -> None:
        for node in list(self.nodes.values()):
            timeline = self._timeline(node)
            for silent, back in timeline.silences(t):
                due = silent + timeline.grace + self.toleration_seconds
                if silent not in node.evicted_silences and due < back and due <= t:
                    node.evicted_silences.add(silent)
                    self._taint_evict(node, due)
            if node.terminated_at + timeline.grace <= t:
                self._delete_node(node)
        for pod in self._terminating():
            removal = self._removal_time(pod, t)
            if removal is not None and removal <= t:
                self._remove(pod)

    def _terminating(self) -> list[Pod]:
        return [pod for pod in self.pods.values() if pod.deletion_at is not None]

    def _removal_time(self, pod: Pod, now: float) -> float | None:
        """When the kubelet confirms the terminating pod gone: at the end of its grace period (a mirror pod's
        at once), or as soon as it posts again after."""
        node = self.nodes.get(pod.node or "")
        if node is None:
            return pod.deletion_at
        start = pod.deletion_at - pod.deletion_grace if pod.mirror else pod.deletion_at
        due = self._timeline(node).posting_from(start)
        return due if due is not None and due <= now else None

    def _note_state(self, node: Node, now: float) -> None:
        health = self._timeline(node).health(now)
        state = (health.status, health.reason, node.reported, node.unschedulable)
        if state != node.state:
            node.state = state
            self._touch(node)
            for key in self._by_node.get(node.name, ()):
                self._touch(self.pods[key])

    def _taint_evict(self, node: Node, t: float) -> None:
        """The taint manager deletes the pods that do not tolerate the node's unreachable:NoExecute taint
        (pkg/controller/tainteviction/taint_eviction.go)."""
        taint = {"key": UNREACHABLE, "effect": "NoExecute"}
        for key in sorted(self._by_node.get(node.name, ())):
            pod = self.pods[key]
            if pod.deletion_at is None and not any(_tolerates_for_ever(tol, taint) for tol in pod.tolerations):
                pod.disruption = ("DeletionByTaintManager", "Taint manager: deleting due to NoExecute taint", t)
                self._delete(pod, None, t, reconcile=False)  # the settle reconciles at this moment next

    def _delete_node(self, node: Node) -> None:
        pinned = {pod.key for pod in self._pending() if pod.only_node == node.name}  # its DaemonSet pods to be
        for key in sorted(self._by_node.pop(node.name, set()) | pinned):
            self.pods.pop(key, None)
        self.nodes.pop(node.name, None)
        self.revision = next(self._revision)

    # -- controllers ----------------------------------------------------------------------------------------------
    def _reconcile(self, t: float) -> None:
        """The ReplicaSet and DaemonSet controllers, the kubelets' mirror pods, then the scheduler, at `t`."""
        active = Counter(p.owner.uid for p in self.pods.values() if p.owner is not None and self._active(p))
        for replica_set in self.replica_sets.values():
            if active[replica_set.uid] != replica_set.replicas:
                self._reconcile_replicas(replica_set, t)
        # A DaemonSet makes its pod on a node once none of its pods is there (terminating ones included).
        placed = {(p.owner.uid, p.node or p.only_node) for p in self.pods.values() if p.owner is not None}
        for daemon_set in self.daemon_sets.values():
            for node in list(self.nodes.values()):
                if (daemon_set.uid, node.name) not in placed:
                    self._daemon_pod(daemon_set, node.name, t)
        for static in self.static_pods.values():
            node = self.nodes.get(static.node)
            mirror = (static.namespace, f"{static.name}-{static.node}")
            if node is not None and mirror not in self.pods and self._timeline(node).containing(t) is not None:
                self._mirror_pod(static, node, t)
        for pod in sorted(self._pending(), key=lambda p: (p.created, p.key)):
            self._schedule(pod, t)

    def _owned(self, pod: Pod, uid: str) -> bool:
        return pod.owner is not None and pod.owner.uid == uid

    def _on_node(self, node: str) -> list[Pod]:
        return [self.pods[key] for key in self._by_node.get(node, ())]

    def _pending(self) -> list[Pod]:
        return [pod for pod in self.pods.values() if pod.node is None and pod.deletion_at is None]

    def _active(self, pod: Pod) -> bool:
        """controller.IsPodActive: not finished, not being deleted."""
        return pod.deletion_at is None and pod.final_phase is None

    def _reconcile_replicas(self, replica_set: ReplicaSet, t: float) -> None:
        active = [p for p in self.pods.values() if self._owned(p, replica_set.uid) and self._active(p)]
        for _ in range(replica_set.replicas - len(active)):
            self._replica_pod(replica_set, t, None, ready_now=False)
        if len(active) > replica_set.replicas:
            # ReplicaSet's deletion order (controller.ActivePodsWithRanks): unscheduled, then not ready, newest
            ranked = sorted(active, key=lambda p: (p.node is not None, self._ready(p, t), -p.created, p.name))
            for pod in ranked[: len(active) - replica_set.replicas]:
                self._delete(pod, None, t, reconcile=False)

    def _schedule(self, pod: Pod, t: float) -> None:
        fitting = [node for node in self.nodes.values() if self._fits(pod, node, t) is None]
        if not fitting:
            return
        target = min(fitting, key=lambda node: (sum(self._active(p) for p in self._on_node(node.name)), node.name))
        self._bind(pod, target.name, t, first_ready=t + pod.startup_seconds)

    def _bind(self, pod: Pod, node: str, t: float, first_ready: float) -> None:
        pod.node, pod.bound_at, pod.first_ready_at = node, t, first_ready
        self._by_node[node].add(pod.key)
        self._touch(pod)

    def _unschedulable_message(self, pod: Pod, t: float) -> str:
        """kube-scheduler's FitError: `0/N nodes are available: <count> <reason>, ...`."""
        reasons = Counter(self._fits(pod, node, t) for node in self.nodes.values())
        listed = sorted(f"{count} {reason}" for reason, count in reasons.items() if reason)
        return f"0/{len(self.nodes)} nodes are available: {', '.join(listed)}." if listed else "no nodes available"

    # -- pods: creating, deleting ----------------------------------------------------------------------------------
    def _new_pod(self, namespace: str, name: str, labels: dict, annotations: dict, owner: Owner | None, **kw) -> Pod:
        if (namespace, name) in self.pods:
            raise ValueError(f"pod {namespace}/{name} exists")
        pod = Pod(namespace, name, self._uid(), self.clock.seconds, dict(labels), dict(annotations), owner, **kw)
        self.pods[pod.key] = pod
        self._touch(pod)
        return pod

    def _replica_pod(self, replica_set: ReplicaSet, t: float, node: str | None, ready_now: bool) -> Pod:
        owner = Owner("apps/v1", "ReplicaSet", replica_set.name, replica_set.uid)
        pod = self._new_pod(
            replica_set.namespace,
            f"{replica_set.name}-{self._suffix()}",
            replica_set.labels,
            replica_set.annotations,
            owner,
            tolerations=_default_tolerations(),
            grace_seconds=replica_set.grace_seconds,
            startup_seconds=replica_set.startup_seconds,
            avoid=replica_set.avoid,
        )
        pod.created = t
        if node is not None:
            self._bind(pod, node, t, first_ready=t if ready_now else t + pod.startup_seconds)
        elif ready_now:
            self._schedule(pod, t)
            pod.first_ready_at = t
        return pod

    def _daemon_pod(self, daemon_set: DaemonSet, node: str, t: float, ready_now: bool = False) -> Pod:
        owner = Owner("apps/v1", "DaemonSet", daemon_set.name, daemon_set.uid)
        pod = self._new_pod(
            daemon_set.namespace,
            f"{daemon_set.name}-{self._suffix()}",
            daemon_set.labels,
            {},
            owner,
            tolerations=_daemon_tolerations(),
            grace_seconds=daemon_set.grace_seconds,
            only_node=node,
        )
        pod.created = t
        if ready_now:
            self._bind(pod, node, t, first_ready=t)
        else:
            self._schedule(pod, t)
        return pod

    def _mirror_pod(self, static: StaticPod, node: Node, t: float, ready_now: bool = False) -> Pod:
        annotations = {
            "kubernetes.io/config.hash": static.hash,
            MIRROR_ANNOTATION: static.hash,
            "kubernetes.io/config.source": "file",
        }
        pod = self._new_pod(
            static.namespace,
            f"{static.name}-{static.node}",
            static.labels,
            annotations,
            Owner("v1", "Node", node.name, node.uid),
            tolerations=[{"operator": "Exists", "effect": "NoExecute"}],
        )
        pod.created = t
        self._bind(pod, node.name, t, first_ready=t)
        return pod

    def _delete(self, pod: Pod, grace: int | None, t: float, reconcile: bool = True) -> None:
        """A graceful delete (CheckGracefulDelete): a pod the kubelet never ran, or one that finished, goes at
        once; another terminates for its grace period. A second delete only ever shortens it."""
        seconds = pod.grace_seconds if grace is None else max(0, grace)
        if pod.node is None or pod.final_phase is not None:
            seconds = 0
        deadline = t + seconds
        if pod.deletion_at is not None and pod.deletion_at <= deadline:
            return
        if seconds == 0 or (pod.mirror and self._timeline(self.nodes[pod.node]).containing(t) is not None):
            self._remove(pod)  # a mirror pod: the kubelet deletes it at once, and mirrors its static pod again
        else:
            pod.deletion_at, pod.deletion_grace = deadline, seconds
            self._touch(pod)
        if reconcile:  # the controllers see the deletion at once
            self._reconcile(t)

    def _remove(self, pod: Pod) -> None:
        self.pods.pop(pod.key, None)
        if pod.node is not None:
            self._by_node[pod.node].discard(pod.key)
        self.revision = next(self._revision)

    # -- readiness ------------------------------------------------------------------------------------------------
    def _ready(self, pod: Pod, t: float) -> bool:
        """The pod's Ready condition at `t`, as the API shows it (podutil.IsPodReady)."""
        node = self.nodes.get(pod.node or "")
        if node is None or pod.final_phase is not None:
            return False
        timeline = self._timeline(node)
        health = timeline.health(t)
        if health.status == "Unknown" and not health.posting:
            return False  # the node lifecycle controller marked it not ready (MarkPodsNotReady)
        if not health.posting:
            previous = timeline.last_before(t)
            return previous is not None and self._ready_within(pod, timeline, previous, previous[1] - 1e-6)
        return self._ready_within(pod, timeline, timeline.containing(t), t)

    def _ready_within(self, pod: Pod, timeline: Timeline, interval: tuple[float, float], t: float) -> bool:
        ready_from = interval[0] + timeline.ready_after
        if t < ready_from or t < pod.bound_at:
            return False
        restarted = interval[0] > pod.bound_at  # the node came back since: the containers start again
        return t >= (ready_from + pod.startup_seconds if restarted else max(pod.first_ready_at, ready_from))

    def _phase(self, pod: Pod, t: float) -> str:
        if pod.final_phase is not None:
            return pod.final_phase
        node = self.nodes.get(pod.node or "")
        if node is None:
            return "Pending"
        timeline = self._timeline(node)
        ran = any(iv[1] > pod.bound_at and iv[0] <= t for iv in timeline.intervals)
        return "Running" if ran else "Pending"

    # -- budgets --------------------------------------------------------------------------------------------------
    def _selected(self, budget: Budget) -> list[Pod]:
        return [
            pod
            for pod in self.pods.values()
            if pod.namespace == budget.namespace and all(pod.labels.get(k) == v for k, v in budget.selector.items())
        ]

    def budget_status(self, budget: Budget, t: float) -> BudgetStatus:
        """The disruption controller's status (disruption.go, trySync): with an integer minAvailable the
        expected pods are the pods selected; with a percentage or maxUnavailable, the scale of their
        controllers (unmanaged pods left out; a controller without a scale subresource, such as a DaemonSet
        or a mirror pod's Node, fails the sync, and `failSafe` allows no disruption). Healthy: Ready and not
        being deleted. disruptionsAllowed = max(0, currentHealthy - desiredHealthy), 0 with no pods expected."""
        pods = self._selected(budget)
        healthy = sum(1 for pod in pods if pod.deletion_at is None and self._ready(pod, t))
        if isinstance(budget.min_available, int):
            expected, desired = len(pods), budget.min_available
        else:
            try:
                expected = self._expected_scale(pods)
            except ValueError as error:
                return BudgetStatus(0, 0, 0, 0, str(error))
            if budget.max_unavailable is not None:
                desired = max(0, expected - _scaled(budget.max_unavailable, expected))
            else:
                desired = _scaled(budget.min_available or 0, expected)
        allowed = healthy - desired if expected > 0 else 0
        return BudgetStatus(expected, healthy, desired, max(0, allowed))

    def _expected_scale(self, pods: list[Pod]) -> int:
        scales: dict[str, int] = {}
        for pod in pods:
            if pod.owner is None:
                continue
            if pod.owner.kind != "ReplicaSet":
                resource = {"DaemonSet": "daemonsets.apps", "Node": "nodes"}.get(pod.owner.kind, pod.owner.kind)
                raise ValueError(f"{resource} does not implement the scale subresource")
            replica_set = next(rs for rs in self.replica_sets.values() if rs.uid == pod.owner.uid)
            scales[replica_set.uid] = replica_set.replicas
        return sum(scales.values())

    def _budgets_of(self, pod: Pod) -> list[Budget]:
        """The eviction subresource's getPodDisruptionBudgets: every budget of the namespace whose selector
        matches the pod's labels."""
        return [
            b
            for b in self.budgets.values()
            if b.namespace == pod.namespace and all(pod.labels.get(k) == v for k, v in b.selector.items())
        ]

    # -- eviction -------------------------------------------------------------------------------------------------
    def evict(self, namespace: str, name: str, grace: int | None = None, dry_run: bool = False) -> dict[str, Any]:
        """POST .../pods/<name>/eviction, decided as eviction.go's EvictionREST.Create does:
        - no such pod: 404;
        - a pod that is Pending, Succeeded, Failed or already terminating is deleted with no budget looked at;
        - more than one budget selecting the pod: a Failure `Status` of code 500 (returned as the created
          object: the HTTP status is 201 nonetheless, handlers/create.go);
        - no budget: deleted;
        - a pod that is not Ready is deleted without spending the budget when the budget's
          unhealthyPodEvictionPolicy is AlwaysAllow, or when currentHealthy >= desiredHealthy > 0;
        - otherwise checkAndDecrement: disruptionsAllowed 0 refuses with 429 TooManyRequests (cause
          DisruptionBudget), else the eviction spends one disruption (the evicted pod is terminating from now
          on, so the controller's next count leaves it out, as the DisruptedPods map makes it) and the pod
          is deleted, with the DisruptionTarget condition.
        Returns the `Status` the API answers with; raises ApiError for a refusal."""
        with self._lock:
            self.settle()
            t = self.clock.seconds
            pod = self.pods.get((namespace, name))
            if pod is None:
                raise not_found("pods", name)
            node = pod.node or ""
            try:
                outcome = self._decide(pod, t)
            except ApiError:
                self.evictions[node]["refused"] += 1
                raise
            if outcome is not SUCCESS:
                self.evictions[node]["refused"] += 1
                return copy.deepcopy(outcome)
            if not dry_run:
                self.evictions[node]["accepted"] += 1
                if pod.deletion_at is None:
                    pod.disruption = ("EvictionByEvictionAPI", "Eviction API: evicting", t)
                self._delete(pod, grace, t)
            return dict(SUCCESS)

    def _decide(self, pod: Pod, t: float) -> dict[str, Any]:
        if pod.deletion_at is not None or self._phase(pod, t) in ("Pending", "Succeeded", "Failed"):
            return SUCCESS  # canIgnorePDB
        budgets = self._budgets_of(pod)
        if len(budgets) > 1:
            return failure(500, "", MANY_BUDGETS)
        if not budgets:
            return SUCCESS
        (budget,) = budgets
        status = self.budget_status(budget, t)
        if not self._ready(pod, t):
            if budget.unhealthy_pod_eviction_policy == "AlwaysAllow":
                return SUCCESS
            if status.current_healthy >= status.desired_healthy > 0:
                return SUCCESS
        if status.disruptions_allowed == 0:
            cause = (
                f"The disruption budget {budget.name} needs {status.desired_healthy} healthy pods "
                f"and has {status.current_healthy} currently"
            )
            details = {"causes": [{"reason": "DisruptionBudget", "message": cause}]}
            raise ApiError(failure(429, "TooManyRequests", BUDGET_MESSAGE, details))
        return SUCCESS

    # -- writes the API serves ------------------------------------------------------------------------------------
    def patch_node(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        """The node after a patch, applied to its JSON by the caller: what a client may change of a node
        (labels, annotations, spec.unschedulable, spec.taints; status is the kubelet's and left as it is,
        nodeStrategy.PrepareForUpdate)."""
        with self._lock:
            self.settle()
            node = self._node(name)
            t = self.clock.seconds
            metadata, spec = changes.get("metadata") or {}, changes.get("spec") or {}
            if "providerID" in spec and spec["providerID"] != self._provider_id(node):
                raise invalid("Node", name, PROVIDER_ID_FORBIDDEN)
            node.labels = {k: str(v) for k, v in (metadata.get("labels") or {}).items()}
            node.annotations = {k: str(v) for k, v in (metadata.get("annotations") or {}).items()}
            unschedulable = bool(spec.get("unschedulable"))
            if unschedulable and not node.unschedulable:
                node.cordoned_at = t
            node.unschedulable = unschedulable
            managed = {UNSCHEDULABLE, NOT_READY, UNREACHABLE}
            node.taints = [
                {k: v for k, v in taint.items() if k in ("key", "value", "effect", "timeAdded")}
                for taint in spec.get("taints") or []
                if taint.get("key") not in managed
            ]
            self._touch(node)
            node.state = ()
            self._reconcile(t)
            self._note_state(node, t)
            return self.node_json(node, t)

    # -- reads the API serves -------------------------------------------------------------------------------------
    def _node(self, name: str) -> Node:
        node = self.nodes.get(name)
        if node is None:
            raise not_found("nodes", name)
        return node

    def read_node(self, name: str) -> dict[str, Any]:
        with self._lock:
            self.settle()
            return self.node_json(self._node(name), self.clock.seconds)

    def list_nodes(self) -> list[dict[str, Any]]:
        with self._lock:
            self.settle()
            t = self.clock.seconds
            return [self.node_json(self.nodes[name], t) for name in sorted(self.nodes)]

    def read_pod(self, namespace: str, name: str) -> dict[str, Any]:
        with self._lock:
            self.settle()
            pod = self.pods.get((namespace, name))
            if pod is None:
                raise not_found("pods", name)
            return self.pod_json(pod, self.clock.seconds)

    def list_pods(self, namespace: str | None = None, node: str | None = None) -> list[dict[str, Any]]:
        """Pods in etcd's key order (namespace, name), of one namespace and one node if given."""
        with self._lock:
            self.settle()
            t = self.clock.seconds
            keys = self._by_node.get(node, set()) if node is not None else self.pods.keys()
            keys = [key for key in keys if namespace is None or key[0] == namespace]
            return [self.pod_json(self.pods[key], t) for key in sorted(keys)]

    def read_budget(self, namespace: str, name: str) -> dict[str, Any]:
        with self._lock:
            self.settle()
            budget = self.budgets.get((namespace, name))
            if budget is None:
                raise not_found("poddisruptionbudgets", name, "policy")
            return self.budget_json(budget, self.clock.seconds)

    def list_budgets(self, namespace: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            self.settle()
            t = self.clock.seconds
            keys = sorted(key for key in self.budgets if namespace is None or key[0] == namespace)
            return [self.budget_json(self.budgets[key], t) for key in keys]

    def count_request(self, verb: str, resource: str) -> None:
        with self._lock:
            self.api_requests[(verb, resource)] += 1

    # -- JSON -----------------------------------------------------------------------------------------------------
    def _time(self, seconds: float) -> str:
        return _rfc3339(self.clock.at(seconds))

    def _provider_id(self, node: Node) -> str:
        return f"aws:///{self.fleet.hosts[node.instance_id].az}/{node.instance_id}"

    def node_json(self, node: Node, t: float) -> dict[str, Any]:
        health = self._timeline(node).health(t)
        spec: dict[str, Any] = {"providerID": self._provider_id(node)}
        if node.unschedulable:
            spec["unschedulable"] = True
        taints = [*node.taints, *self._controller_taints(node, health)]
        if taints:
            spec["taints"] = [self._taint_json(taint) for taint in taints]
        return {
            "kind": "Node",
            "apiVersion": "v1",
            "metadata": {
                "name": node.name,
                "uid": node.uid,
                "resourceVersion": str(node.resource_version),
                "creationTimestamp": self._time(node.created),
                "labels": dict(node.labels),
                "annotations": dict(node.annotations),
            },
            "spec": spec,
            "status": self._node_status(node, health),
        }

    def _taint_json(self, taint: dict[str, Any]) -> dict[str, Any]:
        shown = {"key": taint["key"], "effect": taint["effect"]}
        if taint.get("value"):
            shown["value"] = taint["value"]
        if "at" in taint:
            shown["timeAdded"] = self._time(taint["at"])
        elif taint.get("timeAdded"):
            shown["timeAdded"] = taint["timeAdded"]
        return shown

    def _node_status(self, node: Node, health: Health) -> dict[str, Any]:
        host = self.fleet.hosts[node.instance_id]
        version, boot_id = node.reported
        unknown = health.reason in ("NodeStatusUnknown", "NodeStatusNeverUpdated")
        conditions = [
            {
                "type": kind,
                "status": "Unknown" if unknown else "False",
                "lastHeartbeatTime": self._time(health.heartbeat),
                "lastTransitionTime": self._time(health.since if unknown else node.created),
                "reason": health.reason if unknown else reason,
                "message": health.message if unknown else message,
            }
            for kind, reason, message in PRESSURES
        ]
        conditions.append(
            {
                "type": "Ready",
                "status": health.status,
                "lastHeartbeatTime": self._time(health.heartbeat),
                "lastTransitionTime": self._time(health.since),
                "reason": health.reason,
                "message": health.message,
            }
        )
        kubelet = self.kubelet_version(host.repo.variant)
        return {
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": node.private_ip},
                {"type": "InternalDNS", "address": node.name},
                {"type": "Hostname", "address": node.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": node.uid.replace("-", ""),
                "systemUUID": f"ec2{node.uid[3:]}",
                "bootID": boot_id,
                "kernelVersion": "6.1.0",
                "osImage": f"Bottlerocket OS {version} ({host.repo.variant})",
                "containerRuntimeVersion": "containerd://1.7.0+bottlerocket",
                "kubeletVersion": kubelet,
                "kubeProxyVersion": kubelet,
                "operatingSystem": "linux",
                "architecture": ARCHES.get(host.repo.arch, host.repo.arch),
            },
        }

    def kubelet_version(self, variant: str) -> str:
        """The kubelet of a Bottlerocket aws-k8s-<minor> variant is that minor's; other variants' is taken to
        be the cluster's. Patch levels are not modelled."""
        minor = variant.removeprefix("aws-k8s-").split("-")[0] if variant.startswith("aws-k8s-") else self.version
        return f"v{minor}.0"

    def pod_json(self, pod: Pod, t: float) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "name": pod.name,
            "namespace": pod.namespace,
            "uid": pod.uid,
            "resourceVersion": str(pod.resource_version),
            "creationTimestamp": self._time(pod.created),
            "labels": dict(pod.labels),
        }
        if pod.annotations:
            metadata["annotations"] = dict(pod.annotations)
        if pod.owner is not None:
            metadata["ownerReferences"] = [pod.owner.reference()]
            if pod.owner.kind in ("ReplicaSet", "DaemonSet"):
                metadata["generateName"] = f"{pod.owner.name}-"
        if pod.deletion_at is not None:
            metadata["deletionTimestamp"] = self._time(pod.deletion_at)
            metadata["deletionGracePeriodSeconds"] = pod.deletion_grace
        return {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": metadata,
            "spec": self._pod_spec(pod),
            "status": self._pod_status(pod, t),
        }

    def _pod_spec(self, pod: Pod) -> dict[str, Any]:
        image = (pod.owner.name if pod.owner else pod.name).split("-")[0]
        spec: dict[str, Any] = {
            "containers": [{"name": "app", "image": f"public.ecr.aws/example/{image}:1"}],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": pod.grace_seconds,
            "schedulerName": "default-scheduler",
            "tolerations": copy.deepcopy(pod.tolerations),
            "priority": 0,
        }
        if pod.node is not None:
            spec["nodeName"] = pod.node
        terms = []
        if pod.avoid:
            terms.append({"key": "kubernetes.io/hostname", "operator": "NotIn", "values": sorted(pod.avoid)})
        if pod.only_node is not None:
            terms.append({"key": "metadata.name", "operator": "In", "values": [pod.only_node]})
        if terms:
            field = "matchFields" if pod.only_node is not None else "matchExpressions"
            required = {"nodeSelectorTerms": [{field: terms}]}
            spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}
        return spec

    def _pod_status(self, pod: Pod, t: float) -> dict[str, Any]:
        phase = self._phase(pod, t)
        status: dict[str, Any] = {"phase": phase, "qosClass": "BestEffort"}
        if pod.node is None:
            message = self._unschedulable_message(pod, t)
            scheduled = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}
            status["conditions"] = [scheduled | {"lastTransitionTime": self._time(pod.created)}]
            return status
        ready = "True" if self._ready(pod, t) else "False"
        since = self._time(pod.bound_at)
        conditions = [
            {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": since},
            {"type": "Initialized", "status": "True", "lastTransitionTime": since},
            {"type": "Ready", "status": ready, "lastTransitionTime": since},
            {"type": "ContainersReady", "status": ready, "lastTransitionTime": since},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": since},
        ]
        if pod.disruption is not None:
            reason, message, when = pod.disruption
            disruption = {"type": "DisruptionTarget", "status": "True", "reason": reason, "message": message}
            conditions.insert(0, disruption | {"lastTransitionTime": self._time(when)})
        status["conditions"] = conditions
        node = self.nodes.get(pod.node)
        if node is not None:
            status["hostIP"] = node.private_ip
            status["hostIPs"] = [{"ip": node.private_ip}]
        status["startTime"] = since
        return status

    def budget_json(self, budget: Budget, t: float) -> dict[str, Any]:
        spec: dict[str, Any] = {"selector": {"matchLabels": dict(budget.selector)}}
        if budget.min_available is not None:
            spec["minAvailable"] = budget.min_available
        if budget.max_unavailable is not None:
            spec["maxUnavailable"] = budget.max_unavailable
        if budget.unhealthy_pod_eviction_policy is not None:
            spec["unhealthyPodEvictionPolicy"] = budget.unhealthy_pod_eviction_policy
        status = self.budget_status(budget, t)
        if status.sync_error is not None:
            condition = {"reason": "SyncFailed", "status": "False", "message": status.sync_error}
        elif status.disruptions_allowed > 0:
            condition = {"reason": "SufficientPods", "status": "True", "message": ""}
        else:
            condition = {"reason": "InsufficientPods", "status": "False", "message": ""}
        condition = {"type": "DisruptionAllowed", **condition, "observedGeneration": 1}
        return {
            "kind": "PodDisruptionBudget",
            "apiVersion": "policy/v1",
            "metadata": {
                "name": budget.name,
                "namespace": budget.namespace,
                "uid": budget.uid,
                "resourceVersion": str(budget.resource_version),
                "generation": 1,
                "creationTimestamp": self._time(budget.created),
            },
            "spec": spec,
            "status": {
                "observedGeneration": 1,
                "disruptionsAllowed": status.disruptions_allowed,
                "currentHealthy": status.current_healthy,
                "desiredHealthy": status.desired_healthy,
                "expectedPods": status.expected_pods,
                "conditions": [condition | {"lastTransitionTime": self._time(budget.created)}],
            },
        }

    # -- building a workload (the harness's, not the API's) ---------------------------------------------------------
    def deployment(
        self,
        name: str,
        replicas: int,
        nodes: Iterable[str] | None = None,
        namespace: str = "default",
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        startup_seconds: float = POD_STARTUP_SECONDS,
        grace_seconds: int = TERMINATION_GRACE_SECONDS,
        avoid: Iterable[str] = (),
    ) -> list[str]:
        """A Deployment's ReplicaSet (named `name`, selecting `app: name` unless told) with `replicas` pods that
        already run: on `nodes` round robin, or spread by the scheduler. Replacements take `startup_seconds`
        to be Ready; `avoid` names nodes its node affinity excludes. Its pods' names."""
        with self._lock:
            self.settle()
            t = self.clock.seconds
            selector = labels or {"app": name}
            replica_set = ReplicaSet(
                namespace,
                name,
                self._uid(),
                replicas,
                selector,
                dict(annotations or {}),
                startup_seconds,
                grace_seconds,
                frozenset(avoid),
            )
            self.replica_sets[(namespace, name)] = replica_set
            placed = list(nodes or [])
            pods = [
                self._replica_pod(replica_set, t, placed[i % len(placed)] if placed else None, ready_now=True)
                for i in range(replicas)
            ]
            return [pod.name for pod in pods]

    def scale(self, name: str, replicas: int, namespace: str = "default") -> None:
        with self._lock:
            self.settle()
            self.replica_sets[(namespace, name)].replicas = replicas
            self._reconcile(self.clock.seconds)

    def daemon_set(self, name: str, namespace: str = "kube-system", labels: dict[str, str] | None = None) -> list[str]:
        """A DaemonSet with one running pod on every node (and on every node that joins); its pods' names, in
        the order of their nodes' names."""
        with self._lock:
            self.settle()
            t = self.clock.seconds
            daemon_set = DaemonSet(namespace, name, self._uid(), labels or {"app": name}, TERMINATION_GRACE_SECONDS)
            self.daemon_sets[(namespace, name)] = daemon_set
            return [self._daemon_pod(daemon_set, node, t, ready_now=True).name for node in sorted(self.nodes)]

    def pod_of(self, node: str, owner: str) -> str | None:
        """The name of the pod `owner` (a ReplicaSet's or DaemonSet's name) has on the node, if any."""
        with self._lock:
            self.settle()
            pods = [self.pods[key] for key in self._by_node.get(node, ())]
            return min((p.name for p in pods if p.owner is not None and p.owner.name == owner), default=None)

    def mirror_pod(
        self, node: str, name: str, namespace: str = "kube-system", labels: dict[str, str] | None = None
    ) -> str:
        """A static pod on the node, mirrored in the API as `<name>-<node>`; the mirror pod's name."""
        with self._lock:
            self.settle()
            hash_ = f"{zlib.crc32(f'{name}/{node}'.encode()):08x}" * 4
            static = StaticPod(namespace, name, node, labels or {"component": name}, hash_)
            self.static_pods[(namespace, f"{name}-{node}")] = static
            return self._mirror_pod(static, self._node(node), self.clock.seconds).name

    def bare_pod(
        self,
        node: str,
        name: str,
        namespace: str = "default",
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        phase: str | None = None,
        grace_seconds: int = TERMINATION_GRACE_SECONDS,
    ) -> str:
        """A pod no controller owns, running on the node (or finished: `phase` Succeeded / Failed)."""
        with self._lock:
            self.settle()
            t = self.clock.seconds
            pod = self._new_pod(
                namespace,
                name,
                labels or {"run": name},
                annotations or {},
                None,
                tolerations=_default_tolerations(),
                grace_seconds=grace_seconds,
            )
            pod.final_phase = phase
            self._bind(pod, self._node(node).name, t, first_ready=t)
            return pod.name

    def annotate_pod(self, namespace: str, name: str, key: str, value: str | None) -> None:
        """Set (or, with None, remove) an annotation, e.g. `karpenter.sh/do-not-disrupt: "true"`."""
        with self._lock:
            pod = self.pods[(namespace, name)]
            if value is None:
                pod.annotations.pop(key, None)
            else:
                pod.annotations[key] = value
            self._touch(pod)

    def budget(
        self,
        name: str,
        selector: dict[str, str],
        min_available: int | str | None = None,
        max_unavailable: int | str | None = None,
        namespace: str = "default",
        unhealthy_pod_eviction_policy: str | None = None,
    ) -> None:
        """A policy/v1 PodDisruptionBudget: one of minAvailable or maxUnavailable, an int or a percentage."""
        if (min_available is None) == (max_unavailable is None):
            raise ValueError("a budget has one of minAvailable and maxUnavailable")
        if not selector:
            raise ValueError("a budget selects pods by labels")
        with self._lock:
            self.settle()
            budget = Budget(
                namespace,
                name,
                self._uid(),
                self.clock.seconds,
                dict(selector),
                min_available,
                max_unavailable,
                unhealthy_pod_eviction_policy,
            )
            self.budgets[(namespace, name)] = budget
            self._touch(budget)

    def taint(self, node: str, key: str, effect: str = "NoSchedule", value: str = "") -> None:
        """A taint someone else put on the node (Karpenter's `karpenter.sh/disrupted:NoSchedule`, ...)."""
        with self._lock:
            self.settle()
            target = self._node(node)
            target.taints = [t for t in target.taints if (t["key"], t["effect"]) != (key, effect)]
            target.taints.append({"key": key, "effect": effect, "value": value, "at": self.clock.seconds})
            self._touch(target)

    def untaint(self, node: str, key: str) -> None:
        with self._lock:
            self.settle()
            target = self._node(node)
            target.taints = [t for t in target.taints if t["key"] != key]
            self._touch(target)
            self._reconcile(self.clock.seconds)

    def label(self, node: str, key: str, value: str | None) -> None:
        """Set (or remove) a node label, e.g. brupop's `bottlerocket.aws/updater-interface-version=2.0.0`."""
        with self._lock:
            self.settle()
            target = self._node(node)
            if value is None:
                target.labels.pop(key, None)
            else:
                target.labels[key] = value
            self._touch(target)

    def cordon(self, node: str, unschedulable: bool = True) -> None:
        with self._lock:
            self.settle()
            target = self._node(node)
            if unschedulable and not target.unschedulable:
                target.cordoned_at = self.clock.seconds
            target.unschedulable = unschedulable
            self._touch(target)
            self._reconcile(self.clock.seconds)

    # -- reading state back (the harness's) -----------------------------------------------------------------------
    def pods_on(self, node: str) -> list[str]:
        """The names of the pods bound to the node now (terminating ones included)."""
        with self._lock:
            self.settle()
            return sorted(self.pods[key].name for key in self._by_node.get(node, ()))

    def ready(self, namespace: str, name: str) -> bool:
        with self._lock:
            self.settle()
            pod = self.pods.get((namespace, name))
            return pod is not None and pod.deletion_at is None and self._ready(pod, self.clock.seconds)

    def node_ready(self, node: str) -> str:
        """The node's Ready condition status now: True, False or Unknown."""
        with self._lock:
            self.settle()
            return self._timeline(self._node(node)).health(self.clock.seconds).status

    def ready_since(self, node: str, after: float) -> float | None:
        """The first moment after `after` that the node's kubelet turned Ready, or None if it has not yet."""
        with self._lock:
            self.settle()
            starts = self._timeline(self._node(node)).ready_starts(after, self.clock.seconds)
            return starts[0] if starts else None

    def evictions_by_node(self) -> dict[str, dict[str, int]]:
        """Evictions accepted and refused, per node the pod was on ("" for an unscheduled pod)."""
        with self._lock:
            return {node: {"accepted": c["accepted"], "refused": c["refused"]} for node, c in self.evictions.items()}


def _tolerates_for_ever(toleration: dict[str, Any], taint: dict[str, Any]) -> bool:
    """A toleration that keeps the pod on a NoExecute-tainted node however long (no tolerationSeconds)."""
    return _tolerates(toleration, taint) and toleration.get("tolerationSeconds") is None


def _address_of(instance_id: str) -> str:
    """A private address for an instance EC2 was not asked about (model-only tests): 10.0.x.y from its id."""
    digest = zlib.crc32(instance_id.encode())
    return f"10.0.{(digest >> 8) % 256}.{digest % 254 + 1}"


def _rfc3339(moment: datetime) -> str:
    """metav1.Time's JSON form: RFC 3339 to the second, UTC."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
