"""Documents are sent only as the stack deployed them: one changed out of band (UpdateDocument, then
UpdateDocumentDefaultVersion, as someone allowed to edit documents but not to send commands would) is refused
before any host runs it; a new version with the same content is sent, by its number."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError

from sim.world import World
from tests.integration.conftest import assert_all_final, assert_calls_granted, states
from updraft.adapters import ssm as ssm_adapter

pytestmark = pytest.mark.integration

OLD, NEW = "1.26.0", "1.26.1"


class Documents:
    """The stack's documents as an intruder (or an operator) sees them through the SSM API."""

    def __init__(self, world: World) -> None:
        self.world, self.ssm = world, boto3.client("ssm")
        self._defaults: dict[str, str] = {}

    def name(self, kind: str) -> str:
        return self.world.outputs[f"{kind.capitalize()}DocumentName"]

    def content(self, kind: str) -> dict[str, Any]:
        return json.loads(self.ssm.get_document(Name=self.name(kind), DocumentFormat="JSON")["Content"])

    def replace(self, kind: str, content: str, document_format: str = "JSON") -> str:
        """A new version with this content, made the default; its number."""
        name = self.name(kind)
        self._defaults.setdefault(name, self.ssm.describe_document(Name=name)["Document"]["DefaultVersion"])
        version = self.ssm.update_document(
            Name=name, Content=content, DocumentVersion="$LATEST", DocumentFormat=document_format
        )["DocumentDescription"]["DocumentVersion"]
        self.ssm.update_document_default_version(Name=name, DocumentVersion=version)
        return version

    def restore(self) -> None:
        """The deployed versions the defaults again, the versions added since deleted."""
        for name, default in self._defaults.items():
            self.ssm.update_document_default_version(Name=name, DocumentVersion=default)
            latest = int(self.ssm.describe_document(Name=name)["Document"]["LatestVersion"])
            for version in range(int(default) + 1, latest + 1):
                self.ssm.delete_document(Name=name, DocumentVersion=str(version))


@pytest.fixture
def documents(world: World) -> Iterator[Documents]:
    # The module's deployment is shared by its tests: each leaves the documents as deployed.
    stack_documents = Documents(world)
    yield stack_documents
    stack_documents.restore()


def tampered(content: dict[str, Any]) -> dict[str, Any]:
    """The document with a line of the intruder's at the top of its script."""
    changed = copy.deepcopy(content)
    changed["mainSteps"][0]["inputs"]["runCommand"].insert(0, "echo the intruder was here >&2")
    return changed


def emitted(output: str, name: str) -> list[dict[str, Any]]:
    """The CloudWatch embedded-metric-format records of metric `name` the functions printed."""
    found = []
    for line in output.splitlines():
        record = json.loads(line) if line.startswith("{") else {}
        for directive in record.get("_aws", {}).get("CloudWatchMetrics", []):
            if any(metric["Name"] == name for metric in directive["Metrics"]):
                found.append({"namespace": directive["Namespace"], "value": record[name], "record": record})
    return found


def commands_of(world: World, name: str) -> list[Any]:
    return [command for command in world.fleet.commands.values() if command.document_name == name]


def step_failures(world: World, arn: str, error: str) -> int:
    failed = [event.get("taskFailedEventDetails", {}) for event in world.history(arn) if event["type"] == "TaskFailed"]
    return sum(1 for details in failed if details.get("error") == error)


def test_a_changed_apply_document_is_refused_and_no_host_runs_it(world, documents, template, capsys):
    ids = world.launch("web", 6)
    changed = documents.replace("apply", json.dumps(tampered(documents.content("apply"))))

    execution = world.rollout("web", NEW)

    assert (execution.status, execution.error) == ("FAILED", "Updraft.RolloutFailed")
    assert step_failures(world, execution.arn, "DocumentChanged") == 1  # not retried as if transient
    record = world.rollout_record(execution.name)
    assert record["status"] == "failed"
    assert "DocumentChanged" in record["error"] and f"{documents.name('apply')} version {changed}" in record["error"]
    hosts = world.host_records(execution.name)
    assert_all_final(hosts)
    assert states(hosts) == dict.fromkeys(ids, "skipped")  # planned, never sent anything
    assert all("DocumentChanged" in hosts[i]["note"] for i in ids)
    assert set(world.versions().values()) == {OLD}
    assert all(world.fleet.hosts[i].version_lock != NEW for i in ids)
    assert commands_of(world, documents.name("apply")) == []  # no apply at all, of any version
    inventory = commands_of(world, documents.name("inventory"))
    assert inventory and {command.document_version for command in inventory} == {"1"}  # the deployed version
    [metric] = emitted(capsys.readouterr().out, "DocumentChanged")
    assert metric["namespace"] == "Updraft" and metric["value"] in (1, 1.0, [1.0])
    assert world.lock_holder("web") is None
    assert_calls_granted(world, template)


