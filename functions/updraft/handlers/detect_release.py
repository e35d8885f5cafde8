"""Scheduled: verify the Bottlerocket update repositories and announce new and withdrawn releases."""

import tempfile
from datetime import UTC, datetime

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import AwareDatetime, BaseModel, field_validator

from updraft import detection
from updraft.adapters.trust_store import pinned_root
from updraft.handlers._common import logger, metrics, tracer
from updraft.release.errors import TrustedRootMismatch
from updraft.settings import settings


class ScheduledEvent(BaseModel):
    """What the detector reads of EventBridge's scheduled event: when the schedule fired (now if absent)."""

    time: AwareDatetime | None = None

    @field_validator("time", mode="before")
    @classmethod
    def _iso_text(cls, value: object) -> object:
        # EventBridge writes an ISO 8601 string; a number would otherwise pass as seconds since 1970.
        if value is not None and not isinstance(value, str):
            raise ValueError(f"expected an ISO 8601 time like 2026-01-05T09:00:00Z, got {type(value).__name__}")
        return value

    def fired_at(self) -> datetime:
        return self.time or datetime.now(UTC)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    env = settings()
    now = ScheduledEvent.model_validate(event).fired_at()
    with tempfile.TemporaryDirectory(prefix="updraft-tuf-") as work_dir:
        try:
            root = pinned_root(env.trusted_root_bucket, env.trusted_root_key, env.trusted_root_sha512)
            reports = detection.detect(env, root, now, work_dir)
        except TrustedRootMismatch:
            metrics.add_metric(name="TrustedRootMismatch", unit=MetricUnit.Count, value=1)
            logger.exception("the deployed root.json is not the one the stack was built with; nothing was checked")
            raise
        except detection.ReleaseCheckFailed:
            metrics.add_metric(name="UntrustedRepository", unit=MetricUnit.Count, value=1)
            logger.exception("a repository failed verification; nothing from it was announced")
            raise
    for report in reports:
        metrics.add_metric(name="ReleasesAnnounced", unit=MetricUnit.Count, value=len(report.announced))
        metrics.add_metric(name="ReleasesWithdrawn", unit=MetricUnit.Count, value=len(report.withdrawn))
        if report.public_disagrees:
            metrics.add_metric(name="PublicParameterDisagreement", unit=MetricUnit.Count, value=1)
            logger.warning(
                "the public SSM parameter disagrees with the verified repository (TUF is trusted)",
                extra={
                    "variant": report.variant,
                    "arch": report.arch,
                    "verified": report.latest,
                    "public": report.public_version,
                },
            )
        logger.info("repository checked", extra=vars(report))
    return {"repositories": [vars(report) for report in reports]}
