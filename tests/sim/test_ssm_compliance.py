"""The simulation's SSM Compliance (moto has none): PutComplianceItems validated as the model bounds it, refused
for resources SSM does not manage, authorised under the caller's policies on the instance and its tags; the
items listed, filtered, paged and summarised as ListComplianceItems and ListResourceComplianceSummaries answer."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from sim.aws import iam, ssm
from sim.bottlerocket import Repository
from sim.clock import VirtualClock
from sim.fleet import Fleet

ACCOUNT, REGION = "123456789012", "us-east-1"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TYPE = "Custom:BottlerocketRelease"
TAG = "updraft:group"


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    simulated = Fleet(VirtualClock(), [Repository("aws-ecs-2", "x86_64", ["1.26.0", "1.26.1"])])
    yield simulated
    simulated.close()


@pytest.fixture
def account(fleet: Fleet) -> Iterator[dict[str, Any]]:
    """Three managed hosts (two of group web, one of batch), an unmanaged instance, and two functions: one whose
    role may report compliance on web's and batch's hosts, one whose role may not report any."""
    fleet.hosts.clear()
    os.environ.update({"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": REGION})
    with mock_aws(), contextlib.ExitStack() as patched:
        for patcher in ssm.patches(fleet):
            patched.enter_context(patcher)
        ids = {"web": _launch("web"), "web2": _launch("web"), "batch": _launch("batch"), "other": _launch("other")}
        ids["unmanaged"] = _launch("web")
        for name in ("web", "web2", "batch", "other"):
            fleet.add_host(ids[name], "us-east-1a", "aws-ecs-2", "1.26.0")
        scoped = {"StringEquals": {f"aws:ResourceTag/{TAG}": ["web", "batch"]}}
        grant = {"Effect": "Allow", "Action": "ssm:PutComplianceItems", "Resource": _instances(), "Condition": scoped}
        _function("reporter", [grant])
        _function("bystander", [{"Effect": "Allow", "Action": "ssm:SendCommand", "Resource": _instances()}])
        yield {"ssm": boto3.client("ssm"), **ids}


def _launch(group: str) -> str:
    tags = [{"ResourceType": "instance", "Tags": [{"Key": TAG, "Value": group}]}]
    ec2 = boto3.client("ec2")
    return ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, TagSpecifications=tags)["Instances"][0][
        "InstanceId"
    ]


def _instances() -> str:
    return f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/*"


def _function(name: str, statements: list[dict[str, Any]]) -> None:
    client = boto3.client("iam")
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:*"}]}
    role = client.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    policy = json.dumps({"Version": "2012-10-17", "Statement": statements})
    client.put_role_policy(RoleName=name, PolicyName="grants", PolicyDocument=policy)
    code = {"ZipFile": b"x"}
    boto3.client("lambda").create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="x.h", Code=code)


def item(status: str = "NON_COMPLIANT", severity: str = "LOW", **fields: Any) -> dict[str, Any]:
    return {
        "Id": "BottlerocketRelease",
        "Title": "Bottlerocket 1.26.0",
        "Status": status,
        "Severity": severity,
    } | fields


def put(client: Any, instance_id: str, *items: dict[str, Any], at: datetime = T0, **request: Any) -> None:
    client.put_compliance_items(
        **{
            "ResourceId": instance_id,
            "ResourceType": "ManagedInstance",
            "ComplianceType": TYPE,
            "ExecutionSummary": {"ExecutionTime": at, "ExecutionId": "r-1", "ExecutionType": "Custom:Updraft"},
            "Items": list(items) or [item()],
            "UploadType": "COMPLETE",
            **request,
        }
    )


def listed(client: Any, instance_id: str, **request: Any) -> list[dict[str, Any]]:
    return client.list_compliance_items(ResourceIds=[instance_id], ResourceTypes=["ManagedInstance"], **request)[
        "ComplianceItems"
    ]


def refused(call: Any, code: str) -> str:
    with pytest.raises(ClientError) as error:
        call()
    assert error.value.response["Error"]["Code"] == code, error.value.response["Error"]
    return error.value.response["Error"]["Message"]


# -- storing and reading -------------------------------------------------------------------------------------
def test_a_complete_upload_replaces_the_resource_s_items_of_its_type(account):
    client, host = account["ssm"], account["web"]
    put(client, host, item(Details={"RunningVersion": "1.26.0"}), ItemContentHash="a")
    put(client, host, item("COMPLIANT", "INFORMATIONAL", Details={"RunningVersion": "1.26.1"}), ItemContentHash="b")

    (found,) = listed(client, host)
    assert (found["Status"], found["Severity"], found["Details"]) == (
        "COMPLIANT",
        "INFORMATIONAL",
        {"RunningVersion": "1.26.1"},
    )
    assert (found["ResourceId"], found["ResourceType"], found["ComplianceType"]) == (host, "ManagedInstance", TYPE)
    assert found["ExecutionSummary"] == {
        "ExecutionTime": T0,
        "ExecutionId": "r-1",
        "ExecutionType": "Custom:Updraft",
    }


def test_a_matching_content_hash_is_ignored_time_and_all(account):
    client, host = account["ssm"], account["web"]
    put(client, host, item(), ItemContentHash="same")
    put(client, host, item("COMPLIANT"), at=T0 + timedelta(hours=1), ItemContentHash="same")

    (found,) = listed(client, host)
    assert (found["Status"], found["ExecutionSummary"]["ExecutionTime"]) == ("NON_COMPLIANT", T0)
    assert ssm.compliance(ACCOUNT, REGION).puts == 1


def test_items_are_filtered_and_one_resource_is_asked_at_a_time(account):
    client, host = account["ssm"], account["web"]
    put(client, host, item())
    put(client, host, item("COMPLIANT"), ComplianceType="Custom:Other")

    status = [{"Key": "Status", "Values": ["COMPLIANT"], "Type": "EQUAL"}]
    assert [i["ComplianceType"] for i in listed(client, host, Filters=status)] == ["Custom:Other"]
    begins = [{"Key": "ComplianceType", "Values": ["Custom:B"], "Type": "BEGIN_WITH"}]
    assert [i["ComplianceType"] for i in listed(client, host, Filters=begins)] == [TYPE]
    refused(lambda: listed(client, host, Filters=[{"Key": "Title", "Values": ["x"]}]), "InvalidFilter")
    both = [host, account["web2"]]
    refused(lambda: client.list_compliance_items(ResourceIds=both), "ValidationException")
    refused(lambda: listed(client, "i-0123456789abcdef0"), "InvalidResourceId")
    assert listed(client, account["web2"]) == []


def test_summaries_count_by_status_and_severity_and_page_by_fifty_at_most(account):
    client = account["ssm"]
    put(client, account["web"], item("COMPLIANT", "INFORMATIONAL"))
    put(client, account["web2"], item("NON_COMPLIANT", "MEDIUM"), item("COMPLIANT", "LOW", Id="other"))
    put(client, account["batch"], item("NON_COMPLIANT", "CRITICAL"))

    first = client.list_resource_compliance_summaries(MaxResults=2)
    rest = client.list_resource_compliance_summaries(MaxResults=2, NextToken=first["NextToken"])
    summaries = {
        s["ResourceId"]: s for s in first["ResourceComplianceSummaryItems"] + rest["ResourceComplianceSummaryItems"]
    }

    assert "NextToken" not in rest and len(summaries) == 3
    mixed = summaries[account["web2"]]
    assert (mixed["Status"], mixed["OverallSeverity"]) == ("NON_COMPLIANT", "MEDIUM")
    assert (
        mixed["CompliantSummary"]["CompliantCount"] == 1
        and mixed["CompliantSummary"]["SeveritySummary"]["LowCount"] == 1
    )
    assert mixed["NonCompliantSummary"]["NonCompliantCount"] == 1
    assert mixed["NonCompliantSummary"]["SeveritySummary"]["MediumCount"] == 1
    non_compliant = [{"Key": "Status", "Values": ["NON_COMPLIANT"], "Type": "EQUAL"}]
    found = client.list_resource_compliance_summaries(Filters=non_compliant)["ResourceComplianceSummaryItems"]
    assert sorted(s["ResourceId"] for s in found) == sorted([account["web2"], account["batch"]])
    refused(lambda: client.list_resource_compliance_summaries(NextToken="nonsense"), "InvalidNextToken")
    refused(lambda: client.list_resource_compliance_summaries(MaxResults=51), "ValidationException")


def test_a_new_account_has_no_items(account):
    put(account["ssm"], account["web"])
    ssm.forget(ACCOUNT, REGION)  # what World.reset does for the next test
    assert listed(account["ssm"], account["web"]) == []


# -- what the service refuses ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "member"),
    [
        ({"Items": [item(Title="t" * 501)]}, "items.1.member.title"),
        ({"Items": [item(Details={"k" * 65: "v"})]}, "items.1.member.details.key"),
        ({"Items": [item(Details={"Reason": "r" * 4097})]}, "items.1.member.details.Reason"),
        ({"Items": [item(Severity="SEVERE")]}, "items.1.member.severity"),
        ({"Items": [item(Status="FINE")]}, "items.1.member.status"),
        ({"Items": [item()] * 10_001}, "'items'"),
        ({"ComplianceType": "Custom:x"}, "complianceType"),  # a name of two characters at least
        ({"ComplianceType": "Custom:Bottlerocket Release"}, "complianceType"),
        ({"ComplianceType": "C" * 101}, "complianceType"),
        ({"ExecutionSummary": {"ExecutionTime": T0, "ExecutionId": "r" * 101}}, "executionSummary.executionId"),
        ({"ExecutionSummary": {"ExecutionTime": T0, "ExecutionType": "t" * 51}}, "executionSummary.executionType"),
        ({"ItemContentHash": "h" * 257}, "itemContentHash"),
        ({"ResourceId": "i-" + "0" * 99}, "resourceId"),
    ],
)
def test_what_the_model_does_not_allow_is_refused_naming_the_member(account, change, member):
    message = refused(lambda: put(account["ssm"], account["web"], **change), "ValidationException")
    assert member in message and "failed to satisfy constraint" in message
    assert listed(account["ssm"], account["web"]) == []


def test_only_managed_instances_the_fleet_knows_take_items(account):
    client = account["ssm"]
    refused(lambda: put(client, account["web"], ResourceType="Instance"), "InvalidResourceType")
    refused(lambda: put(client, account["unmanaged"]), "InvalidResourceId")  # EC2 knows it; SSM does not
    refused(lambda: put(client, "mi-0123456789abcdef0"), "InvalidResourceId")
    boto3.client("ec2").terminate_instances(InstanceIds=[account["web2"]])
    refused(lambda: put(client, account["web2"]), "InvalidResourceId")
    refused(lambda: put(client, account["web"], UploadType="PARTIAL"), "ValidationException")


def test_a_resource_takes_ten_custom_types_at_most(account):
    client, host = account["ssm"], account["web"]
    for n in range(10):
        put(client, host, ComplianceType=f"Custom:Type{n}")
    put(client, host, ComplianceType="Custom:Type3")  # one it has: replaced
    refused(lambda: put(client, host, ComplianceType="Custom:Eleventh"), "ComplianceTypeCountLimitExceededException")
    assert len(listed(client, host)) == 10


# -- who may put them ---------------------------------------------------------------------------------------
def test_a_role_reports_only_on_the_hosts_its_tag_condition_names(account):
    client = account["ssm"]
    with iam.acting_as("reporter"):
        put(client, account["web"])
        put(client, account["batch"])
        message = refused(lambda: put(client, account["other"]), "AccessDeniedException")
    assert message == (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/reporter/reporter is not authorized to perform: "
        f"ssm:PutComplianceItems on resource: arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{account['other']} "
        "because no identity-based policy allows the ssm:PutComplianceItems action"
    )
    assert listed(client, account["other"]) == []
    assert len(listed(client, account["web"])) == 1


def test_a_role_without_the_grant_is_refused(account):
    with iam.acting_as("bystander"):
        refused(lambda: put(account["ssm"], account["web"]), "AccessDeniedException")
    assert listed(account["ssm"], account["web"]) == []


def test_an_instance_nobody_manages_is_refused_to_a_role_before_it_is_looked_up(account):
    with iam.acting_as("reporter"):  # no tags to match: IAM refuses before SSM would say it does not exist
        refused(lambda: put(account["ssm"], "i-0123456789abcdef0"), "AccessDeniedException")
