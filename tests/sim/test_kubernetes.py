"""The simulated EKS cluster's Kubernetes side (sim/kubernetes.py) over simulated Bottlerocket hosts: nodes as the
kubelets and the node lifecycle controller report them, the controllers' replacements, PodDisruptionBudget status
and the eviction subresource's decisions, all on the virtual clock."""

from __future__ import annotations

import pytest

from sim.bottlerocket import Fault, Repository, SimHost
from sim.clock import VirtualClock
from sim.faults import terminate
from sim.fleet import Fleet
from sim.kubernetes import (
    BUDGET_MESSAGE,
    DO_NOT_DISRUPT,
    MANY_BUDGETS,
    MIRROR_ANNOTATION,
    ApiError,
    SimulatedCluster,
)

VARIANT = "aws-k8s-1.32"
IDS = [f"i-0a{index:015x}" for index in range(3)]


class Cluster:
    """Three hosts joined as nodes of cluster `prod`, with helpers to read the model the way a test asks."""

    def __init__(self, version: str = "1.32") -> None:
        self.clock = VirtualClock()
        self.fleet = Fleet(self.clock, [Repository(VARIANT, "x86_64", ["1.26.0", "1.26.1"])], seed=5)
        for instance_id in IDS:
            self.fleet.add_host(instance_id, "us-east-1a", VARIANT, "1.26.0")
        self.model = SimulatedCluster("prod", self.fleet, self.clock, version=version)
        self.nodes = [self.model.join(instance_id, instance_type="m7g.large") for instance_id in IDS]
        self.wait(60)  # the cluster has run for a minute

    def host(self, index: int) -> SimHost:
        return self.fleet.hosts[IDS[index]]

    def wait(self, seconds: float) -> None:
        self.clock.sleep(seconds)

    def node(self, index: int) -> dict:
        return self.model.read_node(self.nodes[index])

    def ready(self, index: int) -> tuple[str, str]:
        (ready,) = [c for c in self.node(index)["status"]["conditions"] if c["type"] == "Ready"]
        return ready["status"], ready["reason"]

    def taints(self, index: int) -> list[tuple[str, str]]:
        return [(t["key"], t["effect"]) for t in self.node(index)["spec"].get("taints", [])]

    def web_on(self, index: int) -> list[str]:
        return [name for name in self.model.pods_on(self.nodes[index]) if name.startswith("web-")]

    def pod(self, name: str, namespace: str = "default") -> dict:
        return self.model.read_pod(namespace, name)

    def budget(self, name: str = "web") -> dict:
        return self.model.read_budget("default", name)["status"]

    def reboot_into_update(self, index: int) -> tuple[float, float]:
        """The host boots the next release now (staged and activated, then rebooted through EC2); when it went
        down and when its agents were back."""
        host = self.host(index)
        host.staging, host.next_to_boot_staging = "1.26.1", True
        self.fleet.ec2_reboot([host.instance_id])
        return host.boot_log[-1]


@pytest.fixture
def cluster() -> Cluster:
    return Cluster()


@pytest.fixture
def web(cluster: Cluster) -> Cluster:
    """A deployment of three replicas, one on each node, guarded by a budget of minAvailable 2."""
    cluster.model.deployment("web", 3, nodes=cluster.nodes)
    cluster.model.budget("web", {"app": "web"}, min_available=2)
    return cluster


