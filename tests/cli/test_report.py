"""`updraft report`: a rollout's page and picture, drawn from what the ledger recorded of real rollouts on a
simulated deployment (succeeded, halted, aborted)."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from PIL import Image

from sim.bottlerocket import Fault
from sim.world import World
from tests.cli.conftest import CONFIG, Cli
from updraft.domain.waves import Candidate, plan_waves

SVG = "{http://www.w3.org/2000/svg}"


class Page(HTMLParser):
    """The page's tags, its text, and the inline SVG's source."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()
        start, end = html.index("<svg"), html.index("</svg>") + len("</svg>")
        self.svg = ElementTree.fromstring(html[start:end])

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def ids(self, prefix: str) -> list[str]:
        return [e.get("id", "") for e in self.svg.iter() if e.get("id", "").startswith(prefix)]


def state_runs(record: dict[str, Any]) -> int:
    """How many state spans the host's history makes: runs of one state (notes within it are one span), pending
    (waiting for its wave) not drawn."""
    states = [entry["state"] for entry in record["history"]]
    runs = [state for i, state in enumerate(states) if i == 0 or states[i - 1] != state]
    return sum(1 for state in runs if state != "pending")


def waves(world: World, ids: list[str], group: str) -> list[list[str]]:
    policy = CONFIG.group(group)
    hosts = [Candidate(world.fleet.hosts[i].az, i) for i in ids]
    planned = plan_waves(hosts, policy.canary_size, policy.wave_growth, policy.max_wave_size)
    return [[c.instance_id for c in wave] for wave in planned]


def report(cli: Cli, tmp_path: Path, rollout_id: str) -> Page:
    written = cli.json("report", rollout_id, "--out", str(tmp_path / "report.html"))
    assert written["format"] == "html" and written["path"] == str(tmp_path / "report.html")
    return Page((tmp_path / "report.html").read_text(encoding="utf-8"))


def test_a_succeeded_rollout_s_page(world: World, cli: Cli, tmp_path: Path) -> None:
    ids = world.launch("web", 4)
    execution = world.rollout("web", "1.26.1")
    assert execution.status == "SUCCEEDED"

    page = report(cli, tmp_path, execution.name)

    assert {"html", "head", "body", "svg", "table"} <= set(page.tags)
    assert not {"script", "link", "img"} & set(page.tags)  # self-contained: nothing fetched
    records = world.host_records(execution.name)
    for instance_id in ids:
        assert len(page.ids(f"span-{instance_id}-")) == state_runs(records[instance_id]) == 4  # applying .. updated
    assert len(page.ids("span-")) == sum(state_runs(r) for r in records.values())
    assert page.ids("marker-halt") == [] and page.ids("marker-alarm") == []
    assert {f"marker-wave-{n}" for n in range(len(waves(world, ids, "web")))} <= set(page.ids("marker-wave-"))
    assert "succeeded" in "".join(page.text)


def test_a_halted_rollout_s_page_marks_the_halt_and_says_why_the_host_failed(
    world: World, cli: Cli, tmp_path: Path
) -> None:
    ids = world.launch("web", 6)
    victim = waves(world, ids, "web")[1][0]
    world.inject(victim, Fault.APPLY_FAILS)
    execution = world.rollout("web", "1.26.1")
    assert execution.error == "Updraft.RolloutHalted"

    page = report(cli, tmp_path, execution.name)

    records = world.host_records(execution.name)
    assert len(page.ids("span-")) == sum(state_runs(r) for r in records.values())
    assert page.ids("marker-halt") == ["marker-halt"]
    text = " ".join(page.text)
    assert victim in text and "No space left on device" in text  # the failed host, and why
    assert {r["state"] for r in records.values()} >= {"rolled-back", "skipped"}


def test_an_aborted_rollout_s_page(world: World, cli: Cli, tmp_path: Path) -> None:
    world.launch("web", 6)
    started = cli.json("start", "web", "1.26.1", "--config", str(cli.config))
    world.run_until(lambda: world.rollout_record(started["rollout_id"]).get("current_wave") == 1, "wave 1 starts")
    cli.json("abort", "web", "--reason", "wrong version")
    ended = world.wait(started["execution_arn"])
    assert world.rollout_record(ended.name)["status"] == "aborted"

    page = report(cli, tmp_path, ended.name)

    assert page.ids("marker-halt") == []
    assert "wrong version" in " ".join(page.text)
    records = world.host_records(ended.name)
    assert "skipped" in {r["state"] for r in records.values()}
    assert len(page.ids("span-")) == sum(state_runs(r) for r in records.values())


def test_the_picture_alone_decodes_at_the_size_it_says(world: World, cli: Cli, tmp_path: Path) -> None:
    world.launch("web", 3)
    execution = world.rollout("web", "1.26.1")

    for width in (800, 1600):
        out = tmp_path / f"timeline-{width}.png"
        written = cli.json("report", execution.name, "--png", "--width", str(width), "--out", str(out))
        with Image.open(out) as image:
            image.load()  # decodes every pixel, not only the header
            assert image.format == "PNG"
            assert image.size == (written["width"], written["height"]) and written["width"] == width
    said = cli("report", execution.name, "--png", "--out", str(tmp_path / "t.png"))
    assert said.exit_code == 0 and "1600x" in said.stdout


def test_a_rollout_not_in_the_ledger_or_a_missing_directory_is_named(world: World, cli: Cli, tmp_path: Path) -> None:
    missing = cli("report", "no-such-rollout", "--out", str(tmp_path / "r.html"))
    assert missing.exit_code != 0 and "no rollout 'no-such-rollout'" in missing.stderr

    world.launch("web", 1)
    execution = world.rollout("web", "1.26.1")
    nowhere = cli("report", execution.name, "--out", str(tmp_path / "absent" / "r.html"))
    assert nowhere.exit_code != 0 and "no such directory" in nowhere.stderr
