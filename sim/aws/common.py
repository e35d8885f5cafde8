"""What several services' patches share: service errors, limit checks, paging, and the datetime module on the
virtual clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

from moto.core.exceptions import JsonRESTError

from sim import service_limits
from sim.clock import VirtualClock
from sim.fleet import SimulatedApiError

PAGE_LIMIT = 50


def api_error(error: SimulatedApiError) -> JsonRESTError:
    """A model's refusal, answered as the service answers it."""
    return JsonRESTError(error.code, str(error))


def within_limits(check: Callable[..., None], *args: Any) -> None:
    """Run a service limit check (sim/service_limits.py); a refusal answers as the service does."""
    try:
        check(*args)
    except service_limits.LimitRefused as error:
        raise JsonRESTError(error.code, str(error)) from None


def page(items: list, token: str | None, limit: int) -> tuple[list, str | None]:
    start = int(token or 0)
    end = start + min(limit, PAGE_LIMIT)
    return items[start:end], (str(end) if end < len(items) else None)


def virtual_datetime(clock: VirtualClock) -> SimpleNamespace:
    """A stand-in for the `datetime` module whose `datetime.now()` reads the virtual clock."""

    class VirtualDatetime(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return clock.now() if tz is None else clock.now().astimezone(tz)

    return SimpleNamespace(datetime=VirtualDatetime, timedelta=timedelta, timezone=timezone)
