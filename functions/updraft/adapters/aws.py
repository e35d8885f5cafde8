"""boto3 clients with botocore's standard retry mode (backoff with jitter on throttling), made once per runtime.

Making a client costs more than most of a step's calls (its service model is built each time), so a warm
invocation reuses the clients of the last one, as AWS advises for Lambda. They belong to the runtime's default
session: a new default session (a test's fresh account) gets clients of its own.
"""

from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.config import Config

RETRIES = Config(retries={"mode": "standard", "max_attempts": 8})


def client(service: str) -> Any:
    return _client(boto3._get_default_session(), service)


def table(name: str) -> Any:
    """A DynamoDB table resource."""
    return _table(boto3._get_default_session(), name)


@functools.lru_cache(maxsize=64)
def _client(session: boto3.Session, service: str) -> Any:
    return session.client(service, config=RETRIES)


@functools.lru_cache(maxsize=16)
def _table(session: boto3.Session, name: str) -> Any:
    return session.resource("dynamodb", config=RETRIES).Table(name)


def chunks(items: list, size: int) -> list[list]:
    return [items[start : start + size] for start in range(0, len(items), size)]
