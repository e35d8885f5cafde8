r"""Each host's way through a rollout, as a pure function of what was last observed of it.

    pending -> [draining] -> applying -> rebooting -> verifying -> [checking-health] -> [activating] -> updated
                   |              |            |            |                |                 |
                   v              +------------+------------+----------------+-----------------+--> failed
                skipped                                                  failed -> rolling-back -> rolled-back
                                                                                              \-> rollback-failed
Draining and activating are for the container instances of an ECS group and the nodes of an EKS group (cordoned
and drained before the update, uncordoned once Ready on the new version); checking-health for a group with a
health command. A host is only ever *touched* by an action this module asks for (send a document, reboot through
EC2, set its container instance's state, cordon its node or evict its pods), and every touched host ends in a
final state: updated, rolled-back, rollback-failed, or skipped when its drain left it untouched.
"""

from __future__ import annotations

from datetime import datetime

from updraft.config import GroupPolicy
from updraft.domain import nodes
from updraft.domain.command_output import command_outcome, health_verdict, verify_verdict
from updraft.domain.host_actions import (
    EvictPods,
    NodeView,
    Observation,
    RebootThroughEc2,
    SendDocument,
    SetContainerState,
    SetSchedulable,
    Step,
)
from updraft.domain.host_record import Doc, HostRecord, HostState, RollbackStep, deadline_after
from updraft.domain.reports import ApplyReport, HealthReport, RollbackReport, VerifyReport


def _past(record: HostRecord, now: datetime) -> bool:
    return record.deadline is not None and now >= datetime.fromisoformat(record.deadline)


def advance(record: HostRecord, seen: Observation, now: datetime, policy: GroupPolicy) -> Step:
    """The host's next state, and the action that gets it there, from what was seen of it."""
    step = {
        HostState.DRAINING: _draining,
        HostState.APPLYING: _applying,
        HostState.REBOOTING: _rebooting,
        HostState.VERIFYING: _verifying,
        HostState.CHECKING_HEALTH: _checking_health,
        HostState.ACTIVATING: _activating,
        HostState.FAILED: _failed,
        HostState.ROLLING_BACK: _rolling_back,
    }.get(record.state)
    return step(record, seen, now, policy) if step else Step(record)


def fail(record: HostRecord, reason: str, seen: Observation, now: datetime, policy: GroupPolicy) -> Step:
    failed = record.move(HostState.FAILED, reason, now, failure=reason, command_doc=None, command_id=None)
    return _failed(failed, seen, now, policy)


def begin_rollback(record: HostRecord, note: str, seen: Observation, now: datetime, policy: GroupPolicy) -> Step:
    """Undo the update on a host: through the update API if its agent answers, else reboot it first
    (a hung boot of a new image falls back to the old one in the boot loader). An updated EKS node took pods
    again: it is cordoned and drained first."""
    if seen.online and record.node_name and record.state is HostState.UPDATED:
        return _drain_before_rollback(record, note, now, policy)
    if seen.online:
        return _send_rollback(record, note, now, policy)
    moved = record.move(
        HostState.ROLLING_BACK,
        f"{note}; agent offline, rebooting through EC2",
        now,
        rollback_step=RollbackStep.RECOVER,
        deadline=deadline_after(now, policy.verify_timeout_seconds),
        command_doc=None,
        command_id=None,
    )
    return Step(moved, RebootThroughEc2())


def _send_rollback(record: HostRecord, note: str, now: datetime, policy: GroupPolicy) -> Step:
    moved = record.move(
        HostState.ROLLING_BACK,
        note,
        now,
        rollback_step=RollbackStep.COMMAND,
        deadline=deadline_after(now, policy.apply_timeout_seconds),
        command_doc=None,
        command_id=None,
    )
    return Step(moved, SendDocument(Doc.ROLLBACK, record.previous_version))


def _drain_before_rollback(record: HostRecord, note: str, now: datetime, policy: GroupPolicy) -> Step:
    timeout = policy.eks.drain_timeout_seconds if policy.eks else 0
    moved = record.move(
        HostState.ROLLING_BACK,
        f"{note}; cordoning node {record.node_name} first",
        now,
        rollback_step=RollbackStep.DRAIN,
        deadline=deadline_after(now, timeout),
        command_doc=None,
        command_id=None,
        drain_refusals=0,
        evict_after=None,
        drain_blocked="",
    )
    return Step(moved, SetSchedulable(False))


