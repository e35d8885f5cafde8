"""Release watch resources appear when the config has a `detection` section, and need a real root.json."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from stacks import config_from_cdk_json, synthesize
from stacks.release_watch import TrustedRootError, read_trusted_root
from updraft.config import Detection, UpdraftConfig

ROOT_DOCUMENT = {"signed": {"_type": "root", "version": 1}, "signatures": []}


def sha512(path: Path) -> str:
    return hashlib.sha512(path.read_bytes()).hexdigest()


def config(root_file: Path) -> UpdraftConfig:
    detection = {"trusted_root_file": str(root_file), "trusted_root_sha512": sha512(root_file)}
    return UpdraftConfig.model_validate(
        {"groups": [{"name": "staging", "variant": "aws-ecs-2"}], "detection": detection}
    )


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("trust") / "root.json"
    root.write_text(json.dumps(ROOT_DOCUMENT))
    return synthesize(config(root))


def of_type(template: dict, kind: str) -> dict:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def test_detection_adds_a_scheduled_detector_a_bus_a_trust_bucket_and_the_root(watched: dict) -> None:
    template = watched
    (rule,) = [r for r in of_type(template, "AWS::Events::Rule").values() if "ScheduleExpression" in r["Properties"]]
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 hour)"
    (bus,) = of_type(template, "AWS::Events::EventBus").values()
    assert bus["Properties"]["Name"] == "Updraft-releases"
    # The root is a file asset, not a parameter: an Advanced parameter holds 8 KB, Bottlerocket's root ~13.6 KB.
    assert not of_type(template, "AWS::SSM::Parameter")
    (bucket,) = of_type(template, "AWS::S3::Bucket").values()
    assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    detector = next(
        f
        for f in of_type(template, "AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == "updraft.handlers.detect_release.handler"
    )
    variables = detector["Properties"]["Environment"]["Variables"]
    assert {"EVENT_BUS", "TRUST_BUCKET", "TRUSTED_ROOT_BUCKET"} <= set(variables)
    key = variables["TRUSTED_ROOT_KEY"]
    assert json.loads(template.file_assets[key]) == ROOT_DOCUMENT
    assert variables["TRUSTED_ROOT_SHA512"] == hashlib.sha512(template.file_assets[key]).hexdigest()


def test_the_detector_may_publish_only_on_its_bus(watched: dict) -> None:
    template = watched
    statements = [
        s
        for p in of_type(template, "AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    put_events = [s for s in statements if "events:PutEvents" in s["Action"]]
    (bus,) = of_type(template, "AWS::Events::EventBus")
    (statement,) = [s for s in put_events if s["Resource"] == {"Fn::GetAtt": [bus, "Arn"]}]
    assert "Condition" not in statement
    # Every other publisher sends lifecycle events: to the default bus, with Updraft's source only.
    for other in put_events:
        if other is not statement:
            assert other["Condition"] == {"StringEquals": {"events:source": "updraft"}}
            assert "event-bus/default" in str(other["Resource"])


def test_no_detection_no_release_watch(template: dict) -> None:
    # `template` is cdk.json's, which has no detection section.
    assert config_from_cdk_json().detection is None
    for kind in ("AWS::Events::EventBus", "AWS::S3::Bucket", "AWS::SSM::Parameter"):
        assert not of_type(template, kind), kind
    handlers = {f["Properties"]["Handler"] for f in of_type(template, "AWS::Lambda::Function").values()}
    assert not {h for h in handlers if "detect_release" in h or "on_release_withdrawn" in h}


def test_a_missing_or_wrong_root_stops_synth_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(TrustedRootError, match=r"updraft\.detection\.trusted_root_file: .* does not exist"):
        read_trusted_root(Detection(trusted_root_file=str(tmp_path / "nope.json"), trusted_root_sha512="0" * 128))
    not_root = tmp_path / "targets.json"
    not_root.write_text(json.dumps({"signed": {"_type": "targets"}}))
    with pytest.raises(TrustedRootError, match=r"is not a TUF root\.json"):
        read_trusted_root(Detection(trusted_root_file=str(not_root), trusted_root_sha512=sha512(not_root)))


def test_a_root_other_than_the_one_its_checksum_names_stops_synth(tmp_path: Path) -> None:
    root = tmp_path / "root.json"
    root.write_text(json.dumps(ROOT_DOCUMENT))
    with pytest.raises(
        TrustedRootError, match=r"updraft\.detection\.trusted_root_sha512: .* has SHA-512 [0-9a-f]{128}"
    ):
        read_trusted_root(Detection(trusted_root_file=str(root), trusted_root_sha512="ab" * 64))


def test_synth_without_a_checksum_names_the_field(tmp_path: Path) -> None:
    from updraft.config_file import ConfigError, validate_config

    with pytest.raises(ConfigError, match=r"updraft\.detection\.trusted_root_sha512: Field required"):
        validate_config({"groups": [{"name": "a", "variant": "aws-ecs-2"}], "detection": {}})
