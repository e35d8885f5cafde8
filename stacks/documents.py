"""The SSM Command documents that run Bottlerocket's update API in each host's control container."""

from __future__ import annotations

import copy
import shlex
from pathlib import Path

import yaml
from aws_cdk import Stack
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from updraft.config import GroupPolicy, UpdraftConfig
from updraft.document_digest import document_digest

DOCUMENTS_DIR = Path(__file__).resolve().parent.parent / "ssm_documents"
DOCUMENT_KINDS = ("inventory", "apply", "verify", "rollback")
HEALTH_PLACEHOLDER = "# updraft:health-commands"
HEALTH_REPORT_SECONDS = 60  # beyond the longest command timeout, for the report to be written


def load_document(kind: str) -> dict:
    return yaml.safe_load((DOCUMENTS_DIR / f"updraft-{kind}.yaml").read_text())


def health_document(groups: list[GroupPolicy]) -> dict:
    """The health document with each group's command written into it.

    The commands are embedded per group rather than passed as a parameter: SSM substitutes parameters
    into the script as text, so an operator's command would have to survive shell quoting inside that
    substitution, and an allowedPattern of escaped commands would have to match SSM's regex dialect
    exactly. Here the only parameter is a group name, constrained to the configured ones, and each
    command is quoted once, for the shell, by shlex. A changed command deploys a new document version.
    """
    checks = {group.name: group.health_check for group in groups if group.health_check}
    if not checks:
        raise ValueError("no group has a health_check: the health document is not deployed")
    content = copy.deepcopy(load_document("health"))
    content["parameters"]["Group"]["allowedPattern"] = "^(" + "|".join(checks) + ")$"
    step = content["mainSteps"][0]["inputs"]
    step["timeoutSeconds"] = str(max(check.timeout_seconds for check in checks.values()) + HEALTH_REPORT_SECONDS)
    branches = [
        f"  {name}) limit={check.timeout_seconds}; command={shlex.quote(check.command)} ;;"
        for name, check in checks.items()
    ]
    lines = step["runCommand"]
    at = lines.index(HEALTH_PLACEHOLDER)
    step["runCommand"] = [*lines[:at], 'case "$group" in', *branches, "esac", *lines[at + 1 :]]
    return content


class CommandDocuments(Construct):
    """One `Command` document per kind, named `<stack name>-<kind>` so IAM policies can name them exactly.

    The health document is deployed only when some group has a health command. `digests` holds the SHA-256
    of each one's content (updraft.document_digest): the functions send a document only while its default
    version still has it."""

    def __init__(self, scope: Construct, construct_id: str, config: UpdraftConfig | None = None) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        contents = {kind: load_document(kind) for kind in DOCUMENT_KINDS}
        if config and any(group.health_check for group in config.groups):
            contents["health"] = health_document(config.groups)
        self.names = {kind: f"{stack.stack_name}-{kind}" for kind in contents}
        self.documents = {kind: self._document(kind, content) for kind, content in contents.items()}
        self.digests = {kind: document_digest(content) for kind, content in contents.items()}

    def _document(self, kind: str, content: dict) -> ssm.CfnDocument:
        return ssm.CfnDocument(
            self,
            kind.capitalize(),
            name=self.names[kind],
            document_type="Command",
            document_format="YAML",
            content=content,
            # A named document cannot be replaced in place; a new version replaces it on update.
            update_method="NewVersion",
        )

    def arn(self, kind: str) -> str:
        return Stack.of(self).format_arn(service="ssm", resource="document", resource_name=self.names[kind])

    def arns(self, kinds: tuple[str, ...]) -> list[str]:
        """The ARNs of those of `kinds` that are deployed."""
        return [self.arn(kind) for kind in kinds if kind in self.documents]
