"""The rollout report: state spans, the timeline picture (SVG, PNG) and the self-contained HTML page."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from PIL import Image

from cli import report
from cli.report import Span

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
UPDATE = ("draining", "applying", "rebooting", "verifying", "checking-health", "activating", "updated")
UPDATE_MINUTES = (0, 1, 3, 5, 6, 7, 8)  # when each step of UPDATE begins, minutes after the wave starts


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def history(*steps: tuple[float, str], note: str = "") -> list[dict[str, Any]]:
    """History entries from (minutes since T0, state) pairs; every host is planned (pending) at T0."""
    return [{"at": at(0), "state": "pending", "note": "planned"}] + [
        {"at": at(minutes), "state": state, "note": note} for minutes, state in steps
    ]


def updated_from(start: float) -> list[tuple[float, str]]:
    return [(start + offset, state) for offset, state in zip(UPDATE_MINUTES, UPDATE, strict=True)]


def host(instance_id: str, az: str, wave: int, steps: list[tuple[float, str]], failure: str | None = None,
         note: str = "") -> dict[str, Any]:
    return {
        "instance_id": instance_id, "az": az, "wave": wave, "state": steps[-1][1] if steps else "pending",
        "previous_version": "1.26.0", "target_version": "1.26.1", "failure": failure, "note": note,
        "history": history(*steps),
    }


def event(kind: str, minutes: float, wave: int | None = None, detail: str = "") -> dict[str, Any]:
    return {"kind": kind, "at": at(minutes), "wave": wave, "detail": detail}


def rollout(status: str, finished: float | None, wave_sizes: list[int], **extra: Any) -> dict[str, Any]:
    return {
        "rollout_id": f"ro-{status}", "group": "web-fleet", "target_version": "1.26.1", "rollback_of": None,
        "status": status, "requested_by": "alice", "started_at": at(0),
        "finished_at": None if finished is None else at(finished), "summary": None, "halt_reason": None,
        "error": None, "wave_sizes": wave_sizes, **extra,
    }


def succeeded() -> dict[str, Any]:
    """3 waves of 1, 3 and 4 hosts; each wave updates in 8 minutes, then bakes 10."""
    zones = ("us-east-1a", "us-east-1b", "us-east-1c")
    hosts, events = [], [event("rollout-started", 0)]
    names = iter(f"i-{n:04d}" for n in range(1, 9))
    for wave, (size, start) in enumerate(zip((1, 3, 4), (0, 18, 36), strict=True), start=1):
        hosts += [host(next(names), zones[i % 3], wave, updated_from(start)) for i in range(size)]
        events += [event("wave-started", start, wave), event("bake-started", start + 8, wave),
                   event("wave-finished", start + 18, wave)]
    events.append(event("rollout-ended", 54, detail="succeeded"))
    return {"rollout": rollout("succeeded", 54, [1, 3, 4], summary={"updated": 8}), "hosts": hosts,
            "skipped": [], "events": events[::-1], "now": at(60)}  # events in no particular order


def halted() -> dict[str, Any]:
    """An alarm during wave 1 and a failed host halt the rollout: wave 1 rolls back, waves 2 and 3 are skipped."""
    hosts = [
        host("i-good", "us-east-1a", 1, [*updated_from(0), (11, "rolling-back"), (15, "rolled-back")]),
        host("i-bad", "us-east-1b", 1,
             [(0, "draining"), (1, "applying"), (3, "rebooting"), (5, "verifying"), (6, "checking-health"),
              (6.5, "failed"), (7, "rolling-back"), (10, "rolled-back")],
             failure="health check failed: ecs agent not connected"),
        *(host(f"i-late{n}", "us-east-1a" if n % 2 else "us-east-1b", 2 + n // 3, [(7, "skipped")],
               note="halted before its wave") for n in range(6)),
    ]
    events = [
        event("rollout-started", 0), event("wave-started", 0, 1),
        event("alarm", 6, 1, "web-5xx ALARM"), event("halt", 7, 1, "alarm web-5xx; i-bad failed"),
        event("rollout-ended", 16, detail="halted"),
    ]
    summary = {"rolled-back": 2, "skipped": 6}
    return {"rollout": rollout("halted", 16, [2, 3, 3], summary=summary, halt_reason="alarm web-5xx fired in wave 1"),
            "hosts": hosts, "skipped": [{"instance_id": "i-old", "az": "us-east-1c", "note": "not Bottlerocket"}],
            "events": events, "now": at(20)}


def aborted() -> dict[str, Any]:
    """Wave 1 updates; during its bake someone pauses, resumes, then aborts: wave 2 is skipped."""
    hosts = [
        host("i-a1", "us-east-1a", 1, updated_from(0)),
        host("i-a2", "us-east-1b", 1, updated_from(0)),
        host("i-b1", "us-east-1a", 2, [(10, "skipped")], note="aborted"),
        host("i-b2", "us-east-1b", 2, [(10, "skipped")], note="aborted"),
    ]
    events = [
        event("rollout-started", 0), event("wave-started", 0, 1), event("bake-started", 8, 1),
        event("paused", 9, detail="bob"), event("resumed", 9.5, detail="bob"),
        event("abort-requested", 10, detail="bob: wrong version"), event("rollout-ended", 10.5, detail="aborted"),
    ]
    return {"rollout": rollout("aborted", 10.5, [2, 2], summary={"updated": 2, "skipped": 2}), "hosts": hosts,
            "skipped": [], "events": events, "now": at(11)}


def nothing_to_do() -> dict[str, Any]:
    return {"rollout": rollout("nothing-to-do", 0.2, [], summary={}), "hosts": [],
            "skipped": [{"instance_id": "i-new", "az": "us-east-1a", "note": "already on 1.26.1"}],
            "events": [event("rollout-started", 0), event("rollout-ended", 0.2, detail="nothing-to-do")],
            "now": at(1)}


def large(count: int = 1000) -> dict[str, Any]:
    """A fleet of `count` hosts in 5 waves, a few failing and rolling back."""
    sizes = [count // 5] * 5
    hosts, events = [], []
    for wave, size in enumerate(sizes, start=1):
        start = (wave - 1) * 20
        for n in range(size):
            stagger = (n % 10) * 0.3
            steps = updated_from(start + stagger)
            if n % 50 == 7:
                steps = [*steps[:5], (start + stagger + 6.5, "failed"), (start + stagger + 7, "rolling-back"),
                         (start + stagger + 10, "rolled-back")]
            hosts.append(host(f"i-{wave}{n:05d}", f"us-east-1{'abc'[n % 3]}", wave, steps))
        events += [event("wave-started", start, wave), event("bake-started", start + 12, wave),
                   event("wave-finished", start + 20, wave)]
    return {"rollout": rollout("succeeded", 100, sizes), "hosts": hosts, "skipped": [], "events": events,
            "now": at(100)}


TIMELINES = {"succeeded": succeeded, "halted": halted, "aborted": aborted, "nothing-to-do": nothing_to_do}


class Page(HTMLParser):
    """Tags, attributes, and the text of each table cell, of an HTML page; cells also by the section (h2) holding
    them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str, str | None]] = []
        self.cells: list[str] = []
        self.sections: dict[str, list[str]] = {"": []}
        self._section = ""
        self._text: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(tag, name, value) for name, value in attrs]
        if tag in {"td", "h2"}:
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if self._text is None:
            return
        text, self._text = "".join(self._text), None
        if tag == "td":
            self.cells.append(text)
            self.sections[self._section].append(text)
        elif tag == "h2":
            self._section = text
            self.sections[text] = []

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