def _draining_for_rollback(record: HostRecord, node: NodeView | None, now: datetime, policy: GroupPolicy) -> Step:
    """Evict as for an update, but the release is what is wrong: at the drain deadline the rollback goes ahead,
    whatever still runs on the node (and whatever pdb_blocked says)."""
    if node is None or not nodes.waited_on(node):
        return _send_rollback(record, f"node {record.node_name} drained, rolling back", now, policy)
    if _past(record, now):
        note = f"drain not finished at its deadline ({_drain_blocker(record, node)}); rolling back anyway"
        return _send_rollback(record, note, now, policy)
    evictions = nodes.next_evictions(node, policy.eks.evict_concurrency if policy.eks else 1)
    retry_at = record.evict_after
    if evictions and (retry_at is None or now >= datetime.fromisoformat(retry_at)):
        moved = record.move(HostState.ROLLING_BACK, f"evicting {len(evictions)} pods before the rollback", now)
        return Step(moved, EvictPods(evictions))
    return Step(record)


def _failed(record: HostRecord, seen: Observation, now: datetime, policy: GroupPolicy) -> Step:
    return begin_rollback(record, f"rolling back to {record.previous_version}", seen, now, policy)


def start_apply(record: HostRecord, note: str, now: datetime, policy: GroupPolicy) -> Step:
    moved = record.move(
        HostState.APPLYING, note, now, deadline=deadline_after(now, policy.apply_timeout_seconds), command_id=None
    )
    return Step(moved, SendDocument(Doc.APPLY, record.target_version))


def begin_drain(record: HostRecord, cluster: str, container_instance: str, now: datetime, policy: GroupPolicy) -> Step:
    """Set the host's container instance DRAINING: ECS stops its service tasks and places no new ones."""
    timeout = policy.ecs.drain_timeout_seconds if policy.ecs else 0
    moved = record.move(
        HostState.DRAINING,
        f"draining {container_instance}",
        now,
        ecs_cluster=cluster,
        container_instance=container_instance,
        deadline=deadline_after(now, timeout),
    )
    return Step(moved, SetContainerState("DRAINING"))


def _skip_undrained(record: HostRecord, reason: str, now: datetime) -> Step:
    """Nothing was applied: the container instance takes tasks again and the host is left as it was."""
    note = f"{reason}; nothing applied, container instance ACTIVE again"
    return Step(record.move(HostState.SKIPPED, note, now, deadline=None), SetContainerState("ACTIVE"))


def _draining(record: HostRecord, seen: Observation, now: datetime, policy: GroupPolicy) -> Step:
    if record.node_name:
        return _draining_node(record, seen.node, now, policy)
    container = seen.container
    if container is None:
        note = f"container instance {record.container_instance} is no longer in cluster {record.ecs_cluster}"
        return Step(record.move(HostState.SKIPPED, f"{note}; nothing applied", now, deadline=None))
    unmanaged = ", ".join(container.unmanaged_tasks)
    if unmanaged and policy.ecs and policy.ecs.unmanaged_tasks == "skip":
        return _skip_undrained(record, f"runs tasks no service owns ({unmanaged})", now)
    if container.running_tasks == 0:
        return start_apply(record, "drained, apply sent", now, policy)
    if _past(record, now):
        timeout = policy.ecs.drain_timeout_seconds if policy.ecs else 0
        reason = f"drain did not finish within {timeout} s ({container.running_tasks} tasks still running)"
        return _skip_undrained(record, reason, now)
    note = f"draining: waiting on tasks no service owns ({unmanaged})" if unmanaged else record.note
    return Step(record.move(HostState.DRAINING, note, now) if note != record.note else record)


# -- EKS nodes: cordon, evict, uncordon ---------------------------------------------------------------------
def begin_node_drain(record: HostRecord, cluster: str, node: str, now: datetime, policy: GroupPolicy) -> Step:
    """Cordon the host's node: the scheduler places nothing more on it; its pods are evicted next."""
    timeout = policy.eks.drain_timeout_seconds if policy.eks else 0
    moved = record.move(
        HostState.DRAINING,
        f"cordoning node {node}",
        now,
        eks_cluster=cluster,
        node_name=node,
        deadline=deadline_after(now, timeout),
    )
    return Step(moved, SetSchedulable(False))


