"""No lost events, read from the template: every rule target and every asynchronously invoked function ends
its failures on one encrypted, alarmed queue that only the stack's rules and those functions may write; the
rules on the default bus take only this account's events; EventBridge's role serves only the release rules."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from stacks import synthesize
from updraft.config import UpdraftConfig

ACCOUNT, REGION = "123456789012", "us-east-1"
ASYNC_FUNCTIONS = {"detect_release", "on_release_withdrawn", "on_execution_end", "on_alarm"}


@pytest.fixture(scope="module")
def full(config: UpdraftConfig, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """cdk.json's groups (one with an alarm rollback window) with release detection on: every rule there is."""
    root = tmp_path_factory.mktemp("trust") / "root.json"
    root.write_text(json.dumps({"signed": {"_type": "root", "version": 1}, "signatures": []}))
    detection = {"trusted_root_file": str(root), "trusted_root_sha512": hashlib.sha512(root.read_bytes()).hexdigest()}
    return synthesize(UpdraftConfig.model_validate({**config.model_dump(mode="json"), "detection": detection}))


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r["Properties"] for k, r in template["Resources"].items() if r["Type"] == kind}


def queue_of(template: dict[str, Any]) -> str:
    (queue,) = of_type(template, "AWS::SQS::Queue")
    return queue


def handlers(template: dict[str, Any]) -> dict[str, str]:
    """Logical id -> handler module name, for every function."""
    return {k: f["Handler"].split(".")[-2] for k, f in of_type(template, "AWS::Lambda::Function").items()}


def test_the_queue_is_encrypted_keeps_messages_14_days_and_takes_only_tls(full):
    queue = queue_of(full)
    properties = of_type(full, "AWS::SQS::Queue")[queue]
    assert properties["SqsManagedSseEnabled"] is True
    assert properties["MessageRetentionPeriod"] == 14 * 24 * 3600
    (policy,) = of_type(full, "AWS::SQS::QueuePolicy").values()
    assert policy["Queues"] == [{"Ref": queue}]
    (deny,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert (deny["Action"], deny["Condition"]) == ("sqs:*", {"Bool": {"aws:SecureTransport": "false"}})


def test_only_the_stacks_rules_may_send_to_the_queue(full):
    (policy,) = of_type(full, "AWS::SQS::QueuePolicy").values()
    allowed = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    sources = set()
    for statement in allowed:
        assert statement["Principal"] == {"Service": "events.amazonaws.com"}
        assert statement["Action"] == "sqs:SendMessage"
        assert statement["Resource"] == {"Fn::GetAtt": [queue_of(full), "Arn"]}
        (rule, attribute) = statement["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::GetAtt"]
        assert attribute == "Arn"
        sources.add(rule)
    delivering = {
        k for k, r in of_type(full, "AWS::Events::Rule").items() if any("DeadLetterConfig" in t for t in r["Targets"])
    }
    assert sources == delivering


def test_every_lambda_and_state_machine_target_has_the_queue_as_its_dead_letter_queue(full):
    queue = {"Arn": {"Fn::GetAtt": [queue_of(full), "Arn"]}}
    (topic,) = of_type(full, "AWS::SNS::Topic")
    targets = [t for r in of_type(full, "AWS::Events::Rule").values() for t in r["Targets"]]
    ours = [t for t in targets if t["Arn"] != {"Ref": topic}]  # the topic is SNS's to deliver, no DLQ
    assert len(ours) == 6  # schedule, withdrawn, two release starts, execution ends, group alarms
    for target in ours:
        assert target["DeadLetterConfig"] == queue, target["Arn"]
        assert "RetryPolicy" in target


def test_each_asynchronously_invoked_function_sends_its_failed_runs_to_the_queue(full):
    names = handlers(full)
    configs = {names[c["FunctionName"]["Ref"]]: c for c in of_type(full, "AWS::Lambda::EventInvokeConfig").values()}
    assert set(configs) == ASYNC_FUNCTIONS
    for config in configs.values():
        assert config["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [queue_of(full), "Arn"]}}}
        assert (config["MaximumRetryAttempts"], config["Qualifier"]) == (2, "$LATEST")


def test_only_those_functions_roles_may_send_and_only_to_the_queue(full):
    functions = of_type(full, "AWS::Lambda::Function")
    role_of = {f["Role"]["Fn::GetAtt"][0]: handlers(full)[k] for k, f in functions.items()}
    senders = set()
    for policy in of_type(full, "AWS::IAM::Policy").values():
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if any(a.startswith("sqs:") for a in actions):
                assert actions == ["sqs:SendMessage"]
                assert statement["Resource"] == {"Fn::GetAtt": [queue_of(full), "Arn"]}
                senders |= {role_of[r["Ref"]] for r in policy["Roles"]}
    assert senders == ASYNC_FUNCTIONS


def test_the_queue_alarm_pages_on_the_first_message(full):
    (topic,) = of_type(full, "AWS::SNS::Topic")
    (alarm,) = [a for a in of_type(full, "AWS::CloudWatch::Alarm").values() if a.get("Namespace") == "AWS/SQS"]
    assert alarm["AlarmName"] == "Updraft-undelivered-events"
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_of(full), "QueueName"]}}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
    assert alarm["AlarmActions"] == [{"Ref": topic}]
    assert full["Outputs"]["UndeliveredEventsAlarmName"]


