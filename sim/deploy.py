"""Deploy the synthesized CDK template into moto, so the wiring under test is the wiring shipped."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import boto3

from sim.aws.ssm import publish_public_parameter

ACCOUNT = "123456789012"
REGION = "us-east-1"
ASSETS_BUCKET = f"cdk-hnb659fds-assets-{ACCOUNT}-{REGION}"
CODE = Path(__file__).resolve().parent.parent / "functions"
# Public parameters the template reads at deploy time.
PUBLIC_PARAMETERS = {
    "/cdk-bootstrap/hnb659fds/version": "30",
}
# Resources moto's CloudFormation cannot create and whose only effect is access control the simulation does
# not enforce (it does for DynamoDB and EventBridge: sim/aws/iam.py): left out of the simulated deployment
# (template tests and cdk-nag check them).
NOT_SIMULATED = {"AWS::S3::BucketPolicy"}
# What Powertools' per-release parameter holds: a layer of its account, named per runtime and architecture.
POWERTOOLS_LAYER = "arn:aws:lambda:{region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python314-arm64:1"


def _code_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(CODE.rglob("*.py")):
            archive.write(path, path.relative_to(CODE).as_posix())
    return buffer.getvalue()


def _asset_keys(template: dict[str, Any]) -> set[str]:
    keys = set()
    for resource in template["Resources"].values():
        code = resource.get("Properties", {}).get("Code", {})
        if isinstance(code, dict) and isinstance(code.get("S3Key"), str):
            keys.add(code["S3Key"])
    return keys


def _seed_parameters(template: dict[str, Any]) -> None:
    values = dict(PUBLIC_PARAMETERS)
    for parameter in template.get("Parameters", {}).values():
        name = parameter.get("Default", "")
        if parameter.get("Type", "").startswith("AWS::SSM::Parameter::Value") and name.startswith(
            "/aws/service/powertools/"
        ):
            values[name] = POWERTOOLS_LAYER.format(region=REGION)
    for name, value in values.items():
        publish_public_parameter(name, value, ACCOUNT, REGION)


def _needs(value: Any, names: set[str]) -> set[str]:
    """The resources a property value references (Ref, Fn::GetAtt)."""
    if isinstance(value, list):
        return set().union(set(), *(_needs(item, names) for item in value))
    if not isinstance(value, dict):
        return set()
    found = {value["Ref"]} & names if isinstance(value.get("Ref"), str) else set()
    if "Fn::GetAtt" in value:
        found |= {value["Fn::GetAtt"][0]} & names
    return found.union(*(_needs(item, names) for item in value.values()))


def _in_dependency_order(resources: dict[str, Any]) -> dict[str, Any]:
    """Every resource after those it references or depends on. moto creates a referenced resource on first
    reference, before its own DependsOn (a rule on a custom bus, referenced by a queue policy, would come
    before its bus); CloudFormation never does. In this order moto meets each reference already created."""
    names, ordered = set(resources), {}

    def place(name: str) -> None:
        if name in ordered:
            return
        ordered[name] = None  # placed first: a cycle (which CloudFormation refuses) cannot recurse forever
        depends = set(as_list(resources[name].get("DependsOn", []))) & names
        for needed in sorted(_needs(resources[name].get("Properties", {}), names) | depends):
            place(needed)
        del ordered[name]
        ordered[name] = resources[name]

    for name in resources:
        place(name)
    return ordered


def as_list(value: Any) -> list[Any]:  # DependsOn: one name or a list
    return value if isinstance(value, list) else [value]


def deploy(template: dict[str, Any], stack_name: str = "Updraft") -> dict[str, str]:
    """Create the stack in moto and return its outputs."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=ASSETS_BUCKET)
    code = _code_zip()
    for key in _asset_keys(template):
        s3.put_object(Bucket=ASSETS_BUCKET, Key=key, Body=code)
    for key, data in getattr(template, "file_assets", {}).items():
        s3.put_object(Bucket=ASSETS_BUCKET, Key=key, Body=data)
    _seed_parameters(template)
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    resources = {k: r for k, r in template["Resources"].items() if r["Type"] not in NOT_SIMULATED}
    simulated = {**template, "Resources": _in_dependency_order(resources)}
    cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(simulated),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
    )
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    if stack["StackStatus"] != "CREATE_COMPLETE":
        raise RuntimeError(f"stack {stack_name} is {stack['StackStatus']}: {stack.get('StackStatusReason')}")
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
