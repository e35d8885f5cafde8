"""`updraft fleet`: each group at a glance. Its running hosts per Bottlerocket version, the newest release it may
take and how many hosts are behind it, its running (or last) rollout and where each host stands in it, its kill
switch and its next maintenance window. Everything is read (EC2, the ledger, the lock table); nothing is written.

A host's version is the one Updraft last knew it to run: the newest of the group's last LOOKBACK rollouts whose
record of the host names a version. SSM's DescribeInstanceInformation is not used for it. The SSM agent runs in
Bottlerocket's control container, an Amazon Linux container: before Bottlerocket 1.7.0 it reported that container's
OS (Amazon Linux 2) as the platform; newer agents read the host's os-release, which Bottlerocket mounts into the
container as /etc/bottlerocket-release. Either way it is what the agent last reported, when the agent chose to report
it, so just after an update's reboot it may still name the old version. (The simulation, sim/fleet.py, answers
"Bottlerocket" and the host's version now, as a current agent eventually does.) The ledger's versions come from
`apiclient get os`, run by the inventory and verify documents: what a rollout acted on and checked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cli import fleet
from cli.deployment import Deployment
from cli.records import HISTORY_FIELDS, Records, decoded, waves
from updraft.adapters.control import Controls
from updraft.adapters.releases import ReleaseLedger
from updraft.config import GroupPolicy
from updraft.domain.eligibility import Verdict, decide
from updraft.domain.host_record import HostState
from updraft.domain.provenance import verified_release_time
from updraft.domain.windows import next_window
from updraft.ledger_schema import GLOBAL, SK, SKIPPED
from updraft.release.version import Version

UNKNOWN = "unknown"
# How many of a group's latest rollouts are read for its hosts' versions (newest first, stopping once every running
# host is known): a host none of them recorded is "unknown".
LOOKBACK = 10
ROLLOUT_FIELDS = (*HISTORY_FIELDS, "waiting_reason", "bake_until", "halt_reason", "error", "abort_requested")
# Left on the record when the rollout ends: only news while it runs.
WHILE_RUNNING = ("waiting_reason", "bake_until")

Item = dict[str, Any]


# -- the version each host runs -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Known:
    version: str
    rollout_id: str  # the rollout whose record says so


def recorded_version(item: Item) -> str | None:
    """The version a rollout's record of a host says it runs: an updated host its target; any other planned host
    (in flight, failed, rolled back, never started) the version it ran before; a host skipped at planning the
    version its inventory reported, if the item carries one."""
    if item[SK].startswith(SKIPPED):
        return item.get("version") or None
    if item.get("state") == HostState.UPDATED:
        return item.get("target_version") or None
    return item.get("previous_version") or None


def known_versions(
    rollout_ids: Iterable[str], recorded: Callable[[str], list[Item]], hosts: Iterable[str]
) -> dict[str, Known]:
    """Each host's version by the first of the rollouts (newest first) whose record of it names one. `recorded`
    gives a rollout's host items; it is not called once every host is known, so the reads stop there."""
    wanted, known = set(hosts), {}
    for rollout_id in rollout_ids:
        if len(known) == len(wanted):
            break
        for item in recorded(rollout_id):
            host, version = item["instance_id"], recorded_version(item)
            if host in wanted and host not in known and version:
                known[host] = Known(version, rollout_id)
    return known


def version_counts(versions: dict[str, str]) -> list[dict[str, Any]]:
    """Hosts per version, newest first as Bottlerocket orders versions, "unknown" (and anything unparsable) last."""
    counts = Counter(versions.values())
    ordered = sorted((v for v in counts if _parsed(v)), key=_version, reverse=True)
    ordered += sorted(v for v in counts if not _parsed(v))
    return [{"version": version, "hosts": counts[version]} for version in ordered]


def _version(text: str) -> Version:
    return Version.parse(text.removeprefix("v"))


def _parsed(version: str) -> Version | None:
    try:
        return _version(version)
    except ValueError:
        return None


# -- releases -------------------------------------------------------------------------------------------------
def releases_seen(items: list[Item]) -> list[Item]:
    """The detector's release records, withdrawn ones left out, newest first."""
    # Withdrawn as ReleaseLedger.withdrawn reads it: the detector announced the withdrawal.
    kept = [item for item in items if "announced_withdrawn" not in item and _parsed(str(item.get("version", "")))]
    return sorted(kept, key=lambda item: _version(item["version"]), reverse=True)


