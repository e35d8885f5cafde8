"""The Kubernetes API of simulated EKS clusters, served over HTTPS on 127.0.0.1: what an EKS control plane
answers a client that authenticates as an IAM principal (the real `kubernetes` client, through
functions/updraft/adapters/eks_auth.py's token). Part of the simulated world, not a moto patch: it imports
nothing of moto; sim/aws/eks.py hands it the callables that reach what IAM and STS know.

Each cluster has an endpoint of its own (`https://127.0.0.1:<port>`, as EKS endpoints have no path) and a
certificate authority of its own (its PEM is what DescribeCluster's certificateAuthority.data carries). A
request goes through what the API server does (k8s.io/apiserver pkg/endpoints/filters), in order:
1. authentication: the bearer token is checked as aws-iam-authenticator's tokenVerifier.Verify does
   (pkg/token/token.go: the `k8s-aws-v1.` prefix, base64url without padding, at most 4 KiB, an https
   STS host, path `/`, only the whitelisted query parameters, each once, Action=GetCallerIdentity,
   `x-k8s-aws-id` among the signed headers, X-Amz-Expires within 0..900, and X-Amz-Date less than 15
   minutes old, on the virtual clock: `Endpoint.token_lifetime_seconds`). Then STS's part: X-Amz-Date not
   more than 15 minutes ahead ("Signature not yet current"; a warm function may hold a token from before the
   world's clock was rewound), the access key must be known, the SigV4 query signature must verify
   (recomputed with botocore, with this cluster's name as the `x-k8s-aws-id` header, which is what the
   authenticator sends), and the principal must be mapped by an access entry of the cluster: the username
   its template renders (aws-iam-authenticator pkg/server/server.go, renderTemplate) and its groups, plus
   `system:authenticated`. Anything else is 401 Unauthorized (the authenticator denies the TokenReview and
   the API server answers 401: an unmapped principal too, not 403);
2. authorization: RBAC over the manifest the operator applied (eks/rbac.yaml) and the bootstrap policy's
   discovery rules (plugin/pkg/auth/authorizer/rbac); refused: 403 Forbidden worded as
   responsewriters.ForbiddenStatusError words it;
3. the handler: nodes (list, get, patch), pods (list, get, the eviction subresource) and policy/v1
   PodDisruptionBudgets (list, get), answered from sim/kubernetes.py's model, which is settled first.
Lists page with `limit` and `continue`; a continued list reads the snapshot its first page was taken from,
as etcd's MVCC read at the first page's resourceVersion does. HTTP/1.1 with keep-alive and Content-Length.
Requests are counted by verb and resource in the model (`SimulatedCluster.api_requests`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import ipaddress
import itertools
import json
import re
import ssl
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import yaml
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sim.clock import VirtualClock
from sim.kubernetes import ApiError, SimulatedCluster, failure, qualified

RBAC_MANIFEST = Path(__file__).resolve().parent.parent / "eks" / "rbac.yaml"
TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_HEADER = "x-k8s-aws-id"
TOKEN_LIFETIME_SECONDS = 15 * 60  # presignedURLExpiration
MAX_TOKEN_BYTES = 4096  # maxTokenLenBytes
STS_CLOCK_SKEW = dt.timedelta(minutes=15)  # SigV4: a request signed further in the future is "not yet current"
# parameterWhitelist of pkg/token/token.go
TOKEN_PARAMETERS = {
    "action",
    "version",
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-expires",
    "x-amz-security-token",
    "x-amz-signature",
    "x-amz-signedheaders",
}
STS_HOST = re.compile(r"^sts(-fips)?(\.(?P<region>[a-z0-9]+(-[a-z0-9]+)+))?\.(amazonaws\.com|api\.aws)$")
# Certificates are valid over a fixed span: TLS checks them against the real clock, never the virtual one.
VALID_FROM = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
VALID_UNTIL = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
# The bootstrap policy's discovery and public-info rules, bound to system:authenticated
# (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go: system:discovery, system:public-info-viewer).
DISCOVERY_PATHS = ("/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/readyz", "/version", "/version/")
SNAPSHOTS_KEPT = 256  # continued lists remembered per endpoint


# -- who signed the token, and what the cluster makes of them ------------------------------------------------------
@dataclass(frozen=True)
class Signer:
    """What STS knows of an access key: its secret, its session token, and whose it is."""

    access_key: str
    secret_key: str
    session_token: str | None
    arn: str  # GetCallerIdentity's Arn: arn:aws:sts::<account>:assumed-role/<role>/<session>, or a user's ARN
    principal_arn: str  # the IAM role or user an access entry names
    account: str
    session_name: str = ""


KeyResolver = Callable[[str], "Signer | None"]


@dataclass(frozen=True)
class AccessEntry:
    """An EKS access entry: the principal, the Kubernetes groups it is in, its username template."""

    principal_arn: str
    kubernetes_groups: tuple[str, ...] = ()
    username: str | None = None  # None: EKS's default for the principal
    type: str = "STANDARD"

    def username_template(self) -> str:
        """EKS's default username: a role's assumed-role ARN (its path left out) with `{{SessionName}}`, a
        user's ARN (EKS user guide, "Create access entries")."""
        if self.username:
            return self.username
        account, resource = self.principal_arn.split(":", 5)[4:]
        kind, _, name = resource.partition("/")
        if kind == "role":
            return f"arn:aws:sts::{account}:assumed-role/{name.rsplit('/', 1)[-1]}/{{{{SessionName}}}}"
        return self.principal_arn


