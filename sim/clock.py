"""Virtual time: Wait states and retry intervals advance it instead of sleeping.

Executions run concurrently (a group waiting on its release policy while another rolls out), so
time is discrete-event: a sleeping execution wakes when the clock reaches its wake time, and the
clock jumps to the earliest wake time only once every running execution sleeps. One execution's
hour-long Wait therefore never fast-forwards another one's rollout.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

EPOCH = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
# If a sleeper sees no progress for this long in real time, time moves anyway: a miscount of running
# executions must cost speed, never a hang.
STALL_SECONDS = 2.0


class VirtualClock:
    def __init__(self, start: datetime = EPOCH) -> None:
        self._start = start
        self._elapsed = 0.0
        self._running = 0  # executions started and not yet ended
        self._wakes: list[float] = []  # wake times of the executions sleeping now
        self._held = 0  # while held, time stands still: a test can act between two steps
        self._changed = threading.Condition()

    @property
    def seconds(self) -> float:
        """Seconds since the simulation started."""
        with self._changed:
            return self._elapsed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self.seconds)

    def at(self, seconds: float) -> datetime:
        return self._start + timedelta(seconds=seconds)

    def advance(self, seconds: float) -> None:
        """Move time forward now (the harness, or a backoff outside any execution's schedule)."""
        with self._changed:
            self._elapsed += max(0.0, seconds)
            self._changed.notify_all()

    def execution_started(self) -> None:
        with self._changed:
            self._running += 1

    def execution_ended(self) -> None:
        with self._changed:
            self._running = max(0, self._running - 1)
            self._jump_if_all_asleep()
            self._changed.notify_all()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Stop time: sleeping executions stay asleep until the block ends."""
        with self._changed:
            self._held += 1
        try:
            yield
        finally:
            with self._changed:
                self._held -= 1
                self._jump_if_all_asleep()

    def wait_sleeping(self, count: int, timeout: float) -> bool:
        """Wait (in real time) until `count` executions sleep; False if they did not in time."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self._wakes) >= count, timeout)

    def wait_idle(self, timeout: float) -> bool:
        """Wait (in real time) until no execution is running; False if some still are."""
        with self._changed:
            return self._changed.wait_for(lambda: self._running == 0, timeout)

    def sleep(self, seconds: float) -> None:
        """An execution sleeps `seconds` of virtual time."""
        with self._changed:
            wake = self._elapsed + max(0.0, seconds)
            self._wakes.append(wake)
            self._changed.notify_all()
            try:
                self._jump_if_all_asleep()
                while self._elapsed < wake:
                    stalled = not self._changed.wait(timeout=STALL_SECONDS)
                    if stalled and not self._held and self._elapsed < wake:
                        self._elapsed = min(self._wakes)  # stalled: let the earliest sleeper go
                        self._changed.notify_all()
            finally:
                self._wakes.remove(wake)

    def _jump_if_all_asleep(self) -> None:
        if not self._held and self._wakes and len(self._wakes) >= self._running:
            self._elapsed = max(self._elapsed, min(self._wakes))
            self._changed.notify_all()
