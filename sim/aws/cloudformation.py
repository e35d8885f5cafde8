"""CloudFormation: the synthesized template deploys as `cdk deploy` ships it.

- AWS::StepFunctions::StateMachine is created where executions run (moto's parser backend), with its
  DefinitionSubstitutions;
- AWS::SSM::Document may have an object as its Content;
- AWS::SNS::Subscription, AWS::SNS::TopicPolicy, AWS::CloudWatch::Alarm, AWS::Events::EventBusPolicy,
  AWS::SQS::QueuePolicy and AWS::Lambda::EventInvokeConfig, which moto skips with a warning, are created through
  their service's backend, as the API would (an event bus policy resource is one statement of the bus's policy,
  named by its StatementId);
- AWS::EKS::AccessEntry, which moto does not know, is recorded where the simulated cluster's authenticator
  finds it, and refused as EKS refuses it (sim/aws/eks.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from moto.awslambda import models as lambda_models
from moto.cloudformation import parsing
from moto.cloudformation.exceptions import ValidationError
from moto.cloudwatch import models as cloudwatch_models
from moto.cloudwatch.models import Dimension, Metric, MetricDataQuery, MetricStat
from moto.eks.exceptions import EKSError
from moto.events import models as events_models
from moto.sqs import models as sqs_models
from moto.ssm import models as ssm_models
from moto.stepfunctions import models as sfn_models
from moto.stepfunctions.parser import models as parser_models

from sim.aws import eks, sns


def patches() -> list[Any]:
    original_document = ssm_models.Document.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]

    def create_state_machine(
        cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        properties = cloudformation_json["Properties"]
        definition = properties.get("DefinitionString", "")
        if isinstance(definition, dict):
            definition = json.dumps(definition)
        for key, value in (properties.get("DefinitionSubstitutions") or {}).items():
            definition = definition.replace("${" + key + "}", str(value))
        backend = parser_models.stepfunctions_parser_backends[account_id][region_name]
        return backend.create_state_machine(
            properties.get("StateMachineName", resource_name),
            definition,
            properties.get("RoleArn", ""),
            tags=[{"key": t["Key"], "value": t["Value"]} for t in properties.get("Tags", [])],
        )

    def create_document(
        cls: Any, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        properties = cloudformation_json["Properties"]
        if isinstance(properties.get("Content"), dict):
            cloudformation_json = {
                **cloudformation_json,
                "Properties": {**properties, "Content": json.dumps(properties["Content"])},
            }
        return original_document(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)

    return [
        mock.patch.object(
            sfn_models.StateMachine, "create_from_cloudformation_json", classmethod(create_state_machine)
        ),
        mock.patch.object(ssm_models.Document, "create_from_cloudformation_json", classmethod(create_document)),
        mock.patch.dict(parsing.get_model_map(), MODELS),
    ]


@dataclass
class _Created:
    """What CloudFormation keeps of a resource: the id `Ref` returns and what `Fn::GetAtt` may read."""

    physical_resource_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    cf_resource_type: str = ""
    logical_resource_id: str = ""

    def get_cfn_attribute(self, name: str) -> str:
        if name not in self.attributes:
            raise NotImplementedError(f"{name} of {{0}} is not simulated")
        return self.attributes[name]

    @staticmethod
    def is_created() -> bool:
        return True


def _subscription(properties: dict[str, Any], resource_name: str, account_id: str, region_name: str) -> _Created:
    topic_arn = properties["TopicArn"]
    subscription = sns.backend(topic_arn).subscribe(topic_arn, properties["Endpoint"], properties["Protocol"])
    return _Created(subscription.arn, {"Arn": subscription.arn})


def _topic_policy(properties: dict[str, Any], resource_name: str, account_id: str, region_name: str) -> _Created:
    for topic_arn in properties["Topics"]:
        sns.backend(topic_arn).set_topic_attribute(topic_arn, "policy", json.dumps(properties["PolicyDocument"]))
    return _Created(resource_name)


def _alarm(p: dict[str, Any], resource_name: str, account_id: str, region_name: str) -> _Created:
    name = p.get("AlarmName", resource_name)
    alarm = cloudwatch_models.cloudwatch_backends[account_id][region_name].put_metric_alarm(
        name=name,
        namespace=p.get("Namespace"),
        metric_name=p.get("MetricName"),
        metric_data_queries=[_query(q) for q in p.get("Metrics", [])] or None,
        comparison_operator=p["ComparisonOperator"],
        evaluation_periods=int(p["EvaluationPeriods"]),
        datapoints_to_alarm=p.get("DatapointsToAlarm"),
        period=p.get("Period"),
        threshold=float(p["Threshold"]),
        statistic=p.get("Statistic"),
        extended_statistic=p.get("ExtendedStatistic"),
        description=p.get("AlarmDescription"),
        dimensions=p.get("Dimensions", []),
        alarm_actions=p.get("AlarmActions", []),
        ok_actions=p.get("OKActions", []),
        insufficient_data_actions=p.get("InsufficientDataActions", []),
        unit=p.get("Unit"),
        actions_enabled=p.get("ActionsEnabled", True),
        treat_missing_data=p.get("TreatMissingData"),
        evaluate_low_sample_count_percentile=p.get("EvaluateLowSampleCountPercentile"),
        threshold_metric_id=p.get("ThresholdMetricId"),
    )
    return _Created(name, {"Arn": alarm.alarm_arn})


def _event_bus_policy(properties: dict[str, Any], resource_name: str, account_id: str, region_name: str) -> _Created:
    backend = events_models.events_backends[account_id][region_name]
    statement = {**properties["Statement"], "Sid": properties["StatementId"]}
    bus = properties.get("EventBusName", "default")
    if not isinstance(bus, str):  # moto resolves a Ref to a bus it created to the bus itself
        bus = bus.name
    backend.describe_event_bus(bus).add_policy({"Statement": [statement]})
    return _Created(properties["StatementId"])


def _queue_policy(properties: dict[str, Any], resource_name: str, account_id: str, region_name: str) -> _Created:
    backend = sqs_models.sqs_backends[account_id][region_name]
    for url in properties["Queues"]:
        name = url.rstrip("/").rsplit("/", 1)[-1]
        backend.set_queue_attributes(name, {"Policy": json.dumps(properties["PolicyDocument"])})
    return _Created(resource_name)


def _event_invoke_config(properties: dict[str, Any], resource_name: str, account_id: str, region_name: str) -> _Created:
    """Retries and destinations of a function's asynchronous invocations (sim/aws/events.py honours them)."""
    config = {
        key: properties[key]
        for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig")
        if key in properties
    }
    backend = lambda_models.lambda_backends[account_id][region_name]
    backend.put_function_event_invoke_config(properties["FunctionName"], config)
    return _Created(resource_name)


