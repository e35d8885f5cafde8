"""The Kubernetes API of the groups' EKS clusters, through the maintained client: the nodes of the hosts, cordon
and uncordon, the pods on a node, evictions through the Eviction API (which honours PodDisruptionBudgets).

Each cluster's client signs in as the function's own role (eks_auth: a token from a presigned STS request, valid
15 minutes and renewed after 10); a token the API server no longer accepts (401) is renewed once, at once.
What the functions may do in the cluster is eks/rbac.yaml: list and patch nodes, list pods, create pods/eviction.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from kubernetes import client as k8s
from kubernetes.client.rest import ApiException
from urllib3.exceptions import HTTPError

from updraft.adapters import eks_auth
from updraft.domain.host_actions import NodeView, PodView
from updraft.domain.nodes import DO_NOT_DISRUPT
from updraft.errors import KubernetesApiError, KubernetesUnavailable

PAGE = 500  # items per list call; the API server pages them with `continue`
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
# A budget allowing no disruption now refuses with 429 (eviction.go). More than one budget for the pod is refused
# too, but as the created object: HTTP 201 with a Status whose status is Failure and code 500 (handlers/create.go).
_REFUSED = 429
T = TypeVar("T")


class _Session:
    """A cluster's API client, made for one token."""

    def __init__(self, access: eks_auth.ClusterAccess, ca_file: str) -> None:
        self.access = access
        config = k8s.Configuration(
            host=access.endpoint,
            api_key={"authorization": access.token},
            api_key_prefix={"authorization": "Bearer"},
        )
        config.ssl_ca_cert = ca_file
        self.api = k8s.ApiClient(config)
        self.core = k8s.CoreV1Api(self.api)
        self.policy = k8s.PolicyV1Api(self.api)


# By function and cluster, as eks_auth keeps their tokens.
_sessions: dict[tuple[str, str], _Session] = {}


def _session(cluster: str, now: datetime) -> _Session:
    access = eks_auth.cluster_access(cluster, os.environ["AWS_REGION"], now)
    key = (os.environ.get("AWS_LAMBDA_FUNCTION_NAME", ""), cluster)
    made = _sessions.get(key)
    if made is None or made.access is not access:
        if made is not None:
            made.api.close()  # the old token's connections
        made = _Session(access, _ca_file(cluster, access.certificate_authority))
        _sessions[key] = made
    return made


def _ca_file(cluster: str, pem: bytes) -> str:
    """The cluster's CA as a file, which is what the client's TLS verification reads (Lambda: /tmp)."""
    path = os.path.join(tempfile.gettempdir(), f"updraft-eks-{cluster}-ca.pem")
    with open(path, "wb") as handle:
        handle.write(pem)
    return path


def _call(cluster: str, now: datetime, request: Callable[[_Session], T]) -> T:
    """One API request; a token refused as expired or unknown is renewed and the request made once more."""
    for attempt in (1, 2):
        try:
            return request(_session(cluster, now))
        except ApiException as error:
            if error.status == 401 and attempt == 1:
                eks_auth.forget(cluster)
                continue
            # No answer, too many requests (the API server's priority and fairness), or a server error: later.
            if error.status in (None, 0, 429) or error.status >= 500:
                raise KubernetesUnavailable(f"cluster {cluster}: {error.status} {error.reason}") from None
            raise KubernetesApiError(f"cluster {cluster}: {error.status} {error.reason}: {_message(error)}") from None
        except HTTPError as error:
            raise KubernetesUnavailable(f"cluster {cluster}: {error}") from None
    raise AssertionError("unreachable")


def _message(error: ApiException) -> str:
    """Why the API server refused: its Status's causes (a budget's refusal names the budget), else its message,
    else the body as it came."""
    try:
        body = json.loads(error.body or "{}")
    except ValueError:
        return str(error.body)[:300]
    causes = [cause.get("message", "") for cause in (body.get("details") or {}).get("causes") or []]
    return "; ".join(filter(None, causes)) or body.get("message", "") or str(error.body)[:300]


def _pages(list_call: Callable[..., Any], **query: Any) -> list[Any]:
    items, token = [], None
    while True:
        page = list_call(limit=PAGE, _continue=token, **query) if token else list_call(limit=PAGE, **query)
        items += page.items or []
        token = page.metadata._continue if page.metadata else None
        if not token:
            return items


# -- nodes ------------------------------------------------------------------------------------------------
def instance_id(provider_id: str) -> str:
    """The EC2 instance of a node: its spec.providerID is aws:///<availability zone>/<instance id>."""
    return provider_id.rsplit("/", 1)[-1] if provider_id.startswith("aws:///") else ""


