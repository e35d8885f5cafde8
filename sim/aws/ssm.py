"""SSM: Run Command is answered by the simulated fleet, which runs the real document scripts.

SendCommand passes through two of moto's methods, each patched once, and its concerns run in this order:
1. the request (`SimpleSystemManagerResponse.send_command`): its own limits (at most 50 instance ids, a
   timeout within SSM's bounds), checked before anything looks at the instances (sim/service_limits.py);
   its DocumentVersion, which moto's request handler drops, is carried to the backend;
2. the backend (`SimpleSystemManagerBackend.send_command`):
   a. fault injection: an instance that is not running (terminated) fails the whole command with
      InvalidInstanceId, as SSM does;
   b. the fleet reads documents from SSM's store, the version the request names (`$DEFAULT` or none: the
      default, `$LATEST`: the latest, or a number); a command naming Targets is refused (the fleet takes
      InstanceIds);
   c. moto records the command;
   d. delivery to the fleet, which runs that version of the document on each host; a refusal of the fleet
      (throttled, an unknown document or version) takes moto's record back and answers as SSM would.
Documents themselves are moto's: UpdateDocument adds a version, UpdateDocumentDefaultVersion moves the
default, GetDocument reads the default (or a version) as JSON, converted from YAML if need be.
The reads (GetCommandInvocation, ListCommandInvocations, ListCommands, DescribeInstanceInformation) answer
from the fleet, paged and filtered as SSM does; an empty Targets list resolves to no instance, as in AWS.

Compliance, which moto lacks, is kept in a store of the account and region (sim/compliance.py).
PutComplianceItems (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutComplianceItems.html)
is checked in this order:
1. the model's constraints (sim/service_limits.py: lengths, patterns, enums, 10,000 items): ValidationException;
2. ResourceType other than ManagedInstance: InvalidResourceType;
3. IAM, as ssm:PutComplianceItems on the EC2 instance's ARN with its tags as aws:ResourceTag/<key> and
   ssm:resourceTag/<key> (the Service Authorization Reference's keys for the `instance` resource type), under the
   caller's policies (sim/aws/iam.py; the harness's administrator is allowed): AccessDeniedException;
4. a resource that is not a running instance of the fleet (SSM's managed nodes): InvalidResourceId;
5. UploadType PARTIAL (association compliance only) is refused rather than simulated; a COMPLETE upload
   replaces the resource's items of its type, unless its ItemContentHash matches the stored one (then nothing
   changes); an eleventh custom type is refused (ComplianceTypeCountLimitExceededException).
ListComplianceItems (one ResourceIds entry, as AWS takes) and ListResourceComplianceSummaries answer from the
store, filtered and paged (at most 50 a page). ItemSizeLimitExceededException and TotalSizeLimitExceededException
are not simulated: the API reference names no size for them.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from unittest import mock

from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.ssm import models as ssm_models
from moto.ssm.responses import SimpleSystemManagerResponse

from sim import service_limits
from sim.aws import ec2, iam
from sim.aws.common import PAGE_LIMIT, api_error, page, within_limits
from sim.compliance import ComplianceStore, execution_summary
from sim.fleet import Fleet, SimulatedApiError, StoredDocument, load_document

# The DocumentVersion of the SendCommand request being answered, from the request handler to the backend.
_REQUESTED_VERSION: ContextVar[str | None] = ContextVar("requested_document_version", default=None)


# (account, region) -> its compliance items: state of the account, as moto's backends are.
COMPLIANCE: dict[tuple[str, str], ComplianceStore] = {}
MANAGED_INSTANCE = "ManagedInstance"


def patches(fleet: Fleet) -> list[Any]:
    COMPLIANCE.clear()  # a new wiring is a new account: no compliance item yet
    backend_class = ssm_models.SimpleSystemManagerBackend
    original_send = backend_class.send_command

    def send_command(self: Any, **kwargs: Any) -> Any:
        gone = ec2.not_running(self.account_id, self.region_name, kwargs.get("instance_ids") or [])
        if gone:
            raise JsonRESTError("InvalidInstanceId", f"Instances {gone} not in a valid state for account")
        _bind_documents(fleet, self)
        if kwargs.get("targets"):
            raise JsonRESTError("InvalidParameters", "the simulated fleet takes InstanceIds, not Targets")
        command = original_send(self, **kwargs)
        try:
            fleet.send_command(
                command.command_id,
                kwargs["document_name"],
                kwargs.get("parameters") or {},
                kwargs.get("instance_ids") or [],
                int(kwargs.get("timeout_seconds") or 3600),
                _REQUESTED_VERSION.get(),
            )
        except SimulatedApiError as error:
            self._commands.remove(command)
            raise api_error(error) from None
        return command

    original_request = SimpleSystemManagerResponse.send_command

    def send_command_request(self: SimpleSystemManagerResponse) -> Any:
        # The request's own limits are checked first, before anything looks at the instances.
        timeout = self._get_int_param("TimeoutSeconds") or 3600
        within_limits(service_limits.check_send_command, self._get_param("InstanceIds", []), timeout)
        token = _REQUESTED_VERSION.set(self._get_param("DocumentVersion"))
        try:
            return original_request(self)
        finally:
            _REQUESTED_VERSION.reset(token)

    def get_command_invocation(self: Any, command_id: str, instance_id: str, plugin_name: Any) -> dict:
        view = next((v for v in _views(fleet, command_id) if v["InstanceId"] == instance_id), None)
        if view is None:
            raise JsonRESTError("InvocationDoesNotExist", "no such invocation")
        return {
            "CommandId": command_id,
            "InstanceId": instance_id,
            "DocumentName": view["DocumentName"],
            "PluginName": "aws:runShellScript",
            "ResponseCode": view["CommandPlugins"][0]["ResponseCode"],
            "Status": view["Status"],
            "StatusDetails": view["StatusDetails"],
            "StandardOutputContent": view["_stdout"],
            "StandardErrorContent": view["_stderr"],
        }

    def list_command_invocations(self: SimpleSystemManagerResponse) -> ActionResult:
        command_id = self._get_param("CommandId")
        details = self._get_bool_param("Details", False)
        views = []
        for view in _views(fleet, command_id):
            view = {k: v for k, v in view.items() if not k.startswith("_")}
            if not details:
                view.pop("CommandPlugins")
            views.append(view)
        found, token = page(views, self._get_param("NextToken"), self._get_int_param("MaxResults") or PAGE_LIMIT)
        return ActionResult({"CommandInvocations": found, **({"NextToken": token} if token else {})})

    def list_commands(self: SimpleSystemManagerResponse) -> ActionResult:
        # moto applies neither Filters nor paging, and stamps commands with the wall clock.
        commands = self.ssm_backend.list_commands(self._get_param("CommandId"), self._get_param("InstanceId"))
        sent = [(command, fleet.clock.at(fleet.commands[command.command_id].sent_at)) for command in commands]
        for item in self._get_param("Filters") or []:
            sent = [(command, at) for command, at in sent if _command_matches(command, at, item["key"], item["value"])]
        views = [{**command.response_object(), "RequestedDateTime": at} for command, at in sent]
        found, token = page(views, self._get_param("NextToken"), self._get_int_param("MaxResults") or PAGE_LIMIT)
        return ActionResult({"Commands": found, **({"NextToken": token} if token else {})})

    def describe_instance_information(self: SimpleSystemManagerResponse) -> ActionResult:
        wanted = None
        for item in self._get_param("Filters") or []:
            if item["Key"] == "InstanceIds":
                wanted = item["Values"]
        for item in self._get_param("InstanceInformationFilterList") or []:
            if item["key"] == "InstanceIds":
                wanted = item["valueSet"]
        information = fleet.instance_information(wanted)
        found, token = page(information, self._get_param("NextToken"), self._get_int_param("MaxResults") or PAGE_LIMIT)
        return ActionResult({"InstanceInformationList": found, **({"NextToken": token} if token else {})})

    def put_compliance_items(self: SimpleSystemManagerResponse) -> ActionResult:
        names = ("ResourceId", "ResourceType", "ComplianceType", "ExecutionSummary", "Items", "ItemContentHash")
        request = {name: self._get_param(name) for name in (*names, "UploadType")}
        within_limits(service_limits.check_put_compliance_items, request)
        _managed_instance_type(request["ResourceType"])
        resource_id = request["ResourceId"]
        _authorize(self, "ssm:PutComplianceItems", resource_id)
        _known_instance(fleet, self.current_account, self.region, resource_id)
        if (request["UploadType"] or "COMPLETE") != "COMPLETE":
            raise JsonRESTError(
                "ValidationException", "the simulation takes COMPLETE uploads (PARTIAL is association's)"
            )
        summary = request["ExecutionSummary"]
        within_limits(
            compliance(self.current_account, self.region).put,
            resource_id,
            request["ResourceType"],
            request["ComplianceType"],
            execution_summary(summary, _timestamp(summary["ExecutionTime"])),
            request["Items"],
            request["ItemContentHash"] or "",
        )
        return ActionResult({})

    def list_compliance_items(self: SimpleSystemManagerResponse) -> ActionResult:
        filters = self._get_param("Filters")
        within_limits(service_limits.check_compliance_listing, filters, self._get_int_param("MaxResults"))
        ids = self._get_param("ResourceIds") or []
        if len(ids) != 1:
            # "Currently, you can only specify one resource ID" (ListComplianceItems, API reference).
            raise JsonRESTError("ValidationException", f"ResourceIds takes one resource ID, not {len(ids)}")
        for resource_type in self._get_param("ResourceTypes") or [MANAGED_INSTANCE]:
            _managed_instance_type(resource_type)
        if ids[0] not in fleet.hosts:
            raise JsonRESTError("InvalidResourceId", f"{ids[0]} is not a managed node of this account")
        found = _stored(lambda: compliance(self.current_account, self.region).items(ids[0], filters))
        listed, token = _page(found, self._get_param("NextToken"), self._get_int_param("MaxResults"))
        return ActionResult({"ComplianceItems": listed, **({"NextToken": token} if token else {})})

    def list_resource_compliance_summaries(self: SimpleSystemManagerResponse) -> ActionResult:
        filters = self._get_param("Filters")
        within_limits(service_limits.check_compliance_listing, filters, self._get_int_param("MaxResults"))
        found = _stored(lambda: compliance(self.current_account, self.region).summaries(filters))
        listed, token = _page(found, self._get_param("NextToken"), self._get_int_param("MaxResults"))
        return ActionResult({"ResourceComplianceSummaryItems": listed, **({"NextToken": token} if token else {})})

    responses = SimpleSystemManagerResponse
    return [
        mock.patch.object(responses, "put_compliance_items", put_compliance_items, create=True),
        mock.patch.object(responses, "list_compliance_items", list_compliance_items, create=True),
        mock.patch.object(
            responses, "list_resource_compliance_summaries", list_resource_compliance_summaries, create=True
        ),
        mock.patch.object(backend_class, "send_command", send_command),
        mock.patch.object(backend_class, "get_command_invocation", get_command_invocation),
        mock.patch.object(ssm_models.Command, "_get_instance_ids_from_targets", _targets_only),
        mock.patch.object(
            SimpleSystemManagerResponse, "list_command_invocations", list_command_invocations, create=True
        ),
        mock.patch.object(
            SimpleSystemManagerResponse, "describe_instance_information", describe_instance_information, create=True
        ),
        mock.patch.object(SimpleSystemManagerResponse, "list_commands", list_commands),
        mock.patch.object(SimpleSystemManagerResponse, "send_command", send_command_request),
    ]


def publish_public_parameter(name: str, value: str, account: str, region: str) -> None:
    """Seed an AWS-owned public parameter (`/aws/service/...`), which PutParameter refuses."""
    parameter = ssm_models.Parameter(
        account_id=account,
        name=name,
        value=value,
        parameter_type="String",
        description=None,
        allowed_pattern=None,
        keyid=None,
        last_modified_date=datetime.now(UTC),
        version=1,
        data_type="text",
    )
    ssm_models.ssm_backends[account][region]._parameters[name] = [parameter]


def backend(account: str, region: str) -> Any:
    """SSM's backend of the account and region (made now if it is not yet)."""
    return ssm_models.ssm_backends[account][region]