def release_drain(record: HostRecord, reason: str, now: datetime) -> Step:
    """Nothing was applied: the node (or container instance) takes work again and the host is left as it was."""
    if record.node_name:
        note = f"{reason}; nothing applied, node {record.node_name} uncordoned"
        return Step(record.move(HostState.SKIPPED, note, now, deadline=None), SetSchedulable(True))
    return _skip_undrained(record, reason, now)


def _draining_node(record: HostRecord, node: NodeView | None, now: datetime, policy: GroupPolicy) -> Step:
    if node is None:
        note = f"node {record.node_name} is no longer in cluster {record.eks_cluster}; nothing applied"
        return Step(record.move(HostState.SKIPPED, note, now, deadline=None))
    if not nodes.waited_on(node):
        return start_apply(record, f"node {node.name} drained, apply sent", now, policy)
    eks = policy.eks
    timeout, waits = (eks.drain_timeout_seconds, eks.pdb_blocked == "wait") if eks else (0, False)
    blocked = _drain_blocker(record, node)
    if _past(record, now) and not waits:
        return release_drain(record, f"drain did not finish within {timeout} s ({blocked})", now)
    late = f"past its {timeout} s deadline, waiting (pdb_blocked: wait): " if _past(record, now) else ""
    evictions = nodes.next_evictions(node, eks.evict_concurrency if eks else 1)
    retry_at = record.evict_after
    if evictions and (retry_at is None or now >= datetime.fromisoformat(retry_at)):
        note = f"{late}evicting {len(evictions)} pods"
        return Step(record.move(HostState.DRAINING, note, now), EvictPods(evictions))
    note = f"{late}waiting: {blocked}"
    return Step(record.move(HostState.DRAINING, note, now) if note != record.note else record)


def _drain_blocker(record: HostRecord, node: NodeView) -> str:
    """What the drain waits on, in words: do-not-disrupt pods, the last refusal, or pods still terminating."""
    protected = nodes.protected(node)
    if protected:
        names = ", ".join(pod.key for pod in protected)
        return f"pods annotated {nodes.DO_NOT_DISRUPT}: {names}"
    if record.drain_blocked:
        return record.drain_blocked
    return f"{len(nodes.waited_on(node))} pods still on node {node.name}"


def evicted(record: HostRecord, asked: int, refused: dict[str, str], now: datetime, policy: GroupPolicy) -> HostRecord:
    """The record after `asked` evictions were sent: refusals only (a PodDisruptionBudget allows none now) back
    the next try off, twice as long each time; an accepted one is progress, and the next try comes a poll later."""
    if not refused:
        return record.model_copy(update={"drain_refusals": 0, "evict_after": None, "drain_blocked": ""})
    refusals = record.drain_refusals + 1 if len(refused) == asked else 0
    wait = nodes.eviction_backoff_seconds(max(refusals, 1), policy.poll_interval_seconds)
    pod, reason = sorted(refused.items())[0]
    blocked = f"eviction of {pod} refused: {reason}"
    note = f"{record.note}; {len(refused)} refused ({reason}), next try in {wait} s"
    return record.noted(
        note, now, drain_refusals=refusals, evict_after=deadline_after(now, wait), drain_blocked=blocked
    )


def _node_back(record: HostRecord, seen: Observation, version: str) -> str | None:
    """Why the node is not back on `version` yet, or None when it is Ready on it."""
    node = seen.node
    if nodes.runs(node, version):
        return None
    if node is None:
        return f"node {record.node_name} is gone from cluster {record.eks_cluster}"
    return f"node {node.name} Ready: {node.ready}, osImage {node.os_image!r}"


def _applying(record: HostRecord, seen: Observation, now: datetime, policy: GroupPolicy) -> Step:
    outcome = command_outcome(record.command_doc, seen.invocation)
    if outcome is None:
        if _past(record, now):
            return fail(record, f"apply did not finish within {policy.apply_timeout_seconds} s", seen, now, policy)
        return Step(record)
    if isinstance(outcome, str):
        return fail(record, outcome, seen, now, policy)
    if not isinstance(outcome, ApplyReport) or outcome.target_version != record.target_version:
        return fail(record, f"apply reported {outcome!r}, not {record.target_version}", seen, now, policy)
    if outcome.result == "already-current":
        return _activate(record, f"already on {record.target_version}", now, policy)
    note = f"{outcome.target_version} activated, rebooting"
    return _await_reboot(
        record, HostState.REBOOTING, note, outcome.boot_id, now, policy, previous_version=outcome.previous_version
    )


