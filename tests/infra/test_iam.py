"""Least privilege, read from the template: every statement of every role."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

ACCOUNT_REGION = "us-east-1:123456789012"
DOCUMENT_ARN = re.compile(rf"^arn:\{{AWS::Partition\}}:ssm:{ACCOUNT_REGION}:document/Updraft-(\w+)$")
INSTANCES_ARN = f"arn:{{AWS::Partition}}:ec2:{ACCOUNT_REGION}:instance/*"
EXECUTIONS_ARN = f"arn:{{AWS::Partition}}:states:{ACCOUNT_REGION}:execution:Updraft-rollout:*"
# Actions that take no resource-level permissions, so `*` is the only possible resource.
UNSCOPED_ACTIONS = {
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceStatus",
    "ssm:DescribeInstanceInformation",
    "ssm:ListCommandInvocations",
    "ssm:ListCommands",
    "cloudwatch:DescribeAlarms",  # read only; composite alarms are only returned when granted on *
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:DescribeLogGroups",
    "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:UpdateLogDelivery",
}
DOCUMENTS_RUN_BY = {
    "start_inventory": {"inventory"},
    "apply_wave": {"apply"},
    "check_hosts": {"verify", "rollback"},
    "halt": {"rollback"},
}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def render(value: Any) -> str:
    """An intrinsic as readable text: {"Ref": "X"} -> "{X}", GetAtt -> "{X.Arn}", Join -> joined."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "{" + value["Ref"] + "}"
    if "Fn::GetAtt" in value:
        return "{" + ".".join(value["Fn::GetAtt"]) + "}"
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render(part) for part in parts)
    raise AssertionError(f"unexpected intrinsic {value}")


def statements_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            **statement,
            "Action": as_list(statement["Action"]),
            "Resource": [render(r) for r in as_list(statement.get("Resource", []))],
        }
        for statement in document["Statement"]
    ]


@pytest.fixture(scope="module")
def role_statements(of_type) -> dict[str, list[dict[str, Any]]]:
    """Every identity-policy statement, by the logical id of the role it is attached to."""
    by_role: dict[str, list[dict[str, Any]]] = {role: [] for role in of_type("AWS::IAM::Role")}
    for policy in of_type("AWS::IAM::Policy").values():
        for role in policy["Properties"]["Roles"]:
            by_role[role["Ref"]] += statements_of(policy["Properties"]["PolicyDocument"])
    for role_id, role in of_type("AWS::IAM::Role").items():
        for inline in role["Properties"].get("Policies", []):
            by_role[role_id] += statements_of(inline["PolicyDocument"])
    return by_role


@pytest.fixture(scope="module")
def function_statements(functions, role_statements) -> dict[str, list[dict[str, Any]]]:
    return {name: role_statements[f["Role"]["Fn::GetAtt"][0]] for name, f in functions.items()}


@pytest.fixture(scope="module")
def state_machine_statements(state_machine, role_statements) -> list[dict[str, Any]]:
    return role_statements[state_machine["RoleArn"]["Fn::GetAtt"][0]]


@pytest.fixture(scope="module")
def table_arns(tables) -> dict[str, str]:
    return {name: "{" + logical_id + ".Arn}" for name, logical_id in tables.items()}


def dynamodb_statements(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in statements if any(action.startswith("dynamodb:") for action in s["Action"])]


