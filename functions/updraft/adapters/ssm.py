"""SSM Run Command and fleet presence, batched: SendCommand takes 50 instance ids."""

from __future__ import annotations

from botocore.exceptions import ClientError

from updraft.adapters.aws import chunks, client
from updraft.domain.hosts import Invocation
from updraft.errors import CommandThrottled

SEND_COMMAND_LIMIT = 50
# Page sizes at each API's maximum: ListCommandInvocations and DescribeInstanceInformation return at most
# 50 items a call (the latter 10 when MaxResults is left out), so 10,000 hosts cost 200 calls, not 1,000.
LIST_INVOCATIONS_PAGE = 50
INSTANCE_INFORMATION_PAGE = 50
# An InstanceIds filter takes up to 100 values; 50 fill exactly one page of answers.
ONLINE_BATCH = INSTANCE_INFORMATION_PAGE
# The agent appends standard error to a plugin's output after this line.
ERROR_MARKER = "\n----------ERROR-------\n"
THROTTLING = {"ThrottlingException", "TooManyUpdates", "RequestLimitExceeded"}


def send_document(document: str, instance_ids: list[str], parameters: dict[str, str], timeout: int) -> dict[str, str]:
    """Send a document to the hosts; the command id of each host."""
    ssm = client("ssm")
    sent: dict[str, str] = {}
    for batch in chunks(sorted(instance_ids), SEND_COMMAND_LIMIT):
        try:
            response = ssm.send_command(
                DocumentName=document,
                InstanceIds=batch,
                Parameters={key: [value] for key, value in parameters.items()},
                TimeoutSeconds=timeout,
                MaxConcurrency="100%",
                MaxErrors="100%",
                Comment=f"updraft {document}"[:100],
            )
        except ClientError as error:
            if error.response["Error"]["Code"] in THROTTLING:
                raise CommandThrottled(f"SendCommand {document}: {error}") from error
            raise
        sent.update(dict.fromkeys(batch, response["Command"]["CommandId"]))
    return sent


def invocations(command_id: str) -> dict[str, Invocation]:
    """Status and output of a command on each of its hosts."""
    paginator = client("ssm").get_paginator("list_command_invocations")
    found: dict[str, Invocation] = {}
    pages = paginator.paginate(CommandId=command_id, Details=True, PaginationConfig={"PageSize": LIST_INVOCATIONS_PAGE})
    for page in pages:
        for item in page["CommandInvocations"]:
            output = (item.get("CommandPlugins") or [{}])[0].get("Output", "")
            stdout, _, stderr = output.partition(ERROR_MARKER)
            found[item["InstanceId"]] = Invocation(status=item["Status"], stdout=stdout, stderr=stderr)
    return found


def online(instance_ids: list[str]) -> set[str]:
    """The hosts whose SSM agent is connected now."""
    paginator = client("ssm").get_paginator("describe_instance_information")
    connected: set[str] = set()
    for batch in chunks(sorted(instance_ids), ONLINE_BATCH):
        filters = [{"Key": "InstanceIds", "Values": batch}]
        for page in paginator.paginate(Filters=filters, PaginationConfig={"PageSize": INSTANCE_INFORMATION_PAGE}):
            connected.update(
                item["InstanceId"] for item in page["InstanceInformationList"] if item.get("PingStatus") == "Online"
            )
    return connected