def forget(account: str, region: str) -> None:
    """No command and no compliance item any more."""
    ssm_models.ssm_backends[account][region]._commands.clear()
    COMPLIANCE.pop((account, region), None)


def compliance(account: str, region: str) -> ComplianceStore:
    """The account's compliance items in the region (an empty store if none was put yet)."""
    return COMPLIANCE.setdefault((account, region), ComplianceStore())


def _managed_instance_type(resource_type: str) -> None:
    if resource_type != MANAGED_INSTANCE:
        # "ManagedInstance is currently the only supported resource type" (PutComplianceItems, API reference).
        raise JsonRESTError("InvalidResourceType", f"The resource type {resource_type} isn't valid.")


def _authorize(response: SimpleSystemManagerResponse, action: str, instance_id: str) -> None:
    """The caller's policies on the instance, as IAM evaluates them: its ARN, and its tags as condition keys."""
    account, region = response.current_account, response.region
    principal = iam.caller(response.access_key, response.headers, account, region)
    tags = ec2.tags(account, region, instance_id)
    context = {
        f"{prefix}/{key}": value for key, value in tags.items() for prefix in ("aws:ResourceTag", "ssm:resourceTag")
    }
    arn = f"arn:aws:ec2:{region}:{account}:instance/{instance_id}"
    try:
        iam.authorize(principal, iam.Request(action, arn, context))
    except iam.AccessDenied as denied:
        raise JsonRESTError("AccessDeniedException", str(denied)) from None


