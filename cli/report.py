"""A rollout's timeline as a picture (SVG or PNG) and as one self-contained HTML page, from plain data.

The input is the timeline as JSON gives it (see `spans`). Nothing here reads AWS or the clock: the report's
`now` comes in with the data, so the same timeline always renders to the same bytes. matplotlib is imported
only when a picture is drawn, so the other commands never pay for it.
"""

from __future__ import annotations

import io
import re
import struct
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Past this many hosts a row per host is unreadable: one row per wave shows the share of its hosts in each state.
AGGREGATE_ABOVE = 120
WIDTH_IN = 16.0  # 2**4: width_px / WIDTH_IN as dpi, times WIDTH_IN, gives width_px back exactly
ROW_IN = 0.22  # a host's row
WAVE_ROW_IN = 0.6  # a wave's row in the aggregate picture
TOP_IN, BOTTOM_IN, LEFT_IN, RIGHT_IN = 1.0, 1.05, 2.6, 0.8
MIN_HEIGHT_IN, MAX_HEIGHT_IN = 4.5, 32.0
BINS = 400  # time samples of the aggregate bands
MIN_BAR = 0.003  # of the time axis: a zero-length span (a host skipped as the rollout ended) still shows

# Display categories in legend order: key (used in ids), label, colour. Paul Tol's colour-blind-safe "muted"
# scheme, black for the states that need a person, pale grey for skipped, mid grey for a state not known here.
CATEGORIES: tuple[tuple[str, str, str], ...] = (
    ("draining", "draining", "#DDCC77"),
    ("applying", "applying", "#88CCEE"),
    ("rebooting", "rebooting", "#332288"),
    ("verifying", "verifying", "#44AA99"),
    ("returning", "returning to service", "#999933"),
    ("updated", "updated", "#117733"),
    ("failed", "failed", "#CC6677"),
    ("rolling-back", "rolling back", "#AA4499"),
    ("rolled-back", "rolled back", "#882255"),
    ("attention", "rollback failed / needs attention", "#000000"),
    ("skipped", "skipped", "#DDDDDD"),
    ("other", "other", "#888888"),
)
LABEL = {key: label for key, label, _ in CATEGORIES}
COLOUR = {key: colour for key, _, colour in CATEGORIES}
STATE_CATEGORY = {
    "draining": "draining",
    "applying": "applying",
    "rebooting": "rebooting",
    "verifying": "verifying",
    "checking-health": "verifying",
    "activating": "returning",
    "updated": "updated",
    "failed": "failed",
    "rolling-back": "rolling-back",
    "rolled-back": "rolled-back",
    "rollback-failed": "attention",
    "needs-attention": "attention",
    "skipped": "skipped",
}
UNDRAWN_STATES = frozenset({"pending"})  # waiting for its wave is not work
# The hosts the page lists with their reasons: those that failed, those a halt rolled back (no failure of their own:
# the note says why), and those a person has to look at.
TROUBLE_STATES = frozenset({"failed", "rolling-back", "rolled-back", "rollback-failed", "needs-attention"})

# Events drawn as a vertical line: kind -> (id stem, label, colour, line style, width).
EVENT_MARKS = {
    "alarm": ("alarm", "alarm", "#EE7733", ":", 1.6),
    "halt": ("halt", "halt", "#CC3311", "-", 2.2),
    "abort-requested": ("abort", "abort", "#CC3311", "-.", 2.0),
    "paused": ("paused", "paused", "#0077BB", "--", 1.2),
    "resumed": ("resumed", "resumed", "#0077BB", ":", 1.2),
    "waiting": ("waiting", "waiting", "#555555", "--", 1.0),
}
WAVE_COLOUR, WAVE_FILL, BAKE_COLOUR = "#4477AA", "#4477AA12", "#DDAA33"  # the fill: the line colour, 7 % opaque
TIE_RANK = {"rollout-started": 0, "wave-finished": 1, "rollout-ended": 9}


