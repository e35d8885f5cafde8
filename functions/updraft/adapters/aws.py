"""boto3 clients with botocore's standard retry mode (backoff with jitter on throttling), made once per runtime.

Making a client costs more than most of a step's calls (its service model is built each time), so a warm
invocation reuses the clients of the last one, as AWS advises for Lambda. They belong to the runtime's default
session: a new default session (a test's fresh account) gets clients of its own, and the old ones are let go.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

RETRIES = Config(retries={"mode": "standard", "max_attempts": 8})


class PerSession:
    """What `make(session, key)` returns, kept for the current default session only."""

    def __init__(self, make: Callable[[boto3.Session, str], Any]) -> None:
        self._make = make
        self._session: boto3.Session | None = None
        self._made: dict[str, Any] = {}

    def __call__(self, key: str) -> Any:
        session = boto3._get_default_session()
        if session is not self._session:
            self._session, self._made = session, {}
        if key not in self._made:
            self._made[key] = self._make(session, key)
        return self._made[key]


client = PerSession(lambda session, service: session.client(service, config=RETRIES))
# A DynamoDB table resource, by table name.
table = PerSession(lambda session, name: session.resource("dynamodb", config=RETRIES).Table(name))


def chunks(items: list, size: int) -> list[list]:
    return [items[start : start + size] for start in range(0, len(items), size)]
