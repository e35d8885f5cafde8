"""Least privilege, checked against a committed allowlist.

Every IAM statement the stack deploys (role policies, managed policy ARNs, trust policies, and the resource
policies of the SNS topic, the KMS key, the S3 bucket, the release bus and the Lambda permissions) is normalised
and compared with `least_privilege.json`, for cdk.json's config and for one that enables every feature. A grant that is
not in the allowlist fails, naming the role and the grant. After a deliberate change, rewrite the allowlist
and review its diff:

    .venv/bin/python tests/infra/test_least_privilege.py --update
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ALLOWLIST = Path(__file__).with_name("least_privilege.json")
UPDATE_COMMAND = ".venv/bin/python tests/infra/test_least_privilege.py --update"
ACKNOWLEDGED = "aws:cdk:acknowledged-rules"
ROOT_DOCUMENT = {"signed": {"_type": "root", "version": 1}, "signatures": []}

# Actions that accept no resource-level permissions, so `Resource: "*"` is the only way to grant them.
UNSCOPED_ACTIONS = {
    "ec2:DescribeInstances": "List/Describe call: EC2 supports no resource-level permissions for it",
    "ec2:DescribeInstanceStatus": "List/Describe call: EC2 supports no resource-level permissions for it",
    "ssm:DescribeInstanceInformation": "fleet-wide read: SSM supports no resource-level permissions for it",
    "ssm:ListCommandInvocations": "fleet-wide read: SSM supports no resource-level permissions for it",
    "ssm:ListCommands": "finds a command a retried step already sent; no resource-level permissions for it",
    # Read only; CloudWatch returns composite alarms only to a DescribeAlarms granted on "*".
    "cloudwatch:DescribeAlarms": "composite alarms are only returned when granted on *",
    # Scoped by its ecs:cluster condition instead: the call names no resource a policy could match.
    "ecs:ListTasks": "cluster-scoped through the ecs:cluster condition",
    "xray:PutTraceSegments": "X-Ray has no resource-level permissions",
    "xray:PutTelemetryRecords": "X-Ray has no resource-level permissions",
    "xray:GetSamplingRules": "X-Ray has no resource-level permissions",
    "xray:GetSamplingTargets": "X-Ray has no resource-level permissions",
    # CloudWatch Logs vended log delivery (Step Functions execution logging): account-level APIs.
    "logs:CreateLogDelivery": "vended log delivery: no resource-level permissions",
    "logs:DeleteLogDelivery": "vended log delivery: no resource-level permissions",
    "logs:GetLogDelivery": "vended log delivery: no resource-level permissions",
    "logs:ListLogDeliveries": "vended log delivery: no resource-level permissions",
    "logs:UpdateLogDelivery": "vended log delivery: no resource-level permissions",
    "logs:DescribeLogGroups": "vended log delivery checks the destination: account-level list call",
    "logs:DescribeResourcePolicies": "vended log delivery checks the account's Logs resource policy",
    "logs:PutResourcePolicy": "vended log delivery writes the account's Logs resource policy",
}
# The one wildcard action allowed: a KMS key policy's grant to the account root, which hands the key's
# authorisation to IAM (AWS's default key policy); without it no role in the account can manage the key.
KEY_POLICY_ROOT = re.compile(r"^arn:\{AWS::Partition\}:iam::\d{12}:root$")
# Words that make an acknowledgement say nothing about this stack.
GENERIC_REASONS = {"needed", "required", "acceptable", "false positive", "by design", "not applicable", "ok", "n/a"}

Statement = dict[str, Any]
Grants = dict[str, list[Statement]]


# -- normalising a template's IAM into {owner: [statement]} ---------------------------------------------------
def strip_hash(logical_id: str) -> str:
    """A CDK logical id without the 8-hex-digit hash CDK appends: `Ledger9B6E5ACF` -> `Ledger`."""
    return re.sub(r"[0-9A-F]{8}$", "", logical_id)


def render(value: Any) -> str:
    """An intrinsic as hash-free text: {"Ref": "X1A2B3C4D"} -> "{X}", GetAtt -> "{X.Arn}", Join -> joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref":
            return "{" + strip_hash(argument) + "}"
        if function == "Fn::GetAtt":
            return "{" + strip_hash(argument[0]) + "." + ".".join(argument[1:]) + "}"
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(render(part) for part in parts)
    raise AssertionError(f"an intrinsic the allowlist cannot spell: {value!r}")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def render_conditions(conditions: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    return {
        operator: {key: sorted(render(v) for v in as_list(values)) for key, values in sorted(keys.items())}
        for operator, keys in sorted(conditions.items())
    }


def render_principals(principal: Any) -> list[str]:
    if principal is None:
        return []
    if principal == "*":
        return ["*"]
    return sorted(f"{kind}:{render(who)}" for kind, whos in principal.items() for who in as_list(whos))


def normalise(statement: dict[str, Any]) -> Statement:
    """One statement in a stable, comparable form; Not* elements are kept so that they are seen."""
    normal: Statement = {
        "effect": statement["Effect"],
        "actions": sorted(as_list(statement.get("Action", []))),
        "resources": sorted(render(r) for r in as_list(statement.get("Resource", []))),
        "conditions": render_conditions(statement.get("Condition", {})),
    }
    if "Principal" in statement:
        normal["principals"] = render_principals(statement["Principal"])
    for negated in ("NotAction", "NotResource", "NotPrincipal"):
        if negated in statement:
            normal[negated] = statement[negated]
    return normal


def sort_key(statement: Statement) -> str:
    return json.dumps(statement, sort_keys=True)


def statements(document: dict[str, Any]) -> list[Statement]:
    return [normalise(s) for s in as_list(document["Statement"])]


def permission_statement(permission: dict[str, Any]) -> Statement:
    """An AWS::Lambda::Permission is one resource-policy statement on its function."""
    conditions = {}
    if "SourceArn" in permission:
        conditions["ArnLike"] = {"aws:SourceArn": permission["SourceArn"]}
    if "SourceAccount" in permission:
        conditions["StringEquals"] = {"aws:SourceAccount": permission["SourceAccount"]}
    return normalise(
        {
            "Effect": "Allow",
            "Action": permission["Action"],
            "Resource": permission["FunctionName"],
            "Principal": {"Service": permission["Principal"]},
            "Condition": conditions,
        }
    )


def resource_policies(logical_id: str, kind: str, props: dict[str, Any]) -> Iterator[tuple[str, list[Statement]]]:
    """(owner, statements) of a resource that carries a resource policy; owners name what is protected."""
    if kind == "AWS::KMS::Key":
        yield f"{strip_hash(logical_id)} key policy", statements(props["KeyPolicy"])
    elif kind == "AWS::SNS::TopicPolicy":
        for topic in props["Topics"]:
            yield f"{render(topic)[1:-1]} topic policy", statements(props["PolicyDocument"])
    elif kind == "AWS::S3::BucketPolicy":
        yield f"{render(props['Bucket'])[1:-1]} bucket policy", statements(props["PolicyDocument"])
    elif kind == "AWS::SQS::QueuePolicy":
        for queue in props["Queues"]:
            yield f"{render(queue)[1:-1]} queue policy", statements(props["PolicyDocument"])
    elif kind == "AWS::Lambda::Permission":
        function = render(props["FunctionName"]).strip("{}").removesuffix(".Arn")
        yield f"{function} invoke permission", [permission_statement(props)]
    elif kind == "AWS::Events::EventBusPolicy":  # one statement of the bus's policy per resource
        yield f"{render(props['EventBusName'])[1:-1]} bus policy", [normalise(props["Statement"])]


def identity_policies(logical_id: str, kind: str, props: dict[str, Any]) -> Iterator[tuple[str, list[Statement]]]:
    """(role, statements) of roles, their inline and managed policies and their trust policies."""
    if kind == "AWS::IAM::Role":
        role = strip_hash(logical_id)
        yield f"{role} trust", statements(props["AssumeRolePolicyDocument"])
        for inline in props.get("Policies", []):
            yield role, statements(inline["PolicyDocument"])
        for arn in props.get("ManagedPolicyArns", []):
            yield role, [{"effect": "Allow", "managed_policy": render(arn)}]
    elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        if kind == "AWS::IAM::ManagedPolicy":  # shipped for people to attach: checked whether attached or not
            yield f"{strip_hash(logical_id)} managed policy", statements(props["PolicyDocument"])
        for attached in ("Roles", "Users", "Groups"):
            for principal in props.get(attached, []):
                yield render(principal)[1:-1], statements(props["PolicyDocument"])


POLICY_TYPES = {
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::KMS::Key",
    "AWS::SNS::TopicPolicy",
    "AWS::S3::BucketPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::Lambda::Permission",
    "AWS::Events::EventBusPolicy",
}


def grants_of(template: dict[str, Any]) -> Grants:
    """Every statement of the template, by owner (a role, `<role> trust`, or `<resource> <kind> policy`)."""
    grants: Grants = {}
    for logical_id, resource in template["Resources"].items():
        kind, props = resource["Type"], resource.get("Properties", {})
        for owner, found in (*identity_policies(logical_id, kind, props), *resource_policies(logical_id, kind, props)):
            grants.setdefault(owner, []).extend(found)
    return {owner: sorted(found, key=sort_key) for owner, found in sorted(grants.items())}


def carries_policy(value: Any) -> bool:
    """Anything shaped like a policy document, however deep."""
    if isinstance(value, dict):
        return "Statement" in value or any(carries_policy(v) for v in value.values())
    if isinstance(value, list):
        return any(carries_policy(v) for v in value)
    return False


# -- comparing with the allowlist -----------------------------------------------------------------------------
def covered(statement: Statement, allowed: Statement) -> bool:
    """`allowed` grants at least what `statement` does: same effect, principals and conditions, no more."""
    shape = ("effect", "conditions", "principals", "managed_policy", "NotAction", "NotResource", "NotPrincipal")
    return (
        all(statement.get(key) == allowed.get(key) for key in shape)
        and set(statement.get("actions", [])) <= set(allowed.get("actions", []))
        and set(statement.get("resources", [])) <= set(allowed.get("resources", []))
    )


def widenings(actual: Grants, allowlist: Grants) -> list[str]:
    """One line per grant of `actual` that the allowlist does not cover, saying what is new."""
    problems = []
    for owner, found in actual.items():
        allowed = allowlist.get(owner)
        if allowed is None:
            problems.append(f"{owner}: a new role or policy, with {len(found)} statements: {found}")
            continue
        for statement in found:
            if not any(covered(statement, a) for a in allowed):
                problems.append(f"{owner}: new grant {statement}{what_is_new(statement, allowed)}")
    # A Deny takes away: one the allowlist holds that is gone, or changed at all, widens what is allowed.
    for owner, allowed in allowlist.items():
        for statement in allowed:
            if statement["effect"] == "Deny" and statement not in actual.get(owner, []):
                problems.append(f"{owner}: an allowlisted Deny is gone or changed: {statement}")
    return problems


def what_is_new(statement: Statement, allowed: list[Statement]) -> str:
    """The actions and resources the allowlist never grants with this statement's effect and conditions."""
    alike = [
        a for a in allowed if a["effect"] == statement["effect"] and a.get("conditions") == statement["conditions"]
    ]
    if not alike:
        return " (no allowlisted statement has this effect and these conditions)"
    actions = set(statement.get("actions", [])) - {x for a in alike for x in a.get("actions", [])}
    resources = set(statement.get("resources", [])) - {x for a in alike for x in a.get("resources", [])}
    return f" (new actions {sorted(actions)}, new resources {sorted(resources)})" if actions or resources else ""


def narrowings(actual: Grants, allowlist: Grants) -> list[str]:
    """Allowlisted statements the template no longer has exactly: the allowlist should say so too."""
    return [
        f"{owner}: allowlisted but not granted any more: {statement}"
        for owner, allowed in allowlist.items()
        for statement in allowed
        if statement not in actual.get(owner, [])
    ]


def failure(problems: list[str]) -> str:
    return "\n".join(
        [*problems, f"If this change is deliberate, rewrite the allowlist with `{UPDATE_COMMAND}` and review its diff."]
    )


# -- the two templates ----------------------------------------------------------------------------------------
def everything_config(root_file: Path):
    from updraft.config import UpdraftConfig

    return UpdraftConfig.model_validate(
        {
            "groups": [
                {
                    "name": "staging",
                    "variant": "aws-ecs-2",
                    "ecs": {"cluster": "blue"},
                    "health_check": {"command": "curl -sf http://localhost/health"},
                },
                {
                    "name": "prod",
                    "variant": "aws-ecs-2",
                    "follows": "staging",
                    "alarms": {"names": ["prod-errors"], "prefixes": ["prod-latency-"]},
                    "maintenance_window": {"schedule": "0 2 * * 1-5", "duration_minutes": 240},
                    "ecs": {"cluster": "green"},
                    "health_check": {"command": "/usr/local/bin/check"},
                },
                {"name": "batch", "variant": "aws-k8s-1.31", "arch": "arm64", "eks": {"cluster": "orange"}},
            ],
            "detection": {
                "trusted_root_file": str(root_file),
                "trusted_root_sha512": hashlib.sha512(root_file.read_bytes()).hexdigest(),
            },
            "notify_emails": ["ops@example.com"],
        }
    )


def synthesize_everything(scratch: Path) -> tuple[Any, dict[str, Any], Path]:
    from stacks import synthesize

    root = scratch / "root.json"
    root.write_text(json.dumps(ROOT_DOCUMENT))
    config = everything_config(root)
    outdir = scratch / "cdk.out"
    return config, synthesize(config, outdir=str(outdir)), outdir


@pytest.fixture(scope="module")
def everything(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any], Path]:
    return synthesize_everything(tmp_path_factory.mktemp("everything"))


