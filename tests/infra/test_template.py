"""The synthesized template: what gets deployed, checked resource by resource."""

from __future__ import annotations

import importlib.metadata
import json
import re
from pathlib import Path

import pytest
import yaml

from stacks.definition import definition, substitute
from stacks.documents import load_document
from stacks.functions import PowertoolsVersionError, powertools_version
from tests.routing.machine import deployed
from updraft.document_digest import document_digest

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = {
    "check_release",
    "acquire_lock",
    "start_inventory",
    "plan_waves",
    "apply_wave",
    "check_hosts",
    "bake",
    "halt",
    "abort_rollout",
    "finish",
    "on_execution_end",
    "on_alarm",  # cdk.json's prod has an alarm gate and a rollback window
}
NOT_STEPS = {"on_execution_end", "on_alarm"}
DOCUMENT_KINDS = ("inventory", "apply", "verify", "rollback")
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def state_machine_id(of_type) -> str:
    (logical_id,) = of_type("AWS::StepFunctions::StateMachine")
    return logical_id


def logical_id_by_property(of_type, resource_type, key, value):
    (logical_id,) = [lid for lid, r in of_type(resource_type).items() if r["Properties"].get(key) == value]
    return logical_id


def test_resource_counts(of_type):
    expected = {
        "AWS::DynamoDB::Table": 2,
        "AWS::SSM::Document": 4,
        "AWS::Lambda::Function": 12,  # ten steps, the one that settles abnormal ends, the alarm rollbacks
        "AWS::StepFunctions::StateMachine": 1,
        "AWS::IAM::Role": 13,  # one per function and the state machine's
        "AWS::Events::Rule": 3,  # abnormal ends to the settling function; notifications; group alarms
    }
    assert {t: len(of_type(t)) for t in expected} == expected


def test_only_resource_types_the_simulation_can_deploy(resources):
    # moto's CloudFormation silently skips unsupported types (TableV2's GlobalTable, for one).
    deployable = {
        "AWS::DynamoDB::Table",
        "AWS::SSM::Document",
        "AWS::Lambda::Function",
        "AWS::StepFunctions::StateMachine",
        "AWS::IAM::Role",
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
        "AWS::Logs::LogGroup",
        "AWS::Events::Rule",
        "AWS::Lambda::Permission",
        "AWS::SQS::Queue",
        # Deployed through sim/aws/cloudformation.py where moto's CloudFormation lacks them.
        "AWS::KMS::Key",
        "AWS::SNS::Topic",
        "AWS::SNS::TopicPolicy",
        "AWS::SNS::Subscription",
        "AWS::CloudWatch::Alarm",
        "AWS::CloudWatch::Dashboard",
        "AWS::SQS::QueuePolicy",
        "AWS::Lambda::EventInvokeConfig",
    }
    assert {r["Type"] for r in resources.values()} <= deployable