AccessEntries = Callable[[str], "AccessEntry | None"]  # principal ARN -> its entry in this cluster


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...]


class Unauthenticated(Exception):
    """Why a token does not authenticate (never shown to the client: it sees 401 Unauthorized)."""


def render(template: str, signer: Signer) -> str:
    """aws-iam-authenticator's renderTemplate: AccountID, SessionName (`@` as `-`), SessionNameRaw, AccessKeyID."""
    return (
        template.replace("{{AccountID}}", signer.account)
        .replace("{{SessionName}}", signer.session_name.replace("@", "-"))
        .replace("{{SessionNameRaw}}", signer.session_name)
        .replace("{{AccessKeyID}}", signer.access_key)
    )


# -- the token ------------------------------------------------------------------------------------------------------
def presigned_url(token: str) -> str:
    if len(token) > MAX_TOKEN_BYTES:
        raise Unauthenticated("token is too large")
    if not token.startswith(TOKEN_PREFIX):
        raise Unauthenticated(f'token is missing expected "{TOKEN_PREFIX}" prefix')
    encoded = token.removeprefix(TOKEN_PREFIX)
    if "=" in encoded or not re.fullmatch(r"[A-Za-z0-9_-]*", encoded):
        raise Unauthenticated("illegal base64 data")  # RawURLEncoding: no padding, the URL alphabet only
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as error:
        raise Unauthenticated(str(error)) from None