@pytest.fixture(scope="module", params=["default", "everything"])
def synthesized(request, config, template, assembly, everything) -> tuple[str, Any, dict[str, Any], Path]:
    """(name, config, template, assembly directory) for cdk.json's config and for the everything config."""
    if request.param == "default":
        return "default", config, template, assembly
    return ("everything", *everything)


@pytest.fixture(scope="module")
def allowlist() -> dict[str, Grants]:
    return json.loads(ALLOWLIST.read_text())["templates"]


def grants(synthesized) -> Grants:
    return grants_of(synthesized[2])


def all_statements(synthesized) -> Iterator[tuple[str, Statement]]:
    for owner, found in grants(synthesized).items():
        for statement in found:
            yield owner, statement


def resources_of(synthesized, kind: str) -> dict[str, dict[str, Any]]:
    return {k: r.get("Properties", {}) for k, r in synthesized[2]["Resources"].items() if r["Type"] == kind}


# -- the allowlist --------------------------------------------------------------------------------------------
def test_no_grant_beyond_the_allowlist(synthesized, allowlist):
    name = synthesized[0]
    problems = widenings(grants(synthesized), allowlist[name])
    assert not problems, failure([f"[{name} template] {p}" for p in problems])


def test_the_allowlist_is_not_wider_than_the_grants(synthesized, allowlist):
    name = synthesized[0]
    problems = narrowings(grants(synthesized), allowlist[name])
    assert not problems, failure([f"[{name} template] {p}" for p in problems])


