"""Service limits CloudFormation would hit at deploy time and moto never checks, checked on the synthesized template.

Each limit names the AWS page it comes from. Values CloudFormation fills in at deploy time (a `Ref`, an ARN) are
counted at a generous length, so a template that passes here is not refused for their sake.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

KB = 1024
# Lambda quotas (docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html): "Environment variables: 4 KB,
# for all environment variables associated with the function, in aggregate".
LAMBDA_ENVIRONMENT = 4 * KB
# Systems Manager quotas (docs.aws.amazon.com/general/latest/gr/ssm.html): parameter value 4 KB (Standard),
# 8 KB (Advanced); "Maximum size of a document: 64 KB".
SSM_PARAMETER = {"Standard": 4 * KB, "Advanced": 8 * KB, "Intelligent-Tiering": 8 * KB}
SSM_DOCUMENT = 64 * KB
# Step Functions quotas (docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html): "Maximum size of a
# state machine definition: 1 MB"; input or output of a state or execution: 256 KB.
STATE_MACHINE_DEFINITION = 1024 * KB
STATE_PAYLOAD = 256 * KB
# CloudFormation quotas (docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html): a
# template in S3 (how `cdk deploy` passes it) up to 1 MB; 500 resources, 200 outputs, 200 parameters.
TEMPLATE_BODY = 1024 * KB
TEMPLATE_RESOURCES, TEMPLATE_OUTPUTS, TEMPLATE_PARAMETERS = 500, 200, 200
# EventBridge PutTargets API reference: a target's `Input` is at most 8,192 characters.
TARGET_INPUT = 8192

# What a deploy-time value may grow to: an ARN (GetAtt), a name or id (Ref) or a substituted string.
_ARN, _NAME = 256, 128
_SUB = re.compile(r"\$\{[^}]+\}")


class LimitExceeded(ValueError):
    """The template would be refused by a service; `problems` has one line per value, naming the field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def deployed_length(value: Any) -> int:
    """How long `value` is once CloudFormation has resolved it, at most (intrinsics counted generously)."""
    return len(_deployed(value).encode())


def _deployed(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((name, argument),) = value.items()
        if name == "Ref":
            return "r" * _NAME
        if name == "Fn::GetAtt":
            return "a" * _ARN
        if name == "Fn::Join":
            separator, parts = argument
            return separator.join(_deployed(part) for part in parts)
        if name == "Fn::Sub":
            text = argument if isinstance(argument, str) else argument[0]
            return _SUB.sub("s" * _NAME, text)
        if name.startswith("Fn::"):
            return "f" * _ARN
    if isinstance(value, (dict, list)):
        return json.dumps(_resolved_tree(value), separators=(",", ":"))
    return json.dumps(value)


def _resolved_tree(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)).startswith(("Ref", "Fn::")):
            return _deployed(value)
        return {key: _resolved_tree(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolved_tree(item) for item in value]
    return value


def check_template(template: dict[str, Any]) -> None:
    """Raise LimitExceeded naming every value of `template` that a service would refuse."""
    problems = list(_problems(template))
    if problems:
        raise LimitExceeded(problems)


def _problems(template: dict[str, Any]) -> Iterator[str]:
    resources = template.get("Resources", {})
    size = len(json.dumps(template, indent=1).encode())
    if size > TEMPLATE_BODY:
        yield f"template: {size:,} bytes, over CloudFormation's {TEMPLATE_BODY:,} for a template in S3"
    for section, limit in (
        ("Resources", TEMPLATE_RESOURCES),
        ("Outputs", TEMPLATE_OUTPUTS),
        ("Parameters", TEMPLATE_PARAMETERS),
    ):
        if len(template.get(section, {})) > limit:
            yield f"template: {len(template[section])} {section.lower()}, over CloudFormation's {limit}"
    for logical_id, resource in resources.items():
        yield from _resource_problems(logical_id, resource.get("Type", ""), resource.get("Properties", {}))


def _resource_problems(logical_id: str, kind: str, properties: dict[str, Any]) -> Iterator[str]:
    if kind == "AWS::Lambda::Function":
        variables = properties.get("Environment", {}).get("Variables", {})
        size = sum(len(name.encode()) + deployed_length(value) for name, value in variables.items())
        if size > LAMBDA_ENVIRONMENT:
            config = deployed_length(variables.get("UPDRAFT_CONFIG", ""))
            yield (
                f"updraft: function {logical_id}'s environment would be {size:,} bytes, over Lambda's "
                f"{LAMBDA_ENVIRONMENT:,} for all variables ({config:,} of them the configuration): fewer or "
                "shorter groups, alarm names or commands"
            )
    elif kind == "AWS::SSM::Parameter":
        tier = properties.get("Tier", "Standard")
        size = deployed_length(properties.get("Value", ""))
        if size > SSM_PARAMETER.get(tier, SSM_PARAMETER["Standard"]):
            yield f"{logical_id}: parameter value of {size:,} bytes, over the {tier} tier's {SSM_PARAMETER[tier]:,}"
    elif kind == "AWS::SSM::Document":
        size = deployed_length(properties.get("Content", {}))
        if size > SSM_DOCUMENT:
            yield (
                f"updraft.groups: document {properties.get('Name', logical_id)} would be {size:,} bytes, over "
                f"Systems Manager's {SSM_DOCUMENT:,} (the health document holds every group's health_check.command)"
            )
    elif kind == "AWS::StepFunctions::StateMachine":
        size = deployed_length(properties.get("DefinitionString", ""))
        if size > STATE_MACHINE_DEFINITION:
            yield f"{logical_id}: definition of {size:,} bytes, over Step Functions' {STATE_MACHINE_DEFINITION:,}"
    elif kind == "AWS::Events::Rule":
        for target in properties.get("Targets", []):
            if "Input" in target and deployed_length(target["Input"]) > TARGET_INPUT:
                target_id = target.get("Id")
                yield f"{logical_id}: target {target_id}'s input is over EventBridge's {TARGET_INPUT:,} characters"
