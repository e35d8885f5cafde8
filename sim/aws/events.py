"""EventBridge: rules deliver events to Lambda, Step Functions and SNS targets (moto delivers none of these),
schedules fire when the harness ticks them, and PutEvents has its request limit.

One patch of `Rule.send_to_targets` delivers an event to a rule's targets, in this order:
1. a schedule rule takes only its own "Scheduled Event" (moto matches every event against a schedule rule's
   empty pattern; AWS does not);
2. targets moto delivers itself (SQS queues, ...) are left to moto;
3. unless the event matches the rule's pattern, nothing more;
4. Lambda targets are invoked and Step Functions targets start an execution, in the rule's target order, each
   with the input the target makes of the event. A Lambda target is invoked asynchronously, as EventBridge
   does (in-process here): a run that fails is retried as the function's event invoke config says (2 retries
   by default), and the invocation record of the last failed attempt goes to its on-failure destination (an
   SQS queue). Lambda waits a minute or two between attempts; here the retries follow at once, no virtual
   time passing, since the publisher (an execution, the harness) must not wait on an asynchronous target.
   An Invoke or StartExecution the service refuses is retried when EventBridge retries it (throttling,
   server errors; up to the target's MaximumRetryAttempts, at once here too); then the event goes, with the
   error, to the target's dead-letter queue;
5. SNS targets get the text EventBridge makes of that input, published to the topic, which fans it out.

PutEvents, as a principal calls it (`EventsHandler.put_events`: the caller is only known where the request
arrives), is authorised before anything else: each entry is `events:PutEvents` on its bus, with the context
keys `events:source` and `events:detail-type`, under the caller's identity policy and the bus's resource
policy (sim/aws/iam.py; the harness's administrator is allowed). When no entry is allowed the whole call is
refused with `AccessDeniedException`; otherwise each refused entry fails on its own with that error code and the
others go on, as PutEventsResultEntry reports failures entry by entry.
https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutEventsResultEntry.html
Then the request limit (one patch of `EventsBackend.put_events`, which AWS services acting for themselves,
Step Functions and CloudWatch, call directly: they are not principals here).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any
from unittest import mock

import jsonpath_ng
from moto.awslambda import models as lambda_models
from moto.core.exceptions import JsonRESTError
from moto.events import models as events_models
from moto.events.responses import EventsHandler
from moto.sqs import models as sqs_models
from moto.stepfunctions.parser import models as parser_models

from sim import service_limits
from sim.aws import iam, sns
from sim.aws.common import within_limits
from sim.clock import VirtualClock

LOG = logging.getLogger("sim")
DEFAULT_ASYNC_RETRIES = 2  # Lambda's, for a function without an event invoke config
DEFAULT_TARGET_RETRIES = 185  # EventBridge's, for a target without a retry policy


def patches(clock: VirtualClock) -> list[Any]:
    original_send = events_models.Rule.send_to_targets
    original_put = events_models.EventsBackend.put_events

    def send_to_targets(self: Any, event: dict, transform_input: bool = True) -> None:
        if self.scheduled_expression and event.get("detail-type") != "Scheduled Event":
            return
        topics = [t for t in self.targets if sns.is_topic(t["Arn"])]
        ours = [t for t in self.targets if t not in topics and (":lambda:" in t["Arn"] or ":stateMachine:" in t["Arn"])]
        moto_delivers = [t for t in self.targets if t not in topics and t not in ours]
        if moto_delivers:
            with mock.patch.object(self, "targets", moto_delivers):
                original_send(self, event, transform_input)
        if not (ours or topics) or not self.event_pattern.matches_event(event):
            return
        for target in ours:
            _deliver(self, target, event, json.dumps(_target_input(target, event)), clock)
        for target in topics:
            # SNS publishes the text EventBridge makes: a JSON string template arrives with its quotes.
            message = json.dumps(_target_input(target, event), ensure_ascii=False)
            sns.backend(target["Arn"]).publish(message=message, arn=target["Arn"])

    def put_events(self: Any, entries: list[dict[str, Any]]) -> Any:
        within_limits(service_limits.check_put_events, entries)
        return original_put(self, entries)

    return [
        mock.patch.object(events_models.Rule, "send_to_targets", send_to_targets),
        mock.patch.object(EventsHandler, "put_events", _authorised_put_events),
        mock.patch.object(events_models.EventsBackend, "put_events", put_events),
    ]


def _authorised_put_events(self: EventsHandler) -> str:
    """PutEvents as the caller may make it: the allowed entries go on, the others fail (see the docstring)."""
    entries = self._get_param("Entries") or []
    principal = iam.caller(self.access_key, self.headers, self.current_account, self.region)
    refusals = [_refusal(self.events_backend, principal, entry) for entry in entries]
    if entries and all(refusals):
        raise JsonRESTError("AccessDeniedException", str(refusals[0]))
    allowed = [entry for entry, refused in zip(entries, refusals, strict=True) if refused is None]
    results = iter(self.events_backend.put_events(allowed) if allowed else [])
    merged = [
        next(results) if refused is None else {"ErrorCode": "AccessDeniedException", "ErrorMessage": str(refused)}
        for refused in refusals
    ]
    return json.dumps({"FailedEntryCount": sum("ErrorCode" in e for e in merged), "Entries": merged})


def _refusal(backend: Any, principal: iam.Principal | None, entry: dict[str, Any]) -> iam.AccessDenied | None:
    if principal is None:
        return None
    try:
        bus = backend.describe_event_bus(backend._normalize_event_bus_arn(entry.get("EventBusName")))
    except JsonRESTError:  # no such bus: moto's own per-entry answer follows
        return None
    context = {"events:source": entry.get("Source", ""), "events:detail-type": entry.get("DetailType", "")}
    request = iam.Request("events:PutEvents", bus.arn, context)
    try:
        iam.authorize(principal, request, iam.parse(bus.policy) if bus.policy else None)
    except iam.AccessDenied as denied:
        return denied
    return None


def put_events(account: str, region: str, entries: list[dict[str, Any]]) -> Any:
    """PutEvents as an AWS service calls it (Step Functions, CloudWatch): straight to the account's backend."""
    return events_models.events_backends[account][region].put_events(entries)


