"""Release policy: soak time, the group a group follows, deny list, pin, automatic rollouts off."""

from datetime import UTC, datetime, timedelta

import pytest

from updraft.config import GroupPolicy, UpdraftConfig
from updraft.domain.eligibility import Verdict, decide

RELEASED = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)


def policy(**fields: object) -> GroupPolicy:
    return GroupPolicy.model_validate({"name": "prod", "variant": "aws-ecs-2", **fields})


def test_a_release_starts_at_once_by_default() -> None:
    assert decide(policy(), "1.26.1", RELEASED, RELEASED, leader_outcome=None).verdict is Verdict.START


def test_a_young_release_waits_until_it_has_soaked() -> None:
    result = decide(policy(min_release_age_hours=48), "1.26.1", RELEASED, RELEASED + timedelta(hours=47), None)
    assert result.verdict is Verdict.WAIT
    assert result.not_before == RELEASED + timedelta(hours=48)
    later = decide(policy(min_release_age_hours=48), "1.26.1", RELEASED, RELEASED + timedelta(hours=48), None)
    assert later.verdict is Verdict.START


def test_a_follower_skips_a_release_its_leader_halted_on() -> None:
    result = decide(policy(follows="staging"), "1.26.1", RELEASED, RELEASED, leader_outcome="halted")
    assert result.verdict is Verdict.SKIP and "did not finish 1.26.1 (halted)" in result.reason


def test_a_follower_waits_for_its_leader_then_starts() -> None:
    follower = policy(follows="staging")
    waiting = decide(follower, "1.26.1", RELEASED, RELEASED, leader_outcome=None)
    assert waiting.verdict is Verdict.WAIT and "staging" in waiting.reason and waiting.not_before is None
    assert decide(follower, "1.26.1", RELEASED, RELEASED, leader_outcome="succeeded").verdict is Verdict.START


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"auto_rollout": False}, "off"),
        ({"deny_versions": ["v1.26.1"]}, "deny list"),
        ({"pinned_version": "1.26.0"}, "pinned to 1.26.0"),
    ],
)
def test_policy_can_skip_a_release_for_good(fields: dict, reason: str) -> None:
    result = decide(policy(**fields), "1.26.1", RELEASED, RELEASED + timedelta(days=30), leader_outcome="succeeded")
    assert result.verdict is Verdict.SKIP and reason in result.reason


def test_follows_must_name_a_configured_group_and_never_loop() -> None:
    with pytest.raises(ValueError, match=r"groups\.0\.follows: 'nope' is not a configured group"):
        UpdraftConfig.model_validate({"groups": [{"name": "a", "variant": "aws-ecs-2", "follows": "nope"}]})
    loop = [
        {"name": "a", "variant": "aws-ecs-2", "follows": "b"},
        {"name": "b", "variant": "aws-ecs-2", "follows": "a"},
    ]
    with pytest.raises(ValueError, match="follows itself"):
        UpdraftConfig.model_validate({"groups": loop})


def test_the_environment_form_leaves_defaults_out_and_round_trips() -> None:
    config = UpdraftConfig.model_validate(
        {"groups": [{"name": "a", "variant": "aws-ecs-2", "min_release_age_hours": 24}]}
    )
    assert config.to_env() == '{"groups":[{"name":"a","variant":"aws-ecs-2","min_release_age_hours":24}]}'
    assert UpdraftConfig.from_env(config.to_env()) == config