@dataclass(frozen=True)
class Allowed:
    release: Item | None  # the newest release the group's release policy lets it take
    restriction: str | None  # what in the policy made it other than the newest, if anything did


def allowed_release(policy: GroupPolicy, seen: list[Item]) -> Allowed:
    """The release the group is meant to reach: its `pinned_version` if it has one, else the newest release not on
    its `deny_versions`. The config documents both for automatic rollouts (an operator may start any version), but
    they say which version the group should run, so hosts are counted behind that one and not the newest.
    `follows` and `min_release_age_hours` only delay a release: they are the `automatic` verdict, not this."""
    if policy.pinned_version:
        pinned = [item for item in seen if item["version"] == policy.pinned_version]
        note = "" if pinned else " (not among the releases seen)"
        return Allowed(pinned[0] if pinned else None, f"pinned_version {policy.pinned_version}{note}")
    denied: list[str] = []
    for item in seen:
        if item["version"] not in policy.deny_versions:
            break
        denied.append(item["version"])
    newest = seen[len(denied)] if len(denied) < len(seen) else None
    return Allowed(newest, f"deny_versions {', '.join(denied)}" if denied else None)


def behind(versions: dict[str, str], release: Item | None) -> dict[str, Any]:
    """How many hosts run a known version older than the release; hosts of unknown version are counted apart."""
    target = _parsed(release["version"]) if release else None
    parsed = [_parsed(version) for version in versions.values()]
    return {
        "release": release["version"] if release else None,
        "hosts": sum(1 for version in parsed if target and version and version < target),
        "unknown": sum(1 for version in versions.values() if version == UNKNOWN),
    }


def release_summary(item: Item | None) -> dict[str, Any] | None:
    return {key: item[key] for key in ("version", "released_at", "first_seen_at") if key in item} if item else None


# -- the rollout, the kill switch, the window --------------------------------------------------------------------
def rollout_document(meta: Item, hosts: list[Item], running: bool) -> dict[str, Any]:
    """The rollout's record in brief, with the count of its hosts per state in each wave."""
    record = decoded(meta)
    planned = [host for host in hosts if not host[SK].startswith(SKIPPED)]
    fields = ROLLOUT_FIELDS if running else tuple(f for f in ROLLOUT_FIELDS if f not in WHILE_RUNNING)
    return {
        **{field: record[field] for field in fields if field in record},
        "running": running,
        "paused": bool(record.get("paused")),
        "pause": record.get("pause") if record.get("paused") else None,  # a resumed rollout keeps the old request
        "waves": [{key: wave[key] for key in ("wave", "size", "states", "result")} for wave in waves(record, planned)],
        "skipped_at_planning": len(hosts) - len(planned),
    }


def where_hosts_stand(hosts: list[Item]) -> dict[str, tuple[int | None, str]]:
    """Each host the rollout recorded -> (its wave, or None if skipped at planning; its state)."""
    return {
        host["instance_id"]: (None, str(HostState.SKIPPED))
        if host[SK].startswith(SKIPPED)
        else (int(host["wave"]), host["state"])
        for host in hosts
    }


def switch_document(switch: Item | None, group: str) -> dict[str, Any]:
    if not switch:
        return {"engaged": False}
    scope = "all groups" if switch[SK] == GLOBAL else group
    return {"engaged": True, "scope": scope, **{key: switch[key] for key in ("reason", "by", "at") if key in switch}}


def window_document(policy: GroupPolicy, now: datetime) -> dict[str, Any] | None:
    """The window open now, else the next one to open (None: the group has no maintenance window)."""
    window = policy.maintenance_window
    if window is None:
        return None
    opening = next_window(window, now)
    return {
        "schedule": window.schedule,
        "timezone": window.timezone,
        "duration_minutes": window.duration_minutes,
        "open_now": opening.open_now,
        "opens_at": opening.opens_at.isoformat(),
        "closes_at": opening.closes_at.isoformat(),
    }