def _known_instance(fleet: Fleet, account: str, region: str, instance_id: str) -> None:
    """A managed node: a host of the fleet (its agent registered it) whose instance still runs."""
    if instance_id not in fleet.hosts or ec2.not_running(account, region, [instance_id]):
        raise JsonRESTError("InvalidResourceId", f"{instance_id} is not a managed node of this account")


def _timestamp(value: Any) -> datetime:
    """ExecutionTime as the JSON protocol carries it: seconds since the epoch."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _stored(read: Any) -> list[dict[str, Any]]:
    try:
        return read()
    except service_limits.LimitRefused as error:
        raise JsonRESTError(error.code, str(error)) from None


def _page(items: list, token: str | None, limit: int | None) -> tuple[list, str | None]:
    if token is not None and not (token.isdigit() and int(token) <= len(items)):
        raise JsonRESTError("InvalidNextToken", "The specified token isn't valid.")
    return page(items, token, limit or PAGE_LIMIT)


def _command_matches(command: Any, sent_at: datetime, key: str, value: str) -> bool:
    """One ListCommands filter, as SSM applies it (the ones Updraft may use)."""
    if key == "DocumentName":
        return command.document_name == value
    if key in ("InvokedAfter", "InvokedBefore"):
        bound = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return sent_at >= bound if key == "InvokedAfter" else sent_at <= bound
    raise JsonRESTError("InvalidFilterKey", f"the simulated fleet does not filter commands by {key}")


def _targets_only(self: Any) -> list[str]:
    # moto resolves an empty Targets list to every instance in the region; AWS resolves it to none.
    return [] if not self.targets else _original_targets(self)


_original_targets = ssm_models.Command._get_instance_ids_from_targets


def _views(fleet: Fleet, command_id: str) -> list[dict]:
    try:
        return fleet.invocations(command_id)
    except SimulatedApiError as error:
        raise api_error(error) from None


def _bind_documents(fleet: Fleet, backend: Any) -> None:
    def source(name: str, version: str | None) -> StoredDocument:
        documents = backend._documents.get(name)
        if documents is None:
            raise SimulatedApiError("InvalidDocument", f"document {name} does not exist")
        number = _version_number(documents, version)
        stored = backend.get_document(name, number, None, "JSON")
        return StoredDocument(stored["DocumentVersion"], load_document(stored["Content"]))

    fleet.document_source = source


def _version_number(documents: Any, version: str | None) -> str:
    """The number SendCommand's DocumentVersion resolves to; one the document does not have is refused with
    InvalidDocumentVersion (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_SendCommand.html).
    moto's GetDocument reads `$LATEST` and numbers but not `$DEFAULT`, hence the resolution here."""
    if version in (None, "", "$DEFAULT"):
        return documents.default_version
    if version == "$LATEST":
        return documents.latest_version
    if version not in documents.versions:
        raise SimulatedApiError(
            "InvalidDocumentVersion", f"The document version {version} is not valid or does not exist."
        )
    return version