@dataclass(frozen=True)
class Span:
    """One host in one state, from `start` until `end` (both aware, in UTC)."""

    instance_id: str
    wave: int
    az: str
    state: str
    category: str
    start: datetime
    end: datetime


# -- data ---------------------------------------------------------------------------------------------------
def _time(stamp: str) -> datetime:
    """An ISO-8601 timestamp, in UTC; one without an offset is taken as UTC."""
    moment = datetime.fromisoformat(stamp)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _stamps(timeline: dict[str, Any]) -> Iterator[datetime]:
    for host in timeline.get("hosts") or []:
        for entry in host.get("history") or []:
            yield _time(entry["at"])
    for event in timeline.get("events") or []:
        yield _time(event["at"])


def _start(timeline: dict[str, Any]) -> datetime:
    """When the rollout started: the zero of the time axis."""
    stamp = (timeline.get("rollout") or {}).get("started_at")
    if stamp:
        return _time(stamp)
    return min(_stamps(timeline), default=None) or _time(timeline["now"])


def _end(timeline: dict[str, Any]) -> datetime:
    """Where open spans end: when the rollout finished, else when the report was made."""
    stamp = (timeline.get("rollout") or {}).get("finished_at") or timeline.get("now")
    if stamp:
        return _time(stamp)
    return max(_stamps(timeline), default=None) or _start(timeline)


def category(state: str) -> str:
    """The display category of a host state; a state this module does not know is "other"."""
    return STATE_CATEGORY.get(state, "other")


def _wave(host: dict[str, Any]) -> int:
    wave = host.get("wave")
    return wave if isinstance(wave, int) else 0