def token_parameters(url: str) -> tuple[str, dict[str, str]]:
    """The presigned URL's host and its query parameters (keys lowered), checked as Verify checks them."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise Unauthenticated(f'unexpected scheme "{parts.scheme}" in pre-signed URL')
    if not STS_HOST.match(parts.netloc):
        raise Unauthenticated(f'unexpected hostname "{parts.netloc}" in pre-signed URL')
    if parts.path != "/":
        raise Unauthenticated("unexpected path in pre-signed URL")
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    lowered = [key.lower() for key, _ in pairs]
    if len(set(lowered)) != len(lowered):
        raise Unauthenticated("duplicate query parameter found")
    unknown = [key for key in lowered if key not in TOKEN_PARAMETERS]
    if unknown:
        raise Unauthenticated(f'non-whitelisted query parameter "{unknown[0]}"')
    return parts.netloc, {key.lower(): value for key, value in pairs}


def check_claims(params: dict[str, str], now: dt.datetime, lifetime: float) -> dt.datetime:
    """Action, the signed cluster header, X-Amz-Expires and X-Amz-Date; the signing time."""
    if params.get("action") != "GetCallerIdentity":
        raise Unauthenticated("unexpected action parameter in pre-signed URL")
    signed = params.get("x-amz-signedheaders", "").split(";")
    if CLUSTER_HEADER not in (header.lower() for header in signed):
        raise Unauthenticated(f"client did not sign the {CLUSTER_HEADER} header in the pre-signed URL")
    expires = params.get("x-amz-expires", "")
    if not expires.isdigit() or not 0 <= int(expires) <= 900:
        raise Unauthenticated("invalid X-Amz-Expires parameter in pre-signed URL")
    if not params.get("x-amz-date"):
        raise Unauthenticated("X-Amz-Date parameter must be present in pre-signed URL")
    try:
        signed_at = dt.datetime.strptime(params["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise Unauthenticated("error parsing X-Amz-Date parameter") from None
    if now > signed_at + dt.timedelta(seconds=lifetime):
        raise Unauthenticated("X-Amz-Date parameter is expired (15 minute expiration)")
    if signed_at > now + STS_CLOCK_SKEW:  # STS, replaying it: InvalidSignatureException
        raise Unauthenticated(f"Signature not yet current: {params['x-amz-date']} is still later than now + 15 min.")
    return signed_at


def check_signature(host: str, params: dict[str, str], cluster: str, signer: Signer) -> None:
    """STS's check of the replayed request: the SigV4 query signature over the parameters, the host and the
    cluster header the authenticator sets, with the key's secret at the request's own date and scope."""
    key, date, region, service, terminal = (params.get("x-amz-credential", "").split("/") + [""] * 5)[:5]
    timestamp = params["x-amz-date"]
    if key != signer.access_key or service != "sts" or terminal != "aws4_request" or date != timestamp[:8]:
        raise Unauthenticated("the credential scope does not match")
    if (params.get("x-amz-security-token") or None) != signer.session_token:
        raise Unauthenticated("the security token included in the request is invalid")
    values = {"host": host, CLUSTER_HEADER: cluster}
    signed = params["x-amz-signedheaders"].split(";")
    if any(header.lower() not in values for header in signed):
        raise Unauthenticated("a signed header is one the authenticator does not send")
    original = {_canonical_name(k): v for k, v in params.items() if k != "x-amz-signature"}
    request = AWSRequest(
        method="GET", url=f"https://{host}/", headers={h.lower(): values[h.lower()] for h in signed}, params=original
    )
    request.context["timestamp"] = timestamp
    auth = SigV4QueryAuth(Credentials(signer.access_key, signer.secret_key, signer.session_token), "sts", region)
    expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    if not hmac.compare_digest(expected, params.get("x-amz-signature", "")):
        raise Unauthenticated("the request signature we calculated does not match the signature you provided")


def _canonical_name(lowered: str) -> str:
    """The parameter names as presigned (the canonical query sorts and signs them case-sensitively)."""
    return {
        "action": "Action",
        "version": "Version",
        "x-amz-algorithm": "X-Amz-Algorithm",
        "x-amz-credential": "X-Amz-Credential",
        "x-amz-date": "X-Amz-Date",
        "x-amz-expires": "X-Amz-Expires",
        "x-amz-security-token": "X-Amz-Security-Token",
        "x-amz-signedheaders": "X-Amz-SignedHeaders",
    }[lowered]


def authenticate(
    token: str, cluster: str, now: dt.datetime, lifetime: float, keys: KeyResolver, entries: AccessEntries
) -> User:
    """The user a bearer token authenticates as in the cluster, or Unauthenticated."""
    host, params = token_parameters(presigned_url(token))
    check_claims(params, now, lifetime)
    signer = keys(params.get("x-amz-credential", "").split("/")[0])
    if signer is None:
        raise Unauthenticated("the security token included in the request is invalid")  # InvalidClientTokenId
    check_signature(host, params, cluster, signer)
    entry = entries(signer.principal_arn)
    if entry is None:
        raise Unauthenticated(f"ARN is not mapped: {signer.principal_arn}")
    groups = tuple(render(group, signer) for group in entry.kubernetes_groups)
    return User(render(entry.username_template(), signer), (*groups, "system:authenticated"))


# -- what is asked: the API server's RequestInfo ----------------------------------------------------------------------
@dataclass(frozen=True)
class RequestInfo:
    """k8s.io/apiserver pkg/endpoints/request/requestinfo.go's RequestInfoFactory.NewRequestInfo."""

    verb: str
    path: str
    resource_request: bool = False
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""

    @property
    def resource_label(self) -> str:
        if not self.resource_request:
            return self.path
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "GET": "get", "HEAD": "get", "DELETE": "delete"}


def request_info(method: str, path: str, query: dict[str, list[str]]) -> RequestInfo:
    parts = [part for part in path.strip("/").split("/") if part]
    verb = VERBS.get(method, method.lower())
    if len(parts) < 2 or parts[0] not in ("api", "apis") or (parts[0] == "apis" and len(parts) < 3):
        return RequestInfo(verb, path)
    group, version, rest = ("", parts[1], parts[2:]) if parts[0] == "api" else (parts[1], parts[2], parts[3:])
    if not rest:
        return RequestInfo(verb, path)
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    resource, name, subresource = [*rest, "", "", ""][:3]
    if not name and verb in ("get", "delete"):
        verb = (
            "watch"
            if verb == "get" and query.get("watch", [""])[0] in ("1", "true")
            else {"get": "list"}.get(verb, "deletecollection")
        )
    return RequestInfo(verb, path, True, group, version, namespace, resource, subresource, name)


