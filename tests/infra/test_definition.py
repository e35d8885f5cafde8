"""The state machine's definition put together (stacks/definition.py): every Lambda step retries by the one
policy of statemachines/retry.json, named and never copied; a reference that names nothing is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stacks.definition import DEFINITION, DefinitionError, definition, retry_policies

LAMBDA = "arn:aws:states:::lambda:invoke"


def states(text: str) -> dict[str, dict]:
    return json.loads(text)["States"]


def test_every_lambda_step_retries_by_the_lambda_step_policy():
    lambda_steps = {name: state for name, state in states(definition()).items() if state.get("Resource") == LAMBDA}
    policy = retry_policies()["LambdaStep"]
    assert lambda_steps
    assert {name: state["Retry"] for name, state in lambda_steps.items()} == {name: policy for name in lambda_steps}


def test_the_file_names_the_policy_and_never_copies_it():
    source = states(DEFINITION.read_text())
    retries = {name: state["Retry"] for name, state in source.items() if state.get("Resource") == LAMBDA}
    assert retries
    assert retries == {name: {"$ref": "retry.json#/LambdaStep"} for name in retries}
    assert "Lambda.ServiceException" not in DEFINITION.read_text()


def test_every_policy_is_used():
    text = DEFINITION.read_text()
    assert [name for name in retry_policies() if f'"retry.json#/{name}"' not in text] == []


def test_only_the_references_change():
    source = states(DEFINITION.read_text())
    loaded = states(definition())
    for state in (*source.values(), *loaded.values()):
        if state.get("Resource") == LAMBDA:
            del state["Retry"]
    assert loaded == source


def _broken(tmp_path: Path, retry: object) -> Path:
    source = json.loads(DEFINITION.read_text())
    source["States"]["Halt"]["Retry"] = retry
    path = tmp_path / "rollout.asl.json"
    path.write_text(json.dumps(source))
    return path


@pytest.mark.parametrize(
    ("retry", "refusal"),
    [
        ({"$ref": "retry.json#/NoSuchPolicy"}, r"\$\.States\.Halt\.Retry: no retry policy NoSuchPolicy"),
        ({"$ref": "other.json#/LambdaStep"}, r"\$\.States\.Halt\.Retry: expected a list of retriers"),
        ({"$ref": "retry.json#/LambdaStep", "MaxAttempts": 2}, r"\$\.States\.Halt\.Retry: expected"),
        ([{"$ref": "retry.json#/LambdaStep"}], r"\$\.States\.Halt\.Retry\[0\]: a \$ref stands only for a whole"),
    ],
)
def test_a_reference_that_names_no_policy_is_refused(tmp_path: Path, retry: object, refusal: str):
    with pytest.raises(DefinitionError, match=refusal):
        definition(_broken(tmp_path, retry))


def test_a_policy_that_is_no_list_of_retriers_is_refused(tmp_path: Path):
    policies = tmp_path / "retry.json"
    policies.write_text(json.dumps({"LambdaStep": {"ErrorEquals": ["States.ALL"]}}))
    with pytest.raises(DefinitionError, match="LambdaStep is not a list of retriers"):
        definition(retry=policies)


def test_the_module_run_as_a_script_prints_the_definition():
    script = Path(__file__).resolve().parents[2] / "stacks" / "definition.py"
    printed = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=60)
    assert printed.stdout == definition()