def allowed(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [s for s in statements if action in s["Action"]]


def test_no_wildcard_actions_anywhere(role_statements):
    for statements in role_statements.values():
        for statement in statements:
            assert statement["Effect"] == "Allow"
            for action in statement["Action"]:
                service, _, name = action.partition(":")
                assert service and name and "*" not in action, action


def test_no_managed_policies(of_type):
    for role in of_type("AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]


def test_one_role_per_function(functions):
    roles = [f["Role"]["Fn::GetAtt"][0] for f in functions.values()]
    assert len(set(roles)) == len(functions)


def test_only_unscoped_actions_get_every_resource(role_statements):
    for statements in role_statements.values():
        for statement in statements:
            if "*" in statement["Resource"]:
                assert statement["Resource"] == ["*"]
                assert set(statement["Action"]) <= UNSCOPED_ACTIONS


def test_send_command_reaches_only_project_documents_and_tagged_hosts(role_statements, config):
    tag_condition = {"StringEquals": {f"aws:ResourceTag/{config.tag_key}": [g.name for g in config.groups]}}
    sends = [s for statements in role_statements.values() for s in allowed(statements, "ssm:SendCommand")]
    assert sends
    for statement in sends:
        if statement["Resource"] == [INSTANCES_ARN]:
            assert statement["Condition"] == tag_condition
        else:
            # Documents carry no group tag: a tag condition on them would deny the call.
            assert "Condition" not in statement
            assert all(DOCUMENT_ARN.match(resource) for resource in statement["Resource"]), statement


def test_each_function_sends_only_its_documents(function_statements):
    for name, statements in function_statements.items():
        documents = {
            DOCUMENT_ARN.match(resource).group(1)
            for statement in allowed(statements, "ssm:SendCommand")
            for resource in statement["Resource"]
            if resource != INSTANCES_ARN
        }
        assert documents == DOCUMENTS_RUN_BY.get(name, set()), name


def test_reboot_only_tagged_hosts_and_only_from_check_hosts(function_statements, config):
    for name, statements in function_statements.items():
        reboots = allowed(statements, "ec2:RebootInstances")
        if name != "check_hosts":
            assert not reboots, name
            continue
        (statement,) = reboots
        assert statement["Resource"] == [INSTANCES_ARN]
        tag_values = statement["Condition"]["StringEquals"][f"aws:ResourceTag/{config.tag_key}"]
        assert tag_values == ["staging", "prod"]


# The functions that write hosts' inventory or final states to the ledger, whose ledger reports them to SSM.
REPORTS_COMPLIANCE = {
    "start_inventory",
    "plan_waves",
    "apply_wave",
    "check_hosts",
    "halt",
    "abort_rollout",
    "finish",
    "on_execution_end",
}


def test_compliance_is_reported_only_by_the_functions_that_write_hosts_and_only_on_tagged_hosts(
    function_statements, config
):
    tag_condition = {"StringEquals": {f"aws:ResourceTag/{config.tag_key}": [g.name for g in config.groups]}}
    reporting = {
        name for name, statements in function_statements.items() if allowed(statements, "ssm:PutComplianceItems")
    }
    assert reporting == REPORTS_COMPLIANCE
    for name in reporting:
        for statement in allowed(function_statements[name], "ssm:PutComplianceItems"):
            assert statement["Resource"] == [INSTANCES_ARN], name
            assert statement["Condition"] == tag_condition, name


LOCK_ACTIONS = {
    "acquire_lock": {"dynamodb:GetItem", "dynamodb:PutItem"},
    "on_execution_end": {"dynamodb:DeleteItem"},
    "on_alarm": {"dynamodb:Scan"},  # is a rollout of the group running?
}
# Functions that are not state machine steps: EventBridge rules invoke them.
NOT_STEPS = {"on_execution_end", "on_alarm"}


def test_every_function_writes_the_ledger_only_the_lock_functions_the_locks(function_statements, table_arns):
    for name, statements in function_statements.items():
        dynamodb = dynamodb_statements(statements)
        tables = {resource for s in dynamodb for resource in s["Resource"]}
        expected = {table_arns["ledger"]} | ({table_arns["locks"]} if name in LOCK_ACTIONS else set())
        if name == "on_alarm":  # reads a group's rollouts through the ledger's by-group index, nothing more
            expected = {table_arns["locks"], f"{table_arns['ledger']}/index/by-group"}
        assert tables == expected, name
        lock_actions = {a for s in dynamodb if table_arns["locks"] in s["Resource"] for a in s["Action"]}
        assert lock_actions == LOCK_ACTIONS.get(name, set()), name


def test_only_the_lock_and_the_settlement_read_executions_of_their_own_state_machine(function_statements):
    # acquire_lock takes over a lock whose holder ended; on_execution_end checks the event's word.
    for name, statements in function_statements.items():
        describe = allowed(statements, "states:DescribeExecution")
        if name in ("acquire_lock", "on_execution_end"):
            assert [s["Resource"] for s in describe] == [[EXECUTIONS_ARN]]
        else:
            assert not describe, name


def test_state_machine_invokes_exactly_its_step_functions(state_machine_statements, functions):
    (invoke,) = allowed(state_machine_statements, "lambda:InvokeFunction")
    assert invoke["Action"] == ["lambda:InvokeFunction"]
    steps = [f for name, f in functions.items() if name not in NOT_STEPS]
    assert len(steps) == 10
    assert sorted(invoke["Resource"]) == sorted("{" + f["LogicalId"] + ".Arn}" for f in steps)


def test_state_machine_only_deletes_locks(state_machine_statements, table_arns):
    dynamodb = dynamodb_statements(state_machine_statements)
    assert [(s["Action"], s["Resource"]) for s in dynamodb] == [(["dynamodb:DeleteItem"], [table_arns["locks"]])]


def task_states(states: dict[str, Any]):
    """Every Task state, nested Parallel branches and Map iterators included."""
    for state in states.values():
        if state["Type"] == "Task":
            yield state
        for branch in state.get("Branches", []):
            yield from task_states(branch["States"])
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from task_states(processor["States"])


def test_state_machine_calls_only_what_its_role_grants(state_machine):
    # CDK derives no IAM from an ASL string: a new integration needs a grant in stacks/rollout_engine.py.
    tasks = list(task_states(json.loads(state_machine["DefinitionString"])["States"]))
    assert {task["Resource"] for task in tasks} == {
        "arn:aws:states:::lambda:invoke",
        "arn:aws:states:::dynamodb:deleteItem",
    }
    for task in tasks:
        if task["Resource"] == "arn:aws:states:::lambda:invoke":
            assert re.fullmatch(r"\$\{\w+FunctionArn\}", task["Parameters"]["FunctionName"])
        else:
            assert task["Parameters"]["TableName"] == "${LockTableName}"


# -- ECS groups and a health command: a template of its own --------------------------------------------
ECS_PREFIX = f"arn:{{AWS::Partition}}:ecs:{ACCOUNT_REGION}"
ECS_ACTIONS = {
    "apply_wave": {
        "ecs:ListContainerInstances",
        "ecs:DescribeContainerInstances",
        "ecs:UpdateContainerInstancesState",
        "ecs:ListTasks",
        "ecs:DescribeTasks",
    },
    "check_hosts": {
        "ecs:DescribeContainerInstances",
        "ecs:UpdateContainerInstancesState",
        "ecs:ListTasks",
        "ecs:DescribeTasks",
    },
    # They set a host a failed rollout left draining (nothing applied) ACTIVE again.
    "finish": {"ecs:UpdateContainerInstancesState"},
    "on_execution_end": {"ecs:UpdateContainerInstancesState"},
}


@pytest.fixture(scope="module")
def workload_template() -> dict[str, Any]:
    from stacks import synthesize
    from updraft.config import UpdraftConfig

    config = UpdraftConfig.model_validate(
        {
            "groups": [
                {"name": "web", "variant": "aws-ecs-2", "ecs": {"cluster": "blue"}},
                {"name": "api", "variant": "aws-ecs-2", "ecs": {"cluster": "green"}, "health_check": {"command": "x"}},
                {"name": "db", "variant": "aws-ecs-2"},
            ]
        }
    )
    return synthesize(config)


@pytest.fixture(scope="module")
def workload_statements(workload_template) -> dict[str, list[dict[str, Any]]]:
    resources = workload_template["Resources"]
    by_role: dict[str, list[dict[str, Any]]] = {}
    for policy in (r for r in resources.values() if r["Type"] == "AWS::IAM::Policy"):
        for role in policy["Properties"]["Roles"]:
            by_role.setdefault(role["Ref"], []).extend(statements_of(policy["Properties"]["PolicyDocument"]))
    return {
        f["Properties"]["Handler"].split(".")[-2]: by_role.get(f["Properties"]["Role"]["Fn::GetAtt"][0], [])
        for f in resources.values()
        if f["Type"] == "AWS::Lambda::Function"
    }


def test_only_the_wave_and_settling_functions_touch_ecs_and_only_the_configured_clusters(workload_statements):
    in_clusters = {"ArnEquals": {"ecs:cluster": [f"{ECS_PREFIX}:cluster/blue", f"{ECS_PREFIX}:cluster/green"]}}
    for name, statements in workload_statements.items():
        ecs = [s for s in statements if any(a.startswith("ecs:") for a in s["Action"])]
        assert {a for s in ecs for a in s["Action"]} == ECS_ACTIONS.get(name, set()), name
        for statement in ecs:
            actions = set(statement["Action"])
            if actions == {"ecs:ListContainerInstances"}:
                assert statement["Resource"] == [f"{ECS_PREFIX}:cluster/blue", f"{ECS_PREFIX}:cluster/green"]
                continue
            condition = statement["Condition"]["ArnEquals"]["ecs:cluster"]
            assert {"ArnEquals": {"ecs:cluster": [render(arn) for arn in condition]}} == in_clusters, statement
            if statement["Resource"] == ["*"]:
                assert actions == {"ecs:ListTasks"}  # it names no resource a policy could match
            elif actions == {"ecs:DescribeTasks"}:
                assert statement["Resource"] == [f"{ECS_PREFIX}:task/blue/*", f"{ECS_PREFIX}:task/green/*"]
            else:
                assert actions <= {"ecs:DescribeContainerInstances", "ecs:UpdateContainerInstancesState"}
                assert statement["Resource"] == [
                    f"{ECS_PREFIX}:container-instance/blue/*",
                    f"{ECS_PREFIX}:container-instance/green/*",
                ]


def test_only_check_hosts_sends_the_health_document(workload_statements):
    for name, statements in workload_statements.items():
        documents = {
            match.group(1)
            for statement in allowed(statements, "ssm:SendCommand")
            for resource in statement["Resource"]
            if (match := DOCUMENT_ARN.match(resource))
        }
        assert ("health" in documents) == (name == "check_hosts"), name


def test_without_ecs_groups_no_function_gets_ecs_actions(function_statements):
    for name, statements in function_statements.items():
        assert not [a for s in statements for a in s["Action"] if a.startswith("ecs:")], name


def documents_read(statements: list[dict[str, Any]]) -> set[str]:
    reads = allowed(statements, "ssm:GetDocument")
    for statement in reads:  # no wildcard, no condition: exactly the stack's documents
        assert "Condition" not in statement and all(DOCUMENT_ARN.match(r) for r in statement["Resource"]), statement
    return {DOCUMENT_ARN.match(resource).group(1) for statement in reads for resource in statement["Resource"]}


def assert_documents_pinned(resources: dict[str, Any], statements: dict[str, list[dict[str, Any]]], run_by) -> None:
    """Each function reads (GetDocument) exactly the documents it sends, and has the digest of each one's
    deployed content in its environment, next to its name."""
    from updraft.document_digest import document_digest

    contents = {
        r["Properties"]["Name"].removeprefix("Updraft-"): r["Properties"]["Content"]
        for r in resources.values()
        if r["Type"] == "AWS::SSM::Document"
    }
    functions = {
        f["Properties"]["Handler"].split(".")[-2]: f["Properties"]
        for f in resources.values()
        if f["Type"] == "AWS::Lambda::Function"
    }
    for name, function in functions.items():
        role = function["Role"]["Fn::GetAtt"][0]
        sent = {
            DOCUMENT_ARN.match(resource).group(1)
            for statement in allowed(statements[role], "ssm:SendCommand")
            for resource in statement["Resource"]
            if DOCUMENT_ARN.match(resource)
        }
        assert documents_read(statements[role]) == sent == run_by.get(name, set()), name
        variables = function["Environment"]["Variables"]
        for kind in sent:
            assert variables[f"DOCUMENT_{kind.upper()}_SHA256"] == document_digest(contents[kind]), (name, kind)


def test_each_function_reads_exactly_the_documents_it_sends_and_knows_their_digests(resources, role_statements):
    assert_documents_pinned(resources, role_statements, DOCUMENTS_RUN_BY)


def test_the_health_document_is_pinned_too(workload_template):
    resources = workload_template["Resources"]
    by_role: dict[str, list[dict[str, Any]]] = {}
    for policy in (r for r in resources.values() if r["Type"] == "AWS::IAM::Policy"):
        for role in policy["Properties"]["Roles"]:
            by_role.setdefault(role["Ref"], []).extend(statements_of(policy["Properties"]["PolicyDocument"]))
    for role in (r for r, v in resources.items() if v["Type"] == "AWS::IAM::Role"):
        by_role.setdefault(role, [])
    run_by = {**DOCUMENTS_RUN_BY, "check_hosts": {"verify", "rollback", "health"}}
    assert_documents_pinned(resources, by_role, run_by)
