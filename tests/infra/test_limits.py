"""Every value of the template within its service's limit, checked at synth: moto checks none of these."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from stacks import synthesize
from stacks.limits import (
    LAMBDA_ENVIRONMENT,
    SSM_DOCUMENT,
    LimitExceeded,
    check_template,
    deployed_length,
)
from updraft.config import UpdraftConfig

BOTTLEROCKET_SHAPED_ROOT = Path(__file__).resolve().parents[1] / "release" / "data" / "bottlerocket-shaped-root.json"


def test_deploy_time_values_are_counted_generously() -> None:
    assert deployed_length("abc") == 3
    assert deployed_length({"Ref": "Table"}) == 128
    assert deployed_length({"Fn::GetAtt": ["Table", "Arn"]}) == 256
    assert deployed_length({"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":x"]]}) == 4 + 128 + 2
    assert deployed_length({"Fn::Sub": "bucket-${AWS::AccountId}"}) == 7 + 128


def test_a_stack_with_a_root_of_bottlerocket_size_stays_within_every_limit(tmp_path: Path) -> None:
    root = BOTTLEROCKET_SHAPED_ROOT.read_bytes()
    assert 13_000 < len(root) < 14_500  # the size of Bottlerocket's published root
    (tmp_path / "root.json").write_bytes(root)
    detection = {
        "trusted_root_file": str(tmp_path / "root.json"),
        "trusted_root_sha512": hashlib.sha512(root).hexdigest(),
    }
    template = synthesize(
        UpdraftConfig.model_validate({"groups": [{"name": "web", "variant": "aws-ecs-2"}], "detection": detection})
    )
    check_template(template)  # what synthesize already did: no value over its limit
    assert not [r for r in template["Resources"].values() if r["Type"] == "AWS::SSM::Parameter"]
    assert root in template.file_assets.values()


def test_the_same_root_in_an_advanced_parameter_would_be_refused() -> None:
    root = BOTTLEROCKET_SHAPED_ROOT.read_text()
    template = {
        "Resources": {"Root": {"Type": "AWS::SSM::Parameter", "Properties": {"Tier": "Advanced", "Value": root}}}
    }
    with pytest.raises(LimitExceeded, match=r"Root: parameter value of 13,\d{3} bytes, over the Advanced tier's 8,192"):
        check_template(template)


def many_groups(count: int, **policy: object) -> UpdraftConfig:
    groups = [{"name": f"group-{index:03d}", "variant": "aws-ecs-2", **policy} for index in range(count)]
    return UpdraftConfig.model_validate({"groups": groups})


def test_a_configuration_too_large_for_the_functions_environment_fails_synth_naming_it() -> None:
    config = many_groups(60, alarms={"names": [f"service-{n}-errors" for n in range(3)]})
    assert len(config.model_dump_json()) > LAMBDA_ENVIRONMENT
    with pytest.raises(
        LimitExceeded, match=r"^updraft: function \w+'s environment would be [\d,]+ bytes, over Lambda's 4,096"
    ):
        synthesize(config)


def test_health_commands_too_large_for_one_document_fail_synth_naming_the_groups() -> None:
    template = {
        "Resources": {
            "Health": {
                "Type": "AWS::SSM::Document",
                "Properties": {"Name": "Updraft-health", "Content": {"mainSteps": [{"x": "y" * SSM_DOCUMENT}]}},
            }
        }
    }
    with pytest.raises(LimitExceeded, match=r"^updraft\.groups: document Updraft-health would be [\d,]+ bytes"):
        check_template(template)


def test_the_shipped_configuration_is_far_within_every_limit(template: dict) -> None:
    check_template(template)
    functions = [r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    largest = max(
        sum(len(k) + deployed_length(v) for k, v in f["Properties"]["Environment"]["Variables"].items())
        for f in functions
    )
    assert largest < LAMBDA_ENVIRONMENT / 2
    assert len(json.dumps(template)) < 1024 * 1024 / 4
