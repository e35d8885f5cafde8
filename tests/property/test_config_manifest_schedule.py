"""The config, the release manifest and the detector's schedule event: parsed or refused by name."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st
from property_strategies import PATHOLOGICAL_DEPTHS, any_text, documents, only_named_errors, pathological, texts

from updraft.config import MaintenanceWindow, UpdraftConfig
from updraft.handlers.detect_release import ScheduledEvent
from updraft.release import parse_manifest
from updraft.release.manifest import Manifest

CDK_JSON = Path(__file__).resolve().parents[2] / "cdk.json"
CONFIG = {
    **json.loads(CDK_JSON.read_text())["context"]["updraft"],
    "detection": {"schedule": "rate(1 hour)", "trusted_root_file": "trust/root.json", "trusted_root_sha512": "0" * 128},
    "notify_emails": ["ops@example.com"],
}
CONFIG["groups"] = [
    *CONFIG["groups"],
    {
        "name": "web",
        "variant": "aws-ecs-2",
        "ecs": {"cluster": "blue", "drain_timeout_seconds": 600},
        "health_check": {"command": "curl -sf localhost", "timeout_seconds": 30},
        "maintenance_window": {"schedule": "0 2 * * 1-5", "duration_minutes": 240, "timezone": "Europe/Paris"},
        "deny_versions": ["1.25.0"],
    },
]
MANIFEST = {
    "updates": [
        {
            "variant": "aws-k8s-1.31",
            "arch": "x86_64",
            "version": "1.26.1",
            "max_version": "1.26.1",
            # As updog reads them: any u32 key (not only seeds below 2048), chrono's relaxed RFC 3339.
            "waves": {
                "0": "2024-10-25T18:00:00Z",
                "20": "2024-10-25T21:00:00Z",
                "1843": "2024-10-31T17:00:00Z",
                "4000000000": "2024-11-2 17:00:00.5+01:00",
            },
            "images": {"boot": "a-boot.ext4.lz4", "root": "a-root.ext4.lz4", "hash": "a-root.verity.lz4"},
        }
    ],
    "migrations": {"(1.25.0, 1.26.0)": [], "(1.26.0, 1.26.1)": ["migrate_v1.26.1_x"]},
}
SCHEDULED = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-01-05T09:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/Updraft-detect"],
    "detail": {},
}


def test_the_valid_examples_parse() -> None:
    assert len(UpdraftConfig.model_validate(CONFIG).groups) == 3
    assert parse_manifest(json.dumps(MANIFEST).encode()).updates
    assert ScheduledEvent.model_validate(SCHEDULED).fired_at() == datetime.fromisoformat("2026-01-05T09:00:00+00:00")


@given(documents(CONFIG))
def test_any_config_validates_or_is_refused_by_name(data: object) -> None:
    config = only_named_errors(UpdraftConfig.model_validate, data)
    assert config is None or isinstance(config, UpdraftConfig)


@given(texts(CONFIG))
def test_any_config_environment_text_validates_or_is_refused_by_name(text: str) -> None:
    config = only_named_errors(UpdraftConfig.model_validate_json, text)
    assert config is None or isinstance(config, UpdraftConfig)


@given(st.one_of(texts(MANIFEST).map(lambda text: text.encode("utf-8", "surrogatepass")), st.binary(max_size=60)))
def test_any_manifest_bytes_parse_or_are_malformed(data: bytes) -> None:
    manifest = only_named_errors(parse_manifest, data)
    assert manifest is None or isinstance(manifest, Manifest)


@given(st.one_of(documents(SCHEDULED), st.dictionaries(st.just("time"), st.one_of(any_text, st.integers()))))
def test_any_schedule_event_gives_a_time_or_is_refused_by_name(data: object) -> None:
    event = only_named_errors(ScheduledEvent.model_validate, data)
    if event is not None:
        assert event.fired_at().tzinfo is not None


def test_nesting_deeper_than_the_recursion_limit_is_refused_by_name() -> None:
    for data in pathological(CONFIG):
        only_named_errors(UpdraftConfig.model_validate, data)
    for data in pathological(SCHEDULED):
        only_named_errors(ScheduledEvent.model_validate, data)
    for depth in PATHOLOGICAL_DEPTHS:
        deep = "[" * depth + "]" * depth
        only_named_errors(parse_manifest, deep.encode())
        for key in MANIFEST:
            text = json.dumps({**MANIFEST, key: "DEEP"}).replace('"DEEP"', deep)
            only_named_errors(parse_manifest, text.encode())


# A time zone is looked up as a file under the zoneinfo tree: directories and over-long names are files too.
zone_names = st.one_of(
    any_text,
    st.sampled_from(["America", "Europe/", "Etc", "..", "/", "UTC\x00", "Europe/../UTC", "zoneinfo"]),
    st.integers(256, 4096).map(lambda n: "a" * n),
)


@given(zone_names, st.one_of(any_text, st.sampled_from(["0 2 * * 1-5", "*/0 * * * *", "0 0 L * *", "0 2 31 2 *"])))
@example("America", "0 2 * * *")
@example("a" * 300, "0 2 * * *")
def test_any_maintenance_window_validates_or_is_refused_by_name(zone: str, schedule: str) -> None:
    window = {"schedule": schedule, "duration_minutes": 240, "timezone": zone}
    only_named_errors(MaintenanceWindow.model_validate, window)
