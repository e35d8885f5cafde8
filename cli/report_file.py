"""Writing a rollout's report: the HTML page, or the timeline picture alone as PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cli.errors import UsageProblem


def write_report(timeline: dict[str, Any], out: Path, as_png: bool, width: int) -> dict[str, Any]:
    """Render and write; what was written (path, format, size) for the command to say."""
    from cli import report  # the plotting library is imported by the command that draws, not by every command

    if not out.parent.is_dir():
        raise UsageProblem(f"{out.parent}: no such directory (--out)")
    written: dict[str, Any] = {"path": str(out), "rollout_id": timeline["rollout"]["rollout_id"]}
    written["hosts"] = len(timeline["hosts"])
    if as_png:
        picture, drawn_width, height = report.png(timeline, width)
        out.write_bytes(picture)
        return written | {"format": "png", "width": drawn_width, "height": height}
    out.write_text(report.html(timeline), encoding="utf-8")
    return written | {"format": "html"}
