"""SSM Run Command and fleet presence, batched: SendCommand takes 50 instance ids. A document is sent only
as the stack deployed it: its default version's content must have the digest synth fixed, and that version,
by number, is the one sent."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import datetime, timedelta

from botocore.exceptions import ClientError

from updraft.adapters.aws import chunks, client
from updraft.document_digest import document_digest
from updraft.domain.host_actions import Invocation
from updraft.errors import CommandThrottled, DocumentChanged

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


def comment(document: str, key: str) -> str:
    """What a command's Comment says: the document and the step's send key (SSM keeps 100 characters)."""
    return f"updraft {key} {document}"[:100]


# The versions checked in the current scope (a step's invocation): (document, digest) -> version number.
_CHECKED: ContextVar[dict[tuple[str, str], str] | None] = ContextVar("checked_documents", default=None)


@contextlib.contextmanager
def checked_documents() -> Iterator[None]:
    """Within it, each document is read (GetDocument) once, however many sends name it."""
    token = _CHECKED.set({})
    try:
        yield
    finally:
        _CHECKED.reset(token)


def checked_version(document: str, sha256: str) -> str:
    """The number of the document's default version, once its content is shown to have digest `sha256`.

    GetDocument with DocumentFormat JSON returns the content as JSON whatever format it was created in, so a
    YAML document hashes as the stack hashed its content; the answer names the version it read
    (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetDocument.html)."""
    checked = _CHECKED.get()
    if checked is not None and (document, sha256) in checked:
        return checked[(document, sha256)]
    answer = client("ssm").get_document(Name=document, DocumentFormat="JSON")
    version, found = answer["DocumentVersion"], document_digest(json.loads(answer["Content"]))
    if found != sha256:
        raise DocumentChanged(
            f"SSM document {document} version {version} (its default) has SHA-256 {found}, "
            f"deployed {sha256 or '(none)'}: nothing was sent"
        )
    if checked is not None:
        checked[(document, sha256)] = version
    return version


def send_document(
    document: str,
    instance_ids: list[str],
    parameters: dict[str, str],
    timeout: int,
    key: str = "",
    *,
    sha256: str,
) -> dict[str, str]:
    """Send a document to the hosts, its comment naming `key`; the command id of each host. It is sent by the
    number of the version checked: a version's content never changes (UpdateDocument adds a version,
    https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_UpdateDocument.html), so what runs
    is what was checked even if the default moves meanwhile."""
    if not instance_ids:
        return {}
    version = checked_version(document, sha256)
    ssm = client("ssm")
    sent: dict[str, str] = {}
    for batch in chunks(sorted(instance_ids), SEND_COMMAND_LIMIT):
        try:
            response = ssm.send_command(
                DocumentName=document,
                DocumentVersion=version,
                InstanceIds=batch,
                Parameters={key: [value] for key, value in parameters.items()},
                TimeoutSeconds=timeout,
                MaxConcurrency="100%",
                MaxErrors="100%",
                Comment=comment(document, key) if key else f"updraft {document}"[:100],
            )
        except ClientError as error:
            if error.response["Error"]["Code"] in THROTTLING:
                raise CommandThrottled(f"SendCommand {document}: {error}") from error
            raise
        sent.update(dict.fromkeys(batch, response["Command"]["CommandId"]))
    return sent


# Between the time a step records a send and SSM's own timestamp of it: clocks of two services, and the
# step's entry time, which precedes the send by the step's own work.
SENT_AFTER_MARGIN = timedelta(minutes=15)


def sent_with(document: str, key: str, not_before: datetime) -> dict[str, str]:
    """The commands of `document` already sent with `key` since `not_before`: the command id of each host."""
    paginator = client("ssm").get_paginator("list_commands")
    filters = [
        {"key": "DocumentName", "value": document},
        {"key": "InvokedAfter", "value": (not_before - SENT_AFTER_MARGIN).strftime("%Y-%m-%dT%H:%M:%SZ")},
    ]
    wanted, found = comment(document, key), {}
    try:
        for page in paginator.paginate(Filters=filters):
            for command in page["Commands"]:
                if command.get("Comment") == wanted:
                    found.update(dict.fromkeys(command.get("InstanceIds", []), command["CommandId"]))
    except ClientError as error:
        if error.response["Error"]["Code"] in THROTTLING:
            raise CommandThrottled(f"ListCommands {document}: {error}") from error
        raise
    return found


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