# -- reading it all ------------------------------------------------------------------------------------------------
class FleetReads:
    """The reads `updraft fleet` makes, each at most once: a rollout's hosts, a (variant, arch)'s releases."""

    def __init__(self, deployment: Deployment) -> None:
        self.records = Records(deployment)
        self.controls = Controls(deployment.ledger_table)
        self.release_ledger = ReleaseLedger(deployment.ledger_table)
        self._hosts: dict[str, list[Item]] = {}
        self._releases: dict[tuple[str, str], list[Item]] = {}

    def hosts(self, rollout_id: str) -> list[Item]:
        if rollout_id not in self._hosts:
            self._hosts[rollout_id] = self.records.recorded_hosts(rollout_id)
        return self._hosts[rollout_id]

    def releases(self, variant: str, arch: str) -> list[Item]:
        if (variant, arch) not in self._releases:
            self._releases[(variant, arch)] = releases_seen(self.release_ledger.releases(variant, arch))
        return self._releases[(variant, arch)]

    def automatic(self, policy: GroupPolicy, release: Item | None, now: datetime) -> dict[str, str] | None:
        """Whether the group's release policy lets `release` start a rollout by itself now (check_release's
        verdict, from the same rules), or that an automatic rollout already took it (one per group and version)."""
        if release is None or "released_at" not in release:
            return None
        version = release["version"]
        leader = self.records.ledger.group_outcome(policy.follows, version) if policy.follows else None
        decision = decide(policy, version, verified_release_time(release), now, leader)
        claim = self.records.automatic_claim(policy.name, version) if decision.verdict is Verdict.START else None
        if claim:
            return {"verdict": "duplicate", "reason": f"automatic rollout {claim.get('holder', '?')} already took it"}
        return {"verdict": str(decision.verdict), "reason": decision.reason}


def group_document(reads: FleetReads, policy: GroupPolicy, tag_key: str, now: datetime) -> dict[str, Any]:
    """One group at a glance (see the module's docstring)."""
    group = policy.name
    instances = fleet.running_instances(tag_key, group)
    running = reads.records.running(group)
    history = reads.records.history(group, LOOKBACK)
    known = known_versions(_newest_first(running, history), reads.hosts, instances)  # not SSM's: see above
    versions = {host: known[host].version if host in known else UNKNOWN for host in instances}
    shown = running or (history[0] if history else None)
    recorded = reads.hosts(shown["rollout_id"]) if shown else []
    allowed = allowed_release(policy, reads.releases(policy.variant, policy.arch))
    return {
        "group": group,
        "variant": policy.variant,
        "arch": policy.arch,
        "versions": version_counts(versions),
        "hosts": hosts_document(instances, known, where_hosts_stand(recorded)),
        "releases": _releases_document(reads, policy, allowed, now),
        "behind": behind(versions, allowed.release),
        "rollout": rollout_document(shown, recorded, running is not None) if shown else None,
        "kill_switch": switch_document(reads.controls.kill_switch_for(group), group),
        "maintenance_window": window_document(policy, now),
    }


def _newest_first(running: Item | None, history: list[Item]) -> list[str]:
    """The rollouts to read hosts' versions from: the group's latest, and the running one if the index (which
    DynamoDB updates a moment after the item) does not list it yet."""
    rollout_ids = [item["rollout_id"] for item in history]
    if running and running["rollout_id"] not in rollout_ids:
        rollout_ids.insert(0, running["rollout_id"])
    return rollout_ids


def _releases_document(reads: FleetReads, policy: GroupPolicy, allowed: Allowed, now: datetime) -> dict[str, Any]:
    seen = reads.releases(policy.variant, policy.arch)
    return {
        "newest": release_summary(seen[0] if seen else None),
        "allowed": release_summary(allowed.release),
        "restriction": allowed.restriction,
        "automatic": reads.automatic(policy, allowed.release, now),
    }


def hosts_document(
    instances: dict[str, str], known: dict[str, Known], stands: dict[str, tuple[int | None, str]]
) -> list[dict[str, Any]]:
    """Each running instance: its AZ, its version and which rollout says so, and its wave and state in the rollout
    shown (None if that rollout did not record it)."""
    return [
        {
            "instance_id": host,
            "az": az,
            "version": known[host].version if host in known else UNKNOWN,
            "known_from": known[host].rollout_id if host in known else None,
            "wave": stands.get(host, (None, None))[0],
            "state": stands.get(host, (None, None))[1],
        }
        for host, az in sorted(instances.items())
    ]


def fleet_document(deployment: Deployment, tag_key: str, policies: list[GroupPolicy], now: datetime) -> dict[str, Any]:
    """Every group of `policies` at a glance, in the config's order."""
    reads = FleetReads(deployment)
    return {"at": now.isoformat(), "groups": [group_document(reads, policy, tag_key, now) for policy in policies]}
