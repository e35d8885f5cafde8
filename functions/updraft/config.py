"""The one configuration schema.

`stacks/` validates `cdk.json` against it at synth time; the Lambda functions read the same
document from their environment at run time and validate rollout requests against it.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

GROUP_NAME = r"^[a-z0-9][a-z0-9-]{0,30}$"
VERSION = r"^v?\d+\.\d+\.\d+$"
_BUDGET = re.compile(r"^(\d+)(%?)$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RollbackScope(StrEnum):
    FAILED = "failed"  # only the hosts that failed
    WAVE = "wave"  # every host updated in the wave that spent the budget
    ROLLOUT = "rollout"  # every host updated by the rollout so far


class ErrorBudget(Strict):
    """How many hosts may fail before the rollout halts: an absolute count or a percentage."""

    per_wave: str = Field("0", description='failures tolerated in one wave, "N" or "N%"')
    canary: str = Field("0", description="failures tolerated in the canary wave")
    total: str = Field("10%", description="failures tolerated over the whole rollout")

    @field_validator("per_wave", "canary", "total", mode="before")
    @classmethod
    def _budget(cls, value: object) -> str:
        text = str(value).strip()
        match = _BUDGET.match(text)
        if not match or (match.group(2) and int(match.group(1)) > 100):
            raise ValueError(f'expected a count like "2" or a percentage like "10%", got {value!r}')
        return text


def allowed_failures(budget: str, population: int) -> int:
    """Failures allowed out of `population` hosts. Percentages round down."""
    count, percent = _BUDGET.match(budget).groups()  # type: ignore[union-attr]
    return int(count) * population // 100 if percent else int(count)


ALARM_NAME = r"^[^\s][^\n]{0,254}$"


class AlarmGate(Strict):
    """CloudWatch alarms that must stay OK while a wave runs and through its bake time."""

    names: list[Annotated[str, Field(pattern=ALARM_NAME)]] = []
    prefixes: list[Annotated[str, Field(pattern=ALARM_NAME)]] = []

    @model_validator(mode="after")
    def _something_to_watch(self) -> AlarmGate:
        if not self.names and not self.prefixes:
            raise ValueError("name at least one alarm in names or prefixes")
        return self


class HealthCheck(Strict):
    """A command run through SSM in the control container of each updated host: exit 0 means healthy."""

    command: Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[^\n\r]+$")]
    timeout_seconds: Annotated[int, Field(ge=10, le=3600)] = 120

    @field_validator("command")
    @classmethod
    def _no_document_parameters(cls, command: str) -> str:
        # The command is written into an SSM document, where `{{ name }}` is a parameter reference.
        if "{{" in command:
            raise ValueError("must not contain '{{': SSM reads it as a document parameter")
        return command


class EcsPolicy(Strict):
    """The group's hosts are container instances of this ECS cluster: drain them before the update."""

    cluster: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,255}$")]
    drain_timeout_seconds: Annotated[int, Field(ge=60, le=7200)] = 900
    # Tasks no service owns are not rescheduled by a drain: leave those hosts alone, or wait for the tasks.
    unmanaged_tasks: Literal["skip", "wait"] = "skip"