def service_event(
    account: str, region: str, source: str, detail_type: str, detail: dict[str, Any], resource: str, clock: VirtualClock
) -> Any:
    """An event an AWS service puts on the account's default bus about one of its resources, at virtual now."""
    entry = {
        "Source": source,
        "DetailType": detail_type,
        "Detail": json.dumps(detail),
        "Time": clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Resources": [resource],
    }
    return put_events(account, region, [entry])


def fire_schedules(account: str, region: str, clock: VirtualClock) -> int:
    """One tick of every scheduled rule, now (moto stores schedules but never fires them); how many fired."""
    backend = events_models.events_backends[account][region]
    event = {
        "version": "0",
        "id": str(uuid.UUID(int=clock.random.getrandbits(128), version=4)),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "detail": {},
    }
    fired = 0
    for bus in backend.event_buses.values():
        for rule in bus.rules.values():
            if rule.scheduled_expression and rule.state == "ENABLED":
                rule.send_to_targets({**event, "resources": [rule.arn]})
                fired += 1
    return fired


def transform(transformer: dict, event: dict) -> Any:
    """EventBridge's input transformer: a bare `<name>` becomes the JSON value (a string quoted), a
    `"<name>"` the string, and a placeholder inside a longer string its text (moto quotes nothing)."""
    values = {}
    for name, path in transformer.get("InputPathsMap", {}).items():
        matches = jsonpath_ng.parse(path).find(event)
        values[name] = matches[0].value if matches else None

    def as_text(name: str) -> str:
        value = values[name]
        return value if isinstance(value, str) else json.dumps(value)

    placeholder = re.compile(r"<([\w.-]+)>")

    def fill(piece: str, in_string: bool) -> str:
        if in_string:  # the text, escaped for its place inside a JSON string
            return placeholder.sub(lambda m: json.dumps(as_text(m[1]))[1:-1], piece)
        return placeholder.sub(lambda m: json.dumps(values[m[1]]), piece)

    # Odd pieces are the template's string literals.
    pieces = re.split(r'("(?:[^"\\]|\\.)*")', transformer["InputTemplate"])
    return json.loads("".join(fill(piece, index % 2 == 1) for index, piece in enumerate(pieces)))


