"""Each host's Bottlerocket currency in SSM Compliance, as the deployed functions report it on the simulated
fleet: one `Custom:BottlerocketRelease` item per instance, written after the plan and when the host reaches a
final state, replaced (never piled up) by the next rollout, and only by the roles granted it."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError

from sim.aws.iam import acting_as
from sim.bottlerocket import Fault
from sim.compliance import ComplianceStore
from sim.service_limits import LimitRefused
from tests.integration.conftest import assert_calls_granted, once, states, waves_of

pytestmark = pytest.mark.integration

OLD, NEW, NEWER = "1.26.0", "1.26.1", "1.27.0"
TYPE = "Custom:BottlerocketRelease"


def items(instance_id: str) -> list[dict[str, Any]]:
    """The instance's Bottlerocket items, as SSM lists them to the harness (the account's administrator)."""
    ssm = boto3.client("ssm")
    return ssm.list_compliance_items(
        ResourceIds=[instance_id],
        ResourceTypes=["ManagedInstance"],
        Filters=[{"Key": "ComplianceType", "Values": [TYPE], "Type": "EQUAL"}],
    )["ComplianceItems"]


def item(instance_id: str) -> dict[str, Any]:
    (only,) = items(instance_id)  # one item per instance, whatever came before
    return only


def said(instance_id: str) -> tuple[str, str, str, str]:
    found = item(instance_id)
    details = found["Details"]
    return found["Status"], details["RunningVersion"], details["TargetVersion"], details["HostState"]


def deployed_function(handler_module: str) -> str:
    functions = boto3.client("lambda").list_functions()["Functions"]
    (name,) = [f["FunctionName"] for f in functions if f["Handler"].split(".")[-2] == handler_module]
    return name


def test_after_a_succeeded_rollout_every_updated_host_is_compliant_with_the_target(world, template):
    ids = world.launch("web", 4)

    execution = world.rollout("web", NEW)

    assert execution.status == "SUCCEEDED"
    records = world.host_records(execution.name)
    for instance_id in ids:
        found = item(instance_id)
        assert (found["Status"], found["Severity"]) == ("COMPLIANT", "INFORMATIONAL")
        assert found["Details"] == {
            "RunningVersion": NEW,
            "TargetVersion": NEW,
            "RolloutId": execution.name,
            "HostState": "updated",
            "Reason": records[instance_id]["note"],
        }
        summary = found["ExecutionSummary"]
        assert (summary["ExecutionId"], summary["ExecutionType"]) == (execution.name, "Custom:Updraft")
        # The step's clock (virtual time) when the host was recorded updated.
        assert summary["ExecutionTime"] == datetime.fromisoformat(records[instance_id]["updated_at"])
    assert world.api_calls["ssm:PutComplianceItems"] == 2 * len(ids)  # planned, then updated
    assert_calls_granted(world, template)  # PutComplianceItems included


def test_after_the_plan_planned_hosts_are_behind_and_a_current_one_is_compliant(world):
    behind = world.launch("web", 3)
    (current,) = world.launch("web", 1, version=NEW)
    (offline,) = world.launch("web", 1)
    world.fleet.hosts[offline].online_at = float("inf")
    seen: dict[str, tuple[str, str, str, str]] = {}

    def look(step_input: dict[str, Any], result: dict[str, Any]) -> None:
        seen.update({i: said(i) for i in [*behind, current, offline]})

    world.after_step("plan_waves", once(lambda _, result: result["progress"]["done"], look))
    execution = world.rollout("web", NEW)

    assert {seen[i] for i in behind} == {("NON_COMPLIANT", OLD, NEW, "pending")}
    assert seen[current] == ("COMPLIANT", NEW, NEW, "skipped")
    assert seen[offline] == ("NON_COMPLIANT", "unknown", NEW, "skipped")
    assert item(offline)["Details"]["Reason"] == "SSM agent not online"
    assert item(offline)["ExecutionSummary"]["ExecutionTime"] == datetime.fromisoformat(
        world.rollout_record(execution.name)["started_at"]
    )
    # Then the updates: the planned hosts are compliant, the others as the plan left them.
    assert {said(i) for i in behind} == {("COMPLIANT", NEW, NEW, "updated")}
    assert said(current) == ("COMPLIANT", NEW, NEW, "skipped")


def test_after_a_halt_a_rolled_back_host_and_the_skipped_ones_are_non_compliant(world):
    world.repository.bad_releases[NEWER] = Fault.BOOT_FALLBACK
    ids = world.launch("web", 6)
    canary = waves_of(world, ids)[0][0]

    execution = world.rollout("web", NEWER)

    assert execution.error == "Updraft.RolloutHalted"
    records = world.host_records(execution.name)
    rolled_back = item(canary)
    assert said(canary) == ("NON_COMPLIANT", OLD, NEWER, "rolled-back")
    assert rolled_back["Severity"] == "MEDIUM"
    assert rolled_back["Details"]["Reason"] == records[canary]["note"]
    left = [i for i in ids if i != canary]
    assert {states(records)[i] for i in left} == {"skipped"}
    assert {said(i) for i in left} == {("NON_COMPLIANT", OLD, NEWER, "skipped")}
    assert {item(i)["Details"]["Reason"] for i in left} == {"not started: the rollout halted"}
    assert {item(i)["Severity"] for i in left} == {"LOW"}
    assert world.api_calls["ssm:PutComplianceItems"] == 2 * len(ids)  # planned, then how each ended


def test_a_stopped_rollout_s_settlement_reports_only_the_hosts_it_moves(world):
    ids = world.launch("web", 6)
    arn = world.start({"group": "web", "target_version": NEW})
    name = arn.rsplit(":", 1)[-1]
    world.run_until(lambda: any(r["state"] == "updated" for r in world.host_records(name).values()), "the canary")
    assert world.stop_while_sleeping(arn)
    world.wait_all()  # the end event is settled in the execution's last turn

    records = world.host_records(name)
    assert world.rollout_record(name)["status"] == "aborted"
    for instance_id, record in records.items():
        assert item(instance_id)["Details"]["HostState"] == record["state"]
        assert item(instance_id)["Status"] == ("COMPLIANT" if record["state"] == "updated" else "NON_COMPLIANT")
    # Planned, then each host's one final state: the closing rewrite of hosts already final cost no call.
    assert world.api_calls["ssm:PutComplianceItems"] == 2 * len(ids)


def test_the_next_rollout_replaces_each_host_s_item(world):
    ids = world.launch("web", 3)
    first = world.rollout("web", NEW)
    world.fleet.hosts[ids[0]].online_at = float("inf")  # away for the second one

    second = world.rollout("web", NEWER)

    assert (first.status, second.status) == ("SUCCEEDED", "SUCCEEDED")
    assert said(ids[0]) == ("NON_COMPLIANT", "unknown", NEWER, "skipped")  # no longer known to be current
    assert {said(i) for i in ids[1:]} == {("COMPLIANT", NEWER, NEWER, "updated")}
    assert {item(i)["Details"]["RolloutId"] for i in ids} == {second.name}
    summaries = boto3.client("ssm").list_resource_compliance_summaries()["ResourceComplianceSummaryItems"]
    assert sorted(s["ResourceId"] for s in summaries) == sorted(ids)  # one per instance, not one per rollout


def test_only_the_functions_that_write_hosts_may_report_and_only_on_the_groups_hosts(world):
    (web,) = world.launch("web", 1)
    (stranger,) = world.launch("other", 1)  # a group the stack does not configure
    ssm = boto3.client("ssm")
    request = {
        "ResourceType": "ManagedInstance",
        "ComplianceType": TYPE,
        "ExecutionSummary": {"ExecutionTime": world.clock.now()},
        "Items": [{"Id": "BottlerocketRelease", "Severity": "LOW", "Status": "NON_COMPLIANT"}],
    }

    with acting_as(deployed_function("check_hosts")):
        ssm.put_compliance_items(ResourceId=web, **request)
        with pytest.raises(ClientError) as off_limits:
            ssm.put_compliance_items(ResourceId=stranger, **request)
    with acting_as(deployed_function("bake")), pytest.raises(ClientError) as not_granted:
        ssm.put_compliance_items(ResourceId=web, **request)

    for refused in (off_limits, not_granted):
        assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
        assert "ssm:PutComplianceItems" in refused.value.response["Error"]["Message"]
    assert len(items(web)) == 1 and items(stranger) == []


def test_a_compliance_service_that_refuses_everything_fails_no_step(world):
    ids = world.launch("web", 3)
    refusal = LimitRefused("InternalServerError", "simulated outage")

    with mock.patch.object(ComplianceStore, "put", side_effect=refusal):
        execution = world.rollout("web", NEW)

    assert execution.status == "SUCCEEDED"
    assert states(world.host_records(execution.name)) == dict.fromkeys(ids, "updated")
    assert all(items(i) == [] for i in ids)


def test_a_new_account_after_reset_has_no_item_of_the_last_one(world):
    ids = world.launch("web", 2)
    world.rollout("web", NEW)
    assert all(items(i) for i in ids)

    world.reset()
    again = world.launch("web", 2)

    assert again == ids  # the same ids are drawn, as right after the deployment
    assert all(items(i) == [] for i in again)
