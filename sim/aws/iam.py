"""IAM as the deployed template declares it: who makes a request, and whether the policies allow it.

moto enforces no IAM here; the DynamoDB and EventBridge patches ask this module instead (no patch of its own).

- The caller (`caller`): while a Lambda handler runs in-process, its function's execution role, as the
  session Lambda opens for it (`assumed-role/<role>/<function>`); outside a handler, the IAM user or the
  assumed-role session whose access keys signed the request (resolved as moto's access_control.py does);
  anything else (the harness's default test credentials, AWS services acting for themselves) is the
  account's administrator: `None`, allowed.
- The decision (`evaluate`) follows AWS's policy evaluation logic for requests within one account: an explicit
  Deny in any policy wins; otherwise an Allow in an identity-based policy OR in the resource-based policy
  suffices; otherwise the request is implicitly denied.
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
  (no permissions boundaries, session policies or SCPs: the stack declares none).
- Policies are parsed once per document text (`parse` is cached), so each call costs a few dictionary
  look-ups and the statement matches.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import json
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from moto.awslambda.models import lambda_backends
from moto.iam.exceptions import NotFoundException
from moto.iam.models import iam_backends
from moto.sts.models import sts_backends

from sim.aws.lambda_ import running_function

# A request context: condition key (case-insensitive: `evaluate` lowers it) -> its value or values.
Context = Mapping[str, "str | bool | tuple[str, ...]"]


class Decision(enum.Enum):
    ALLOWED = "allowed"
    IMPLICIT_DENY = "no identity-based policy allows the {action} action"
    DENIED_BY_IDENTITY = "with an explicit deny in an identity-based policy"
    DENIED_BY_RESOURCE = "with an explicit deny in a resource-based policy"


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] | None = None
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] | None = None
    principals: tuple[str, ...] | None = None  # resource policies: "*" or ARNs / account ids
    conditions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # (operator, key, values)


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]


@dataclass(frozen=True)
class Principal:
    """A caller: `arn` as AWS names it in a denial, `role_arn` its aws:PrincipalArn (a session's role)."""

    arn: str
    role_arn: str
    account: str
    policies: tuple[Policy, ...] = field(repr=False)


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: Context = field(default_factory=dict)


class AccessDenied(Exception):
    """A request the caller's policies do not allow, worded as AWS words it.

    https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html"""

    def __init__(self, principal: Principal, request: Request, decision: Decision) -> None:
        self.principal, self.request, self.decision = principal, request, decision
        super().__init__(
            f"User: {principal.arn} is not authorized to perform: {request.action} on resource: {request.resource} "
            f"because {decision.value.format(action=request.action)}"
        )


# -- parsing ---------------------------------------------------------------------------------------------------
def _as_tuple(value: Any) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return (str(value).lower() if isinstance(value, bool) else str(value),)


def _principals(value: Any) -> tuple[str, ...]:
    if value == "*":
        return ("*",)
    return tuple(who for kind in value.values() for who in _as_tuple(kind))


def _statement(raw: Mapping[str, Any]) -> Statement:
    def optional(name: str) -> tuple[str, ...] | None:
        return _as_tuple(raw[name]) if name in raw else None

    conditions = tuple(
        (operator, key.lower(), _as_tuple(values))
        for operator, block in raw.get("Condition", {}).items()
        for key, values in block.items()
    )
    return Statement(
        effect=raw["Effect"],
        actions=_as_tuple(raw.get("Action", ())),
        not_actions=optional("NotAction"),
        resources=_as_tuple(raw.get("Resource", ())),
        not_resources=optional("NotResource"),
        principals=_principals(raw["Principal"]) if "Principal" in raw else None,
        conditions=conditions,
    )


@functools.lru_cache(maxsize=1024)
def _parse_text(text: str) -> Policy:
    document = json.loads(text)
    statements = document["Statement"]
    if isinstance(statements, Mapping):
        statements = [statements]
    return Policy(tuple(_statement(s) for s in statements))


def parse(document: str | Mapping[str, Any]) -> Policy:
    """A policy document (JSON text or its dict), parsed once per text."""
    return _parse_text(document if isinstance(document, str) else json.dumps(document, sort_keys=True))


# -- matching --------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """IAM's wildcards: `*` any run of characters, `?` any one character, nothing else special."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def like(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return _glob(pattern, ignore_case).fullmatch(value) is not None


def _arn_like(pattern: str, value: str) -> bool:
    """ArnLike: each of the six colon-separated parts matched on its own (a `*` stays within its part).
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html#Conditions_ARN"""
    wanted, actual = pattern.split(":", 5), value.split(":", 5)
    return len(wanted) == len(actual) == 6 and all(like(w, a) for w, a in zip(wanted, actual, strict=True))


_MATCHERS = {
    "StringEquals": lambda p, v: p == v,
    "StringEqualsIgnoreCase": lambda p, v: p.lower() == v.lower(),
    "StringLike": like,
    "ArnEquals": _arn_like,  # ArnEquals and ArnLike behave alike: both take wildcards
    "ArnLike": _arn_like,
    "Bool": lambda p, v: p.lower() == v.lower(),
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


class UnsupportedCondition(ValueError):
    """A condition operator the simulation does not evaluate: refusing it beats guessing."""


def _one_value(operator: str, wanted: tuple[str, ...], value: str) -> bool:
    """One request value against the policy's values: OR for an operator, NOR for a negated one."""
    if operator in _NEGATED:
        return not any(_MATCHERS[_NEGATED[operator]](w, value) for w in wanted)
    if operator not in _MATCHERS:
        raise UnsupportedCondition(f"condition operator {operator} is not simulated")
    return any(_MATCHERS[operator](w, value) for w in wanted)


def condition_holds(operator: str, key: str, wanted: tuple[str, ...], context: Context) -> bool:
    """One operator on one key. A key missing from the request makes a condition false, a negated one true;
    `...IfExists` is true then, `ForAllValues:` is true then (no value fails it), `ForAnyValue:` false.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html"""
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    present = context.get(key)
    if base == "Null":
        return (present is None) == (wanted[0].lower() == "true")
    if present is None:
        return if_exists or qualifier == "ForAllValues" or (not qualifier and base in _NEGATED)
    values = (
        present if isinstance(present, tuple) else (str(present).lower() if isinstance(present, bool) else present,)
    )
    if qualifier == "ForAllValues":
        return all(_one_value(base, wanted, v) for v in values)
    if qualifier == "ForAnyValue":
        return any(_one_value(base, wanted, v) for v in values)
    if qualifier:
        raise UnsupportedCondition(f"condition qualifier {qualifier} is not simulated")
    if base in _NEGATED:  # a negated operator on a multivalued key: no value may match
        return all(_one_value(base, wanted, v) for v in values)
    return any(_one_value(base, wanted, v) for v in values)


def _principal_matches(patterns: tuple[str, ...], principal: Principal, effect: str) -> bool:
    """A resource policy's Principal: `*`, the role (any of its sessions) or the session itself. The account
    (`<id>` or `arn:...:root`) names every principal of the account in a Deny, but in an Allow only hands the
    decision to their identity policies, so it grants nothing by itself.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html"""
    account = (principal.account, f"arn:aws:iam::{principal.account}:root")
    for pattern in patterns:
        if pattern == "*" or pattern in (principal.arn, principal.role_arn):
            return True
        if pattern in account and effect == "Deny":
            return True
    return False


def applies(statement: Statement, request: Request, principal: Principal | None = None) -> bool:
    """Whether the statement covers the request: action, resource, principal (resource policies), conditions."""
    if statement.not_actions is not None:
        if any(like(a, request.action, ignore_case=True) for a in statement.not_actions):
            return False
    elif not any(like(a, request.action, ignore_case=True) for a in statement.actions):
        return False
    if statement.not_resources is not None:
        if any(like(r, request.resource) for r in statement.not_resources):
            return False
    elif not any(like(r, request.resource) for r in statement.resources):
        return False
    if statement.principals is not None and (
        principal is None or not _principal_matches(statement.principals, principal, statement.effect)
    ):
        return False
    return all(condition_holds(op, key, wanted, request.context) for op, key, wanted in statement.conditions)


def evaluate(principal: Principal, request: Request, resource_policy: Policy | None = None) -> Decision:
    """AWS's decision for a request within one account (see the module docstring)."""
    context = {key.lower(): value for key, value in request.context.items()}
    request = Request(request.action, request.resource, {**_global_keys(principal), **context})
    identity = [s for p in principal.policies for s in p.statements if applies(s, request)]
    on_resource = [s for s in (resource_policy.statements if resource_policy else ()) if applies(s, request, principal)]
    if any(s.effect == "Deny" for s in identity):
        return Decision.DENIED_BY_IDENTITY
    if any(s.effect == "Deny" for s in on_resource):
        return Decision.DENIED_BY_RESOURCE
    if any(s.effect == "Allow" for s in (*identity, *on_resource)):
        return Decision.ALLOWED
    return Decision.IMPLICIT_DENY


def authorize(principal: Principal | None, request: Request, resource_policy: Policy | None = None) -> None:
    """Raise AccessDenied unless the request is allowed; `None` (the administrator) is always allowed."""
    if principal is None:
        return
    decision = evaluate(principal, request, resource_policy)
    if decision is not Decision.ALLOWED:
        raise AccessDenied(principal, request, decision)


def _global_keys(principal: Principal) -> dict[str, str]:
    """The global keys every request carries (a role session's aws:PrincipalArn is its role's ARN).
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html"""
    return {"aws:principalarn": principal.role_arn, "aws:principalaccount": principal.account}


# -- who is calling --------------------------------------------------------------------------------------------
_ACTING = threading.local()


@contextlib.contextmanager
def acting_as(function_name: str) -> Iterator[None]:
    """AWS calls made in the block are the deployed function's, as while its handler runs: for a test to ask
    what the function's role really allows (`with acting_as(name): table.put_item(...)` -> AccessDenied)."""
    before, _ACTING.function = getattr(_ACTING, "function", None), function_name
    try:
        yield
    finally:
        _ACTING.function = before


def caller(access_key: str | None, headers: Mapping[str, str], account: str, region: str) -> Principal | None:
    """The principal of a request: the running function's role, else the IAM user or role session whose keys
    signed it, else None (the account's administrator)."""
    function = running_function() or getattr(_ACTING, "function", None)
    if function is not None:
        return function_principal(function, account, region)
    if access_key:
        return _keyed_principal(access_key, headers, account)
    return None


def function_principal(function_name: str, account: str, region: str) -> Principal | None:
    """A Lambda function's execution role, as the session Lambda opens for it (named after the function)."""
    function = lambda_backends[account][region].get_function(function_name)
    role = _role(account, function.role)
    if role is None:
        return None  # a role outside this account's IAM: not ours to judge
    return Principal(
        f"arn:aws:sts::{account}:assumed-role/{role.name}/{function_name}", role.arn, account, role_policies(role)
    )


def _role(account: str, arn: str) -> Any:
    try:
        return iam_backends[account]["aws"].get_role_by_arn(arn)
    except NotFoundException:
        return None


def role_policies(role: Any) -> tuple[Policy, ...]:
    """The role's inline policies (AWS::IAM::Policy resources attach here) and managed policies."""
    texts = [*role.policies.values(), *(_default_version(p) for p in role.managed_policies.values())]
    return tuple(parse(text) for text in texts)


def _default_version(policy: Any) -> str:
    return next(v.document for v in policy.versions if v.is_default)


def _keyed_principal(access_key: str, headers: Mapping[str, str], account: str) -> Principal | None:
    """The IAM user or assumed-role session whose access key this is (moto/iam/access_control.py's look-up)."""
    backend = iam_backends[account]["aws"]
    if "X-Amz-Security-Token" in headers or "x-amz-security-token" in headers:
        # Newest first: a world restores moto's random state for each test, so a later test's session may be
        # issued the key of an earlier test's (AWS never reissues one); the newest is the one signing now.
        for session in reversed(sts_backends[account]["aws"].assumed_roles):
            if session.access_key_id == access_key:
                role = _role(account, session.role_arn)
                if role is None:
                    return None
                arn = f"arn:aws:sts::{account}:assumed-role/{role.name}/{session.session_name}"
                return Principal(arn, role.arn, account, role_policies(role))
        return None
    for user in backend.users.values():
        if any(key.access_key_id == access_key for key in user.access_keys):
            return Principal(user.arn, user.arn, account, _user_policies(backend, user))
    return None


def _user_policies(backend: Any, user: Any) -> tuple[Policy, ...]:
    texts: list[str] = [*user.policies.values()]
    texts += [_default_version(p) for p in user.managed_policies.values()]
    for group in backend.get_groups_for_user(user.name):
        texts += [*group.policies.values()]
        texts += [_default_version(p) for p in group.managed_policies.values()]
    return tuple(parse(text) for text in texts)