# -- nodes ----------------------------------------------------------------------------------------------------
def test_a_node_is_named_and_described_as_the_kubelet_of_a_bottlerocket_host_registers_it(cluster):
    node = cluster.node(0)
    assert node["metadata"]["name"].startswith("ip-10-0-") and node["metadata"]["name"].endswith(".ec2.internal")
    assert node["spec"]["providerID"] == f"aws:///us-east-1a/{IDS[0]}"
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == node["metadata"]["name"]
    assert labels["topology.kubernetes.io/zone"] == "us-east-1a"
    assert labels["node.kubernetes.io/instance-type"] == "m7g.large"
    assert (labels["kubernetes.io/os"], labels["kubernetes.io/arch"]) == ("linux", "amd64")
    info = node["status"]["nodeInfo"]
    assert info["osImage"] == "Bottlerocket OS 1.26.0 (aws-k8s-1.32)"
    assert (info["kubeletVersion"], info["operatingSystem"], info["bootID"]) == (
        "v1.32.0",
        "linux",
        cluster.host(0).boot_id,
    )
    assert cluster.ready(0) == ("True", "KubeletReady")
    assert "taints" not in node["spec"] and "unschedulable" not in node["spec"]


def test_a_node_that_registers_now_is_not_ready_until_its_network_is(cluster):
    cluster.fleet.add_host("i-0b000000000000001", "us-east-1b", VARIANT, "1.26.0")
    name = cluster.model.join("i-0b000000000000001", registered=False)
    assert cluster.model.node_ready(name) == "False"
    cluster.wait(cluster.model.kubelet_ready_seconds)
    assert cluster.model.node_ready(name) == "True"


def test_a_cordoned_node_carries_the_unschedulable_taint_until_uncordoned(cluster):
    cluster.model.cordon(cluster.nodes[0])
    assert cluster.node(0)["spec"]["unschedulable"] is True
    assert cluster.taints(0) == [("node.kubernetes.io/unschedulable", "NoSchedule")]
    cluster.model.cordon(cluster.nodes[0], unschedulable=False)
    assert cluster.taints(0) == []


@pytest.mark.parametrize(("version", "grace"), [("1.31", 40.0), ("1.32", 50.0)])
def test_a_rebooting_node_stays_ready_for_the_grace_period_then_is_unknown_then_ready_on_its_new_image(version, grace):
    cluster = Cluster(version)
    old_boot = cluster.host(0).boot_id
    down, back = cluster.reboot_into_update(0)
    assert back > down + grace  # the reboot outlasts the node monitor grace period
    cluster.wait(grace - 1)
    assert cluster.ready(0) == ("True", "KubeletReady")  # the last status posted, still shown
    cluster.wait(1)
    assert cluster.ready(0) == ("Unknown", "NodeStatusUnknown")
    assert ("node.kubernetes.io/unreachable", "NoExecute") in cluster.taints(0)
    assert cluster.node(0)["status"]["nodeInfo"]["osImage"] == "Bottlerocket OS 1.26.0 (aws-k8s-1.32)"
    cluster.wait(back - cluster.clock.seconds)
    assert cluster.ready(0) == ("False", "KubeletNotReady")
    assert ("node.kubernetes.io/not-ready", "NoSchedule") in cluster.taints(0)
    cluster.wait(cluster.model.kubelet_ready_seconds)
    assert cluster.ready(0) == ("True", "KubeletReady")
    info = cluster.node(0)["status"]["nodeInfo"]
    assert info["osImage"] == "Bottlerocket OS 1.26.1 (aws-k8s-1.32)"
    assert info["bootID"] == cluster.host(0).boot_id != old_boot
    assert cluster.taints(0) == []


def test_labels_and_foreign_taints_are_set_on_a_node(cluster):
    cluster.model.label(cluster.nodes[1], "bottlerocket.aws/updater-interface-version", "2.0.0")
    cluster.model.taint(cluster.nodes[1], "karpenter.sh/disrupted")
    node = cluster.node(1)
    assert node["metadata"]["labels"]["bottlerocket.aws/updater-interface-version"] == "2.0.0"
    assert cluster.taints(1) == [("karpenter.sh/disrupted", "NoSchedule")]