@pytest.mark.parametrize("which", ["cdk.json", "with detection"])
def test_every_rule_on_the_default_bus_matching_aws_events_takes_only_this_accounts(which, template, full):
    rules = of_type(template if which == "cdk.json" else full, "AWS::Events::Rule").values()
    on_default = [r for r in rules if "EventBusName" not in r and "EventPattern" in r]
    from_aws = [r for r in on_default if any(s.startswith("aws.") for s in r["EventPattern"]["source"])]
    assert len(from_aws) == 2  # execution ends, group alarms
    for rule in from_aws:
        assert rule["EventPattern"]["account"] == [ACCOUNT], rule["Description"]


def test_eventbridges_role_serves_only_the_release_rules_of_this_account(full):
    rules = {
        f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{r['EventBusName']}/{r['Name']}": r
        for r in of_type(full, "AWS::Events::Rule").values()
        if "Name" in r and "EventBusName" in r
    }
    assert len(rules) == 2  # staging and prod start on releases
    trusting = {k: r for k, r in of_type(full, "AWS::IAM::Role").items() if "events.amazonaws.com" in json.dumps(r)}
    (role,) = trusting
    (statement,) = trusting[role]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    arns = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    # Built from the rules' names: the same ARN EventBridge gives them, without the role needing the rules.
    assert {"".join("aws" if p == {"Ref": "AWS::Partition"} else p for p in a["Fn::Join"][1]) for a in arns} == set(
        rules
    )
    for rule in rules.values():
        (target,) = rule["Targets"]
        assert target["RoleArn"] == {"Fn::GetAtt": [role, "Arn"]}


def test_the_trust_bucket_takes_writes_from_the_detector_alone(full):
    (bucket,) = of_type(full, "AWS::S3::Bucket")
    (policy,) = of_type(full, "AWS::S3::BucketPolicy").values()
    statements = policy["PolicyDocument"]["Statement"]
    (writes,) = [s for s in statements if s.get("Sid") == "OnlyTheDetectorWritesTrust"]
    assert writes["Effect"] == "Deny" and writes["Principal"] == {"AWS": "*"}
    assert {"s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"} <= set(writes["Action"])
    assert not any(a.startswith(("s3:Get", "s3:List", "s3:PutBucket")) for a in writes["Action"])
    assert writes["Resource"] == {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/*"]]}
    (detector,) = [k for k, name in handlers(full).items() if name == "detect_release"]
    role = of_type(full, "AWS::Lambda::Function")[detector]["Role"]
    assert writes["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": role}}


def test_the_trust_bucket_expires_old_versions_and_abandoned_uploads(full):
    (bucket,) = of_type(full, "AWS::S3::Bucket").values()
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 90, "NewerNoncurrentVersions": 10}
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert "ExpirationInDays" not in rule  # current versions, the trusted metadata itself, never expire


def test_the_template_deploys_without_a_cycle(full):
    # CloudFormation refuses a template whose resources need each other; follow every reference.
    resources = full["Resources"]

    def references(value: Any) -> set[str]:
        if isinstance(value, dict):
            found = set()
            if "Ref" in value and value["Ref"] in resources:
                found.add(value["Ref"])
            if "Fn::GetAtt" in value:
                found.add(value["Fn::GetAtt"][0])
            for item in value.values():
                found |= references(item)
            return found
        if isinstance(value, list):
            return set().union(*(references(v) for v in value)) if value else set()
        return set()

    edges = {k: references(r.get("Properties", {})) | set(r.get("DependsOn", [])) for k, r in resources.items()}
    done: set[str] = set()

    def visit(node: str, path: tuple[str, ...]) -> None:
        assert node not in path, f"cycle: {' -> '.join((*path, node))}"
        if node in done:
            return
        for nxt in edges.get(node, ()):
            visit(nxt, (*path, node))
        done.add(node)

    for node in edges:
        visit(node, ())
