"""The demo judges its own run in words: which check did not hold, never a traceback."""

from __future__ import annotations

from rich.console import Console

from sim import demo


class Recorded:
    """What the ledger holds of one rollout's hosts (World.host_records' shape)."""

    def __init__(self, records: dict[str, dict]) -> None:
        self.records = records

    def host_records(self, rollout_id: str) -> dict[str, dict]:
        return self.records


def rendered(renderable: object) -> str:
    console = Console(width=200, record=True)
    console.print(renderable)
    return console.export_text()


def test_a_host_that_needs_attention_without_a_failure_shows_its_note() -> None:
    records = {
        "i-1": {
            "instance_id": "i-1",
            "wave": 1,
            "state": "needs-attention",
            "note": "the rollout failed while draining",
        },
        "i-2": {"instance_id": "i-2", "wave": 1, "state": "rolled-back", "failure": "apply failed"},
        "i-3": {"instance_id": "i-3", "wave": 2, "state": "updated"},
    }

    text = rendered(demo.attention_table(Recorded(records), "r-1"))

    assert "the rollout failed while draining" in text and "apply failed" in text
    assert "i-3" not in text


def test_the_verdict_names_every_check_that_did_not_hold() -> None:
    console = Console(width=200, record=True)
    outcome = {"virtual_seconds": 600.0, "executions": []}

    assert demo.verdict(console, ["no host runs 1.27.0", "every rollout of 1.26.1 succeeded"], outcome) == 1
    assert demo.verdict(console, [], outcome) == 0

    text = console.export_text()
    assert "- no host runs 1.27.0" in text and "- every rollout of 1.26.1 succeeded" in text
    assert "every check of the demo held" in text
    assert text.count("outcome record ") == 2 and "(10.0 simulated minutes)" in text