def _ordered(hosts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The picture's rows: by wave, then AZ, then instance id."""
    return sorted(hosts, key=lambda h: (_wave(h), str(h.get("az") or ""), str(h["instance_id"])))


def _host_spans(host: dict[str, Any], end: datetime) -> list[Span]:
    """One span per run of a state: the notes a host gained within a state (a drain's progress) are one span."""
    history = sorted(host.get("history") or [], key=lambda entry: _time(entry["at"]))
    runs = [entry for i, entry in enumerate(history) if i == 0 or history[i - 1]["state"] != entry["state"]]
    times = [_time(entry["at"]) for entry in runs]
    result = []
    for i, entry in enumerate(runs):
        if entry["state"] in UNDRAWN_STATES:
            continue
        until = times[i + 1] if i + 1 < len(times) else max(end, times[i])
        result.append(
            Span(
                instance_id=str(host["instance_id"]),
                wave=_wave(host),
                az=str(host.get("az") or ""),
                state=entry["state"],
                category=category(entry["state"]),
                start=times[i],
                end=until,
            )
        )
    return result


def spans(timeline: dict[str, Any]) -> list[Span]:
    """Every host's drawn state spans, in row order then time order.

    A span runs from the history entry where the host entered a state to the one where it left it; the last runs
    to the rollout's `finished_at`, else to the report's `now`. `pending` spans are left out.
    """
    end = _end(timeline)
    return [span for host in _ordered(timeline.get("hosts") or []) for span in _host_spans(host, end)]


def _events(timeline: dict[str, Any]) -> list[dict[str, Any]]:
    """The rollout's events in time order; at one instant the start comes first, a wave ends before the next
    starts, and the end comes last (other ties keep the order given)."""
    return sorted(timeline.get("events") or [], key=lambda event: (_time(event["at"]), TIE_RANK.get(event["kind"], 5)))


def _gid(text: str) -> str:
    """Text made safe for an SVG id."""
    return re.sub(r"[^A-Za-z0-9_.:-]", "_", text)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _clock(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


# -- the picture --------------------------------------------------------------------------------------------
@contextmanager
def _style() -> Iterator[None]:
    """matplotlib settings for a picture that is the same bytes every time, with text kept as text."""
    import matplotlib

    settings = {
        "svg.hashsalt": "updraft-report",
        "svg.fonttype": "none",
        "font.family": "DejaVu Sans",
        "font.size": 8,
        "text.parse_math": False,  # a `$` in a host note is text, not TeX
    }
    with matplotlib.rc_context(settings):
        yield


class _Axis:
    """The time axis: seconds since the start to plotted units (minutes, or hours for a long rollout)."""

    def __init__(self, timeline: dict[str, Any], all_spans: list[Span]) -> None:
        self.zero = _start(timeline)
        last = max([_end(timeline), *(span.end for span in all_spans), *_stamps(timeline)])
        seconds = max((last - self.zero).total_seconds(), 60.0)
        self.unit, self.name = (3600.0, "hours") if seconds > 5 * 3600 else (60.0, "minutes")
        first = min([self.zero, *(span.start for span in all_spans)])
        self.low = min(0.0, self.x(first))
        self.high = seconds / self.unit

    def x(self, moment: datetime) -> float:
        return (moment - self.zero).total_seconds() / self.unit

    def clock(self, value: float, _position: Any = None) -> str:
        return f"{self.zero + timedelta(seconds=value * self.unit):%H:%M}"


def figure(timeline: dict[str, Any]) -> Figure:
    """The rollout as a matplotlib Figure: a row per host (a row per wave past AGGREGATE_ABOVE hosts)."""
    from matplotlib.figure import Figure

    all_spans = spans(timeline)
    hosts = _ordered(timeline.get("hosts") or [])
    aggregate = len(hosts) > AGGREGATE_ABOVE
    waves = sorted({_wave(host) for host in hosts})
    rows = len(waves) if aggregate else len(hosts)
    height = min(max(TOP_IN + BOTTOM_IN + rows * (WAVE_ROW_IN if aggregate else ROW_IN), MIN_HEIGHT_IN), MAX_HEIGHT_IN)
    with _style():
        fig = Figure(figsize=(WIDTH_IN, height))
        fig.subplots_adjust(
            left=LEFT_IN / WIDTH_IN, right=1 - RIGHT_IN / WIDTH_IN, top=1 - TOP_IN / height, bottom=BOTTOM_IN / height
        )
        ax = fig.add_subplot()
        axis = _Axis(timeline, all_spans)
        if aggregate:
            _draw_waves_aggregated(ax, axis, hosts, all_spans, waves)
        else:
            _draw_hosts(ax, axis, hosts, all_spans)
        marks = _draw_rollout_marks(ax, axis, timeline)
        _frame(fig, ax, axis, timeline, rows)
        _legend(fig, all_spans, marks)
    return fig


def _draw_hosts(ax: Axes, axis: _Axis, hosts: list[dict[str, Any]], all_spans: list[Span]) -> None:
    """A bar per span, one Rectangle each with its own id, on a row per host; waves separated and labelled."""
    from matplotlib.transforms import blended_transform_factory

    row = {str(host["instance_id"]): i for i, host in enumerate(hosts)}
    if all_spans:
        least = MIN_BAR * (axis.high - axis.low)
        bars = ax.barh(
            [row[span.instance_id] for span in all_spans],
            [max(axis.x(span.end) - axis.x(span.start), least) for span in all_spans],
            left=[axis.x(span.start) for span in all_spans],
            height=0.7,
            color=[COLOUR[span.category] for span in all_spans],
            edgecolor=["#666666" if span.category == "skipped" else "none" for span in all_spans],
            linewidth=0.6,
            zorder=2,
        )
        index: Counter[str] = Counter()
        for bar, span in zip(bars, all_spans, strict=True):
            bar.set_gid(f"span-{_gid(span.instance_id)}-{index[span.instance_id]}")
            index[span.instance_id] += 1
    ax.set_yticks(range(len(hosts)), [f"{host.get('az') or ''}  {host['instance_id']}" for host in hosts])
    ax.tick_params(axis="y", labelsize=7)
    beside = blended_transform_factory(ax.transAxes, ax.transData)
    for wave in sorted({_wave(host) for host in hosts}):
        members = [i for i, host in enumerate(hosts) if _wave(host) == wave]
        if members[0] > 0:
            ax.axhline(members[0] - 0.5, color="#999999", linewidth=0.6, zorder=1)
        middle = (members[0] + members[-1]) / 2
        ax.text(1.005, middle, f"wave {wave}", transform=beside, va="center", ha="left", fontsize=8)


def _draw_waves_aggregated(
    ax: Axes, axis: _Axis, hosts: list[dict[str, Any]], all_spans: list[Span], waves: list[int]
) -> None:
    """A row per wave: over time, the share of the wave's hosts in each category, stacked within the row."""
    import numpy as np

    edges = np.linspace(axis.low, axis.high, BINS + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    size = Counter(_wave(host) for host in hosts)
    for row, wave in enumerate(waves):
        counts = {key: np.zeros(BINS) for key, _, _ in CATEGORIES}
        for span in all_spans:
            if span.wave == wave:
                first, last = np.searchsorted(centres, [axis.x(span.start), axis.x(span.end)])
                counts[span.category][first:last] += 1
        bottom = np.full(BINS + 1, row - 0.4)
        for key, _, colour in CATEGORIES:
            if not counts[key].any():
                continue
            share = np.append(counts[key], counts[key][-1]) / size[wave] * 0.8
            top = bottom + share
            # A step holds until the next change: only the changes are kept, for the same band in far fewer points.
            keep = np.union1d(np.flatnonzero(np.r_[True, (np.diff(bottom) != 0) | (np.diff(top) != 0)]), [BINS])
            band = ax.fill_between(edges[keep], bottom[keep], top[keep], step="post", color=colour, linewidth=0,
                                   zorder=2)
            band.set_gid(f"band-wave-{wave}-{key}")
            bottom = top
    ax.set_yticks(range(len(waves)), [f"wave {wave} ({size[wave]} hosts)" for wave in waves])


def _draw_rollout_marks(ax: Axes, axis: _Axis, timeline: dict[str, Any]) -> set[str]:
    """Waves, bakes and the rollout's events over the rows; returns the kinds drawn, for the legend."""
    from matplotlib.transforms import blended_transform_factory

    events = _events(timeline)
    end = _end(timeline)
    on_top = blended_transform_factory(ax.transData, ax.transAxes)
    drawn: set[str] = set()
    for wave, start, until in _wave_periods(events, end):
        band = ax.axvspan(axis.x(start), axis.x(until), facecolor=WAVE_FILL, zorder=0.5)
        band.set(edgecolor=WAVE_COLOUR, linestyle="--", linewidth=0.8, gid=f"marker-wave-{wave}")
        ax.text(axis.x(start), 0.005, f" wave {wave}", transform=on_top, va="bottom", ha="left", fontsize=7,
                color=WAVE_COLOUR, zorder=4)
        drawn.add("wave")
    for wave, start, until in _bake_periods(events, end):
        bake = ax.axvspan(axis.x(start), axis.x(until), facecolor=BAKE_COLOUR, alpha=0.22, linewidth=0, zorder=0.6)
        bake.set_gid(f"marker-bake-{wave}")
        drawn.add("bake")
    seen: Counter[str] = Counter()
    for event in events:
        mark = EVENT_MARKS.get(event["kind"])
        if mark is None:
            continue
        stem, label, colour, style, width = mark
        gid = f"marker-{stem}" if stem in {"halt", "abort"} and not seen[stem] else f"marker-{stem}-{seen[stem]}"
        _mark(ax, axis.x(_time(event["at"])), label, gid, colour, style, width, slot=sum(seen.values()))
        seen[stem] += 1
        drawn.add(event["kind"])
    if not (timeline.get("rollout") or {}).get("finished_at") and timeline.get("now"):
        _mark(ax, axis.x(_time(timeline["now"])), "now", "marker-now", "#555555", "-", 1.0, slot=sum(seen.values()))
    return drawn


def _mark(ax: Axes, x: float, label: str, gid: str, colour: str, style: str, width: float, slot: int) -> None:
    """A labelled vertical line across the rows. Labels step down in turn so that marks close in time stay legible."""
    from matplotlib.transforms import blended_transform_factory

    ax.axvline(x, color=colour, linestyle=style, linewidth=width, zorder=3, gid=gid)
    ax.annotate(
        label, (x, 1.0), xycoords=blended_transform_factory(ax.transData, ax.transAxes),
        xytext=(3, -4 - 10 * (slot % 3)), textcoords="offset points", va="top", ha="left", fontsize=7, color=colour,
        bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.85}, zorder=4,
    )


def _wave_periods(events: list[dict[str, Any]], end: datetime) -> list[tuple[int, datetime, datetime]]:
    """(wave, started, finished) per numbered wave; a wave not finished runs to the end."""
    started: dict[int, datetime] = {}
    finished: dict[int, datetime] = {}
    for event in events:
        wave = event.get("wave")
        if isinstance(wave, int) and event["kind"] == "wave-started":
            started.setdefault(wave, _time(event["at"]))
        elif isinstance(wave, int) and event["kind"] == "wave-finished":
            finished.setdefault(wave, _time(event["at"]))
    periods = []
    for wave in sorted(started.keys() | finished.keys()):
        start = started.get(wave, finished.get(wave))
        periods.append((wave, start, finished.get(wave, max(end, start))))
    return periods


def _bake_periods(events: list[dict[str, Any]], end: datetime) -> list[tuple[int, datetime, datetime]]:
    """(wave, bake started, wave finished): a bake cut short ends at the halt, the abort or the rollout's end."""
    stops = ("halt", "abort-requested", "rollout-ended")
    periods = []
    for event in events:
        if event["kind"] != "bake-started" or not isinstance(event.get("wave"), int):
            continue
        start = _time(event["at"])
        later = [other for other in events if _time(other["at"]) >= start and other is not event]
        finish = next((o for o in later if o["kind"] == "wave-finished" and o.get("wave") == event["wave"]), None)
        finish = finish or next((o for o in later if o["kind"] in stops), None)
        periods.append((event["wave"], start, _time(finish["at"]) if finish else max(end, start)))
    return periods


def _frame(fig: Figure, ax: Axes, axis: _Axis, timeline: dict[str, Any], rows: int) -> None:
    """Limits, both time scales (since the start below, the clock above), the title."""
    from matplotlib.ticker import FuncFormatter

    ax.set_xlim(axis.low, axis.high * 1.01)
    ax.set_ylim(max(rows, 1) - 0.5, -0.5)  # first row on top
    ax.set_xlabel(f"{axis.name} since the start ({_clock(axis.zero)})")
    ax.grid(axis="x", color="#E5E5E5", linewidth=0.6, zorder=0)
    ax.set_axisbelow(True)
    top = ax.secondary_xaxis("top")
    top.xaxis.set_major_formatter(FuncFormatter(axis.clock))
    top.set_xlabel("UTC", fontsize=7, labelpad=2)
    if rows == 0:
        ax.set_yticks([])
        ax.text(0.5, 0.5, "no hosts to update", transform=ax.transAxes, ha="center", va="center", color="#777777")
    title, subtitle = _headline(timeline)
    height = fig.get_figheight()
    fig.text(0.5, 1 - 0.12 / height, title, ha="center", va="top", fontsize=12, fontweight="bold")
    fig.text(0.5, 1 - 0.42 / height, subtitle, ha="center", va="top", fontsize=8.5, color="#333333")


def _headline(timeline: dict[str, Any]) -> tuple[str, str]:
    rollout = timeline.get("rollout") or {}
    title = f"{rollout.get('group', '?')} → {rollout.get('target_version', '?')}: {rollout.get('status', '?')}"
    if rollout.get("rollback_of"):
        title += f" (rollback of {rollout['rollback_of']})"
    start, end = _start(timeline), _end(timeline)
    running = "" if rollout.get("finished_at") else " so far"
    parts = [
        str(rollout.get("rollout_id", "")),
        f"started {_clock(start)} by {rollout.get('requested_by', '?')}",
        f"{_duration((end - start).total_seconds())}{running}",
    ]
    reason = rollout.get("halt_reason") or rollout.get("error")
    if reason:
        parts.append(reason if len(reason) <= 100 else reason[:99] + "…")
    return title, " · ".join(part for part in parts if part)


def _legend(fig: Figure, all_spans: list[Span], marks: set[str]) -> None:
    """The categories drawn and the kinds of mark, below the picture."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    present = {span.category for span in all_spans}
    handles: list[Any] = [
        Patch(facecolor=colour, edgecolor="#666666" if key == "skipped" else colour, label=label)
        for key, label, colour in CATEGORIES
        if key in present
    ]
    if "wave" in marks:
        handles.append(Patch(facecolor=WAVE_FILL, edgecolor=WAVE_COLOUR, linestyle="--", label="wave"))
    if "bake" in marks:
        handles.append(Patch(facecolor=BAKE_COLOUR, alpha=0.22, label="bake"))
    for kind, (_, label, colour, style, width) in EVENT_MARKS.items():
        if kind in marks:
            handles.append(Line2D([], [], color=colour, linestyle=style, linewidth=width, label=label))
    if handles:
        # Just below the axis label: its top edge is where the axis's ticks and label end.
        fig.legend(handles=handles, loc="upper center", ncol=min(len(handles), 9), frameon=False, fontsize=7.5,
                   bbox_to_anchor=(0.5, (BOTTOM_IN - 0.5) / fig.get_figheight()))


# -- outputs ------------------------------------------------------------------------------------------------
def svg(timeline: dict[str, Any]) -> str:
    """The picture as an `<svg>` element to put inline in a page (no XML declaration, no DOCTYPE)."""
    fig = figure(timeline)
    buffer = io.StringIO()
    with _style():
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None, "Type": None, "Format": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :].strip() + "\n"


def png(timeline: dict[str, Any], width_px: int = 1600) -> tuple[bytes, int, int]:
    """The picture as PNG bytes `width_px` wide, with the width and height a decoder reads from them."""
    if width_px < 100:
        raise ValueError(f"a picture {width_px} pixels wide is too narrow to read: 100 at least")
    fig = figure(timeline)
    buffer = io.BytesIO()
    with _style():
        # WIDTH_IN is 16 inches: dividing by it is exact, so the canvas is width_px wide to the pixel.
        fig.savefig(buffer, format="png", dpi=width_px / WIDTH_IN, metadata={"Software": None})
    data = buffer.getvalue()
    width, height = struct.unpack(">II", data[16:24])  # IHDR, the chunk right after the signature
    return data, width, height


# -- the page -----------------------------------------------------------------------------------------------
CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
table.summary th { width: 11rem; }
figure { margin: 1rem 0; overflow-x: auto; } figure svg { max-width: 100%; height: auto; }
.bad { color: #b00020; font-weight: bold; } .good { color: #117733; font-weight: bold; } .muted { color: #777; }
"""
GOOD_STATUSES = frozenset({"succeeded", "nothing-to-do"})
BAD_STATUSES = frozenset({"halted", "failed", "aborted", "timed-out", "halted-rolling-back", "aborting", "halting"})


def _cells(tag: str, values: list[Any]) -> str:
    return "".join(f"<{tag}>{escape(str(value))}</{tag}>" for value in values)


def _table(head: list[str], rows: list[list[Any]], empty: str, css: str = "") -> str:
    if not rows:
        return f'<p class="muted">{escape(empty)}</p>'
    attribute = f' class="{css}"' if css else ""
    body = "".join(f"<tr>{_cells('td', row)}</tr>" for row in rows)
    return f"<table{attribute}><thead><tr>{_cells('th', head)}</tr></thead><tbody>{body}</tbody></table>"


def _summary(timeline: dict[str, Any]) -> str:
    rollout = timeline.get("rollout") or {}
    start, end = _start(timeline), _end(timeline)
    status = str(rollout.get("status", "?"))
    tone = "good" if status in GOOD_STATUSES else "bad" if status in BAD_STATUSES else ""
    counts = rollout.get("summary") or Counter(str(host.get("state")) for host in timeline.get("hosts") or [])
    finished = _clock(_time(rollout["finished_at"])) if rollout.get("finished_at") else f"not yet (as of {_clock(end)})"
    rows: list[tuple[str, str]] = [
        ("rollout", str(rollout.get("rollout_id", ""))),
        ("group", str(rollout.get("group", ""))),
        ("target version", str(rollout.get("target_version", ""))),
    ]
    if rollout.get("rollback_of"):
        rows.append(("rollback of", str(rollout["rollback_of"])))
    rows += [
        ("requested by", str(rollout.get("requested_by", ""))),
        ("started", _clock(start)),
        ("finished", finished),
        ("duration", _duration((end - start).total_seconds())),
        ("waves", ", ".join(str(size) for size in rollout.get("wave_sizes") or []) or "none"),
        ("hosts", ", ".join(f"{state} {count}" for state, count in sorted(counts.items())) or "none"),
        ("skipped at planning", str(len(timeline.get("skipped") or []))),
    ]
    for key, name in (("halt_reason", "halt reason"), ("error", "error")):
        if rollout.get(key):
            rows.append((name, str(rollout[key])))
    body = "".join(f"<tr><th>{escape(name)}</th><td>{escape(value)}</td></tr>" for name, value in rows)
    outcome = f'<p>outcome: <span class="{tone}">{escape(status)}</span></p>'
    return f'{outcome}<table class="summary"><tbody>{body}</tbody></table>'


def _trouble(timeline: dict[str, Any]) -> str:
    """The hosts that failed, were rolled back, or that a person has to look at, and why."""
    rows = [
        [host["instance_id"], host.get("az", ""), host.get("wave", ""), host.get("state", ""),
         host.get("failure") or "", host.get("note") or ""]
        for host in _ordered(timeline.get("hosts") or [])
        if host.get("failure") or host.get("state") in TROUBLE_STATES
    ]
    return _table(["instance", "AZ", "wave", "state", "failure", "note"], rows, "No host failed or was rolled back.")


def _event_rows(timeline: dict[str, Any]) -> str:
    zero = _start(timeline)
    rows = [
        [_clock(_time(event["at"])), "+" + _duration((_time(event["at"]) - zero).total_seconds()), event["kind"],
         "" if event.get("wave") is None else event["wave"], event.get("detail") or ""]
        for event in _events(timeline)
    ]
    return _table(["at", "since the start", "event", "wave", "detail"], rows, "No events.")


def _skipped(timeline: dict[str, Any]) -> str:
    rows = [[host["instance_id"], host.get("az", ""), host.get("note") or ""] for host in timeline.get("skipped") or []]
    return _table(["instance", "AZ", "why"], rows, "No host was left out at planning.")


def html(timeline: dict[str, Any]) -> str:
    """One self-contained HTML5 page: summary, the picture inline as SVG, failures, events, skipped hosts."""
    title, _ = _headline(timeline)
    rollout_id = str((timeline.get("rollout") or {}).get("rollout_id", ""))
    sections = [
        f"<h1>{escape(title)}</h1>",
        _summary(timeline),
        "<h2>Timeline</h2>",
        f"<figure>{svg(timeline)}</figure>",
        "<h2>Failed and rolled-back hosts</h2>",
        _trouble(timeline),
        "<h2>Events</h2>",
        _event_rows(timeline),
        "<h2>Skipped at planning</h2>",
        _skipped(timeline),
    ]
    head = (
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(f'Updraft rollout {rollout_id}: {title}')}</title><style>{CSS}</style>"
    )
    body = "\n".join(sections)
    return f'<!DOCTYPE html>\n<html lang="en">\n<head>{head}</head>\n<body>\n{body}\n</body>\n</html>\n'
