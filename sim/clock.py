"""Virtual time, and the one scheduler that owns it.

The simulation's actors are the harness (the test, demo or benchmark driving the world) and every Step
Functions execution. Each runs in threads of its own, but only one actor runs at a time: it holds the turn
until it waits (a Wait state, a retry interval, a backoff, the harness waiting for something), and then the
scheduler hands the turn to the actor due first by (virtual time, sequence number). Virtual time moves only
when no actor is due now, that is when every actor waits. What an actor does in its turn (an in-process
Lambda, a simulated host's command, an EventBridge target) is part of its turn, so a run's outcome depends on
its seed and config alone, never on thread timing or the machine's load.

Nothing moves time to get unstuck: a world in which nobody can move fails with `SimulationStuck`, and so
does a turn that takes longer than a generous real-time limit; either failure lists every actor's state.
"""

from __future__ import annotations

import _thread
import contextlib
import itertools
import math
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

EPOCH = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
# A turn may take this long in real time before the world counts as stuck: a 1,000-host wave's step on a
# loaded machine takes minutes; a turn that never ends is a bug (a harness polling in real time, a lock).
TURN_LIMIT_SECONDS = float(os.environ.get("UPDRAFT_SIM_TURN_LIMIT", "1800"))
LAST = math.inf  # the sequence number of "after everything else due at this time"


class SimulationStuck(RuntimeError):
    """No actor can make progress (or one turn outlived the real-time limit)."""


@dataclass(eq=False)
class Actor:
    name: str
    state: str = "ready"  # ready | running | sleeping | waiting | done
    due: tuple[float, float] | None = None  # (virtual time, sequence number) of its next turn
    reason: str = "its first turn"
    since: float = 0.0  # virtual time it entered its state
    since_real: float = field(default_factory=time.monotonic)
    deadline: float | None = None  # a waiting actor's virtual time limit
    interruptible: bool = False
    environment: dict[str, str] = field(default_factory=dict)  # os.environ while it does not run

    def describe(self) -> str:
        due = f", due at {self.due[0]:.1f} s" if self.due else ""
        waited = time.monotonic() - self.since_real
        return f"{self.name}: {self.state} ({self.reason}) since {self.since:.1f} s{due}; {waited:.0f} s real"


