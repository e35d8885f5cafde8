"""What every handler shares: Powertools, the step input schema, the rollout id in every log line."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.shared.constants import IDEMPOTENCY_DISABLED_ENV
from aws_lambda_powertools.shared.functions import strtobool
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent
from pydantic import BaseModel, ConfigDict

from updraft.adapters import ssm
from updraft.adapters.aws import PerSession, client
from updraft.domain.rollout_record import Rollout
from updraft.errors import DocumentChanged
from updraft.ledger_schema import EXPIRES, PK, SK, idempotency_pk

logger = Logger()
tracer = Tracer()
# Named here, not only through the environment: a module imported before its environment is set (a warm
# runtime's first import, a test) would otherwise publish without a namespace and fail to flush.
metrics = Metrics(namespace="Updraft", service="updraft")


class RolloutRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    rollout_id: str
    group: str
    target_version: str

    def domain(self) -> Rollout:
        return Rollout(self.rollout_id, self.group, self.target_version)


class StepInput(BaseModel):
    """What the state machine passes to a step: the rollout, the wave, and the state's entry time."""

    model_config = ConfigDict(extra="forbid")
    rollout: RolloutRef
    now: datetime
    wave: int = 0
    scope: Literal["wave", "rollout"] = "wave"
    error: dict[str, Any] | None = None


def step_input(event: dict[str, Any]) -> StepInput:
    parsed = StepInput.model_validate(event)
    logger.append_keys(rollout_id=parsed.rollout.rollout_id, group=parsed.rollout.group, wave=parsed.wave)
    return parsed


def emit(name: str, unit: MetricUnit, value: float, group: str) -> None:
    """A metric of this invocation, dimensioned by the rollout's group. Handlers that emit flush with
    `@metrics.log_metrics`, which clears the dimensions after each invocation: a warm function serves many
    groups."""
    if is_metrics_disabled():
        return  # Powertools never clears a disabled metric set: it would pile up across warm invocations
    if metrics.dimension_set.get("group") != group:
        metrics.add_dimension(name="group", value=group)
    metrics.add_metric(name=name, unit=unit, value=value)


def forged_announcement(kind: str, version: str, reason: str, *origin: str) -> None:
    """An announcement on the release bus that no record of the detector vouches for: refused, logged and
    counted (`ForgedRelease`, alarmed on), whatever its kind."""
    logger.warning(
        "refused a release announcement the detector did not make",
        extra={"kind": kind, "version": version, "reason": reason, "origin": list(origin)},
    )
    if not is_metrics_disabled():
        metrics.add_metric(name="ForgedRelease", unit=MetricUnit.Count, value=1)


def sends_documents(handler: Callable[[dict, Any], dict]) -> Callable[[dict, Any], dict]:
    """A step that sends SSM documents reads each one once per invocation; one that is not the content the
    stack deployed fails the step (`DocumentChanged`, which no retrier names) and is counted first: metric
    `DocumentChanged`, with the service dimension only (the documents are the stack's, not a group's), flushed
    by `@metrics.log_metrics` on the way out."""

    @functools.wraps(handler)
    def run(event: dict, context: Any) -> dict:
        with ssm.checked_documents():
            try:
                return handler(event, context)
            except DocumentChanged:
                if not is_metrics_disabled():
                    metrics.add_metric(name="DocumentChanged", unit=MetricUnit.Count, value=1)
                logger.exception("an SSM document is not the one deployed: refused, nothing sent with it")
                raise

    return run


# Step Functions retries a task within a minute or two; a record outlives that, then the table's TTL drops it.
REPLAY = IdempotencyConfig(expires_after_seconds=3600)


def replayable(handler: Callable[[dict, Any], dict]) -> Callable[[dict, Any], dict]:
    """A step invoked again with the same input (the state's entry time is part of it) returns its first
    result instead of acting again: the same verdict, no second lifecycle event or metric. Results are kept
    in the ledger table under `IDEMPOTENCY#<step>`. An attempt that raised keeps nothing, so its retry runs
    the step again: that the retry sends nothing twice is the step's own doing (see `updraft.flow.effects.send`)."""
    step = handler.__module__.rsplit(".", 1)[-1]

    @functools.wraps(handler)
    def run(event: dict, context: Any) -> dict:
        if strtobool(os.getenv(IDEMPOTENCY_DISABLED_ENV, "false")):
            return handler(event, context)  # Powertools' own switch, honoured before the table is needed
        store = _replay_store(os.environ["LEDGER_TABLE"], step)
        return idempotent(persistence_store=store, config=REPLAY)(handler)(event, context)

    return run


def _store(session: Any, key: str) -> DynamoDBPersistenceLayer:
    table_name, step = key.split("/", 1)
    return DynamoDBPersistenceLayer(
        table_name=table_name,
        key_attr=PK,
        sort_key_attr=SK,
        expiry_attr=EXPIRES,
        static_pk_value=idempotency_pk(step),
        boto3_client=client("dynamodb"),  # the runtime's own client (Powertools would make a session per store)
    )


# One store per step for the life of the runtime: a warm invocation reuses it and its client.
_stores = PerSession(_store)


def _replay_store(table_name: str, step: str) -> DynamoDBPersistenceLayer:
    return _stores(f"{table_name}/{step}")