def test_every_policy_in_the_template_is_read(synthesized):
    for logical_id, resource in synthesized[2]["Resources"].items():
        if carries_policy(resource.get("Properties", {})):
            assert resource["Type"] in POLICY_TYPES, f"{logical_id} ({resource['Type']}) has a policy nobody checks"


def apply_wave_policy(template: dict[str, Any]) -> list[dict[str, Any]]:
    (policy,) = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Policy" and k.startswith("RolloutEngineFunctionsApplyWaveRoleDefaultPolicy")
    ]
    return policy


def on_tagged_hosts(template: dict[str, Any]) -> dict[str, Any]:
    """apply_wave's statement on the groups' hosts (SendCommand, with PutComplianceItems), scoped by their tag."""
    return next(
        s for s in apply_wave_policy(template) if "ssm:SendCommand" in as_list(s["Action"]) and "Condition" in s
    )


def add_action(template: dict[str, Any]) -> None:
    send = on_tagged_hosts(template)
    send["Action"] = [*as_list(send["Action"]), "ec2:TerminateInstances"]


def widen_resource(template: dict[str, Any]) -> None:
    documents = ["ssm:GetDocument", "ssm:SendCommand"]  # on the documents: read, then sent
    send = next(s for s in apply_wave_policy(template) if s["Action"] == documents and "Condition" not in s)
    send["Resource"] = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":ssm:us-east-1:123456789012:document/*"]]}


