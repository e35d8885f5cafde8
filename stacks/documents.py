"""The SSM Command documents that run Bottlerocket's update API in each host's control container."""

from __future__ import annotations

from pathlib import Path

import yaml
from aws_cdk import Stack
from aws_cdk import aws_ssm as ssm
from constructs import Construct

DOCUMENTS_DIR = Path(__file__).resolve().parent.parent / "ssm_documents"
DOCUMENT_KINDS = ("inventory", "apply", "verify", "rollback")


class CommandDocuments(Construct):
    """One `Command` document per kind, named `<stack name>-<kind>` so IAM policies can name them exactly."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.names = {kind: f"{stack.stack_name}-{kind}" for kind in DOCUMENT_KINDS}
        self.documents = {kind: self._document(kind) for kind in DOCUMENT_KINDS}

    def _document(self, kind: str) -> ssm.CfnDocument:
        content = yaml.safe_load((DOCUMENTS_DIR / f"updraft-{kind}.yaml").read_text())
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
        return [self.arn(kind) for kind in kinds]