class VirtualClock:
    def __init__(self, start: datetime = EPOCH, seed: int = 7, turn_limit: float = TURN_LIMIT_SECONDS) -> None:
        self._start = start
        self._elapsed = 0.0
        self._changed = threading.Condition()
        self._actors: list[Actor] = []
        self._current: Actor | None = None
        self._harness: Actor | None = None
        self._harness_thread: int | None = None
        self._sequence = itertools.count()
        self._turns = 0
        self._turn_began = time.monotonic()
        self._failure: SimulationStuck | None = None
        self._turn_limit = turn_limit
        self._watchdog: threading.Thread | None = None
        self._base_environment: dict[str, str] = {}
        # Random draws made in turns (retry jitter, generated names) come in the same order on every run.
        self.random = random.Random(seed)

    # -- time -----------------------------------------------------------------------------------------
    @property
    def seconds(self) -> float:
        """Seconds since the simulation started."""
        return self._elapsed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    def at(self, seconds: float) -> datetime:
        return self._start + timedelta(seconds=seconds)

    # -- actors -----------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def harness(self, name: str = "harness") -> Iterator[Actor]:
        """The calling thread drives the world: it holds the turn except while it waits (`run_until`)."""
        with self._changed:
            if self._actors:
                raise RuntimeError("the simulation already has a harness")
            actor = Actor(name, state="running", reason="driving the world")
            self._actors.append(actor)
            self._current, self._harness = actor, actor
            self._harness_thread = threading.get_ident()
            self._base_environment = dict(os.environ)
        self._watchdog = threading.Thread(target=self._watch, name="sim-watchdog", daemon=True)
        self._watchdog.start()
        try:
            yield actor
        finally:
            with self._changed:
                self._actors.remove(actor)
                self._harness, self._current = None, None
                self._changed.notify_all()

    def rewind(self) -> None:
        """Back to the start (a new test on the same deployment); only the harness may exist then."""
        with self._changed:
            if self._current is not self._harness or len(self._actors) != 1:
                raise RuntimeError("time goes back only when the harness alone is left")
            self._elapsed = 0.0

    @property
    def failed(self) -> bool:
        return self._failure is not None

    def in_harness_turn(self) -> bool:
        """Whether the harness holds the turn (its own calls, not the pipeline's)."""
        return self._current is not None and self._current is self._harness

    def spawn(self, name: str) -> Actor:
        """A new actor (an execution just started), due now after those already due; it runs once the actor
        holding the turn waits."""
        with self._changed:
            if self._current is None:
                raise RuntimeError("no actor holds the turn: drive the world from its harness")
            actor = Actor(name, due=(self._elapsed, next(self._sequence)), since=self._elapsed)
            actor.environment = dict(self._base_environment)
            self._actors.append(actor)
            return actor

    def run(self, actor: Actor, body: Callable[[], None]) -> None:
        """The actor's thread: wait for its first turn, run `body`, end."""
        with self._changed:
            self._park(actor)
        try:
            body()
        finally:
            with self._changed:
                actor.state, actor.due, actor.reason = "done", None, "ended"
                self._actors.remove(actor)
                self._hand_over(checked_only=False)

    def current_name(self) -> str | None:
        return self._current.name if self._current else None

    # -- waiting ------------------------------------------------------------------------------------------
    def sleep(self, seconds: float, reason: str = "sleeping", interruptible: bool = False) -> None:
        """The actor holding the turn sleeps `seconds` of virtual time; the others run meanwhile. With no
        actor at all (a fleet tested on its own), time simply moves."""
        with self._changed:
            actor = self._current
            if actor is None:
                if self._actors:
                    raise RuntimeError("sleep outside any actor's turn")
                self._elapsed += max(0.0, seconds)
                return
            wake = self._elapsed + max(0.0, seconds)
            actor.state, actor.reason, actor.interruptible = "sleeping", reason, interruptible
            actor.due = (wake, next(self._sequence))
            self._yield(actor)

    def advance(self, seconds: float) -> None:
        """The harness lets `seconds` of virtual time pass (the world goes on meanwhile)."""
        self.sleep(seconds, reason=f"letting {seconds:.0f} s pass")

    def settle(self) -> None:
        """The harness lets every actor due now run, and gets the turn back before time moves."""
        with self._changed:
            actor = self._require_current()
            actor.state, actor.reason, actor.due = "sleeping", "letting what is due now happen", (self._elapsed, LAST)
            self._yield(actor)

    def interrupt(self, actor: Actor | None) -> None:
        """Wake a sleeping actor now if its sleep may be cut short (a Wait state of a stopped execution)."""
        with self._changed:
            if actor is not None and actor.state == "sleeping" and actor.interruptible:
                actor.due = (self._elapsed, next(self._sequence))

    def run_until(self, condition: Callable[[], bool], what: str, within: float | None = None) -> bool:
        """The actor holding the turn waits until `condition()` holds (looked at after every other actor's
        turn, before time moves); False if `within` virtual seconds passed first."""
        deadline = None if within is None else self._elapsed + within
        looked_only = False  # since its last wait, the actor only looked: it changed nothing
        while not condition():
            with self._changed:
                actor = self._require_current()
                if deadline is not None and self._elapsed >= deadline:
                    return False
                actor.state, actor.reason, actor.deadline = "waiting", what, deadline
                actor.due = None if deadline is None else (deadline, next(self._sequence))
                self._yield(actor, checked_only=looked_only)
            looked_only = True
        return True

    def parked(self) -> list[Actor]:
        """Every actor but the one holding the turn (a snapshot, for the harness to read)."""
        with self._changed:
            return [a for a in self._actors if a is not self._current]

    # -- the scheduler (every method below runs with `_changed` held) ---------------------------------------
    def _require_current(self) -> Actor:
        if self._current is None:
            raise RuntimeError("no actor holds the turn")
        return self._current

    def _yield(self, actor: Actor, checked_only: bool = False) -> None:
        actor.since, actor.since_real = self._elapsed, time.monotonic()
        actor.environment = dict(os.environ)
        self._hand_over(checked_only)
        self._park(actor)

    def _hand_over(self, checked_only: bool) -> None:
        """Give the turn to the actor due first; move time only if nobody is due now."""
        if not checked_only:  # something may have changed: waiting actors look again before time moves
            for waiting in self._actors:
                if waiting.state == "waiting" and (waiting.due is None or waiting.due[0] > self._elapsed):
                    waiting.due = (self._elapsed, next(self._sequence))
        due = [a for a in self._actors if a.due is not None]
        if not due:
            self._current = None
            if self._actors:
                self._fail("no actor can make progress")
            return
        following = min(due, key=lambda a: a.due)
        self._elapsed = max(self._elapsed, following.due[0])
        following.state, following.due = "running", None
        self._current = following
        self._turns += 1
        self._turn_began = time.monotonic()
        self._changed.notify_all()

    def _park(self, actor: Actor) -> None:
        while self._current is not actor:
            if self._failure is not None and actor is self._harness:
                raise self._failure
            self._changed.wait()
        if self._failure is not None:
            raise self._failure
        if os.environ != actor.environment:  # an in-process Lambda of another actor may have set it
            os.environ.clear()
            os.environ.update(actor.environment)

    def _fail(self, why: str) -> None:
        lines = [f"simulation stuck at {self._elapsed:.1f} s of virtual time: {why}"]
        lines += [f"  {actor.describe()}" for actor in self._actors]
        self._failure = SimulationStuck("\n".join(lines))
        self._changed.notify_all()

    def _watch(self) -> None:
        """Fail the run if one turn outlives the real-time limit (the actor holding it is stuck)."""
        while True:
            time.sleep(min(5.0, self._turn_limit / 4))
            with self._changed:
                if self._harness is None or self._failure is not None:
                    return
                holder = self._current
                if holder is None or time.monotonic() - self._turn_began < self._turn_limit:
                    continue
                self._fail(f"{holder.name} held the turn for more than {self._turn_limit:.0f} s of real time")
                if holder is self._harness and self._harness_thread is not None:
                    _thread.interrupt_main()  # the harness itself is stuck outside the scheduler
                return
