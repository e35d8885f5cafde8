"""boto3 clients with botocore's standard retry mode (backoff with jitter on throttling)."""

from __future__ import annotations

import boto3
from botocore.config import Config

RETRIES = Config(retries={"mode": "standard", "max_attempts": 8})


def client(service: str):
    # Created per call: cheap next to the work of a step, and never bound to a stale endpoint.
    return boto3.client(service, config=RETRIES)


def chunks(items: list, size: int) -> list[list]:
    return [items[start : start + size] for start in range(0, len(items), size)]
