"""Release detection: verify each update repository the groups use, announce what changed.

A release is announced once, when the verified manifest first offers it as the newest for a
(variant, arch); an announced release that the manifest stops offering (max_version lowered below
it, or delisted) is announced as withdrawn. The public SSM parameter is compared, never trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from updraft.adapters import events
from updraft.adapters.aws import client
from updraft.adapters.releases import ReleaseLedger
from updraft.adapters.trust_store import S3TrustStore
from updraft.errors import UpdraftError
from updraft.release import (
    MalformedManifest,
    ScopedTrustStore,
    UntrustedRelease,
    Version,
    is_withdrawn,
    latest_release,
    parse_manifest,
    repository_arch,
    verify_repository,
)
from updraft.settings import Settings

AVAILABLE = "Bottlerocket Release Available"
WITHDRAWN = "Bottlerocket Release Withdrawn"
PUBLIC_VERSION = "/aws/service/bottlerocket/{variant}/{arch}/latest/image_version"


class ReleaseCheckFailed(UpdraftError):
    """At least one repository could not be verified; nothing from it was announced."""


@dataclass(frozen=True)
class RepositoryReport:
    variant: str
    arch: str
    latest: str | None
    announced: list[str]
    withdrawn: list[str]
    bytes_downloaded: int
    downloaded: list[str]
    public_version: str | None

    @property
    def public_disagrees(self) -> bool:
        return self.public_version is not None and self.public_version != self.latest


def detect(env: Settings, trusted_root: bytes, now: datetime, work_dir: str) -> list[RepositoryReport]:
    """Check every repository; raise ReleaseCheckFailed (after the others ran) if any failed."""
    reports, failures = [], []
    for variant, arch in env.config.repositories():
        try:
            reports.append(check_repository(env, variant, arch, trusted_root, now, work_dir))
        except (UntrustedRelease, MalformedManifest) as error:
            failures.append(f"{variant}/{arch}: {type(error).__name__}: {error}")
    if failures:
        raise ReleaseCheckFailed("; ".join(failures))
    return reports


def check_repository(
    env: Settings, variant: str, arch: str, trusted_root: bytes, now: datetime, work_dir: str
) -> RepositoryReport:
    detection, repo_arch = env.config.detection, repository_arch(arch)
    verified = verify_repository(
        detection.metadata_url(variant, repo_arch),
        detection.targets_base_url,
        trusted_root,
        ScopedTrustStore(S3TrustStore(env.trust_bucket), f"{variant}/{repo_arch}"),
        work_dir=work_dir,
        max_metadata_bytes=detection.max_metadata_bytes,
    )
    manifest = parse_manifest(verified.manifest)
    ledger = ReleaseLedger(env.ledger_table)
    announced, withdrawn = [], []
    latest = latest_release(manifest, variant, repo_arch)
    if latest and _newer_than_announced(latest.version, ledger.releases(variant, arch)):
        detail = {
            "variant": variant,
            "arch": arch,
            "version": str(latest.version),
            "released_at": latest.released_at.isoformat() if latest.released_at else now.isoformat(),
            "manifest_digest": verified.digest,
        }
        ledger.record(variant, arch, detail["version"], {**detail, "first_seen_at": now.isoformat()})
        if _announce(env, ledger, AVAILABLE, detail, now):
            announced.append(detail["version"])
    for release in ledger.releases(variant, arch):
        still_out = release.get("announced_available") and not release.get("announced_withdrawn")
        if still_out and is_withdrawn(manifest, variant, repo_arch, release["version"]):
            detail = {
                "variant": variant,
                "arch": arch,
                "version": release["version"],
                "manifest_digest": verified.digest,
            }
            if _announce(env, ledger, WITHDRAWN, detail, now):
                withdrawn.append(release["version"])
    return RepositoryReport(
        variant=variant,
        arch=arch,
        latest=str(latest.version) if latest else None,
        announced=announced,
        withdrawn=withdrawn,
        bytes_downloaded=verified.bytes_downloaded,
        downloaded=[download.url.rsplit("/", 1)[-1] for download in verified.downloads],
        public_version=public_version(variant, arch),
    )


def _newer_than_announced(version: Version, releases: list[dict[str, Any]]) -> bool:
    """Only a release newer than every one announced is new: after a withdrawal the manifest's newest
    is an older release, which the withdrawal itself covers."""
    announced = [Version.parse(r["version"]) for r in releases if r.get("announced_available")]
    return all(version > other for other in announced)


def _announce(env: Settings, ledger: ReleaseLedger, detail_type: str, detail: dict[str, Any], now: datetime) -> bool:
    kind = "available" if detail_type == AVAILABLE else "withdrawn"
    variant, arch, version = detail["variant"], detail["arch"], detail["version"]
    if not ledger.claim(variant, arch, version, kind, now):
        return False
    events.publish(env.event_bus, detail_type, detail)
    ledger.mark_sent(variant, arch, version, kind, now)
    return True


def public_version(variant: str, arch: str) -> str | None:
    """The version AWS's public parameter names as latest ("1.26.1-abcdef12" -> "1.26.1"), if any."""
    ssm = client("ssm")
    try:
        value = ssm.get_parameter(Name=PUBLIC_VERSION.format(variant=variant, arch=arch))["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None
    return value.split("-", 1)[0]