class EksPolicy(Strict):
    """The group's hosts are nodes of this EKS cluster: cordon and drain each one before its update, uncordon it
    once it is Ready on the new version."""

    # CreateCluster's name rule: 1-100 characters, alphanumerics, hyphens and underscores, starting alphanumeric.
    cluster: Annotated[str, Field(pattern=r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")]
    # EKS managed node groups give a node's pods 15 minutes to leave before the update fails.
    drain_timeout_seconds: Annotated[int, Field(ge=60, le=7200)] = 900
    # A PodDisruptionBudget (or a do-not-disrupt pod) still refuses at the deadline: leave the node as it was,
    # uncordoned, or keep waiting until the budget allows the eviction (an abort or a halt still releases it).
    pdb_blocked: Literal["skip", "wait"] = "skip"
    # Pods evicted at once from one node, as the Bottlerocket update operator does (five).
    evict_concurrency: Annotated[int, Field(ge=1, le=50)] = 5
    # Create the access entries that map the functions' roles into the cluster (a cluster in this account and
    # region, with the access entry API enabled); false: its owner maps them (README, "EKS").
    access_entries: bool = True


class MaintenanceWindow(Strict):
    """When new waves may start: a cron expression (minute hour day month weekday), its length and time zone."""

    schedule: Annotated[str, Field(min_length=9, max_length=100)]
    duration_minutes: Annotated[int, Field(ge=15, le=7 * 24 * 60)]
    timezone: str = "UTC"

    @field_validator("schedule")
    @classmethod
    def _cron(cls, schedule: str) -> str:
        try:
            CronSim(schedule, datetime(2026, 1, 1))
        except CronSimError as error:
            raise ValueError(f"not a cron expression (minute hour day month weekday): {error}") from None
        return schedule

    @field_validator("timezone")
    @classmethod
    def _zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a zoneinfo directory, a too long name
            raise ValueError(f"unknown time zone {zone!r} (an IANA name such as Europe/Paris)") from None
        return zone


class GroupPolicy(Strict):
    """A fleet group: the EC2 instances tagged `<tag_key>=<name>` and how they take an update."""

    name: Annotated[str, Field(pattern=GROUP_NAME)]
    variant: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]+$", description="e.g. aws-ecs-2")]
    arch: Annotated[str, Field(pattern=r"^(x86_64|arm64)$")] = "x86_64"
    canary_size: Annotated[int, Field(ge=1, le=50)] = 1
    wave_growth: Annotated[float, Field(ge=1.0, le=10.0)] = 2.0
    max_wave_size: Annotated[int, Field(ge=1, le=1000)] = 50
    error_budget: ErrorBudget = ErrorBudget()
    rollback_scope: RollbackScope = RollbackScope.WAVE
    apply_timeout_seconds: Annotated[int, Field(ge=600, le=7200)] = 1200
    verify_timeout_seconds: Annotated[int, Field(ge=60, le=7200)] = 900
    poll_interval_seconds: Annotated[int, Field(ge=5, le=600)] = 30
    # Release policy: which verified releases start a rollout of this group by themselves, and when.
    auto_rollout: bool = Field(True, description="start a rollout when a new release is detected")
    min_release_age_hours: Annotated[int, Field(ge=0, le=24 * 90)] = 0
    follows: Annotated[str | None, Field(pattern=GROUP_NAME)] = None
    deny_versions: list[Annotated[str, Field(pattern=VERSION)]] = []
    pinned_version: Annotated[str | None, Field(pattern=VERSION)] = None
    # Safety gates: workload health, time to watch, when waves may start, how long a success can be undone.
    alarms: AlarmGate | None = None
    bake_seconds: Annotated[int, Field(ge=0, le=7 * 86_400)] = 0
    health_check: HealthCheck | None = None
    ecs: EcsPolicy | None = None
    eks: EksPolicy | None = None
    maintenance_window: MaintenanceWindow | None = None
    rollback_window_hours: Annotated[int, Field(ge=0, le=30 * 24)] = 24

    @property
    def wave_budget_seconds(self) -> int:
        """The longest a wave can take before its gate: every deadline a host can run into, plus the bake."""
        seconds = self.apply_timeout_seconds + self.verify_timeout_seconds + self.bake_seconds
        if self.health_check:
            seconds += self.health_check.timeout_seconds
        if self.ecs:
            seconds += self.ecs.drain_timeout_seconds
        if self.eks:
            seconds += self.eks.drain_timeout_seconds
        return seconds

    @model_validator(mode="after")
    def _one_orchestrator(self) -> GroupPolicy:
        if self.ecs and self.eks:
            raise ValueError("eks: a group's hosts run either ECS (ecs) or Kubernetes (eks) workloads, not both")
        return self

    @model_validator(mode="after")
    def _waves_fit_the_window(self) -> GroupPolicy:
        window = self.maintenance_window
        if window and self.wave_budget_seconds > window.duration_minutes * 60:
            raise ValueError(
                f"maintenance_window.duration_minutes: {window.duration_minutes} min cannot hold one wave, which "
                f"may take {-(-self.wave_budget_seconds // 60)} min (apply and verify timeouts, health check, "
                "drain and bake); lengthen the window or shorten those"
            )
        return self

    @field_validator("deny_versions")
    @classmethod
    def _plain_versions(cls, versions: list[str]) -> list[str]:
        return [version.removeprefix("v") for version in versions]

    @field_validator("pinned_version")
    @classmethod
    def _plain_pin(cls, version: str | None) -> str | None:
        return version.removeprefix("v") if version else None


# https, or plain http on the loopback only (a local mirror, the simulation).
REPOSITORY_URL = r"^(https://[^\s]+|http://(127\.0\.0\.1|localhost)(:\d+)?/[^\s]*)/$"


class Detection(Strict):
    """Where and how often to look for new Bottlerocket releases (The Update Framework repository)."""

    schedule: Annotated[str, Field(pattern=r"^(rate|cron)\(.+\)$")] = "rate(1 hour)"
    # `{variant}` and `{arch}` are filled in per repository; point both at a mirror or a private copy.
    metadata_base_url: Annotated[str, Field(pattern=REPOSITORY_URL)] = (
        "https://updates.bottlerocket.aws/2020-07-07/{variant}/{arch}/"
    )
    targets_base_url: Annotated[str, Field(pattern=REPOSITORY_URL)] = "https://updates.bottlerocket.aws/targets/"
    # The trust anchor: a root.json you obtained and checked yourself (see the README), never fetched,
    # and the SHA-512 Bottlerocket publishes for it: synth refuses a file that does not match, and the
    # detector refuses an object that no longer does.
    trusted_root_file: Annotated[str, Field(min_length=1)] = "trust/root.json"
    trusted_root_sha512: Annotated[str, Field(pattern=r"^[0-9a-f]{128}$")]
    max_metadata_bytes: Annotated[int, Field(ge=16_384, le=64 * 1024 * 1024)] = 10 * 1024 * 1024

    @field_validator("metadata_base_url")
    @classmethod
    def _placeholders(cls, url: str) -> str:
        if "{variant}" not in url or "{arch}" not in url:
            raise ValueError("must contain {variant} and {arch}")
        return url

    def metadata_url(self, variant: str, arch: str) -> str:
        return self.metadata_base_url.format(variant=variant, arch=arch)


class UpdraftConfig(Strict):
    """Everything under the `updraft` key of cdk.json's context."""

    tag_key: Annotated[str, Field(min_length=1, max_length=128)] = "updraft:group"
    groups: Annotated[list[GroupPolicy], Field(min_length=1)]
    # Release detection is deployed when configured: it needs a trusted root.json supplied by the operator.
    detection: Detection | None = None
    # Who hears of rollouts that end (succeeded, halted, failed, aborted) and of rollback alarms, by email.
    notify_emails: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]] = []

    def repositories(self) -> list[tuple[str, str]]:
        """The (variant, arch) update repositories the groups use, each once."""
        return sorted({(group.variant, group.arch) for group in self.groups})

    @model_validator(mode="after")
    def _unique_names(self) -> UpdraftConfig:
        names = [group.name for group in self.groups]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"groups: duplicate group names {duplicates}")
        return self

    @model_validator(mode="after")
    def _follows_known_groups_without_cycles(self) -> UpdraftConfig:
        leaders = {group.name: group.follows for group in self.groups}
        for index, group in enumerate(self.groups):
            if group.follows is None:
                continue
            if group.follows not in leaders:
                raise ValueError(f"groups.{index}.follows: {group.follows!r} is not a configured group")
            seen, current = {group.name}, group.follows
            while current is not None:
                if current in seen:
                    raise ValueError(f"groups.{index}.follows: {group.name!r} follows itself through {current!r}")
                seen.add(current)
                current = leaders[current]
        return self

    def group(self, name: str) -> GroupPolicy:
        for group in self.groups:
            if group.name == name:
                return group
        raise KeyError(name)

    def to_env(self) -> str:
        """Compact JSON for a Lambda environment variable (4 KB for all of them): defaults left out."""
        return self.model_dump_json(exclude_defaults=True)

    @classmethod
    def from_env(cls, text: str) -> UpdraftConfig:
        return cls.model_validate(json.loads(text))


class RolloutRequest(Strict):
    """The input that starts a rollout execution (CLI, schedule, release event or alarm)."""

    group: Annotated[str, Field(pattern=GROUP_NAME)]
    # The version to roll out; a rollback instead takes each host back to the version it ran before.
    target_version: Annotated[str | None, Field(pattern=VERSION)] = None
    rollback_of: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9_-]{1,80}$")] = None
    requested_by: Annotated[str, Field(max_length=256)] = "operator"
    # Set when a release announcement starts the rollout: the release policy applies from then on.
    released_at: datetime | None = None

    @field_validator("target_version")
    @classmethod
    def _strip_v(cls, value: str | None) -> str | None:
        return value.removeprefix("v") if value else None

    @model_validator(mode="after")
    def _one_target(self) -> RolloutRequest:
        if (self.target_version is None) == (self.rollback_of is None):
            raise ValueError("give either target_version (a rollout) or rollback_of (undo a finished rollout)")
        if self.rollback_of and self.released_at:
            raise ValueError("released_at: a rollback is not started by a release")
        return self
