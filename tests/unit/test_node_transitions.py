"""EKS hosts in the per-host state machine: cordon, evictions within the budget's refusals, uncordon once the node
is Ready on the new version; and the node rules an update must respect (Karpenter, the update operator)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from updraft.config import EksPolicy, GroupPolicy
from updraft.domain import nodes
from updraft.domain.host_actions import EvictPods, NodeView, Observation, PodView, SendDocument, SetSchedulable, Step
from updraft.domain.host_record import Doc, HostRecord, HostState, RollbackStep, deadline_after
from updraft.domain.host_transitions import abandon, advance, begin_node_drain, begin_rollback, evicted, release_drain

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
PREV, TARGET = "1.26.0", "1.26.1"
NODE = "ip-10-0-1-17.ec2.internal"
SKIP = GroupPolicy(name="nodes", variant="aws-k8s-1.31", eks=EksPolicy(cluster="prod", drain_timeout_seconds=600))
WAIT = SKIP.model_copy(update={"eks": EksPolicy(cluster="prod", drain_timeout_seconds=600, pdb_blocked="wait")})


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def host(state: HostState, **changes: object) -> HostRecord:
    fields = {
        "rollout_id": "r-1",
        "instance_id": "i-0001",
        "az": "us-east-1a",
        "wave": 0,
        "state": state,
        "previous_version": PREV,
        "target_version": TARGET,
        "eks_cluster": "prod",
        "node_name": NODE,
    }
    return HostRecord.model_validate(fields | changes)


def draining(**changes: object) -> HostRecord:
    return host(HostState.DRAINING, **({"deadline": deadline_after(T0, 600)} | changes))


def pod(name: str, **changes: object) -> PodView:
    return PodView(**({"namespace": "shop", "name": name, "owner_kind": "ReplicaSet"} | changes))


def node(*pods: PodView, version: str = PREV, **changes: object) -> NodeView:
    image = f"Bottlerocket OS {version} (aws-k8s-1.31)"
    fields = {"name": NODE, "ready": True, "unschedulable": True, "os_image": image, "pods": pods}
    return NodeView(**(fields | changes))


def seen(view: NodeView | None) -> Observation:
    return Observation(online=True, node=view)


# -- what an update may take --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"taints": ("karpenter.sh/disrupted",)}, "Karpenter is disrupting"),
        ({"labels": (nodes.UPDATE_OPERATOR_LABEL,)}, "Bottlerocket update operator"),
        ({"do_not_disrupt": True}, "karpenter.sh/do-not-disrupt"),
        ({"unschedulable": True}, "already cordoned"),
        ({"ready": False}, "not Ready"),
    ],
)
def test_a_node_someone_else_has_a_claim_on_is_left_alone(changes, reason) -> None:
    free = node(unschedulable=False)
    assert nodes.leave_alone(free) is None
    assert reason in (nodes.leave_alone(node(**({"unschedulable": False} | changes))) or "")


def test_the_os_version_is_read_from_the_kubelets_os_image() -> None:
    assert nodes.os_version("Bottlerocket OS 1.26.1 (aws-k8s-1.31)") == "1.26.1"
    assert nodes.os_version("Amazon Linux 2023") is None


# -- the drain ----------------------------------------------------------------------------------------------
def test_the_drain_starts_by_cordoning_the_node_until_its_deadline() -> None:
    step = begin_node_drain(host(HostState.PENDING), "prod", NODE, T0, SKIP)
    assert step.action == SetSchedulable(False)
    assert (step.record.state, step.record.node_name, step.record.deadline) == (
        HostState.DRAINING,
        NODE,
        deadline_after(T0, 600),
    )


def test_evictions_leave_daemon_set_mirror_and_finished_pods_and_keep_to_the_concurrency() -> None:
    pods = [pod(f"web-{i}") for i in range(7)]
    stays = [pod("agent", owner_kind="DaemonSet"), pod("kube-proxy", owner_kind="Node", mirror=True)]
    done = pod("report", owner_kind="Job", finished=True)
    step = advance(draining(), seen(node(*pods, *stays, done)), at(30), SKIP)
    assert step.action == EvictPods(tuple(f"shop/web-{i}" for i in range(5)))  # five at once, as brupop
    terminating = [pod(f"web-{i}", terminating=True) for i in range(3)]
    step = advance(draining(), seen(node(*terminating, *pods[3:])), at(60), SKIP)
    assert step.action == EvictPods(("shop/web-3", "shop/web-4"))  # three still in flight


def test_a_node_with_only_daemon_set_and_mirror_pods_is_drained_and_sent_apply() -> None:
    stays = [pod("agent", owner_kind="DaemonSet"), pod("kube-proxy", owner_kind="Node", mirror=True)]
    step = advance(draining(), seen(node(*stays)), at(90), SKIP)
    assert step.action == SendDocument(Doc.APPLY, TARGET)
    assert step.record.state is HostState.APPLYING


def test_a_refused_eviction_backs_off_and_is_retried_after_the_backoff() -> None:
    asked = advance(draining(), seen(node(pod("web-0"))), at(30), SKIP)
    refused = {"shop/web-0": "Cannot evict pod as it would violate the pod's disruption budget."}
    record = evicted(asked.record, 1, refused, at(30), SKIP)
    assert (record.drain_refusals, record.evict_after) == (1, at(30 + 30).isoformat())
    assert "disruption budget" in record.drain_blocked
    assert advance(record, seen(node(pod("web-0"))), at(45), SKIP).action is None  # backing off
    assert advance(record, seen(node(pod("web-0"))), at(60), SKIP).action == EvictPods(("shop/web-0",))
    again = evicted(record, 1, refused, at(60), SKIP)
    assert again.evict_after == at(60 + 60).isoformat()  # twice as long
    assert evicted(again, 1, {}, at(120), SKIP).drain_refusals == 0
    progress = evicted(again, 2, refused, at(120), SKIP)  # one of two accepted: no longer backing off
    assert (progress.drain_refusals, progress.evict_after) == (0, at(120 + 30).isoformat())


def test_a_drain_blocked_at_its_deadline_skips_the_host_and_uncordons_it() -> None:
    record = draining(drain_blocked="eviction of shop/web-0 refused: budget web needs 2 healthy pods and has 2")
    step = advance(record, seen(node(pod("web-0"))), at(600), SKIP)
    assert step.action == SetSchedulable(True)
    assert step.record.state is HostState.SKIPPED
    assert "budget web needs 2" in step.record.note and "uncordoned" in step.record.note


def test_with_wait_a_blocked_drain_goes_on_past_its_deadline() -> None:
    record = draining(drain_blocked="eviction of shop/web-0 refused: budget")
    step = advance(record, seen(node(pod("web-0"))), at(700), WAIT)
    assert step.record.state is HostState.DRAINING
    assert step.action == EvictPods(("shop/web-0",))
    assert "past its 600 s deadline, waiting (pdb_blocked: wait)" in step.record.note


def test_a_do_not_disrupt_pod_is_never_evicted_and_blocks_the_drain_like_a_budget() -> None:
    guarded = pod("batch", owner_kind="Job", do_not_disrupt=True)
    step = advance(draining(), seen(node(guarded)), at(30), SKIP)
    assert step.action is None and "do-not-disrupt: shop/batch" in step.record.note
    at_deadline = advance(step.record, seen(node(guarded)), at(600), SKIP)
    assert at_deadline.action == SetSchedulable(True) and at_deadline.record.state is HostState.SKIPPED


def test_a_node_gone_while_draining_skips_the_host() -> None:
    step = advance(draining(), seen(None), at(30), SKIP)
    assert step.record.state is HostState.SKIPPED and step.action is None


def test_a_drain_released_by_a_stopping_rollout_uncordons_the_node() -> None:
    step = release_drain(draining(), "not applied: aborted by ops", at(30))
    assert step.action == SetSchedulable(True) and step.record.state is HostState.SKIPPED


# -- back in the cluster --------------------------------------------------------------------------------------
def activating(**changes: object) -> HostRecord:
    return host(HostState.ACTIVATING, **({"deadline": deadline_after(T0, 900), "os_verified": True} | changes))


def test_a_verified_node_is_uncordoned_only_once_ready_on_the_target() -> None:
    record = activating()
    assert advance(record, seen(node(version=PREV)), at(30), SKIP) == Step(record)
    assert advance(record, seen(node(version=TARGET, ready=False)), at(60), SKIP) == Step(record)
    step = advance(record, seen(node(version=TARGET)), at(90), SKIP)
    assert step.action == SetSchedulable(True) and step.record.state is HostState.UPDATED


def test_a_node_not_back_by_the_deadline_fails_the_host_and_stays_cordoned_for_the_rollback() -> None:
    step = advance(activating(), seen(node(version=TARGET, ready=False)), at(900), SKIP)
    assert step.record.state is HostState.ROLLING_BACK
    assert "Ready: False" in (step.record.failure or "")
    assert not isinstance(step.action, SetSchedulable)


def test_a_rolled_back_node_is_uncordoned_once_ready_on_the_previous_version() -> None:
    record = host(
        HostState.ROLLING_BACK, rollback_step=RollbackStep.ACTIVATE, deadline=deadline_after(T0, 900), failure="x"
    )
    assert advance(record, seen(node(version=TARGET)), at(30), SKIP) == Step(record)
    step = advance(record, seen(node(version=PREV)), at(60), SKIP)
    assert step.action == SetSchedulable(True) and step.record.state is HostState.ROLLED_BACK
    late = advance(record, seen(node(version=PREV, ready=False)), at(900), SKIP)
    assert late.action == SetSchedulable(True) and "needs attention" in late.record.note


def test_a_host_abandoned_after_its_drain_is_recorded_with_its_node_left_cordoned() -> None:
    assert "left cordoned" in abandon(host(HostState.REBOOTING), "stopped", at(30)).note
    assert "left cordoned" not in abandon(draining(), "stopped", at(30)).note  # uncordoned by the settlement


# -- a halt's rollback of an updated node ------------------------------------------------------------------------
def test_an_updated_node_is_cordoned_and_drained_before_its_rollback_reboots_it() -> None:
    updated = host(HostState.UPDATED)
    step = begin_rollback(updated, "rolling back with the halted rollout", Observation(online=True), T0, SKIP)
    assert step.action == SetSchedulable(False)
    assert (step.record.state, step.record.rollback_step) == (HostState.ROLLING_BACK, RollbackStep.DRAIN)
    evicting = advance(step.record, seen(node(pod("web-0"), pod("agent", owner_kind="DaemonSet"))), at(30), SKIP)
    assert evicting.action == EvictPods(("shop/web-0",))
    drained = advance(evicting.record, seen(node(pod("agent", owner_kind="DaemonSet"))), at(60), SKIP)
    assert drained.action == SendDocument(Doc.ROLLBACK, PREV)
    assert drained.record.rollback_step is RollbackStep.COMMAND


def test_a_rollback_drain_at_its_deadline_rolls_back_anyway_whatever_the_policy() -> None:
    record = host(
        HostState.ROLLING_BACK,
        rollback_step=RollbackStep.DRAIN,
        deadline=deadline_after(T0, 600),
        drain_blocked="eviction of shop/web-0 refused: budget",
    )
    for policy in (SKIP, WAIT):
        step = advance(record, seen(node(pod("web-0"))), at(600), policy)
        assert step.action == SendDocument(Doc.ROLLBACK, PREV)
        assert "rolling back anyway" in step.record.note


def test_a_failed_host_is_already_drained_and_rolls_back_at_once() -> None:
    failed = host(HostState.FAILED, failure="verification failed")
    step = begin_rollback(failed, "rolling back", Observation(online=True), T0, SKIP)
    assert step.action == SendDocument(Doc.ROLLBACK, PREV)
