"""DynamoDB as Powertools' idempotency layer uses it: its records expire on the clock of the world they were
written in (moto's DynamoDB itself needs no patch)."""

from __future__ import annotations

from typing import Any
from unittest import mock

from aws_lambda_powertools.utilities.idempotency.persistence import base as idempotency_base
from aws_lambda_powertools.utilities.idempotency.persistence import datarecord as idempotency_record
from aws_lambda_powertools.utilities.idempotency.persistence import dynamodb as idempotency_dynamodb

from sim.aws.common import virtual_datetime
from sim.clock import VirtualClock


def patches(clock: VirtualClock) -> list[Any]:
    virtual = virtual_datetime(clock)
    return [mock.patch.object(m, "dt", virtual) for m in (idempotency_base, idempotency_record, idempotency_dynamodb)]
