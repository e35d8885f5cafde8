"""Taking hosts back: whether a finished rollout may be undone (on request, or when an alarm fires after it),
what each of its hosts goes back to, and which hosts a halted rollout rolls back."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from updraft.config import GroupPolicy, RollbackScope
from updraft.domain.host_record import HostRecord, HostState
from updraft.domain.rollout_record import RolloutRecord, RolloutStatus

# Only a rollout that ended on its own (succeeded, or halted by a gate) is undone.
UNDOABLE = frozenset({RolloutStatus.SUCCEEDED, RolloutStatus.HALTED})


def refusal(undone: RolloutRecord, group: str, policy: GroupPolicy, now: datetime) -> str | None:
    """Why `undone` may not be rolled back by a rollout of `group` now, or None."""
    rollout_id = undone.rollout_id
    if undone.group != group:
        return f"rollback_of: {rollout_id} rolled out group {undone.group}, not {group}"
    if undone.status not in UNDOABLE or undone.rollback_of:
        return f"rollback_of: {rollout_id} ended {undone.status}; only a finished rollout is undone"
    if undone.rolled_back_by:
        return f"rollback_of: {rollout_id} is already rolled back by {undone.rolled_back_by}"
    closes = datetime.fromisoformat(undone.finished_at or "") + timedelta(hours=policy.rollback_window_hours)
    if now > closes:
        return (
            f"rollback_of: the rollback window of {rollout_id} closed at {closes.isoformat()} "
            f"({policy.rollback_window_hours} h after it finished)"
        )
    return None


def updated(hosts: list[HostRecord]) -> list[HostRecord]:
    """The hosts a rollout updated: what undoing it takes back."""
    return [host for host in hosts if host.state is HostState.UPDATED]


def urgent(policy: GroupPolicy) -> GroupPolicy:
    """Undoing a bad release is urgent, and its alarms may well be firing: no alarm gate, bake or window."""
    return policy.model_copy(update={"alarms": None, "bake_seconds": 0, "maintenance_window": None})


def common_previous_version(hosts: list[HostRecord]) -> str:
    """The version a rollback takes most hosts back to: what the rollout record shows as its target."""
    return Counter(host.previous_version for host in hosts).most_common(1)[0][0]


def targets(undone_hosts: list[HostRecord]) -> dict[str, tuple[str, str]]:
    """For a rollback: each host the undone rollout updated -> (the version it took, the one it left)."""
    return {host.instance_id: (host.target_version, host.previous_version) for host in updated(undone_hosts)}


# -- a halted rollout ---------------------------------------------------------------------------------------
def halt_scope(record: RolloutRecord) -> RollbackScope:
    """A pulled release takes back every host the rollout updated; a gate, the group's own scope."""
    return RollbackScope.ROLLOUT if record.withdrawn else record.policy.rollback_scope


def in_scope(host: HostRecord, scope: RollbackScope, wave: int) -> bool:
    if scope is RollbackScope.ROLLOUT:
        return True
    return scope is RollbackScope.WAVE and host.wave == wave


# -- an alarm after the rollout ----------------------------------------------------------------------------
def watches(policy: GroupPolicy, alarm_name: str) -> bool:
    gate = policy.alarms
    return gate is not None and (alarm_name in gate.names or any(alarm_name.startswith(p) for p in gate.prefixes))


def undone_by_alarm(policy: GroupPolicy, alarm_name: str, running: set[str]) -> bool:
    """Whether `alarm_name` firing may roll back the group's latest rollout: the group watches it, keeps a
    rollback window, and runs no rollout now."""
    if not policy.alarms or not policy.rollback_window_hours or policy.name in running:
        return False
    return watches(policy, alarm_name)


def within_window(latest: RolloutRecord, policy: GroupPolicy, now: datetime) -> bool:
    """Whether the group's latest rollout is one an alarm rolls back: a rollout (not a rollback) that
    succeeded, inside the group's rollback window."""
    if latest.status is not RolloutStatus.SUCCEEDED or latest.rollback_of:
        return False
    return now <= datetime.fromisoformat(latest.finished_at or "") + timedelta(hours=policy.rollback_window_hours)