def test_a_changed_inventory_document_stops_the_rollout_before_any_host_is_planned(world, documents):
    ids = world.launch("web", 3)
    documents.replace("inventory", json.dumps(tampered(documents.content("inventory"))))

    execution = world.rollout("web", NEW)

    assert execution.status == "FAILED"
    assert "DocumentChanged" in world.rollout_record(execution.name)["error"]
    assert world.host_records(execution.name) == {}  # refused before the plan: no host was touched
    assert world.fleet.commands == {}
    assert set(world.versions().values()) == {OLD} and len(ids) == 3


def test_a_new_version_of_the_same_content_is_sent_by_its_number(world, documents, template):
    ids = world.launch("web", 3)
    # The same document re-uploaded as YAML, keys in another order: another version, the same content.
    content = documents.content("apply")
    reordered = dict(reversed(list(content.items())))
    version = documents.replace("apply", yaml.safe_dump(reordered, sort_keys=False), document_format="YAML")
    assert version != "1"

    execution = world.rollout("web", NEW)

    assert execution.status == "SUCCEEDED", execution.error
    assert states(world.host_records(execution.name)) == dict.fromkeys(ids, "updated")
    assert {command.document_version for command in commands_of(world, documents.name("apply"))} == {version}
    # Each step reads a document once however many sends name it: never more reads than sends.
    assert 0 < world.api_calls["ssm:GetDocument"] <= world.api_calls["ssm:SendCommand"]
    assert_calls_granted(world, template)


def test_a_default_moved_between_the_check_and_the_send_does_not_run(world, documents, monkeypatch):
    [host] = world.launch("web", 1)
    tampered_apply = json.dumps(tampered(documents.content("apply")))
    real_check, moved = ssm_adapter.checked_version, []

    def check_then_race(document: str, sha256: str) -> str:
        version = real_check(document, sha256)
        if document == documents.name("apply") and not moved:  # right after the check, before the send
            moved.append(documents.replace("apply", tampered_apply))
        return version

    monkeypatch.setattr(ssm_adapter, "checked_version", check_then_race)

    execution = world.rollout("web", NEW)

    assert execution.status == "SUCCEEDED", execution.error
    assert moved == ["2"] and world.versions()[host] == NEW
    assert [command.document_version for command in commands_of(world, documents.name("apply"))] == ["1"]


def test_the_fleet_runs_the_version_a_command_names(world, documents):
    [host] = world.launch("web", 1)
    name = documents.name("inventory")
    deployed = documents.content("inventory")
    second = copy.deepcopy(deployed)
    second["mainSteps"][0]["inputs"]["runCommand"] = ["echo second"]
    documents.ssm.update_document(Name=name, Content=json.dumps(second), DocumentVersion="$LATEST")
    ssm = documents.ssm

    def ran(**version: str) -> tuple[str, list[str]]:
        command_id = ssm.send_command(DocumentName=name, InstanceIds=[host], **version)["Command"]["CommandId"]
        command = world.fleet.commands[command_id]
        return command.document_version, command.commands

    script = deployed["mainSteps"][0]["inputs"]["runCommand"]
    assert ran() == ran(DocumentVersion="$DEFAULT") == ran(DocumentVersion="1") == ("1", script)
    assert ran(DocumentVersion="$LATEST") == ran(DocumentVersion="2") == ("2", ["echo second"])
    with pytest.raises(ClientError) as refused:
        ssm.send_command(DocumentName=name, InstanceIds=[host], DocumentVersion="9")
    assert refused.value.response["Error"]["Code"] == "InvalidDocumentVersion"
