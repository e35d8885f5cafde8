"""cfn-lint on the synthesized template; asl-validator and statelint, two independent readings of the Amazon
States Language spec, on the state machine definition (statemachines/, its retry policies put in place by
stacks/definition.py) and on the definition as deployed."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from cfnlint.api import lint

from stacks.definition import definition

# CDK adds DependsOn on a role beside the GetAtt of it; harmless, and not ours to change.
IGNORED_CFN_LINT_RULES = ["W3005"]


def validate_asl(asl_validator: Path, definition: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(asl_validator), "--json-path", str(definition)], capture_output=True, text=True, timeout=60
    )


def statelint_asl(statelint: Path, definition: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(statelint), str(definition)], capture_output=True, text=True, timeout=60)


def deployed_definition(state_machine) -> str:
    """The template's definition with its substitutions filled in as CloudFormation would."""
    arn = "arn:aws:lambda:us-east-1:123456789012:function:Updraft-{}"
    return re.sub(
        r"\$\{(\w+)\}",
        lambda m: "updraft-locks" if m.group(1) == "LockTableName" else arn.format(m.group(1)),
        state_machine["DefinitionString"],
    )


def test_cfn_lint_is_clean(template):
    matches = lint(json.dumps(template), config={"regions": ["us-east-1"], "ignore_checks": IGNORED_CFN_LINT_RULES})
    assert [str(match) for match in matches] == []


def test_asl_validator_accepts_the_definition(asl_validator, tmp_path):
    path = tmp_path / "rollout.asl.json"
    path.write_text(definition())
    result = validate_asl(asl_validator, path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_asl_validator_accepts_the_deployed_definition(asl_validator, state_machine, tmp_path):
    path = tmp_path / "deployed.asl.json"
    path.write_text(deployed_definition(state_machine))
    result = validate_asl(asl_validator, path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_asl_validator_rejects_a_dangling_next(asl_validator, tmp_path):
    loaded = json.loads(definition())
    loaded["States"]["IsLockAcquired"]["Default"] = "NoSuchState"
    broken = tmp_path / "broken.asl.json"
    broken.write_text(json.dumps(loaded))
    result = validate_asl(asl_validator, broken)
    assert result.returncode != 0
    assert "NoSuchState" in result.stdout + result.stderr


def test_statelint_accepts_the_definition(statelint, tmp_path):
    path = tmp_path / "rollout.asl.json"
    path.write_text(definition())
    result = statelint_asl(statelint, path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_statelint_accepts_the_deployed_definition(statelint, state_machine, tmp_path):
    path = tmp_path / "deployed.asl.json"
    path.write_text(deployed_definition(state_machine))
    result = statelint_asl(statelint, path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_statelint_rejects_a_dangling_next(statelint, tmp_path):
    loaded = json.loads(definition())
    loaded["States"]["CheckRelease"]["Next"] = "NoSuchState"
    broken = tmp_path / "broken.asl.json"
    broken.write_text(json.dumps(loaded))
    result = statelint_asl(statelint, broken)
    assert result.returncode != 0
    assert 'No state found named "NoSuchState"' in result.stdout + result.stderr