def nodes_of(cluster: str, instance_ids: list[str], now: datetime) -> dict[str, NodeView]:
    """The node of each of these EC2 instances that is one in the cluster, by instance id."""
    wanted = set(instance_ids)
    found = _call(cluster, now, lambda s: _pages(s.core.list_node))
    views = {instance_id(node.spec.provider_id or ""): _node_view(node) for node in found if node.spec}
    return {iid: view for iid, view in views.items() if iid in wanted}


def _node_view(node: Any) -> NodeView:
    conditions = {c.type: c.status for c in (node.status.conditions or [])} if node.status else {}
    info = node.status.node_info if node.status else None
    annotations = node.metadata.annotations or {}
    return NodeView(
        name=node.metadata.name,
        ready=conditions.get("Ready") == "True",
        unschedulable=bool(node.spec.unschedulable),
        os_image=(info.os_image if info else "") or "",
        taints=tuple(sorted(taint.key for taint in node.spec.taints or [])),
        labels=tuple(sorted(node.metadata.labels or {})),
        do_not_disrupt=annotations.get(DO_NOT_DISRUPT) == "true",
    )


def set_schedulable(cluster: str, names: list[str], schedulable: bool, now: datetime) -> None:
    """Cordon or uncordon each node (what `kubectl cordon` patches); a node gone meanwhile is no error here."""
    for name in sorted(names):
        _call(cluster, now, lambda s, name=name: _patch_node(s, name, schedulable))


def _patch_node(session: _Session, name: str, schedulable: bool) -> None:
    try:
        session.core.patch_node(name, {"spec": {"unschedulable": None if schedulable else True}})
    except ApiException as error:
        if error.status != 404:
            raise


def uncordon(cluster: str, names: list[str], now: datetime) -> str | None:
    """Uncordon, for a settlement that must record its hosts whatever the cluster says: None if done, else why
    not."""
    try:
        set_schedulable(cluster, names, True, now)
    except (KubernetesApiError, KubernetesUnavailable) as error:
        return str(error)
    return None


# -- pods -------------------------------------------------------------------------------------------------
def pods_on(cluster: str, node: str, now: datetime) -> tuple[PodView, ...]:
    """Every pod bound to the node, in every namespace."""
    on_node = f"spec.nodeName={node}"
    found = _call(cluster, now, lambda s: _pages(s.core.list_pod_for_all_namespaces, field_selector=on_node))
    return tuple(sorted((_pod_view(pod) for pod in found), key=lambda pod: pod.key))


def _pod_view(pod: Any) -> PodView:
    meta = pod.metadata
    annotations = meta.annotations or {}
    owners = [ref for ref in meta.owner_references or [] if ref.controller]
    phase = pod.status.phase if pod.status else ""
    return PodView(
        namespace=meta.namespace,
        name=meta.name,
        owner_kind=owners[0].kind if owners else "",
        mirror=MIRROR_ANNOTATION in annotations,
        do_not_disrupt=annotations.get(DO_NOT_DISRUPT) == "true",
        terminating=meta.deletion_timestamp is not None,
        finished=phase in ("Succeeded", "Failed"),
    )


def evict(cluster: str, pods: tuple[str, ...], now: datetime) -> dict[str, str]:
    """Evict each pod (namespace/name); returns the refused ones with the API server's reason. A pod already
    gone counts as evicted."""
    refused: dict[str, str] = {}
    for key in pods:
        namespace, name = key.split("/", 1)
        body = k8s.V1Eviction(metadata=k8s.V1ObjectMeta(name=name, namespace=namespace))
        try:
            _call(cluster, now, lambda s, n=name, ns=namespace, b=body: _evict(s, n, ns, b))
        except _Refused as refusal:
            refused[key] = str(refusal)
    return refused


class _Refused(Exception):
    pass


def _evict(session: _Session, name: str, namespace: str, body: Any) -> None:
    try:
        # The answer read as it came: a refusal can be a 201 whose Status says Failure.
        answer = session.core.create_namespaced_pod_eviction(name, namespace, body, _preload_content=False)
    except ApiException as error:
        if error.status == 404:
            return
        if error.status == _REFUSED:
            raise _Refused(_message(error)) from None
        raise
    try:
        status = json.loads(answer.data or b"{}")
    except ValueError:
        return  # not a Status: the eviction was created
    if status.get("kind") == "Status" and status.get("status") == "Failure":
        raise _Refused(status.get("message") or f"eviction failed with code {status.get('code')}")
