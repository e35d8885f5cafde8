"""The rhythm of the polls: when a step looks at the hosts again."""

from __future__ import annotations

import math
from datetime import datetime

from updraft.config import GroupPolicy
from updraft.domain.host_record import HostRecord, HostState

# How often the plan looks whether every host has reported its inventory.
INVENTORY_POLL_SECONDS = 15
# A verify report comes back within seconds; an apply or a reboot takes minutes.
QUICK_POLL_SECONDS = 10
# A wave lasts as long as its slowest host, so the look that finds its last hosts back is worth hurrying:
# once no more than this share of the wave is in flight and only reboots or short reports are awaited.
TAIL_SHARE = 0.25
# A reboot still going after this long is late (perhaps hung): its host is looked at the group's interval.
QUICK_REBOOT_SECONDS = 180
# Writing an image and rebooting take longer than this: no host of a wave can be verified sooner.
FIRST_LOOK_SECONDS = 90


def next_poll_seconds(records: list[HostRecord], policy: GroupPolicy, now: datetime) -> int:
    """Look again soon when every host still in flight only awaits a short report, or when the wave is down to
    its last few hosts and they are rebooting or verifying; otherwise at the group's interval."""
    in_flight = [r for r in records if not r.final and r.state is not HostState.PENDING]
    quick = min(QUICK_POLL_SECONDS, policy.poll_interval_seconds)
    if not in_flight:
        return policy.poll_interval_seconds
    if all(_awaits_report(r) for r in in_flight):
        return quick
    tail = max(1, math.ceil(len(records) * TAIL_SHARE))
    if len(in_flight) <= tail and all(_awaits_report(r) or _recent_reboot(r, now) for r in in_flight):
        return quick
    return policy.poll_interval_seconds


def _awaits_report(record: HostRecord) -> bool:
    """It waits on something that comes seconds later: a verify report, or (verified) its node turning Ready or
    its ECS agent connecting."""
    if record.state is HostState.ACTIVATING:
        return True
    return record.state is HostState.VERIFYING and bool(record.command_id) and not record.os_verified


def _recent_reboot(record: HostRecord, now: datetime) -> bool:
    since = (now - datetime.fromisoformat(record.updated_at)).total_seconds() if record.updated_at else 0.0
    return record.state is HostState.REBOOTING and since <= QUICK_REBOOT_SECONDS


def first_poll_seconds(policy: GroupPolicy) -> int:
    """After an apply is sent: writing an image and rebooting take minutes, so the first look waits two
    intervals, and never less than the shortest update (a failed apply is still caught on that look). After a
    drain began, one interval: the pods' grace periods (30 s by default) or a service's tasks end sooner."""
    if policy.ecs or policy.eks:
        return policy.poll_interval_seconds
    return max(2 * policy.poll_interval_seconds, FIRST_LOOK_SECONDS)