def _access_entry(properties: dict[str, Any], resource_name: str, account_id: str, region_name: str) -> _Created:
    """An IAM principal's access to an EKS cluster: `Ref` is `<cluster>|<principal>`, as CloudFormation's."""
    cluster, principal = properties["ClusterName"], properties["PrincipalArn"]
    try:
        eks.create_access_entry(
            account_id,
            region_name,
            cluster,
            principal,
            properties.get("KubernetesGroups"),
            properties.get("Username"),
            properties.get("Type", "STANDARD"),
        )
    except EKSError as refused:  # moto has no CREATE_FAILED: the stack's creation fails with EKS's answer
        answer = json.loads(refused.description)
        message = (
            f'Resource handler returned message: "{answer.get("message")}" (Service: Eks, Status Code: {refused.code})'
        )
        raise ValidationError(resource_name, message) from None
    arn = eks.access_entry_arn(account_id, region_name, cluster, principal)
    return _Created(f"{cluster}|{principal}", {"AccessEntryArn": arn})


def _query(query: dict[str, Any]) -> MetricDataQuery:
    stat = query.get("MetricStat")
    metric_stat = None
    if stat:
        metric = stat["Metric"]
        dimensions = [Dimension(d["Name"], d["Value"]) for d in metric.get("Dimensions", [])]
        measured = Metric(metric["MetricName"], metric["Namespace"], dimensions)
        metric_stat = MetricStat(measured, stat["Period"], stat["Stat"], stat.get("Unit"))
    return MetricDataQuery(
        query_id=query["Id"],
        label=query.get("Label"),
        period=query.get("Period"),
        return_data=query.get("ReturnData", True),
        expression=query.get("Expression"),
        metric_stat=metric_stat,
    )


def _model(create: Callable[[dict[str, Any], str, str, str], _Created]) -> type:
    """moto's resource protocol (a class whose `create_from_cloudformation_json` makes the resource) around
    `create(properties, resource_name, account_id, region_name)`."""

    class Model:
        @classmethod
        def create_from_cloudformation_json(
            cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
        ) -> _Created:
            return create(cloudformation_json["Properties"], resource_name, account_id, region_name)

    return Model


MODELS = {
    "AWS::SNS::Subscription": _model(_subscription),
    "AWS::SNS::TopicPolicy": _model(_topic_policy),
    "AWS::CloudWatch::Alarm": _model(_alarm),
    "AWS::Events::EventBusPolicy": _model(_event_bus_policy),
    "AWS::SQS::QueuePolicy": _model(_queue_policy),
    "AWS::Lambda::EventInvokeConfig": _model(_event_invoke_config),
    "AWS::EKS::AccessEntry": _model(_access_entry),
}