def drop_condition(template: dict[str, Any]) -> None:
    del on_tagged_hosts(template)["Condition"]


def add_statement(template: dict[str, Any]) -> None:
    apply_wave_policy(template).append({"Action": "s3:GetObject", "Effect": "Allow", "Resource": "*"})


def add_role(template: dict[str, Any]) -> None:
    template["Resources"]["Intruder0A1B2C3D"] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"AWS": "*"}}]
            },
            "ManagedPolicyArns": ["arn:aws:iam::aws:policy/AdministratorAccess"],
        },
    }


def open_topic(template: dict[str, Any]) -> None:
    (policy,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::SNS::TopicPolicy"]
    publish = policy["Properties"]["PolicyDocument"]["Statement"][1]
    publish["Principal"] = "*"


def bus_policies(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::Events::EventBusPolicy"}


def drop_bus_deny(template: dict[str, Any]) -> None:
    (deny,) = [k for k, r in bus_policies(template).items() if r["Properties"]["Statement"]["Effect"] == "Deny"]
    del template["Resources"][deny]


def loosen_bus_deny(template: dict[str, Any]) -> None:
    (deny,) = [r for r in bus_policies(template).values() if r["Properties"]["Statement"]["Effect"] == "Deny"]
    deny["Properties"]["Statement"]["Condition"] = {"StringEquals": {"events:source": "nobody"}}


def open_bus(template: dict[str, Any]) -> None:
    (allow,) = [r for r in bus_policies(template).values() if r["Properties"]["Statement"]["Effect"] == "Allow"]
    allow["Properties"]["Statement"]["Principal"] = {"AWS": "*"}


@pytest.mark.parametrize(
    ("widen", "expected"),
    [
        (add_action, r"RolloutEngineFunctionsApplyWaveRole: new grant .*new actions \['ec2:TerminateInstances'\]"),
        (widen_resource, r"RolloutEngineFunctionsApplyWaveRole: new grant .*document/\*"),
        (drop_condition, r"RolloutEngineFunctionsApplyWaveRole: new grant .*'conditions': \{\}"),
        (add_statement, r"RolloutEngineFunctionsApplyWaveRole: new grant .*'s3:GetObject'"),
        (add_role, r"Intruder trust: a new role or policy"),
        (open_topic, r"ObservabilityNotifications topic policy: new grant .*'principals': \['\*'\]"),
        (drop_bus_deny, r"ReleaseWatchBus bus policy: an allowlisted Deny is gone"),
        (loosen_bus_deny, r"ReleaseWatchBus bus policy: an allowlisted Deny is gone or changed"),
        (open_bus, r"ReleaseWatchBus bus policy: new grant .*'principals': \['AWS:\*'\]"),
    ],
)
def test_a_widened_template_is_reported(everything, allowlist, widen, expected):
    template = copy.deepcopy(everything[1])
    assert not widenings(grants_of(template), allowlist["everything"])
    widen(template)
    problems = widenings(grants_of(template), allowlist["everything"])
    assert problems
    assert any(re.search(expected, problem) for problem in problems), problems
    assert UPDATE_COMMAND in failure(problems)


# -- the rules every grant follows ----------------------------------------------------------------------------
def is_wildcard(action: str) -> bool:
    service, _, name = action.partition(":")
    return not (service and name) or "*" in action or "?" in action


def test_no_wildcard_actions_anywhere(synthesized):
    for owner, statement in all_statements(synthesized):
        assert "NotAction" not in statement and "NotResource" not in statement and "NotPrincipal" not in statement
        wild = [a for a in statement.get("actions", []) if is_wildcard(a)]
        if not wild or statement["effect"] == "Deny":
            continue  # a wildcard Deny only takes away
        assert owner.endswith(" key policy"), f"{owner}: wildcard actions {wild} in {statement}"
        assert statement["resources"] == ["*"] and statement["conditions"] == {}, statement
        (principal,) = statement["principals"]
        assert wild == ["kms:*"] and KEY_POLICY_ROOT.match(principal.removeprefix("AWS:")), statement


def test_no_managed_policies(synthesized):
    for owner, statement in all_statements(synthesized):
        assert "managed_policy" not in statement, f"{owner}: managed policy {statement['managed_policy']}"


def test_roles_trust_only_aws_services(synthesized):
    for owner, statement in all_statements(synthesized):
        if owner.endswith(" trust"):
            assert statement["actions"] == ["sts:AssumeRole"], owner
            (principal,) = statement["principals"]
            assert principal in {
                "Service:lambda.amazonaws.com",
                "Service:states.amazonaws.com",
                "Service:events.amazonaws.com",
            }


def test_every_resource_wildcard_holds_only_unscoped_actions(synthesized):
    for owner, statement in all_statements(synthesized):
        if "*" not in statement.get("resources", []) or statement["effect"] == "Deny" or "principals" in statement:
            continue  # in a resource policy, "*" is the resource the policy is attached to
        assert statement["resources"] == ["*"], (owner, statement)
        unscoped = set(statement["actions"]) - set(UNSCOPED_ACTIONS)
        assert not unscoped, f"{owner}: {sorted(unscoped)} granted on every resource; scope them to an ARN"
        if "ecs:ListTasks" in statement["actions"]:
            assert statement["actions"] == ["ecs:ListTasks"] and "ecs:cluster" in statement["conditions"]["ArnEquals"]


INSTANCES = re.compile(r"^arn:\{AWS::Partition\}:ec2:us-east-1:123456789012:instance/\*$")
DOCUMENT = re.compile(r"^arn:\{AWS::Partition\}:ssm:us-east-1:123456789012:document/(.+)$")


def test_send_command_reaches_only_this_stacks_documents_and_tagged_hosts(synthesized):
    _, config, template, _ = synthesized
    documents = {f"{{{strip_hash(k)}}}" for k, r in template["Resources"].items() if r["Type"] == "AWS::SSM::Document"}
    names = {r["Properties"]["Name"] for r in template["Resources"].values() if r["Type"] == "AWS::SSM::Document"}
    tag_condition = {"StringEquals": {f"aws:ResourceTag/{config.tag_key}": sorted(g.name for g in config.groups)}}
    sends = [(o, s) for o, s in all_statements(synthesized) if "ssm:SendCommand" in s.get("actions", [])]
    assert sends
    for owner, statement in sends:
        for resource in statement["resources"]:
            if INSTANCES.match(resource):
                assert statement["conditions"] == tag_condition, (owner, statement)
            else:
                document = DOCUMENT.match(resource)
                assert document and (document.group(1) in names or document.group(1) in documents), (owner, resource)


# -- encryption at rest and in transit ------------------------------------------------------------------------
def test_both_tables_are_encrypted(synthesized):
    tables = resources_of(synthesized, "AWS::DynamoDB::Table")
    assert len(tables) == 2
    for logical_id, table in tables.items():
        assert table.get("SSESpecification", {}).get("SSEEnabled") is True, logical_id


def test_the_topic_uses_a_customer_managed_key_that_rotates(synthesized):
    (topic,) = resources_of(synthesized, "AWS::SNS::Topic").values()
    key_id = topic["KmsMasterKeyId"]["Fn::GetAtt"][0]  # a key of this template, not alias/aws/sns
    key = synthesized[2]["Resources"][key_id]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True


def denies_plain_http(policy: dict[str, Any], actions: set[str], resources: list[Any]) -> bool:
    return any(
        s["Effect"] == "Deny"
        and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        and actions <= set(as_list(s["Action"]))
        and all(r in as_list(s["Resource"]) for r in resources)
        for s in policy["PolicyDocument"]["Statement"]
    )


def test_the_topic_refuses_plain_http(synthesized):
    (topic_id,) = resources_of(synthesized, "AWS::SNS::Topic")
    (policy,) = resources_of(synthesized, "AWS::SNS::TopicPolicy").values()
    assert denies_plain_http(policy, {"sns:Publish"}, [{"Ref": topic_id}])


def test_the_trust_bucket_is_encrypted_private_and_refuses_plain_http(synthesized):
    buckets = resources_of(synthesized, "AWS::S3::Bucket")
    assert len(buckets) == (1 if synthesized[1].detection else 0)
    for bucket_id, bucket in buckets.items():
        (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in {"AES256", "aws:kms"}
        assert all(bucket["PublicAccessBlockConfiguration"].values())
        (policy,) = [
            p for p in resources_of(synthesized, "AWS::S3::BucketPolicy").values() if p["Bucket"]["Ref"] == bucket_id
        ]
        arn = {"Fn::GetAtt": [bucket_id, "Arn"]}
        assert denies_plain_http(policy, {"s3:*"}, [arn, {"Fn::Join": ["", [arn, "/*"]]}])


# -- cdk-nag --------------------------------------------------------------------------------------------------
def acknowledgements(assembly: Path) -> dict[tuple[str, str], str]:
    """{(construct path, finding): reason}, as cdk-nag's acknowledgements land in the stack's metadata."""
    metadata = json.loads((assembly / "Updraft.metadata.json").read_text())
    return {
        (path, finding): reason
        for path, entries in metadata.items()
        for entry in entries
        if entry["type"] == ACKNOWLEDGED
        for finding, reason in entry["data"].items()
    }


ACTION_NAMED = re.compile(r"\b[a-z0-9-]+:[A-Za-z*]+\b")


def names_what_it_acknowledges(path: str, finding: str, reason: str) -> bool:
    """The reason names an action (`service:Action`) or a word of the acknowledged resource."""
    if ACTION_NAMED.search(reason):
        return True
    resource = finding.partition("[Resource::")[2] or path.rsplit("/", 1)[-1]
    words = {w.lower() for w in re.split(r"[^A-Za-z]+", resource) if len(w) >= 4}
    words -= {"partition", "region", "accountid", "arn"}
    return any(word in reason.lower() for word in words)


def test_every_acknowledgement_has_a_specific_reason(synthesized):
    found = acknowledgements(synthesized[3])
    assert found
    for (path, finding), reason in found.items():
        text = reason.strip().lower().rstrip(".")
        assert text and text not in GENERIC_REASONS, (path, finding, reason)
        assert names_what_it_acknowledges(path, finding, reason), f"{path} {finding}: reason names nothing: {reason!r}"


def test_the_specific_reason_check_rejects_vague_reasons():
    finding = "AwsSolutions::AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:us-east-1:1:instance/*]"
    assert not names_what_it_acknowledges("/Updraft/X/Role", finding, "Needed for the pipeline to work.")
    assert names_what_it_acknowledges("/Updraft/X/Role", finding, "Instance ids are only known at run time.")
    assert names_what_it_acknowledges("/Updraft/X/Role", "AwsSolutions::AwsSolutions-IAM5[Resource::*]", "ec2:X")


def test_cdk_nag_aws_solutions_is_clean(synthesized):
    reports = json.loads((synthesized[3] / "validation-report.json").read_text())["pluginReports"]
    (nag,) = [r for r in reports if r["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success" and nag["violations"] == []


# -- rewriting the allowlist ----------------------------------------------------------------------------------
def update_allowlist() -> None:
    import os
    import tempfile

    root = Path(__file__).resolve().parents[2]
    sys.path[:0] = [str(root / "functions"), str(root)]
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from stacks import config_from_cdk_json, synthesize

    with tempfile.TemporaryDirectory(prefix="updraft-least-privilege-") as scratch:
        _, everything_template, _ = synthesize_everything(Path(scratch))
    templates = {"default": grants_of(synthesize(config_from_cdk_json())), "everything": grants_of(everything_template)}
    ALLOWLIST.write_text(json.dumps({"templates": templates}, indent=1, sort_keys=True) + "\n")
    for name, found in templates.items():
        print(f"{name}: {len(found)} roles and policies, {sum(map(len, found.values()))} statements")


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit(f"usage: {UPDATE_COMMAND}")
    update_allowlist()


# -- the ledger, written by prefix ----------------------------------------------------------------------------
# Who may write which partition key prefixes of the ledger (updraft.ledger_schema); each step also its own
# `IDEMPOTENCY#<step>`. A grant of a prefix not listed here, a write without a prefix condition, or a Scan fails.
LEDGER_OWNERS = {
    "RolloutEngineFunctionsCheckReleaseRole": {"AUTO#*"},
    "RolloutEngineFunctionsAcquireLockRole": {"ROLLOUT#*"},
    "RolloutEngineFunctionsStartInventoryRole": {"ROLLOUT#*"},
    "RolloutEngineFunctionsPlanWavesRole": {"ROLLOUT#*"},
    "RolloutEngineFunctionsApplyWaveRole": {"ROLLOUT#*"},
    "RolloutEngineFunctionsCheckHostsRole": {"ROLLOUT#*"},
    "RolloutEngineFunctionsBakeRole": {"ROLLOUT#*"},
    "RolloutEngineFunctionsHaltRole": {"ROLLOUT#*"},
    "RolloutEngineFunctionsAbortRolloutRole": {"ROLLOUT#*"},
    "RolloutEngineFunctionsFinishRole": {"ROLLOUT#*", "GROUP#*"},
    "RolloutEngineFunctionsOnExecutionEndRole": {"ROLLOUT#*", "GROUP#*"},
    "RolloutEngineFunctionsOnReleaseWithdrawnRole": {"ROLLOUT#*"},
    "RolloutEngineFunctionsDetectReleaseRole": {"RELEASES#*"},
    "RolloutEngineFunctionsOnAlarmRole": set(),
    # Kill switches and requests; the check that a rollout runs reads (ConditionCheckItem) its item.
    "AccessOperator managed policy": {"CONTROL", "REQUEST#*"},
    "AccessViewer managed policy": set(),
}
STEPS = {
    "CheckRelease": "check_release",
    "AcquireLock": "acquire_lock",
    "StartInventory": "start_inventory",
    "PlanWaves": "plan_waves",
    "ApplyWave": "apply_wave",
    "CheckHosts": "check_hosts",
    "Bake": "bake",
    "Halt": "halt",
    "AbortRollout": "abort_rollout",
    "Finish": "finish",
}
LEDGER = "{Ledger.Arn}"
LEDGER_WRITE_ACTIONS = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
# Not granted on the ledger at all: no key condition can scope them.
LEDGER_UNSCOPABLE = {"dynamodb:Scan", "dynamodb:PartiQLInsert", "dynamodb:PartiQLUpdate", "dynamodb:PartiQLDelete"}


def wildcard_hits(action: str, names: set[str]) -> set[str]:
    return {name for name in names if re.fullmatch(action.replace("*", ".*"), name)}


def ledger_writes(grants: Grants) -> dict[str, set[str]]:
    """The ledger key prefixes each owner may write; an unconditioned write or a Scan shows as `<any>`."""
    owners: dict[str, set[str]] = {}
    for owner, found in grants.items():
        for statement in found:
            on_ledger = any(r == LEDGER or r == "*" or r.startswith(LEDGER + "/") for r in statement["resources"])
            if statement["effect"] != "Allow" or not on_ledger:
                continue
            actions = {
                hit for a in statement["actions"] for hit in wildcard_hits(a, LEDGER_WRITE_ACTIONS | LEDGER_UNSCOPABLE)
            }
            if not actions:
                continue
            keys = [
                values
                for operator, conditions in statement["conditions"].items()
                if operator in ("ForAllValues:StringLike", "ForAllValues:StringEquals")
                for key, values in conditions.items()
                if key == "dynamodb:LeadingKeys"
            ]
            prefixes = set(keys[0]) if len(keys) == 1 and not actions & LEDGER_UNSCOPABLE else {"<any>"}
            owners.setdefault(owner, set()).update(prefixes)
    return owners


def owned(owner: str) -> set[str]:
    """The prefixes `owner` owns, with a step's own replay records."""
    step = re.search(r"Functions(\w+)Role$", owner)
    replays = {f"IDEMPOTENCY#{STEPS[step[1]]}"} if step and step[1] in STEPS else set()
    return LEDGER_OWNERS.get(owner, set()) | replays


def ownership_problems(grants: Grants) -> list[str]:
    problems = []
    for owner, prefixes in sorted(ledger_writes(grants).items()):
        foreign = prefixes - owned(owner)
        if foreign:
            problems.append(f"{owner} may write ledger keys it does not own: {sorted(foreign)}")
    return problems


def test_each_function_writes_only_the_ledger_prefixes_it_owns(synthesized):
    assert ownership_problems(grants(synthesized)) == []


def test_each_owner_has_its_prefixes(synthesized):
    writes = ledger_writes(grants(synthesized))
    name = synthesized[0]
    for owner, prefixes in LEDGER_OWNERS.items():
        if owner in grants(synthesized):
            assert prefixes <= writes.get(owner, set()), f"[{name}] {owner} lost its ledger prefixes {prefixes}"


def ledger_statement(template: dict[str, Any], role: str) -> dict[str, Any]:
    (policy,) = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Policy" and k.startswith(f"RolloutEngineFunctions{role}RoleDefaultPolicy")
    ]
    return next(s for s in policy if "dynamodb:PutItem" in as_list(s["Action"]) and "IDEMPOTENCY" not in json.dumps(s))


def grant_control_to_the_detector(template: dict[str, Any]) -> None:
    statement = ledger_statement(template, "DetectRelease")
    statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"].append("CONTROL")


def drop_the_prefix_condition(template: dict[str, Any]) -> None:
    del ledger_statement(template, "ApplyWave")["Condition"]


def scan_the_ledger(template: dict[str, Any]) -> None:
    ledger_statement(template, "Bake")["Action"].append("dynamodb:Scan")


def write_another_steps_replays(template: dict[str, Any]) -> None:
    statement = ledger_statement(template, "Halt")
    statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"].append("IDEMPOTENCY#*")


@pytest.mark.parametrize(
    ("widen", "expected"),
    [
        (grant_control_to_the_detector, r"DetectReleaseRole may write ledger keys it does not own: \['CONTROL'\]"),
        (drop_the_prefix_condition, r"ApplyWaveRole may write ledger keys it does not own: \['<any>'\]"),
        (scan_the_ledger, r"BakeRole may write ledger keys it does not own: \['<any>'\]"),
        (write_another_steps_replays, r"HaltRole may write ledger keys it does not own: \['IDEMPOTENCY#\*'\]"),
    ],
)
def test_a_foreign_ledger_prefix_is_reported(everything, widen, expected):
    template = copy.deepcopy(everything[1])
    assert ownership_problems(grants_of(template)) == []
    widen(template)
    problems = ownership_problems(grants_of(template))
    assert any(re.search(expected, problem) for problem in problems), problems