# -- pods and their controllers -------------------------------------------------------------------------------
def test_pods_carry_their_owners_as_the_controllers_and_the_kubelet_set_them(cluster):
    (web,) = cluster.model.deployment("web", 1, nodes=[cluster.nodes[0]])
    cluster.model.daemon_set("kube-proxy")
    proxy = cluster.model.pod_of(cluster.nodes[0], "kube-proxy")
    mirror = cluster.model.mirror_pod(cluster.nodes[0], "etcd")
    bare = cluster.model.bare_pod(cluster.nodes[0], "debug", annotations={DO_NOT_DISRUPT: "true"})
    owner = cluster.pod(web)["metadata"]["ownerReferences"][0]
    assert (owner["apiVersion"], owner["kind"], owner["name"], owner["controller"]) == (
        "apps/v1",
        "ReplicaSet",
        "web",
        True,
    )
    assert cluster.pod(proxy, "kube-system")["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    mirrored = cluster.pod(mirror, "kube-system")
    assert mirror == f"etcd-{cluster.nodes[0]}" and MIRROR_ANNOTATION in mirrored["metadata"]["annotations"]
    assert mirrored["metadata"]["ownerReferences"][0]["kind"] == "Node"
    debug = cluster.pod(bare)
    assert "ownerReferences" not in debug["metadata"]
    assert debug["metadata"]["annotations"] == {DO_NOT_DISRUPT: "true"}
    assert debug["spec"]["terminationGracePeriodSeconds"] == 30
    assert debug["status"]["phase"] == "Running" and cluster.model.ready("default", bare)
    assert sorted(cluster.model.pods_on(cluster.nodes[0])) == sorted([web, proxy, mirror, bare])


def test_an_evicted_pod_terminates_for_its_grace_period_and_is_replaced_at_once_on_another_node(web):
    web.model.cordon(web.nodes[0])
    (evicted,) = web.web_on(0)
    before = {pod for index in range(3) for pod in web.web_on(index)}
    assert web.model.evict("default", evicted)["status"] == "Success"
    terminating = web.pod(evicted)["metadata"]
    assert terminating["deletionTimestamp"] == "2026-01-05T09:01:30Z"
    assert terminating["deletionGracePeriodSeconds"] == 30
    conditions = {c["type"]: c for c in web.pod(evicted)["status"]["conditions"]}
    assert conditions["DisruptionTarget"]["reason"] == "EvictionByEvictionAPI"
    # The replacement goes to the least loaded schedulable node (a tie: the first by name), not ready yet.
    index = web.nodes.index(min(web.nodes[1:]))
    (replacement,) = set(web.web_on(index)) - before
    assert not web.model.ready("default", replacement)
    web.wait(15)
    assert web.model.ready("default", replacement)
    web.wait(15)
    assert evicted not in web.model.pods_on(web.nodes[0])


def test_a_budget_refuses_an_eviction_it_cannot_afford_until_the_replacement_is_ready(web):
    web.model.cordon(web.nodes[0])
    web.model.evict("default", web.web_on(0)[0])
    assert web.budget()["disruptionsAllowed"] == 0
    with pytest.raises(ApiError) as refused:
        web.model.evict("default", web.web_on(1)[0])
    status = refused.value.status
    assert (refused.value.code, status["reason"], status["message"]) == (429, "TooManyRequests", BUDGET_MESSAGE)
    cause = "The disruption budget web needs 2 healthy pods and has 2 currently"
    assert status["details"]["causes"] == [{"reason": "DisruptionBudget", "message": cause}]
    web.wait(15)  # the replacement is Ready
    assert web.budget() | {"conditions": None} == {
        "observedGeneration": 1,
        "disruptionsAllowed": 1,
        "currentHealthy": 3,
        "desiredHealthy": 2,
        "expectedPods": 4,  # minAvailable as an integer: every pod selected, the terminating one too
        "conditions": None,
    }
    assert web.model.evict("default", web.web_on(1)[0])["status"] == "Success"
    assert web.model.evictions_by_node() == {
        web.nodes[0]: {"accepted": 1, "refused": 0},
        web.nodes[1]: {"accepted": 1, "refused": 1},
    }


def test_the_api_server_does_not_read_karpenters_do_not_disrupt_annotation(web):
    (pod,) = web.web_on(0)
    web.model.annotate_pod("default", pod, DO_NOT_DISRUPT, "true")
    assert web.model.evict("default", pod)["status"] == "Success"


def test_eviction_of_a_missing_pod_is_404_and_of_a_pod_of_two_budgets_a_500_status(web):
    with pytest.raises(ApiError) as missing:
        web.model.evict("default", "web-zzzzz")
    assert (missing.value.code, missing.value.status["message"]) == (404, 'pods "web-zzzzz" not found')
    web.model.budget("web-too", {"app": "web"}, max_unavailable=1)
    answer = web.model.evict("default", web.web_on(0)[0])
    assert (answer["status"], answer["code"], answer["message"]) == ("Failure", 500, MANY_BUDGETS)
    assert len(web.web_on(0)) == 1 and "deletionTimestamp" not in web.pod(web.web_on(0)[0])["metadata"]


def test_pending_finished_and_terminating_pods_are_deleted_without_a_budget_check(web):
    for node in web.nodes:
        web.model.cordon(node)
    (first,) = web.web_on(0)
    web.model.evict("default", first)  # the one disruption allowed; its replacement has nowhere to go
    (pending,) = [p["metadata"]["name"] for p in web.model.list_pods("default") if "nodeName" not in p["spec"]]
    scheduled = web.pod(pending)["status"]["conditions"][0]
    assert (scheduled["reason"], scheduled["message"]) == (
        "Unschedulable",
        "0/3 nodes are available: 3 node(s) were unschedulable.",
    )
    assert web.budget()["disruptionsAllowed"] == 0
    assert web.model.evict("default", pending)["status"] == "Success"  # Pending: no budget looked at
    assert web.model.evict("default", first)["status"] == "Success"  # already terminating
    done = web.model.bare_pod(web.nodes[1], "job", labels={"app": "web"}, phase="Succeeded")
    assert web.model.evict("default", done)["status"] == "Success"
    assert done not in web.model.pods_on(web.nodes[1])  # a finished pod goes at once


def test_an_unready_pod_is_evicted_without_spending_the_budget_while_the_budget_is_healthy(web):
    web.model.scale("web", 4)  # the fourth replica is not ready yet: 3 healthy of 2 desired
    (new,) = [
        p["metadata"]["name"]
        for p in web.model.list_pods("default")
        if not web.model.ready("default", p["metadata"]["name"])
    ]
    assert web.budget()["disruptionsAllowed"] == 1
    assert web.model.evict("default", new)["status"] == "Success"
    assert web.budget()["disruptionsAllowed"] == 1


def test_budget_status_follows_the_disruption_controller(cluster):
    cluster.model.deployment("web", 3, nodes=cluster.nodes)
    cluster.model.daemon_set("agent", namespace="default")
    cluster.model.budget("half", {"app": "web"}, min_available="50%")
    cluster.model.budget("one", {"app": "web"}, max_unavailable=1)
    cluster.model.budget("agents", {"app": "agent"}, max_unavailable="10%")
    half, one = cluster.budget("half"), cluster.budget("one")
    assert (half["expectedPods"], half["desiredHealthy"], half["disruptionsAllowed"]) == (3, 2, 1)  # 1.5 rounds up
    assert (one["expectedPods"], one["desiredHealthy"], one["disruptionsAllowed"]) == (3, 2, 1)
    condition = cluster.budget("agents")["conditions"][0]
    assert (condition["reason"], condition["message"]) == (
        "SyncFailed",
        "daemonsets.apps does not implement the scale subresource",
    )
    assert cluster.budget("agents")["disruptionsAllowed"] == 0


def test_daemon_set_and_mirror_pods_stay_on_their_node_and_are_unready_while_it_is_down(cluster):
    cluster.model.daemon_set("kube-proxy")
    proxy = cluster.model.pod_of(cluster.nodes[0], "kube-proxy")
    mirror = cluster.model.mirror_pod(cluster.nodes[0], "etcd")
    _, back = cluster.reboot_into_update(0)
    cluster.wait(cluster.model.node_monitor_grace_seconds)
    assert not cluster.model.ready("kube-system", proxy) and not cluster.model.ready("kube-system", mirror)
    cluster.wait(back + cluster.model.kubelet_ready_seconds + 15 - cluster.clock.seconds)
    assert cluster.model.ready("kube-system", proxy) and cluster.model.ready("kube-system", mirror)
    assert {proxy, mirror} <= set(cluster.model.pods_on(cluster.nodes[0]))


def test_an_evicted_daemon_set_pod_comes_back_on_its_node_and_a_mirror_pod_is_mirrored_again(cluster):
    cluster.model.cordon(cluster.nodes[0])
    cluster.model.daemon_set("kube-proxy")
    proxy = cluster.model.pod_of(cluster.nodes[0], "kube-proxy")
    mirror = cluster.model.mirror_pod(cluster.nodes[0], "etcd")
    uid = cluster.pod(mirror, "kube-system")["metadata"]["uid"]
    cluster.model.evict("kube-system", proxy)
    cluster.model.evict("kube-system", mirror)
    assert cluster.pod(mirror, "kube-system")["metadata"]["uid"] != uid  # the kubelet made it again at once
    cluster.wait(30)
    proxies = [p for p in cluster.model.pods_on(cluster.nodes[0]) if p.startswith("kube-proxy-")]
    assert len(proxies) == 1 and proxies != [proxy]  # recreated on the cordoned node: it tolerates that


def test_pods_of_a_node_that_stays_down_are_evicted_when_their_toleration_runs_out(cluster):
    cluster.model.deployment("web", 2, nodes=cluster.nodes[:2])
    cluster.model.daemon_set("kube-proxy")
    proxy = cluster.model.pod_of(cluster.nodes[0], "kube-proxy")
    cluster.host(0).faults.add(Fault.REBOOT_HANGS)
    down, _ = cluster.reboot_into_update(0)
    (web,) = cluster.web_on(0)
    unreachable = down + cluster.model.node_monitor_grace_seconds
    cluster.wait(unreachable + 299 - cluster.clock.seconds)
    assert "deletionTimestamp" not in cluster.pod(web)["metadata"]
    cluster.wait(1)
    deleted = cluster.pod(web)
    assert deleted["metadata"]["deletionTimestamp"]  # terminating until the kubelet can confirm it
    assert deleted["status"]["conditions"][0]["reason"] == "DeletionByTaintManager"
    assert "deletionTimestamp" not in cluster.pod(proxy, "kube-system")["metadata"]
    assert len(cluster.web_on(2)) == 1  # the replacement went to the node that had none


def test_a_node_whose_instance_is_terminated_is_deleted_with_its_pods_and_they_are_replaced(cluster):
    cluster.model.deployment("web", 2, nodes=cluster.nodes[:2])
    terminate(cluster.fleet, IDS[0])
    cluster.model.instance_terminated(IDS[0])  # as World.terminate tells it
    cluster.wait(cluster.model.node_monitor_grace_seconds - 1)
    assert cluster.ready(0) == ("True", "KubeletReady")
    cluster.wait(1)
    assert cluster.model.node_of(IDS[0]) is None
    assert [len(cluster.web_on(1)), len(cluster.web_on(2))] == [1, 1]


def test_the_same_seed_builds_the_same_cluster():
    def built() -> list[dict]:
        cluster = Cluster()
        cluster.model.deployment("web", 3)
        cluster.model.daemon_set("kube-proxy")
        return cluster.model.list_pods() + cluster.model.list_nodes()

    assert built() == built()
