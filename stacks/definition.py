"""The rollout state machine's definition, as deployed: statemachines/rollout.asl.json with the retry policies its
states name put in place from statemachines/retry.json.

A state names a policy as `"Retry": {"$ref": "retry.json#/<name>"}`; the policy (a list of retriers) is defined
once there. The stack deploys what `definition()` returns and the tests execute and lint the same text, so the
file and the deployed machine cannot drift apart. The `${...}` placeholders stay for the stack's definition
substitutions (`substitute` resolves them outside CloudFormation). Standard library only: `python3
stacks/definition.py` prints the definition (the npm script `validate-asl` lints that).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

STATEMACHINES = Path(__file__).resolve().parent.parent / "statemachines"
DEFINITION = STATEMACHINES / "rollout.asl.json"
RETRY_POLICIES = STATEMACHINES / "retry.json"
REFERENCE = re.compile(r"retry\.json#/(?P<name>[A-Za-z][A-Za-z0-9]*)")


class DefinitionError(ValueError):
    """The definition names a retry policy that does not exist, or refers to one in a way the loader does not
    read."""


def retry_policies(path: Path = RETRY_POLICIES) -> dict[str, list[dict[str, Any]]]:
    """Every named policy of retry.json (its `Comment` is none)."""
    policies = {name: value for name, value in json.loads(path.read_text()).items() if name != "Comment"}
    for name, retriers in policies.items():
        if not isinstance(retriers, list) or not all(isinstance(r, dict) and "ErrorEquals" in r for r in retriers):
            raise DefinitionError(f"{path.name}: {name} is not a list of retriers")
    return policies


def definition(path: Path = DEFINITION, retry: Path = RETRY_POLICIES) -> str:
    """The definition the stack deploys, as JSON text: every retry policy reference replaced by the policy."""
    expanded = _expand(json.loads(path.read_text()), retry_policies(retry), "$")
    return json.dumps(expanded, indent=2) + "\n"


def substitute(definition: str, substitutions: Mapping[str, str]) -> str:
    """Each `${key}` replaced by its value, as CloudFormation does with DefinitionSubstitutions."""
    for key, value in substitutions.items():
        definition = definition.replace("${" + key + "}", value)
    return definition


def _expand(node: Any, policies: dict[str, list[dict[str, Any]]], where: str) -> Any:
    if isinstance(node, list):
        return [_expand(item, policies, f"{where}[{i}]") for i, item in enumerate(node)]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        raise DefinitionError(f"{where}: a $ref stands only for a whole Retry")
    expanded = {}
    for key, value in node.items():
        if key == "Retry" and isinstance(value, dict):
            expanded[key] = _policy(value, policies, f"{where}.Retry")
        else:
            expanded[key] = _expand(value, policies, f"{where}.{key}")
    return expanded


def _policy(reference: dict[str, Any], policies: dict[str, list[dict[str, Any]]], where: str) -> list[dict[str, Any]]:
    match = REFERENCE.fullmatch(str(reference.get("$ref"))) if set(reference) == {"$ref"} else None
    if not match:
        raise DefinitionError(f'{where}: expected a list of retriers or {{"$ref": "retry.json#/<name>"}}')
    if match["name"] not in policies:
        raise DefinitionError(f"{where}: no retry policy {match['name']} in {RETRY_POLICIES.name}")
    return json.loads(json.dumps(policies[match["name"]]))  # a copy per state


if __name__ == "__main__":
    sys.stdout.write(definition())