def parse_page(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


def svg_ids(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return [element.get("id") for element in root.iter() if element.get("id")]


@pytest.fixture(scope="module")
def svgs() -> dict[str, str]:
    return {name: report.svg(make()) for name, make in TIMELINES.items()}


# -- spans --------------------------------------------------------------------------------------------------
def test_a_host_has_a_span_per_state_change_and_none_for_pending() -> None:
    def span(state: str, category: str, start: float, end: float) -> Span:
        return Span("i-bad", 1, "us-east-1b", state, category, T0 + timedelta(minutes=start),
                    T0 + timedelta(minutes=end))

    assert [s for s in report.spans(halted()) if s.instance_id == "i-bad"] == [
        span("draining", "draining", 0, 1),
        span("applying", "applying", 1, 3),
        span("rebooting", "rebooting", 3, 5),
        span("verifying", "verifying", 5, 6),
        span("checking-health", "verifying", 6, 6.5),
        span("failed", "failed", 6.5, 7),
        span("rolling-back", "rolling-back", 7, 10),
        span("rolled-back", "rolled-back", 10, 16),  # the last runs to the rollout's finish
    ]


def test_the_last_span_of_a_running_rollout_runs_to_now() -> None:
    timeline = succeeded()
    timeline["rollout"].update(status="rolling-out", finished_at=None)
    last = [s for s in report.spans(timeline) if s.instance_id == "i-0001"][-1]
    assert (last.state, last.start, last.end) == ("updated", T0 + timedelta(minutes=8), T0 + timedelta(minutes=60))


def test_spans_come_in_row_order_wave_then_az_then_instance() -> None:
    timeline = succeeded()
    timeline["hosts"].reverse()
    order = list(dict.fromkeys((s.wave, s.az, s.instance_id) for s in report.spans(timeline)))
    assert order == sorted(order)
    assert len(order) == 8


def test_states_map_to_display_categories() -> None:
    assert report.category("checking-health") == report.category("verifying") == "verifying"
    assert report.category("activating") == "returning"
    assert report.category("rollback-failed") == report.category("needs-attention") == "attention"
    assert report.category("teleporting") == "other"
    assert report.COLOUR["other"] == "#888888"
    assert {category for category, _, _ in report.CATEGORIES} >= set(report.STATE_CATEGORY.values())


def test_timestamps_with_other_offsets_are_the_same_instants() -> None:
    timeline = halted()
    bad = next(h for h in timeline["hosts"] if h["instance_id"] == "i-bad")
    bad["history"][1]["at"] = "2026-12-01T11:00:00+01:00"  # 10:00 UTC, as before
    first = next(s for s in report.spans(timeline) if s.instance_id == "i-bad")
    assert first.start == T0


# -- the picture --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", TIMELINES)
def test_the_svg_has_exactly_one_element_per_span(svgs: dict[str, str], name: str) -> None:
    ids = [i for i in svg_ids(svgs[name]) if i.startswith("span-")]
    expected = []
    for instance in dict.fromkeys(s.instance_id for s in report.spans(TIMELINES[name]())):
        count = sum(1 for s in report.spans(TIMELINES[name]()) if s.instance_id == instance)
        expected += [f"span-{instance}-{n}" for n in range(count)]
    assert sorted(ids) == sorted(expected)
    assert len(ids) == len(report.spans(TIMELINES[name]()))


def test_the_halted_picture_marks_the_alarm_and_the_halt(svgs: dict[str, str]) -> None:
    ids = svg_ids(svgs["halted"])
    assert "marker-halt" in ids
    assert "marker-alarm-0" in ids
    assert "marker-wave-1" in ids


def test_the_succeeded_picture_has_waves_and_bakes_and_no_alarm_or_halt(svgs: dict[str, str]) -> None:
    ids = svg_ids(svgs["succeeded"])
    assert {"marker-wave-1", "marker-wave-2", "marker-wave-3", "marker-bake-1", "marker-bake-2",
            "marker-bake-3"} <= set(ids)
    assert not [i for i in ids if i.startswith(("marker-halt", "marker-alarm", "marker-abort"))]


def test_the_aborted_picture_marks_the_pause_the_resume_and_the_abort(svgs: dict[str, str]) -> None:
    ids = set(svg_ids(svgs["aborted"]))
    assert {"marker-abort", "marker-paused-0", "marker-resumed-0", "marker-wave-1", "marker-bake-1"} <= ids
    assert "marker-halt" not in ids


def test_the_svg_carries_the_title_and_no_declaration(svgs: dict[str, str]) -> None:
    assert svgs["halted"].startswith("<svg")
    assert "<?xml" not in svgs["halted"] and "DOCTYPE" not in svgs["halted"]
    assert "web-fleet → 1.26.1: halted" in svgs["halted"]


def test_the_same_timeline_gives_the_same_svg_and_png() -> None:
    assert report.svg(halted()) == report.svg(halted())
    assert report.png(halted(), 800) == report.png(halted(), 800)


@pytest.mark.parametrize("width", [1600, 1234])
def test_the_png_decodes_at_the_stated_size(width: int) -> None:
    data, w, h = report.png(succeeded(), width_px=width)
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    assert image.size == (w, h)
    assert w == width and h > 0


def test_a_thousand_hosts_are_drawn_as_a_band_per_wave_and_category() -> None:
    timeline = large()
    ids = svg_ids(report.svg(timeline))
    assert not [i for i in ids if i.startswith("span-")]
    bands = {i for i in ids if i.startswith("band-")}
    assert {f"band-wave-{wave}-updated" for wave in range(1, 6)} <= bands
    assert {f"band-wave-{wave}-rolled-back" for wave in range(1, 6)} <= bands
    assert "band-wave-1-attention" not in bands  # only the categories a wave had
    assert "marker-wave-5" in ids
    _, width, height = report.png(timeline, 1000)
    assert width == 1000 and height < 1000  # 5 rows, not 1,000


def test_the_picture_switches_to_waves_past_the_threshold() -> None:
    at_threshold = svg_ids(report.svg(large(report.AGGREGATE_ABOVE)))
    past_it = svg_ids(report.svg(large(report.AGGREGATE_ABOVE + 5)))
    assert any(i.startswith("span-") for i in at_threshold)
    assert any(i.startswith("band-") for i in past_it) and not any(i.startswith("span-") for i in past_it)


def test_the_height_grows_with_the_rows_and_is_bounded() -> None:
    _, _, small = report.png(aborted(), 800)
    _, _, big = report.png(large(report.AGGREGATE_ABOVE), 800)
    assert small < big <= report.MAX_HEIGHT_IN * 800 / report.WIDTH_IN


def test_a_running_rollout_with_an_unknown_state_and_events_without_a_wave_renders() -> None:
    timeline = succeeded()
    timeline["rollout"].update(status="rolling-out", finished_at=None, summary=None)
    timeline["hosts"][-1]["history"].append({"at": at(45), "state": "teleporting", "note": ""})
    timeline["events"] = [e for e in timeline["events"] if e["kind"] != "rollout-ended"]
    timeline["events"] += [event("waiting", 40, None, "maintenance window"), event("wave-started", 41, None)]
    ids = svg_ids(report.svg(timeline))
    last = [s for s in report.spans(timeline) if s.instance_id == "i-0008"][-1]
    assert last.category == "other" and last.end == T0 + timedelta(minutes=60)
    assert "marker-now" in ids and "marker-waiting-0" in ids
    assert "not yet" in report.html(timeline)


def test_nothing_to_do_renders() -> None:
    timeline = nothing_to_do()
    assert report.spans(timeline) == []
    assert "no hosts to update" in report.svg(timeline)
    page = parse_page(report.html(timeline))
    assert "svg" in page.tags
    assert "i-new" in page.cells
    _, width, _ = report.png(timeline, 640)
    assert width == 640


def test_matplotlib_is_imported_only_to_draw() -> None:
    code = "import sys, cli.report; assert 'matplotlib' not in sys.modules and 'numpy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=report.__file__.rsplit("/cli/", 1)[0])


# -- the page -----------------------------------------------------------------------------------------------
def test_the_halted_page_parses_and_says_what_failed_and_why() -> None:
    text = report.html(halted())
    page = parse_page(text)
    assert text.startswith("<!DOCTYPE html>")
    assert page.tags.count("svg") == 1
    failed = page.sections["Failed and rolled-back hosts"]
    assert "i-bad" in failed
    assert "health check failed: ecs agent not connected" in failed
    assert "i-good" in failed and "rolled-back" in failed  # rolled back by the halt: listed with its note
    assert "alarm web-5xx fired in wave 1" in page.sections[""]  # the halt reason, in the summary
    assert {"i-old", "not Bottlerocket"} <= set(page.sections["Skipped at planning"])
    assert "alarm web-5xx; i-bad failed" in page.sections["Events"]
    inline = text[text.index("<svg") : text.index("</svg>") + len("</svg>")]
    assert "marker-halt" in svg_ids(inline)


@pytest.mark.parametrize("name", TIMELINES)
def test_every_page_is_self_contained(name: str) -> None:
    page = parse_page(report.html(TIMELINES[name]()))
    assert not {"script", "link", "img", "iframe", "object", "embed"} & set(page.tags)
    references = [(tag, attr, value) for tag, attr, value in page.attributes if attr in {"src", "href", "xlink:href"}]
    assert all(value and value.startswith("#") for _, _, value in references), references
    assert "@import" not in report.CSS and "url(" not in report.CSS


def test_the_events_are_listed_in_time_order() -> None:
    cells = parse_page(report.html(succeeded())).sections["Events"]
    kinds = [cell for cell in cells if cell in {"rollout-started", "wave-started", "bake-started", "wave-finished",
                                                "rollout-ended"}]
    assert kinds[0] == "rollout-started" and kinds[-1] == "rollout-ended"
    assert kinds[1:4] == ["wave-started", "bake-started", "wave-finished"]
    stamps = [cell for cell in cells if re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", cell)]
    assert stamps == sorted(stamps)


def test_all_text_is_escaped() -> None:
    timeline = halted()
    timeline["hosts"][1]["failure"] = "<script>alert(1)</script> & $x$"
    timeline["rollout"]["requested_by"] = "<b>mallory</b>"
    text = report.html(timeline)
    assert "<script>" not in text and "<b>mallory" not in text
    page = parse_page(text)
    assert "<script>alert(1)</script> & $x$" in page.cells
    assert "<b>mallory</b>" in page.cells


def test_a_picture_too_narrow_to_read_is_refused() -> None:
    with pytest.raises(ValueError, match="too narrow"):
        report.png(succeeded(), width_px=50)
