"""Finding the deployed stack's resources, and who is asking."""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from cli.errors import CliError, NotFound
from updraft.adapters.aws import client

OUTPUTS = {
    "RolloutStateMachineArn": "state_machine_arn",
    "LedgerTableName": "ledger_table",
    "LockTableName": "lock_table",
}


@dataclass(frozen=True)
class Deployment:
    stack: str
    state_machine_arn: str
    ledger_table: str
    lock_table: str


def find(stack: str) -> Deployment:
    """The stack's outputs (CloudFormation DescribeStacks) the command line works with."""
    try:
        described = client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as error:
        if "does not exist" in error.response["Error"].get("Message", ""):
            raise NotFound(f"stack {stack!r} not found in this account and region (--stack, UPDRAFT_STACK)") from None
        raise
    outputs = {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}
    missing = sorted(set(OUTPUTS) - set(outputs))
    if missing:
        raise CliError(f"stack {stack!r} has no output {', '.join(missing)}: is it an Updraft stack?")
    return Deployment(stack, **{field: outputs[key] for key, field in OUTPUTS.items()})


def caller() -> str:
    """Who requests: the caller's IAM identity, else the local user name."""
    try:
        return client("sts").get_caller_identity()["Arn"]
    except (BotoCoreError, ClientError):
        pass
    try:
        return getpass.getuser()
    except OSError:  # no user name in the environment or the password database
        return "operator"
