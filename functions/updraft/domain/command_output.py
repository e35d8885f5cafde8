"""Reading what a host's command left: its report, or why it failed; and what a verify or health report says of
the host."""

from __future__ import annotations

from updraft.domain.host_actions import Invocation
from updraft.domain.host_record import Doc
from updraft.domain.reports import ErrorReport, HealthReport, Report, VerifyReport, parse_report
from updraft.errors import MalformedCommandOutput

# Invocation statuses that are still moving; anything else is an end.
RUNNING_STATUSES = frozenset({"Pending", "InProgress", "Delayed"})


def clip(text: str, limit: int) -> str:
    """`text` within `limit` characters, keeping both ends: apiclient's error chains put the cause last."""
    if len(text) <= limit:
        return text
    head = limit // 3
    return f"{text[:head]} … {text[-(limit - head - 3) :]}"


def command_outcome(doc: Doc | None, invocation: Invocation | None) -> Report | str | None:
    """The report of a command, a failure reason, or None while it runs."""
    if invocation is None or invocation.status in RUNNING_STATUSES:
        return None
    if invocation.status not in ("Success", "Failed"):
        return f"{doc} command ended {invocation.status}: {invocation.stderr.strip()[:300]}".rstrip(": ")
    try:
        report = parse_report(str(doc), invocation.stdout)
    except MalformedCommandOutput as error:
        stderr = invocation.stderr.strip()[-200:]
        return f"MalformedCommandOutput: {error}" + (f" (stderr: {stderr})" if stderr else "")
    if isinstance(report, ErrorReport):
        return f"{doc} failed at {report.stage}: {clip(report.error.strip(), 300)}"
    return report


def verify_verdict(report: VerifyReport, expected: str, previous: str) -> str | None:
    """Why a host that reported after its reboot is not healthy on `expected`, or None."""
    if report.version != expected:
        if report.version == previous:
            return f"booted back into {previous} (boot-loader fallback): the update to {expected} did not take"
        return f"runs {report.version}, expected {expected}"
    if report.update_state == "Ready":
        return "an update is still activated for the next boot"
    if report.active_version not in (None, expected):
        return f"active partition holds {report.active_version}, expected {expected}"
    if report.version_lock.removeprefix("v") != expected:
        return f"version lock is {report.version_lock}, expected {expected}"
    return None


def health_verdict(report: HealthReport) -> str | None:
    """Why the health command's report means the host is unhealthy, or None."""
    output = f": {report.output.strip()[-300:]}" if report.output.strip() else ""
    if report.result == "timed-out":
        return f"health command did not finish within {report.timeout_seconds} s{output}"
    if report.result != "healthy" or report.exit_code != 0:
        return f"health command exited {report.exit_code}{output}"
    return None