def test_tables_are_encrypted_recoverable_on_demand_retained_and_protected(of_type):
    keys = {}
    for table in of_type("AWS::DynamoDB::Table").values():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"]["SSEEnabled"] is True
        assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
        assert props["DeletionProtectionEnabled"] is True
        schema = {k["KeyType"]: k["AttributeName"] for k in props["KeySchema"]}
        keys[tuple(sorted(schema.items()))] = {a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert keys == {(("HASH", "group"),): {"S"}, (("HASH", "pk"), ("RANGE", "sk")): {"S"}}


def test_documents_are_the_yaml_files_named_after_the_stack(of_type):
    documents = {d["Properties"]["Name"]: d["Properties"] for d in of_type("AWS::SSM::Document").values()}
    assert set(documents) == {f"Updraft-{kind}" for kind in DOCUMENT_KINDS}
    for kind in DOCUMENT_KINDS:
        document = documents[f"Updraft-{kind}"]
        assert document["DocumentType"] == "Command"
        assert document["DocumentFormat"] == "YAML"
        source = ROOT / "ssm_documents" / f"updraft-{kind}.yaml"
        assert document["Content"] == yaml.safe_load(source.read_text())


def test_every_handler_has_a_function(functions):
    assert set(functions) == HANDLERS
    for name, function in functions.items():
        assert function["Handler"] == f"updraft.handlers.{name}.handler"


def test_functions_run_a_current_python_on_arm(functions):
    for function in functions.values():
        major, minor = map(int, function["Runtime"].removeprefix("python").split("."))
        assert (major, minor) >= (3, 12)
        assert function["Architectures"] == ["arm64"]
        assert function["MemorySize"] == 512
        assert 30 <= function["Timeout"] <= 300
        assert function["TracingConfig"] == {"Mode": "Active"}


def test_functions_share_one_code_asset(functions):
    assert len({json.dumps(f["Code"], sort_keys=True) for f in functions.values()}) == 1


def test_powertools_layer_is_the_release_the_tests_run_resolved_at_deploy_time(template, functions):
    # The version the tests import, which requirements.lock pins: the layer is that release's, never `latest`.
    tested = importlib.metadata.version("aws_lambda_powertools")
    assert f"aws_lambda_powertools=={tested}" in (ROOT / "requirements.lock").read_text().splitlines()
    for function in functions.values():
        (layer,) = function["Layers"]
        parameter = template["Parameters"][layer["Ref"]]
        assert parameter["Type"] == "AWS::SSM::Parameter::Value<String>"
        runtime = function["Runtime"]
        assert parameter["Default"] == f"/aws/service/powertools/python/arm64/{runtime}/{tested}"


def test_a_lock_without_powertools_stops_the_synth(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("aws-cdk-lib==2.275.0\naws_lambda_powertools_extra==1.0\n")
    with pytest.raises(PowertoolsVersionError, match="pins no aws_lambda_powertools"):
        powertools_version(lock)
    lock.write_text("aws-lambda-powertools[tracer]==3.1.0\n")
    assert powertools_version(lock) == "3.1.0"


def test_each_function_logs_json_to_its_own_retained_log_group(of_type, functions):
    log_groups = of_type("AWS::Logs::LogGroup")
    used = []
    for function in functions.values():
        logging = function["LoggingConfig"]
        assert logging["LogFormat"] == "JSON"
        group = logging["LogGroup"]["Ref"]
        assert log_groups[group]["Properties"]["RetentionInDays"] > 0
        used.append(group)
    assert len(set(used)) == len(functions)


def test_function_environment(of_type, functions, config, tables):
    documents = {
        kind: logical_id_by_property(of_type, "AWS::SSM::Document", "Name", f"Updraft-{kind}")
        for kind in DOCUMENT_KINDS
    }
    expected = {
        "UPDRAFT_CONFIG": config.to_env(),
        "LEDGER_TABLE": {"Ref": tables["ledger"]},
        "LOCK_TABLE": {"Ref": tables["locks"]},
        **{f"DOCUMENT_{kind.upper()}": {"Ref": documents[kind]} for kind in DOCUMENT_KINDS},
        **{f"DOCUMENT_{kind.upper()}_SHA256": document_digest(load_document(kind)) for kind in DOCUMENT_KINDS},
        "POWERTOOLS_SERVICE_NAME": "updraft",
        "POWERTOOLS_METRICS_NAMESPACE": "Updraft",
        "POWERTOOLS_LOG_LEVEL": "INFO",
    }
    for name, function in functions.items():
        alarm_rollbacks = {"STATE_MACHINE_ARN": {"Ref": state_machine_id(of_type)}} if name == "on_alarm" else {}
        assert function["Environment"]["Variables"] == expected | alarm_rollbacks, name


def test_environment_fits_lambdas_4_kb_limit(functions):
    # UPDRAFT_CONFIG grows with every group; Lambda refuses environments over 4 KB (names and values).
    for function in functions.values():
        variables = function["Environment"]["Variables"]
        size = sum(len(k) + len(v if isinstance(v, str) else "x" * 255) for k, v in variables.items())
        assert size < 4096


def test_config_in_the_environment_round_trips(functions, config):
    from updraft.config import UpdraftConfig

    text = functions["plan_waves"]["Environment"]["Variables"]["UPDRAFT_CONFIG"]
    assert UpdraftConfig.from_env(text) == config


def test_state_machine_is_standard_logged_and_traced(state_machine):
    props = state_machine
    assert props["StateMachineName"] == "Updraft-rollout"
    assert props["StateMachineType"] == "STANDARD"
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["TracingConfiguration"] == {"Enabled": True}


def test_definition_is_the_loaded_definition_inline(state_machine):
    assert "DefinitionS3Location" not in state_machine
    assert state_machine["DefinitionString"] == definition()


def test_the_deployed_definition_is_the_one_the_routing_tests_execute(state_machine):
    # The template's definition, its placeholders resolved as tests/routing resolves them, is exactly the text
    # the routing tests' state machine runs: what they prove of routes, retries and catches holds for the stack.
    with deployed() as machine:
        executed = machine.sfn.describe_state_machine(stateMachineArn=machine.arn)["definition"]
        assert set(state_machine["DefinitionSubstitutions"]) == set(machine.substitutions)
        assert substitute(state_machine["DefinitionString"], machine.substitutions) == executed


def test_every_placeholder_is_substituted(state_machine):
    definition = state_machine["DefinitionString"]
    substitutions = state_machine["DefinitionSubstitutions"]
    assert set(PLACEHOLDER.findall(definition)) == set(substitutions)
    resolved = PLACEHOLDER.sub(lambda m: f"resolved-{m.group(1)}", definition)
    assert "${" not in resolved
    json.loads(resolved)


def test_substitutions_reference_every_function_and_the_lock_table(state_machine, functions, tables):
    substitutions = state_machine["DefinitionSubstitutions"]
    steps = {name: f for name, f in functions.items() if name not in NOT_STEPS}
    for name, function in steps.items():
        key = "".join(part.capitalize() for part in name.split("_")) + "FunctionArn"
        assert substitutions[key] == {"Fn::GetAtt": [function["LogicalId"], "Arn"]}
    assert len(substitutions) == len(steps) + 1
    assert substitutions["LockTableName"] == {"Ref": tables["locks"]}


def test_outputs(template, of_type):
    outputs = template["Outputs"]
    state_machine = next(iter(of_type("AWS::StepFunctions::StateMachine")))
    assert outputs["RolloutStateMachineArn"]["Value"] == {"Ref": state_machine}
    assert {"LedgerTableName", "LockTableName"} <= set(outputs)
    for kind in DOCUMENT_KINDS:
        document = logical_id_by_property(of_type, "AWS::SSM::Document", "Name", f"Updraft-{kind}")
        assert outputs[f"{kind.capitalize()}DocumentName"]["Value"] == {"Ref": document}


def test_abnormal_ends_of_the_rollout_reach_the_settling_function(of_type, functions):
    (rule,) = [
        r for r in of_type("AWS::Events::Rule").values() if r["Properties"]["EventPattern"]["source"] == ["aws.states"]
    ]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert sorted(pattern["detail"]["status"]) == ["ABORTED", "FAILED", "TIMED_OUT"]
    (machine,) = of_type("AWS::StepFunctions::StateMachine")
    assert pattern["detail"]["stateMachineArn"] == [{"Ref": machine}]
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [functions["on_execution_end"]["LogicalId"], "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 8