def _target_input(target: dict, event: dict) -> Any:
    """What a target receives: the event, or its Input, InputPath or InputTransformer."""
    if "Input" in target:
        return json.loads(target["Input"])
    if "InputPath" in target:
        (match,) = jsonpath_ng.parse(target["InputPath"]).find(event)
        return match.value
    if "InputTransformer" in target:
        return transform(target["InputTransformer"], event)
    return event


def _deliver(rule: Any, target: dict[str, Any], event: dict[str, Any], body: str, clock: VirtualClock) -> None:
    """One target's delivery: throttling and server errors are retried up to the target's retry policy,
    any other refusal is not; the event then goes to the target's DLQ
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-retry-policy.html)."""
    retries = int(target.get("RetryPolicy", {}).get("MaximumRetryAttempts", DEFAULT_TARGET_RETRIES))
    for attempt in range(retries + 1):
        try:
            if ":lambda:" in target["Arn"]:
                _invoke_target_function(rule, target["Arn"], body, clock)
            else:
                backend = parser_models.stepfunctions_parser_backends[rule.account_id][rule.region_name]
                backend.start_execution(target["Arn"], None, body)
            return
        except JsonRESTError as error:  # the service refused the call
            if not _retryable(error) or attempt == retries:
                _dead_letter(rule, target, event, error, attempt)
                return


def _retryable(error: JsonRESTError) -> bool:
    return error.code == 429 or error.code >= 500


def _invoke_target_function(rule: Any, arn: str, body: str, clock: VirtualClock) -> None:
    """Lambda's asynchronous invocation: the first attempt and its retries, then the on-failure destination.
    https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html"""
    function = lambda_models.lambda_backends[rule.account_id][rule.region_name].get_function(arn)
    config = function.event_invoke_config[0].config if function.event_invoke_config else {}
    attempts = 1 + int(config.get("MaximumRetryAttempts", DEFAULT_ASYNC_RETRIES))
    for attempt in range(attempts):
        response: dict[str, str] = {}
        try:
            payload = function.invoke(body, {"x-amz-invocation-type": "Event"}, response)
        except JsonRESTError as error:
            if attempt == 0:
                raise  # the Invoke call itself was refused: EventBridge's to retry
            payload, response["x-amz-function-error"] = json.dumps({"errorType": error.error_type}), "Unhandled"
        if "x-amz-function-error" not in response:
            return
    destination = config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    LOG.warning("asynchronous invocation of %s failed %d times: %s", arn, attempts, payload)
    if destination:
        # Drawn only here, so that runs without a failure draw what they always did.
        request_id = str(uuid.UUID(int=clock.random.getrandbits(128), version=4))
        record = _invocation_record(function, request_id, attempts, json.loads(body), payload, clock)
        _send(destination, json.dumps(record), {})


def _invocation_record(
    function: Any, request_id: str, attempts: int, request: Any, payload: Any, clock: VirtualClock
) -> dict[str, Any]:
    """What Lambda sends a destination for an invocation that failed every attempt
    (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html)."""
    return {
        "version": "1.0",
        "timestamp": clock.now().strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{function.function_arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": request,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": json.loads(payload),
    }


def _dead_letter(rule: Any, target: dict[str, Any], event: dict[str, Any], error: JsonRESTError, retries: int) -> None:
    """An event EventBridge could not deliver, with the attributes it adds
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html); without a DLQ it is dropped."""
    LOG.warning("EventBridge could not deliver to %s: %s", target["Arn"], error)
    queue = target.get("DeadLetterConfig", {}).get("Arn")
    if not queue:
        return
    code = getattr(error, "error_type", None) or type(error).__name__
    attributes = {
        "RULE_ARN": rule.arn,
        "TARGET_ARN": target["Arn"],
        "ERROR_CODE": str(code),
        "ERROR_MESSAGE": str(error)[:256],
        "RETRY_ATTEMPTS": str(retries),
    }
    if _retryable(error):
        attributes["EXHAUSTED_RETRY_CONDITION"] = "MaximumRetryAttempts"
    _send(queue, json.dumps(event, default=str), attributes)


def _send(queue_arn: str, body: str, attributes: dict[str, str]) -> None:
    _, _, _, region, account, name = queue_arn.split(":", 5)
    sqs_models.sqs_backends[account][region].send_message(
        name, body, message_attributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()}
    )
