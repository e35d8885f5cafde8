"""cfn-lint on the synthesized template; asl-validator and statelint, two independent readings of the Amazon
States Language spec, on the state machine definition (statemachines/, its retry policies put in place by
stacks/definition.py) and on the definition as deployed."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from cfnlint.api import lint

from stacks.definition import definition
from tests.infra.conftest import node_tool

# CDK adds DependsOn on a role beside the GetAtt of it; harmless, and not ours to change.
IGNORED_CFN_LINT_RULES = ["W3005"]


# Each ASL linter: how it is run on a file, and what it says of a dangling Next (each checks a different state).
LINTERS = {
    "asl-validator": (["--json-path"], "IsLockAcquired", "Default", "NoSuchState"),
    "statelint": ([], "CheckRelease", "Next", 'No state found named "NoSuchState"'),
}


def lint_asl(linter: str, definition_file: Path) -> subprocess.CompletedProcess[str]:
    flags = LINTERS[linter][0]
    tool = node_tool(linter)
    return subprocess.run([str(tool), *flags, str(definition_file)], capture_output=True, text=True, timeout=60)


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


@pytest.mark.parametrize("linter", LINTERS)
def test_the_linter_accepts_the_definition(linter, tmp_path):
    path = tmp_path / "rollout.asl.json"
    path.write_text(definition())
    result = lint_asl(linter, path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("linter", LINTERS)
def test_the_linter_accepts_the_deployed_definition(linter, state_machine, tmp_path):
    path = tmp_path / "deployed.asl.json"
    path.write_text(deployed_definition(state_machine))
    result = lint_asl(linter, path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("linter", LINTERS)
def test_the_linter_rejects_a_dangling_next(linter, tmp_path):
    _, state, field, said = LINTERS[linter]
    loaded = json.loads(definition())
    loaded["States"][state][field] = "NoSuchState"
    broken = tmp_path / "broken.asl.json"
    broken.write_text(json.dumps(loaded))
    result = lint_asl(linter, broken)
    assert result.returncode != 0
    assert said in result.stdout + result.stderr
