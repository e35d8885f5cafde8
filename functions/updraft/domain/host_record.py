"""One host of one rollout, as the ledger keeps it: its state, the documents it is sent, how its rollback goes.

How a host moves from state to state is updraft.domain.host_transitions.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, field_validator


class HostState(StrEnum):
    PENDING = "pending"
    DRAINING = "draining"  # its container instance drains, or its node is cordoned and drained; nothing applied yet
    APPLYING = "applying"
    REBOOTING = "rebooting"
    VERIFYING = "verifying"
    CHECKING_HEALTH = "checking-health"  # verified; the group's health command runs
    # Verified and healthy: its container instance is ACTIVE again, awaiting the agent; or its node must be Ready on
    # the new version before it is uncordoned.
    ACTIVATING = "activating"
    UPDATED = "updated"
    FAILED = "failed"
    ROLLING_BACK = "rolling-back"
    ROLLED_BACK = "rolled-back"
    ROLLBACK_FAILED = "rollback-failed"
    SKIPPED = "skipped"  # planned, never touched: its wave did not start
    NEEDS_ATTENTION = "needs-attention"  # the rollout itself failed while this host was in flight


FINAL = frozenset(
    {
        HostState.UPDATED,
        HostState.ROLLED_BACK,
        HostState.ROLLBACK_FAILED,
        HostState.SKIPPED,
        HostState.NEEDS_ATTENTION,
    }
)


class Doc(StrEnum):
    INVENTORY = "inventory"
    APPLY = "apply"
    VERIFY = "verify"
    ROLLBACK = "rollback"
    HEALTH = "health"


class RollbackStep(StrEnum):
    DRAIN = "drain"  # an updated EKS node, cordoned and drained before its rollback reboots it
    RECOVER = "recover"  # rebooted through EC2; waiting for the agent
    COMMAND = "command"  # rollback document sent
    REBOOT = "reboot"  # rollback rebooted the host; waiting for the agent
    VERIFY = "verify"  # verify document sent, expecting the previous version
    # Back on the previous version: its container instance set ACTIVE, awaiting the agent; or its node awaited
    # Ready before it is uncordoned.
    ACTIVATE = "activate"


# A host's history: each state it entered, and the notes it gained while in one (a drain's progress, a refused
# eviction). Bounded, so that a host item stays a few kB whatever happens (DynamoDB's item limit is 400 KB): past
# the limit a note within a state goes first, oldest first, so the state changes (the timeline) stay whole.
HISTORY_LIMIT = 40
NOTE_LIMIT = 200


class Transition(BaseModel):
    """One entry of a host's history: when, the state it was in (entered, or went on in), and why (the note,
    shortened)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    at: str
    state: HostState
    note: str = ""

    @classmethod
    def into(cls, state: HostState, note: str, at: str) -> Transition:
        return cls(at=at, state=state, note=note if len(note) <= NOTE_LIMIT else note[: NOTE_LIMIT - 1] + "…")


def _appended(history: tuple[Transition, ...], entry: Transition) -> tuple[Transition, ...]:
    kept = [*history, entry]
    while len(kept) > HISTORY_LIMIT:
        within = [i for i in range(1, len(kept) - 1) if kept[i].state is kept[i - 1].state]
        del kept[within[0] if within else 1]
    return tuple(kept)


class HostRecord(BaseModel):
    """One host of one rollout, as the ledger keeps it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    rollout_id: str
    instance_id: str
    az: str
    wave: int
    state: HostState = HostState.PENDING
    previous_version: str
    target_version: str
    failure: str | None = None  # why the host failed; counts against the error budget
    note: str = ""
    command_doc: Doc | None = None
    command_id: str | None = None
    boot_id: str | None = None  # boot id before the reboot that is awaited
    deadline: str | None = None
    os_verified: bool = False
    rollback_step: RollbackStep | None = None
    # ECS groups: the host's container instance, found when its wave starts.
    ecs_cluster: str | None = None
    container_instance: str | None = None
    # EKS groups: the host's node, found (and cordoned) when its wave starts.
    eks_cluster: str | None = None
    node_name: str | None = None
    drain_refusals: int = 0  # evictions refused in a row (a PodDisruptionBudget): the next try backs off
    evict_after: str | None = None  # no eviction is tried before then
    drain_blocked: str = ""  # why the last eviction was refused
    updated_at: str = ""
    history: tuple[Transition, ...] = ()  # its state changes, oldest first
    # Written before a document is sent, cleared when its command id is recorded: a step that stopped in
    # between finds the command by this key (in the command's comment) instead of sending a second one.
    send_key: str | None = None
    revision: int = 0  # the ledger's write count of this host when read; each write expects it unchanged

    @field_validator("history", mode="before")
    @classmethod
    def _entries(cls, value: object) -> object:
        # Earlier records kept each entry as one line, "<at> <state>: <note>".
        if isinstance(value, list | tuple):
            return tuple(_from_line(entry) if isinstance(entry, str) else entry for entry in value)
        return value

    @property
    def final(self) -> bool:
        return self.state in FINAL

    def move(self, state: HostState, note: str, now: datetime, **changes: object) -> HostRecord:
        """The host in `state` now, its history one entry longer unless that entry would repeat the last (the
        same state and note: a retried step that finds the host where an earlier attempt moved it)."""
        entry = Transition.into(state, note, now.isoformat())
        last = self.history[-1] if self.history else None
        repeated = last is not None and (last.state, last.note) == (entry.state, entry.note)
        history = self.history if repeated else _appended(self.history, entry)
        stamp = entry.at
        return self.model_copy(
            update={
                "state": state,
                "note": note,
                "updated_at": stamp,
                "history": history,
                "send_key": None,  # a new state supersedes any send still pending
                **changes,
            }
        )

    def noted(self, note: str, now: datetime, **changes: object) -> HostRecord:
        """The host in the same state with a new note, kept in its history too."""
        history = _appended(self.history, Transition.into(self.state, note, now.isoformat()))
        return self.model_copy(update={"note": note, "history": history, **changes})

    def intending(self, doc: Doc, key: str) -> HostRecord:
        """About to be sent `doc`: recorded before the send, so that a retry never sends it twice."""
        return self.model_copy(update={"command_doc": doc, "command_id": None, "send_key": key})

    def sent(self, doc: Doc, command_id: str) -> HostRecord:
        return self.model_copy(update={"command_doc": doc, "command_id": command_id, "send_key": None})

    @property
    def unsent(self) -> bool:
        """Its send was recorded as intended, but no command id yet: the step stopped in between."""
        return self.send_key is not None and self.command_id is None and not self.final


def _from_line(line: str) -> dict[str, str]:
    at, _, rest = line.partition(" ")
    state, _, note = rest.partition(": ")
    return {"at": at, "state": state, "note": note}


def planned_entry(note: str, now: datetime) -> tuple[Transition, ...]:
    """A planned host's history: it starts pending in its wave."""
    return (Transition.into(HostState.PENDING, note, now.isoformat()),)


def deadline_after(now: datetime, seconds: int) -> str:
    return (now + timedelta(seconds=seconds)).isoformat()


def count_states(records: list[HostRecord]) -> dict[str, int]:
    """How many hosts are in each state."""
    return dict(Counter(str(record.state) for record in records))