def _await_reboot(
    record: HostRecord, state: HostState, note: str, boot_id: str, now: datetime, policy: GroupPolicy, **changes: object
) -> Step:
    """The host reported it will reboot: wait for a new boot id, up to the verify deadline."""
    deadline = deadline_after(now, policy.verify_timeout_seconds)
    moved = record.move(
        state, note, now, boot_id=boot_id, deadline=deadline, command_doc=None, command_id=None, **changes
    )
    return Step(moved)


def _rebooting(record: HostRecord, seen: Observation, now: datetime, policy: GroupPolicy) -> Step:
    # A host found back online is verified even when looked at late: its boot id tells if it rebooted.
    if seen.online:
        verifying = record.move(HostState.VERIFYING, "agent online, verifying", now)
        return Step(verifying, SendDocument(Doc.VERIFY, record.target_version))
    if _past(record, now):
        reason = f"did not come back within {policy.verify_timeout_seconds} s of the reboot"
        return fail(record, reason, seen, now, policy)
    return Step(record)


def _verifying(record: HostRecord, seen: Observation, now: datetime, policy: GroupPolicy) -> Step:
    if record.os_verified:
        return _await_status_checks(record, seen, now, policy)
    outcome = command_outcome(record.command_doc, seen.invocation)
    if outcome is None:
        if _past(record, now):
            return fail(record, "verification did not report before the deadline", seen, now, policy)
        return Step(record)
    if isinstance(outcome, str):
        return fail(record, outcome, seen, now, policy)
    if not isinstance(outcome, VerifyReport):
        return fail(record, f"verify reported {outcome!r}", seen, now, policy)
    if outcome.boot_id == record.boot_id:
        if _past(record, now):
            return fail(record, f"did not reboot within {policy.verify_timeout_seconds} s", seen, now, policy)
        # The agent answered before the detached reboot happened: wait for the real reboot.
        return Step(record.move(HostState.REBOOTING, "not rebooted yet", now, command_doc=None, command_id=None))
    reason = verify_verdict(outcome, record.target_version, record.previous_version)
    if reason:
        return fail(record, reason, seen, now, policy)
    checked = record.move(HostState.VERIFYING, f"runs {outcome.version}", now, os_verified=True, command_id=None)
    return _await_status_checks(checked, seen, now, policy)


def _await_status_checks(record: HostRecord, seen: Observation, now: datetime, policy: GroupPolicy) -> Step:
    if seen.instance_status == "ok":
        return _verified(record, now, policy)
    if seen.instance_status == "impaired":
        return fail(record, "EC2 status checks impaired after the reboot", seen, now, policy)
    if _past(record, now):
        return fail(record, f"EC2 status checks not ok before the deadline ({seen.instance_status})", seen, now, policy)
    return Step(record)


# A health report comes back this long after the command's own timeout, or the command counts as lost.
HEALTH_REPORT_GRACE_SECONDS = 60


def _verified(record: HostRecord, now: datetime, policy: GroupPolicy) -> Step:
    """Runs the target and passes its status checks: the workload's own checks come next."""
    note = f"verified on {record.target_version}"
    if policy.health_check:
        deadline = deadline_after(now, policy.health_check.timeout_seconds + HEALTH_REPORT_GRACE_SECONDS)
        moved = record.move(HostState.CHECKING_HEALTH, f"{note}, health command sent", now, deadline=deadline)
        return Step(moved, SendDocument(Doc.HEALTH, record.target_version))
    return _activate(record, note, now, policy)


def _activate(record: HostRecord, note: str, now: datetime, policy: GroupPolicy) -> Step:
    deadline = deadline_after(now, policy.verify_timeout_seconds)
    if record.node_name:
        awaiting = f"{note}, awaiting node {record.node_name} Ready"
        return Step(record.move(HostState.ACTIVATING, awaiting, now, deadline=deadline, command_id=None))
    if record.container_instance is None:
        return Step(record.move(HostState.UPDATED, note, now, deadline=None, command_id=None))
    moved = record.move(
        HostState.ACTIVATING, f"{note}, container instance set ACTIVE", now, deadline=deadline, command_id=None
    )
    return Step(moved, SetContainerState("ACTIVE"))


