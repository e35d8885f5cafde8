"""What the command line reports as a one-line error, and the exit code each kind of error ends with."""

from __future__ import annotations


class CliError(Exception):
    """An error the operator can act on; its message is the whole report."""

    exit_code = 1


class UsageProblem(CliError):
    """Bad arguments or configuration: a group that is not configured, a malformed version."""

    exit_code = 2


class NotFound(CliError):
    """The stack, the rollout or the group's running rollout does not exist."""

    exit_code = 1


class Refused(CliError):
    """The request is well formed but the deployment's state forbids it (a closed rollback window)."""

    exit_code = 1
