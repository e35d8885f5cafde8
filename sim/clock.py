"""Virtual time: Wait states and retry intervals advance it instead of sleeping."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

EPOCH = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class VirtualClock:
    def __init__(self, start: datetime = EPOCH) -> None:
        self._start = start
        self._elapsed = 0.0
        self._lock = threading.Lock()

    @property
    def seconds(self) -> float:
        """Seconds since the simulation started."""
        with self._lock:
            return self._elapsed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self.seconds)

    def at(self, seconds: float) -> datetime:
        return self._start + timedelta(seconds=seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._elapsed += max(0.0, seconds)