def _checking_health(record: HostRecord, seen: Observation, now: datetime, policy: GroupPolicy) -> Step:
    outcome = command_outcome(record.command_doc, seen.invocation)
    if outcome is None:
        if _past(record, now):
            timeout = policy.health_check.timeout_seconds if policy.health_check else 0
            return fail(record, f"health command did not report within {timeout} s", seen, now, policy)
        return Step(record)
    if isinstance(outcome, str):
        return fail(record, outcome, seen, now, policy)
    if not isinstance(outcome, HealthReport):
        return fail(record, f"health reported {outcome!r}", seen, now, policy)
    reason = health_verdict(outcome)
    if reason:
        return fail(record, reason, seen, now, policy)
    return _activate(record, f"verified on {record.target_version} and healthy", now, policy)


def _activating(record: HostRecord, seen: Observation, now: datetime, policy: GroupPolicy) -> Step:
    if record.node_name:
        return _activating_node(record, seen, now, policy)
    container = seen.container
    if container and container.status == "ACTIVE" and container.agent_connected:
        note = f"verified on {record.target_version}, container instance ACTIVE with its agent connected"
        return Step(record.move(HostState.UPDATED, note, now, deadline=None))
    if _past(record, now):
        if container is None:
            reason = f"container instance {record.container_instance} left cluster {record.ecs_cluster}"
        else:
            reason = f"ECS agent not connected within {policy.verify_timeout_seconds} s (status {container.status})"
        return fail(record, reason, seen, now, policy)
    return Step(record)


def _activating_node(record: HostRecord, seen: Observation, now: datetime, policy: GroupPolicy) -> Step:
    """Verified: the node must be Ready with the target's osImage before it takes pods again."""
    waiting = _node_back(record, seen, record.target_version)
    if waiting is None:
        note = f"verified on {record.target_version}, node {record.node_name} Ready and uncordoned"
        return Step(record.move(HostState.UPDATED, note, now, deadline=None), SetSchedulable(True))
    if _past(record, now):
        reason = f"not back in the cluster within {policy.verify_timeout_seconds} s: {waiting}"
        return fail(record, reason, seen, now, policy)
    return Step(record)


def _reactivating_node(record: HostRecord, seen: Observation, now: datetime) -> Step:
    """After a rollback: the node is uncordoned once Ready on the previous version, or at the deadline with a
    note (it is back on the version it ran; a kubelet that is not Ready takes no pods anyway)."""
    back = f"back on {record.previous_version}"
    waiting = _node_back(record, seen, record.previous_version)
    if waiting is None:
        note = f"{back}, node {record.node_name} Ready and uncordoned"
        return Step(record.move(HostState.ROLLED_BACK, note, now, deadline=None), SetSchedulable(True))
    if not _past(record, now):
        return Step(record)
    if seen.node is None:
        return Step(record.move(HostState.ROLLED_BACK, f"{back}; needs attention: {waiting}", now, deadline=None))
    note = f"{back}; node {record.node_name} uncordoned, needs attention: {waiting}"
    return Step(record.move(HostState.ROLLED_BACK, note, now, deadline=None), SetSchedulable(True))


def _reactivating(record: HostRecord, seen: Observation, now: datetime) -> Step:
    """After a rollback: ECS problems are noted, never turned into a failed rollback."""
    if record.node_name:
        return _reactivating_node(record, seen, now)
    container = seen.container
    back = f"back on {record.previous_version}"
    if container and container.status == "ACTIVE" and container.agent_connected:
        done = record.move(HostState.ROLLED_BACK, f"{back}, container instance ACTIVE", now, deadline=None)
        return Step(done)
    if not _past(record, now):
        return Step(record)
    problem = (
        f"container instance {record.container_instance} is gone from cluster {record.ecs_cluster}"
        if container is None
        else f"container instance {container.status}, ECS agent connected: {container.agent_connected}"
    )
    return Step(record.move(HostState.ROLLED_BACK, f"{back}; needs attention: {problem}", now, deadline=None))


