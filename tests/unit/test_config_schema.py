"""Config schema errors name the field that is wrong."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from updraft.config import ErrorBudget, GroupPolicy, RolloutRequest, UpdraftConfig

GROUP = {"name": "web", "variant": "aws-ecs-2"}


def error_of(model: type, data: dict) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    return str(caught.value)


def test_minimal_config_takes_the_documented_defaults() -> None:
    config = UpdraftConfig.model_validate({"groups": [GROUP]})
    policy = config.group("web")
    assert config.tag_key == "updraft:group"
    assert (policy.canary_size, policy.wave_growth, policy.max_wave_size) == (1, 2.0, 50)
    assert policy.error_budget == ErrorBudget(per_wave="0", canary="0", total="10%")
    assert (policy.apply_timeout_seconds, policy.verify_timeout_seconds) == (1200, 900)


def test_config_round_trips_through_the_environment() -> None:
    config = UpdraftConfig.model_validate({"groups": [GROUP, {**GROUP, "name": "batch", "canary_size": 3}]})
    assert UpdraftConfig.from_env(config.to_env()) == config


def test_unknown_field_is_named() -> None:
    message = error_of(UpdraftConfig, {"groups": [{**GROUP, "canary": 2}]})
    assert "groups.0.canary" in message
    assert "Extra inputs are not permitted" in message


def test_unknown_top_level_field_is_named() -> None:
    assert "tag" in error_of(UpdraftConfig, {"groups": [GROUP], "tag": "x"})


@pytest.mark.parametrize("size", [0, -1, 51])
def test_canary_size_out_of_range_is_named(size: int) -> None:
    assert "groups.0.canary_size" in error_of(UpdraftConfig, {"groups": [{**GROUP, "canary_size": size}]})


@pytest.mark.parametrize("budget", ["150%", "101%", "abc", "-1", "1.5", "10 %", "%", ""])
def test_bad_budget_is_named(budget: str) -> None:
    data = {"groups": [{**GROUP, "error_budget": {"per_wave": budget}}]}
    message = error_of(UpdraftConfig, data)
    assert "groups.0.error_budget.per_wave" in message
    assert 'expected a count like "2" or a percentage like "10%"' in message


@pytest.mark.parametrize(("given", "kept"), [("100%", "100%"), (" 5 ", "5"), (3, "3"), ("0%", "0%")])
def test_good_budget_is_kept_as_text(given: object, kept: str) -> None:
    assert ErrorBudget(total=given).total == kept


def test_duplicate_group_names_are_named() -> None:
    message = error_of(UpdraftConfig, {"groups": [GROUP, {**GROUP, "variant": "aws-k8s-1.31"}]})
    assert "duplicate group names ['web']" in message


def test_no_groups_is_an_error() -> None:
    assert "groups" in error_of(UpdraftConfig, {"groups": []})


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "Web"), ("name", "-web"), ("arch", "aarch64"), ("wave_growth", 0.5), ("apply_timeout_seconds", 300)],
)
def test_out_of_schema_group_values_are_named(field: str, value: object) -> None:
    assert f"groups.0.{field}" in error_of(UpdraftConfig, {"groups": [{**GROUP, field: value}]})


def test_unknown_group_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        UpdraftConfig.model_validate({"groups": [GROUP]}).group("batch")


def test_config_is_immutable() -> None:
    policy = GroupPolicy.model_validate(GROUP)
    with pytest.raises(ValidationError):
        policy.canary_size = 5  # type: ignore[misc]


@pytest.mark.parametrize(("given", "kept"), [("v1.26.1", "1.26.1"), ("1.26.1", "1.26.1"), ("v10.0.12", "10.0.12")])
def test_rollout_request_strips_a_leading_v(given: str, kept: str) -> None:
    request = RolloutRequest(group="web", target_version=given)
    assert request.target_version == kept
    assert request.requested_by == "operator"


@pytest.mark.parametrize("version", ["1.26", "V1.26.1", "vv1.26.1", "1.26.1-d93bb1b1", "1.26.1\n", "latest"])
def test_rollout_request_rejects_a_malformed_version(version: str) -> None:
    assert "target_version" in error_of(RolloutRequest, {"group": "web", "target_version": version})


def test_rollout_request_rejects_unknown_fields() -> None:
    assert "dry_run" in error_of(RolloutRequest, {"group": "web", "target_version": "1.2.3", "dry_run": True})


def test_a_health_command_may_not_hold_an_ssm_parameter_reference() -> None:
    from pydantic import ValidationError

    from updraft.config import HealthCheck

    with pytest.raises(ValidationError, match="SSM reads it as a document parameter"):
        HealthCheck(command="curl localhost/{{ InstanceId }}")
