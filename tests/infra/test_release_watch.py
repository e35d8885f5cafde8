"""Release watch resources appear when the config has a `detection` section, and need a real root.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stacks import config_from_cdk_json, synthesize
from stacks.release_watch import TrustedRootError, read_trusted_root
from updraft.config import Detection, UpdraftConfig

ROOT_DOCUMENT = {"signed": {"_type": "root", "version": 1}, "signatures": []}


def config(root_file: Path) -> UpdraftConfig:
    return UpdraftConfig.model_validate(
        {"groups": [{"name": "staging", "variant": "aws-ecs-2"}], "detection": {"trusted_root_file": str(root_file)}}
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
    (parameter,) = of_type(template, "AWS::SSM::Parameter").values()
    assert json.loads(parameter["Properties"]["Value"]) == ROOT_DOCUMENT
    (bucket,) = of_type(template, "AWS::S3::Bucket").values()
    assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    detector = next(
        f
        for f in of_type(template, "AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == "updraft.handlers.detect_release.handler"
    )
    assert {"EVENT_BUS", "TRUST_BUCKET", "TRUSTED_ROOT_PARAMETER"} <= set(
        detector["Properties"]["Environment"]["Variables"]
    )


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
        read_trusted_root(Detection(trusted_root_file=str(tmp_path / "nope.json")))
    not_root = tmp_path / "targets.json"
    not_root.write_text(json.dumps({"signed": {"_type": "targets"}}))
    with pytest.raises(TrustedRootError, match=r"is not a TUF root\.json"):
        read_trusted_root(Detection(trusted_root_file=str(not_root)))