def _rolling_back(record: HostRecord, seen: Observation, now: datetime, policy: GroupPolicy) -> Step:
    step = record.rollback_step
    if step is RollbackStep.DRAIN:
        return _draining_for_rollback(record, seen.node, now, policy)
    if step is RollbackStep.ACTIVATE:
        return _reactivating(record, seen, now)
    if step in (RollbackStep.RECOVER, RollbackStep.REBOOT):
        if not seen.online:
            if _past(record, now):
                reason = "did not come back online during the rollback before the deadline; needs attention"
                return _rollback_failed(record, reason, now)
            return Step(record)
        doc = Doc.ROLLBACK if step is RollbackStep.RECOVER else Doc.VERIFY
        next_step = RollbackStep.COMMAND if step is RollbackStep.RECOVER else RollbackStep.VERIFY
        deadline = deadline_after(now, policy.apply_timeout_seconds) if doc is Doc.ROLLBACK else record.deadline
        moved = record.move(
            HostState.ROLLING_BACK, f"agent online, sending {doc}", now, rollback_step=next_step, deadline=deadline
        )
        return Step(moved, SendDocument(doc, record.previous_version))
    outcome = command_outcome(record.command_doc, seen.invocation)
    if outcome is None:
        if _past(record, now):
            return _rollback_failed(record, f"{record.command_doc} did not finish before the deadline", now)
        return Step(record)
    if isinstance(outcome, str):
        return _rollback_failed(record, outcome, now)
    if isinstance(outcome, RollbackReport):
        if outcome.result == "restored":
            return _rolled_back(record, now, policy)
        note = f"rebooting into {record.previous_version}"
        return _await_reboot(
            record, HostState.ROLLING_BACK, note, outcome.boot_id, now, policy, rollback_step=RollbackStep.REBOOT
        )
    if isinstance(outcome, VerifyReport):
        if outcome.boot_id == record.boot_id:
            if _past(record, now):
                return _rollback_failed(record, "did not reboot during the rollback before the deadline", now)
            return Step(record.move(HostState.ROLLING_BACK, "not rebooted yet", now, rollback_step=RollbackStep.REBOOT))
        if outcome.version == record.previous_version:
            return _rolled_back(record, now, policy)
        return _rollback_failed(
            record, f"runs {outcome.version} after the rollback, expected {record.previous_version}", now
        )
    return _rollback_failed(record, f"unexpected report {outcome!r}", now)


def _rolled_back(record: HostRecord, now: datetime, policy: GroupPolicy) -> Step:
    if record.node_name:
        moved = record.move(
            HostState.ROLLING_BACK,
            f"back on {record.previous_version}, awaiting node {record.node_name} Ready",
            now,
            rollback_step=RollbackStep.ACTIVATE,
            deadline=deadline_after(now, policy.verify_timeout_seconds),
            command_id=None,
        )
        return Step(moved)
    if record.container_instance:
        moved = record.move(
            HostState.ROLLING_BACK,
            f"back on {record.previous_version}, container instance set ACTIVE",
            now,
            rollback_step=RollbackStep.ACTIVATE,
            deadline=deadline_after(now, policy.verify_timeout_seconds),
            command_id=None,
        )
        return Step(moved, SetContainerState("ACTIVE"))
    done = record.move(HostState.ROLLED_BACK, f"back on {record.previous_version}", now, command_id=None, deadline=None)
    return Step(done)


def _rollback_failed(record: HostRecord, reason: str, now: datetime) -> Step:
    if record.node_name:  # a host that may run neither version takes no pods: someone must look first
        reason = f"{reason}; node {record.node_name} left cordoned"
    return Step(record.move(HostState.ROLLBACK_FAILED, reason, now, command_id=None, deadline=None))


def abandon(record: HostRecord, cause: str, now: datetime) -> HostRecord:
    """The rollout failed (or its execution stopped) while the host was not final: it is left as it is, marked."""
    if record.state is HostState.PENDING:
        return record.move(HostState.SKIPPED, f"not started: the rollout failed ({cause})", now)
    note = f"the rollout failed while the host was {record.state}: {cause}"
    if record.node_name and record.state is not HostState.DRAINING:
        note += f"; node {record.node_name} left cordoned"
    return record.move(HostState.NEEDS_ATTENTION, note, now)
