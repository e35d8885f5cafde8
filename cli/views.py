"""Rich renderings of plans, rollouts, history and kill switches, for people."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Column, Table
from rich.text import Text

STATE_ORDER = (
    "pending",
    "applying",
    "rebooting",
    "verifying",
    "updated",
    "failed",
    "rolling-back",
    "rolled-back",
    "rollback-failed",
    "skipped",
    "needs-attention",
)
STATE_STYLE = {
    "updated": "green",
    "failed": "red",
    "rolling-back": "yellow",
    "rolled-back": "yellow",
    "rollback-failed": "bold red",
    "needs-attention": "bold red",
    "skipped": "dim",
    "pending": "dim",
}
STATUS_STYLE = {"succeeded": "green", "halted": "red", "failed": "red", "aborted": "red", "timed-out": "red"}


def duration(seconds: int) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min"


def when(stamp: str | None) -> str:
    """An ISO timestamp to the minute, for a table cell."""
    return stamp[:16].replace("T", " ") if stamp else ""


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    return table


# -- plan ---------------------------------------------------------------------------------------------------
def plan_view(plan: dict[str, Any]) -> RenderableType:
    headline = Text(f"{plan['group']} -> {plan['target_version']}: {plan['candidates']} hosts to update", style="bold")
    waves = _table("waves", "wave", "hosts", "per AZ")
    for wave in plan["waves"]:
        zones = ", ".join(f"{az} {count}" for az, count in wave["per_az"].items())
        waves.add_row(str(wave["wave"]), str(wave["size"]), zones)
    parts: list[RenderableType] = [headline, waves] if plan["waves"] else [headline]
    if plan["skipped"]:
        skipped = _table("skipped", "instance", "AZ", "why")
        for host in plan["skipped"]:
            skipped.add_row(host["instance_id"], host["az"], host["reason"])
        parts.append(skipped)
    parts.append(_estimate_line(plan))
    if plan["maintenance_window"]:
        parts.append(_window_line(plan["maintenance_window"]))
    parts.append(Text("dry run: nothing was changed", style="dim"))
    return Group(*parts)


def _estimate_line(plan: dict[str, Any]) -> Text:
    estimate = plan["estimate"]
    return Text(
        f"estimated duration: about {duration(estimate['typical_seconds'])}, at worst "
        f"{duration(estimate['worst_case_seconds'])} ({estimate['excludes']} not counted)"
    )


def _window_line(window: dict[str, Any]) -> Text:
    if window["open_now"]:
        return Text(f"maintenance window open now, until {window['closes_at']}")
    return Text(f"next maintenance window: {window['opens_at']} to {window['closes_at']} ({window['schedule']})")


# -- status -------------------------------------------------------------------------------------------------
def status_view(status: dict[str, Any], lock: dict[str, Any] | None = None) -> RenderableType:
    meta = status["rollout"]
    parts: list[RenderableType] = [_headline(meta), *_flags(meta)]
    parts.append(_waves_table(status["waves"]))
    if status["skipped"]:
        parts.append(Text(f"{len(status['skipped'])} hosts skipped at planning", style="dim"))
    attention = _attention_table(status["waves"])
    if attention is not None:
        parts.append(attention)
    return Group(*parts)


def _headline(meta: dict[str, Any]) -> Text:
    status = meta.get("status", "?")
    what = f"rollback of {meta['rollback_of']}" if meta.get("rollback_of") else meta.get("target_version", "?")
    text = Text(f"rollout {meta['rollout_id']}  {meta.get('group', '?')} -> {what}: ")
    text.append(status, style=STATUS_STYLE.get(status, "bold"))
    text.append(f"\nrequested by {meta.get('requested_by', '?')}, started {meta.get('started_at', '?')}")
    if meta.get("finished_at"):
        text.append(f", finished {meta['finished_at']}")
    return text


def _flags(meta: dict[str, Any]) -> list[Text]:
    lines = []
    if meta.get("paused"):
        lines.append(Text("paused: no new wave starts until resumed", style="yellow"))
    if meta.get("abort_requested"):
        lines.append(Text(f"abort requested: {meta['abort_requested'].get('reason', '')}", style="red"))
    for field in ("waiting_reason", "halt_reason", "error"):
        if meta.get(field):
            lines.append(Text(f"{field.replace('_', ' ')}: {meta[field]}", style="yellow"))
    if meta.get("bake_until"):
        lines.append(Text(f"baking until {meta['bake_until']}"))
    return lines


def _waves_table(waves: list[dict[str, Any]]) -> Table:
    present = [s for s in STATE_ORDER if any(s in w["states"] for w in waves)]
    table = _table("waves", "wave", "hosts", *present, "gate")
    for wave in waves:
        counts = [_count(wave["states"].get(state, 0), state) for state in present]
        result = wave["result"] or {}
        gate = f"{result.get('verdict', '')} {result.get('reason', '')}".strip()
        table.add_row(str(wave["wave"]), str(wave["size"]), *counts, gate)
    return table


def _count(count: int, state: str) -> Text:
    return Text(str(count) if count else "", style=STATE_STYLE.get(state, ""))


def _attention_table(waves: list[dict[str, Any]]) -> Table | None:
    rows = [(w["wave"], h) for w in waves for h in w["hosts"] if h.get("failure")]
    if not rows:
        return None
    table = _table("hosts that failed", "instance", "wave", "state", "why")
    for wave, host in rows:
        table.add_row(host["instance_id"], str(wave), _count_text(host["state"]), host["failure"])
    return table


def _count_text(state: str) -> Text:
    return Text(state, style=STATE_STYLE.get(state, ""))


# -- history and kill switches ---------------------------------------------------------------------------------
def history_table(group: str, rows: list[dict[str, Any]]) -> Table:
    table = _table(f"rollouts of {group}, newest first", "version", "status", "by", "started", "finished", "hosts")
    table.columns.insert(0, Column("rollout", no_wrap=True))
    for row in rows:
        summary = row.get("summary") or {}
        counts = ", ".join(f"{state} {count}" for state, count in sorted(summary.items()) if count)
        version = f"rollback of {row['rollback_of']}" if row.get("rollback_of") else row.get("target_version", "")
        status = row.get("status", "")
        table.add_row(
            row["rollout_id"],
            version,
            Text(status, style=STATUS_STYLE.get(status, "")),
            row.get("requested_by", ""),
            when(row.get("started_at")),
            when(row.get("finished_at")),
            counts,
        )
    return table


def switches_table(switches: list[dict[str, Any]]) -> RenderableType:
    if not switches:
        return Text("no kill switch engaged: waves may start")
    table = _table("kill switches engaged: no wave of these groups starts", "scope", "reason", "by", "at")
    for switch in switches:
        table.add_row(switch["scope"], switch.get("reason", ""), switch.get("by", ""), switch.get("at", ""))
    return table


# -- the fleet --------------------------------------------------------------------------------------------------
def fleet_view(document: dict[str, Any]) -> RenderableType:
    parts: list[RenderableType] = []
    for group in document["groups"]:
        parts += [*_fleet_group(group), Text("")]
    return Group(*parts) if parts else Text("no group configured")


def _fleet_group(group: dict[str, Any]) -> list[RenderableType]:
    hosts = group["hosts"]
    headline = Text(f"{group['group']} ({group['variant']}, {group['arch']}): {len(hosts)} running hosts", style="bold")
    parts: list[RenderableType] = [headline]
    if group["versions"]:
        parts.append(_versions_table(group["versions"]))
    parts += [*_release_lines(group["releases"], group["behind"]), *_rollout_parts(group["rollout"], hosts)]
    parts += [_switch_line(group["kill_switch"]), _fleet_window_line(group["maintenance_window"])]
    return parts


def _versions_table(versions: list[dict[str, Any]]) -> Table:
    table = _table("hosts per version", "version", "hosts")
    for row in versions:
        table.add_row(Text(row["version"], style="dim" if row["version"] == "unknown" else ""), str(row["hosts"]))
    return table


def _release_lines(releases: dict[str, Any], behind: dict[str, Any]) -> list[Text]:
    newest, allowed = releases["newest"], releases["allowed"]
    if newest is None:
        return [Text("no release recorded by the detector for this variant and arch", style="dim")]
    line = Text(f"newest release: {newest['version']}")
    if newest.get("released_at"):
        line.append(f" (released {when(newest['released_at'])})")
    lines = [line]
    if releases["restriction"]:
        taken = allowed["version"] if allowed else "none"
        lines.append(Text(f"the group takes {taken}: {releases['restriction']}", style="yellow"))
    if behind["release"]:
        unknown = f", {behind['unknown']} of unknown version" if behind["unknown"] else ""
        style = "yellow" if behind["hosts"] else "green"
        lines.append(Text(f"{behind['hosts']} hosts behind {behind['release']}{unknown}", style=style))
    automatic = releases["automatic"]
    if automatic:
        lines.append(Text(f"automatic rollout: {automatic['verdict']}: {automatic['reason']}"))
    return lines


def _rollout_parts(rollout: dict[str, Any] | None, hosts: list[dict[str, Any]]) -> list[RenderableType]:
    if rollout is None:
        return [Text("no rollout recorded", style="dim")]
    status = rollout.get("status", "?")
    what = f"rollback of {rollout['rollback_of']}" if rollout.get("rollback_of") else rollout.get("target_version", "?")
    text = Text(f"{'rollout' if rollout['running'] else 'last rollout'} {rollout['rollout_id']} -> {what}: ")
    text.append(status, style=STATUS_STYLE.get(status, "bold"))
    ended = f", finished {when(rollout['finished_at'])}" if rollout.get("finished_at") else ""
    text.append(f" (started {when(rollout.get('started_at'))}{ended})")
    parts: list[RenderableType] = [text, *_flags(rollout)]
    if rollout["waves"]:
        parts.append(_waves_table(rollout["waves"]))
    if rollout["running"]:
        parts.append(_standing_table(hosts))
    return parts


def _standing_table(hosts: list[dict[str, Any]]) -> Table:
    table = _table("where each host stands", "instance", "AZ", "wave", "state", "version")
    for host in hosts:
        wave = "" if host["wave"] is None else str(host["wave"])
        state = host["state"] or "not in this rollout"
        table.add_row(host["instance_id"], host["az"], wave, _count_text(state), host["version"])
    return table


def _switch_line(switch: dict[str, Any]) -> Text:
    if not switch["engaged"]:
        return Text("kill switch: off")
    by = f", by {switch['by']}" if switch.get("by") else ""
    return Text(f"kill switch: ENGAGED ({switch['scope']}): {switch.get('reason', '')}{by}", style="bold red")


def _fleet_window_line(window: dict[str, Any] | None) -> Text:
    if window is None:
        return Text("maintenance window: none configured")
    if window["open_now"]:
        return Text(f"maintenance window: open now until {window['closes_at']}")
    return Text(f"next maintenance window: {window['opens_at']} to {window['closes_at']} ({window['schedule']})")