# -- RBAC -----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    def allows(self, info: RequestInfo) -> bool:
        """pkg/apis/rbac/v1/evaluation_helpers.go: VerbMatches, APIGroupMatches, ResourceMatches,
        ResourceNameMatches, NonResourceURLMatches."""
        if "*" not in self.verbs and info.verb not in self.verbs:
            return False
        if not info.resource_request:
            return any(
                u == "*" or u == info.path or (u.endswith("*") and info.path.startswith(u[:-1]))
                for u in self.non_resource_urls
            )
        if "*" not in self.api_groups and info.api_group not in self.api_groups:
            return False
        wanted = info.resource_label
        wildcard_sub = f"*/{info.subresource}" if info.subresource else None
        if not any(r in ("*", wanted) or r == wildcard_sub for r in self.resources):
            return False
        return not self.resource_names or info.name in self.resource_names


@dataclass(frozen=True)
class Binding:
    rules: tuple[Rule, ...]
    groups: frozenset[str]
    users: frozenset[str]
    namespace: str | None  # a RoleBinding's: it grants in that namespace only

    def applies(self, user: User, namespace: str) -> bool:
        if self.namespace is not None and self.namespace != namespace:
            return False
        return user.name in self.users or bool(self.groups & set(user.groups))


@dataclass(frozen=True)
class Rbac:
    bindings: tuple[Binding, ...]

    @classmethod
    def load(cls, manifest: Path = RBAC_MANIFEST) -> Rbac:
        documents = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
        roles = {
            (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): _rules(d)
            for d in documents
            if d["kind"] in ("ClusterRole", "Role")
        }
        bindings = [_discovery()]
        for document in documents:
            if document["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
                continue
            namespace = document["metadata"].get("namespace") if document["kind"] == "RoleBinding" else None
            ref = document["roleRef"]
            scope = None if ref["kind"] == "ClusterRole" else namespace
            rules = roles.get((ref["kind"], scope, ref["name"]), ())
            subjects = document.get("subjects") or []
            groups = frozenset(s["name"] for s in subjects if s["kind"] == "Group")
            users = frozenset(s["name"] for s in subjects if s["kind"] == "User")
            bindings.append(Binding(rules, groups, users, namespace))
        return cls(tuple(bindings))

    def allows(self, user: User, info: RequestInfo) -> bool:
        return any(
            binding.applies(user, info.namespace) and any(rule.allows(info) for rule in binding.rules)
            for binding in self.bindings
        )


def _rules(document: dict[str, Any]) -> tuple[Rule, ...]:
    return tuple(
        Rule(
            tuple(rule.get("verbs") or ()),
            tuple(rule.get("apiGroups") or ()),
            tuple(rule.get("resources") or ()),
            tuple(rule.get("resourceNames") or ()),
            tuple(rule.get("nonResourceURLs") or ()),
        )
        for rule in document.get("rules") or []
    )


def _discovery() -> Binding:
    return Binding(
        (Rule(("get",), non_resource_urls=DISCOVERY_PATHS),), frozenset({"system:authenticated"}), frozenset(), None
    )


def forbidden(user: User, info: RequestInfo) -> ApiError:
    """responsewriters.ForbiddenStatusError, as the authorization filter answers a request RBAC denies."""
    if not info.resource_request:
        message = f'User "{user.name}" cannot {info.verb} path "{info.path}"'
        return ApiError(failure(403, "Forbidden", f"forbidden: {message}", {}))
    where = f'in the namespace "{info.namespace}"' if info.namespace else "at the cluster scope"
    reason = (
        f'User "{user.name}" cannot {info.verb} resource "{info.resource_label}" '
        f'in API group "{info.api_group}" {where}'
    )
    resource = qualified(info.resource, info.api_group)
    subject = f'{resource} "{info.name}"' if info.name else resource
    details = {"name": info.name, "group": info.api_group, "kind": info.resource}
    shown = {key: value for key, value in details.items() if value}  # StatusDetails' fields are omitempty
    return ApiError(failure(403, "Forbidden", f"{subject} is forbidden: {reason}", shown))


UNAUTHORIZED = failure(401, "Unauthorized", "Unauthorized")


# -- selectors and patches ----------------------------------------------------------------------------------------
def bad_request(message: str) -> ApiError:
    return ApiError(failure(400, "BadRequest", message))


def _requirements(selector: str) -> list[str]:
    """A selector's comma-separated requirements (a set's commas inside parentheses stay)."""
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return [p for p in [*parts, current.strip()] if p]


def label_matcher(selector: str) -> Callable[[dict[str, str]], bool]:
    """k8s.io/apimachinery pkg/labels: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a)`, `k`, `!k`."""
    tests: list[Callable[[dict[str, str]], bool]] = []
    for requirement in _requirements(selector):
        match = re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", requirement)
        if match:
            key, op, values = match.group(1), match.group(2), {v.strip() for v in match.group(3).split(",")}
            tests.append(
                lambda labels, k=key, o=op, vs=values: (
                    (labels.get(k) in vs) == (o == "in") and (o == "notin" or k in labels)
                )
            )
        elif "!=" in requirement:
            key, value = (s.strip() for s in requirement.split("!=", 1))
            tests.append(lambda labels, k=key, v=value: labels.get(k) != v)
        elif "=" in requirement:
            key, value = (s.strip() for s in requirement.replace("==", "=").split("=", 1))
            tests.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif requirement.startswith("!"):
            absent = requirement[1:].strip()
            tests.append(lambda labels, k=absent: k not in labels)
        elif re.fullmatch(r"[A-Za-z0-9./_-]+", requirement):
            tests.append(lambda labels, k=requirement: k in labels)
        else:
            raise bad_request(f"unable to parse requirement: {requirement}")
    return lambda labels: all(test(labels) for test in tests)


FIELDS = {
    "nodes": {
        "metadata.name": lambda o: o["metadata"]["name"],
        "spec.unschedulable": lambda o: str(bool(o["spec"].get("unschedulable"))).lower(),
    },
    "pods": {
        "metadata.name": lambda o: o["metadata"]["name"],
        "metadata.namespace": lambda o: o["metadata"]["namespace"],
        "spec.nodeName": lambda o: o["spec"].get("nodeName", ""),
        "status.phase": lambda o: o["status"]["phase"],
    },
    "poddisruptionbudgets": {
        "metadata.name": lambda o: o["metadata"]["name"],
        "metadata.namespace": lambda o: o["metadata"]["namespace"],
    },
}


def field_matcher(resource: str, selector: str) -> Callable[[dict[str, Any]], bool]:
    """A field selector of the fields the resource's registry indexes (`field label not supported` else)."""
    tests = []
    for requirement in _requirements(selector):
        negate = "!=" in requirement
        key, value = (s.strip() for s in re.split(r"!=|==|=", requirement, maxsplit=1))
        getter = FIELDS.get(resource, {}).get(key)
        if getter is None:
            raise bad_request(f"field label not supported: {key}")
        tests.append(lambda o, g=getter, v=value, n=negate: (g(o) == v) != n)
    return lambda obj: all(test(obj) for test in tests)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 (a strategic merge patch of the fields a node lets a client change is the same: none of
    them is a list with a merge key). Strategic merge directives (`$patch`, `$setElementOrder/...`) are
    dropped."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(document: Any, operations: list[dict[str, Any]]) -> Any:
    """RFC 6902: add, remove, replace, move, copy, test."""
    document = json.loads(json.dumps(document))
    for operation in operations:
        op, path = operation.get("op"), operation.get("path", "")
        if op in ("add", "replace", "test"):
            value = operation.get("value")
        if op == "test":
            if _pointer_get(document, path) != value:
                raise ApiError(failure(422, "Invalid", f"testing value {path} failed"))
        elif op == "remove":
            _pointer_remove(document, path)
        elif op == "add":
            document = _pointer_add(document, path, value)
        elif op == "replace":
            _pointer_get(document, path)
            _pointer_remove(document, path)
            document = _pointer_add(document, path, value)
        elif op in ("move", "copy"):
            moved = _pointer_get(document, operation["from"])
            if op == "move":
                _pointer_remove(document, operation["from"])
            document = _pointer_add(document, path, json.loads(json.dumps(moved)))
        else:
            raise bad_request(f"Unexpected kind: {op}")
    return document


def _tokens(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer: {path}")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _parent(document: Any, path: str) -> tuple[Any, str]:
    tokens = _tokens(path)
    if not tokens:
        raise bad_request("the root cannot be changed")
    container = document
    for token in tokens[:-1]:
        container = container[int(token)] if isinstance(container, list) else container.get(token)
        if container is None:
            raise ApiError(failure(422, "Invalid", f"doc is missing path: {path}"))
    return container, tokens[-1]


def _pointer_get(document: Any, path: str) -> Any:
    value = document
    for token in _tokens(path):
        try:
            value = value[int(token)] if isinstance(value, list) else value[token]
        except (KeyError, IndexError, ValueError, TypeError):
            raise ApiError(failure(422, "Invalid", f"doc is missing path: {path}")) from None
    return value


def _pointer_remove(document: Any, path: str) -> None:
    container, last = _parent(document, path)
    try:
        del container[int(last) if isinstance(container, list) else last]
    except (KeyError, IndexError, ValueError):
        raise ApiError(failure(422, "Invalid", f"doc is missing path: {path}")) from None


def _pointer_add(document: Any, path: str, value: Any) -> Any:
    if path == "":
        return value
    container, last = _parent(document, path)
    if isinstance(container, list):
        container.insert(len(container) if last == "-" else int(last), value)
    else:
        container[last] = value
    return document


PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)


def apply_patch(content_type: str, document: dict[str, Any], body: bytes) -> dict[str, Any]:
    """The patched object, as the patch handler (k8s.io/apiserver pkg/endpoints/handlers/patch.go) makes it."""
    kind = content_type.split(";")[0].strip().lower()
    if kind not in PATCH_TYPES:
        accepted = "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, "
        message = f"the body of the request was in an unknown format - accepted media types include: {accepted}"
        raise ApiError(failure(415, "UnsupportedMediaType", message + "application/strategic-merge-patch+json"))
    try:
        patch = json.loads(body or b"null")
    except ValueError as error:
        raise bad_request(f"error decoding patch: {error}") from None
    if kind == "application/json-patch+json":
        if not isinstance(patch, list):
            raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
        return json_patch(document, patch)
    if not isinstance(patch, dict):
        raise bad_request("the patch is not a JSON object")
    return merge_patch(document, patch)


# -- certificates ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Certificates:
    """A cluster's certificate authority and the API server's certificate for 127.0.0.1, as PEM."""

    ca_pem: bytes
    server_pem: bytes
    server_key_pem: bytes

    @classmethod
    def issue(cls, cluster: str) -> Certificates:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
        ca = (
            _builder(ca_name, ca_name, ca_key.public_key(), 1)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"kube-apiserver-{cluster}")])
        san = x509.SubjectAlternativeName([x509.IPAddress(_LOOPBACK), x509.DNSName("localhost")])
        authority = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
        server = (
            _builder(name, ca_name, key.public_key(), 2)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(san, critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(authority, critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        private = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        pem = serialization.Encoding.PEM
        return cls(ca.public_bytes(pem), server.public_bytes(pem), private)


_LOOPBACK = ipaddress.ip_address("127.0.0.1")


def _builder(subject: x509.Name, issuer: x509.Name, key: Any, serial: int) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(serial)
        .not_valid_before(VALID_FROM)
        .not_valid_after(VALID_UNTIL)
    )


def _usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


# -- the endpoint of one cluster ------------------------------------------------------------------------------------
@dataclass
class Endpoint:
    """One cluster's API server: its URL, its CA, and the token lifetime it enforces (settable)."""

    cluster: SimulatedCluster
    clock: VirtualClock
    rbac: Rbac
    keys: KeyResolver
    entries: AccessEntries
    certificates: Certificates
    ca_file: Path
    url: str = ""
    token_lifetime_seconds: float = TOKEN_LIFETIME_SECONDS
    refused_tokens: int = 0  # requests answered 401
    _snapshots: dict[str, tuple[list[dict[str, Any]], int]] = field(default_factory=dict)
    _ids: Any = field(default_factory=itertools.count)

    @property
    def ca_pem(self) -> bytes:
        return self.certificates.ca_pem

    def authenticate(self, authorization: str | None) -> User:
        scheme, _, token = (authorization or "").partition(" ")
        try:
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("no bearer token")
            return authenticate(
                token.strip(), self.cluster.name, self.clock.now(), self.token_lifetime_seconds, self.keys, self.entries
            )
        except Unauthenticated:
            self.refused_tokens += 1
            raise ApiError(UNAUTHORIZED) from None

    # -- the handlers -------------------------------------------------------------------------------------------
    def handle(self, method: str, info: RequestInfo, query: dict[str, list[str]], headers: Any, body: bytes):
        """(HTTP status, JSON answer) of an authorised request."""
        if not info.resource_request:
            return self._non_resource(info)
        route = (info.api_group, info.api_version, info.resource, info.subresource, info.verb)
        match route:
            case ("", "v1", "nodes", "", "list"):
                return 200, self._list("nodes", "NodeList", "v1", self.cluster.list_nodes(), query)
            case ("", "v1", "nodes", "", "get"):
                return 200, self.cluster.read_node(info.name)
            case ("", "v1", "nodes", "", "patch"):
                patched = apply_patch(headers.get("Content-Type", ""), self.cluster.read_node(info.name), body)
                return 200, self.cluster.patch_node(info.name, patched)
            case ("", "v1", "pods", "", "list"):
                pods = self.cluster.list_pods(namespace=info.namespace or None, node=_node_filter(query))
                return 200, self._list("pods", "PodList", "v1", pods, query)
            case ("", "v1", "pods", "", "get"):
                return 200, self.cluster.read_pod(info.namespace, info.name)
            case ("", "v1", "pods", "eviction", "create"):
                return 201, self._evict(info, query, body)
            case ("policy", "v1", "poddisruptionbudgets", "", "list"):
                budgets = self.cluster.list_budgets(info.namespace or None)
                return 200, self._list("poddisruptionbudgets", "PodDisruptionBudgetList", "policy/v1", budgets, query)
            case ("policy", "v1", "poddisruptionbudgets", "", "get"):
                return 200, self.cluster.read_budget(info.namespace, info.name)
        if info.resource in ("nodes", "pods", "poddisruptionbudgets") and (info.api_group, info.api_version) in (
            ("", "v1"),
            ("policy", "v1"),
        ):
            kind = qualified(info.resource, info.api_group)
            message = f'{info.verb} is not supported on resources of kind "{kind}"'
            raise ApiError(failure(405, "MethodNotAllowed", message, {"kind": info.resource}))
        raise ApiError(failure(404, "NotFound", "the server could not find the requested resource", {}))

    def _non_resource(self, info: RequestInfo) -> tuple[int, Any]:
        if info.path in ("/version", "/version/"):
            version = self.cluster.version
            major, minor = version.split(".")[:2]
            return 200, {"major": major, "minor": minor, "gitVersion": f"v{version}.0-eks", "platform": "linux/amd64"}
        if info.path in ("/healthz", "/livez", "/readyz"):
            return 200, "ok"
        raise ApiError(failure(404, "NotFound", "the server could not find the requested resource", {}))

    def _evict(self, info: RequestInfo, query: dict[str, list[str]], body: bytes) -> dict[str, Any]:
        try:
            eviction = json.loads(body or b"{}")
        except ValueError as error:
            raise bad_request(f"error decoding eviction: {error}") from None
        if eviction.get("kind", "Eviction") != "Eviction" or eviction.get("apiVersion", "policy/v1") not in (
            "policy/v1",
            "policy/v1beta1",
        ):
            raise bad_request(f"not a Eviction object: {eviction.get('apiVersion')}/{eviction.get('kind')}")
        if (eviction.get("metadata") or {}).get("name") != info.name:
            raise bad_request("name in URL does not match name in Eviction object")
        options = eviction.get("deleteOptions") or {}
        dry_run = "All" in (options.get("dryRun") or query.get("dryRun") or [])
        grace = options.get("gracePeriodSeconds")
        return self.cluster.evict(info.namespace, info.name, grace=grace, dry_run=dry_run)

    def _list(self, resource: str, kind: str, api_version: str, items: list[dict[str, Any]], query: dict) -> dict:
        """A List, filtered by the selectors and paged by `limit`/`continue` (the API server's chunking:
        a `continue` token, and `remainingItemCount` when no selector filters the list)."""
        token = _one(query, "continue")
        if token:
            if token not in self._snapshots:
                raise bad_request("continue key is not valid: the list it came from is not known")
            items, revision = self._snapshots.pop(token)
        else:
            labels, fields = _one(query, "labelSelector"), _one(query, "fieldSelector")
            if labels:
                match = label_matcher(labels)
                items = [item for item in items if match(item["metadata"].get("labels") or {})]
            if fields:
                match_fields = field_matcher(resource, fields)
                items = [item for item in items if match_fields(item)]
            revision = self.cluster.revision
        limit = int(_one(query, "limit") or 0)
        metadata: dict[str, Any] = {"resourceVersion": str(revision)}
        if 0 < limit < len(items):
            page, rest = items[:limit], items[limit:]
            last = page[-1]["metadata"]
            start = f"{last.get('namespace', '')}/{last['name']}" if "namespace" in last else last["name"]
            next_token = _continue_token(revision, start, next(self._ids))
            self._snapshots[next_token] = (rest, revision)
            while len(self._snapshots) > SNAPSHOTS_KEPT:
                self._snapshots.pop(next(iter(self._snapshots)))
            metadata["continue"] = next_token
            if not (_one(query, "labelSelector") or _one(query, "fieldSelector")):
                metadata["remainingItemCount"] = len(rest)
            items = page
        return {"kind": kind, "apiVersion": api_version, "metadata": metadata, "items": items}


def _one(query: dict[str, list[str]], name: str) -> str:
    return (query.get(name) or [""])[0]


def _node_filter(query: dict[str, list[str]]) -> str | None:
    """The node a `spec.nodeName=<name>` field selector names (the pods' node index): the rest of the
    selector is applied on the list."""
    for requirement in _requirements(_one(query, "fieldSelector")):
        match = re.fullmatch(r"spec\.nodeName\s*==?\s*(\S+)", requirement)
        if match:
            return match.group(1)
    return None


def _continue_token(revision: int, start: str, serial: int) -> str:
    """As the API server's (storage/etcd3): base64 JSON of the resourceVersion and the key the next page
    starts after (with a serial, as each token names a snapshot here)."""
    token = {"v": "meta.k8s.io/v1", "rv": revision, "start": f"{start}\u0000", "s": serial}
    return base64.b64encode(json.dumps(token, separators=(",", ":")).encode()).decode()


# -- HTTP -----------------------------------------------------------------------------------------------------------
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, endpoint: Endpoint, context: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.endpoint, self.context = endpoint, context

    def get_request(self) -> tuple[Any, Any]:
        connection, address = super().get_request()
        # The handshake happens in the connection's own thread (`_Handler.setup`), not in the accept loop.
        return self.context.wrap_socket(connection, server_side=True, do_handshake_on_connect=False), address


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        try:
            self.request.do_handshake()
        except (ssl.SSLError, OSError):
            self.close_connection = True
        super().setup()

    def handle(self) -> None:
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        endpoint = self.server.endpoint
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        info = request_info(self.command, parts.path, query)
        endpoint.cluster.count_request(info.verb, info.resource_label)
        try:
            user = endpoint.authenticate(self.headers.get("Authorization"))
            if not endpoint.rbac.allows(user, info):
                raise forbidden(user, info)
            code, answer = endpoint.handle(self.command, info, query, self.headers, body)
        except ApiError as error:
            code, answer = error.code, error.status
        except Exception as error:  # a bug here: answered as the API server answers a panic in a handler
            message = f"Internal error occurred: {type(error).__name__}: {error}"
            code, answer = 500, failure(500, "InternalError", message, {"causes": [{"message": str(error)}]})
        self._answer(code, answer)

    def _answer(self, code: int, answer: Any) -> None:
        text = answer if isinstance(answer, str) else json.dumps(answer, separators=(",", ":"))
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8" if isinstance(answer, str) else "application/json")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Audit-Id", str(next(self.server.endpoint._ids)))
        retry = (answer.get("details") or {}).get("retryAfterSeconds") if isinstance(answer, dict) else None
        if retry:
            self.send_header("Retry-After", str(retry))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


# -- the server -----------------------------------------------------------------------------------------------------
class KubernetesApiServer:
    """The API servers of the world's EKS clusters, one HTTPS listener on 127.0.0.1 per cluster."""

    def __init__(self, clock: VirtualClock, rbac_manifest: Path = RBAC_MANIFEST) -> None:
        self.clock = clock
        self.rbac = Rbac.load(rbac_manifest)
        self._directory = tempfile.TemporaryDirectory(prefix="sim-kubernetes-")
        self._listeners: dict[str, tuple[_Server, threading.Thread]] = {}
        self.endpoints: dict[str, Endpoint] = {}

    def serve(self, cluster: SimulatedCluster, keys: KeyResolver, entries: AccessEntries) -> Endpoint:
        """Start serving the cluster's API; its endpoint (URL, CA PEM and CA file)."""
        if cluster.name in self.endpoints:
            raise ValueError(f"cluster {cluster.name} is served already")
        certificates = Certificates.issue(cluster.name)
        directory = Path(self._directory.name)
        ca_file = directory / f"{cluster.name}-ca.crt"
        ca_file.write_bytes(certificates.ca_pem)
        (directory / f"{cluster.name}.crt").write_bytes(certificates.server_pem)
        (directory / f"{cluster.name}.key").write_bytes(certificates.server_key_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(directory / f"{cluster.name}.crt", directory / f"{cluster.name}.key")
        endpoint = Endpoint(cluster, self.clock, self.rbac, keys, entries, certificates, ca_file)
        listener = _Server(endpoint, context)
        endpoint.url = f"https://127.0.0.1:{listener.server_address[1]}"
        thread = threading.Thread(
            target=listener.serve_forever, args=(0.05,), name=f"k8s-api-{cluster.name}", daemon=True
        )
        thread.start()
        self._listeners[cluster.name] = (listener, thread)
        self.endpoints[cluster.name] = endpoint
        return endpoint

    def stop(self, name: str) -> None:
        """Stop serving the cluster (its endpoint refuses connections from now on)."""
        listener, thread = self._listeners.pop(name)
        self.endpoints.pop(name, None)
        listener.shutdown()
        listener.server_close()
        thread.join()

    def close(self) -> None:
        for name in list(self._listeners):
            self.stop(name)
        self._directory.cleanup()
