"""How the EKS adapter reads the Kubernetes API's answers: a refusal for good, one worth a retry, a token to renew,
and an eviction refused in a 201 (two budgets on one pod)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from kubernetes.client.rest import ApiException

from updraft.adapters import eks, eks_auth
from updraft.errors import KubernetesApiError, KubernetesUnavailable

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def refusal(status: int, message: str = "", causes: tuple[str, ...] = ()) -> ApiException:
    error = ApiException(status=status, reason="refused")
    body = {"kind": "Status", "status": "Failure", "code": status, "message": message}
    if causes:
        body["details"] = {"causes": [{"reason": "DisruptionBudget", "message": c} for c in causes]}
    error.body = json.dumps(body)
    return error


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each session made, by the token it carries; tokens renew only when forgotten."""
    made: list[str] = []
    forgotten: list[str] = []

    def session(cluster: str, now: datetime) -> SimpleNamespace:
        made.append(f"token-{len(forgotten)}")
        return SimpleNamespace(token=made[-1])

    monkeypatch.setattr(eks, "_session", session)
    monkeypatch.setattr(eks_auth, "forget", lambda cluster: forgotten.append(cluster))
    return made


def test_a_token_refused_once_is_renewed_and_the_request_made_again(sessions):
    answers = iter([refusal(401, "Unauthorized"), "ok"])

    def request(session: SimpleNamespace) -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return f"{answer} with {session.token}"

    assert eks._call("prod", NOW, request) == "ok with token-1"


def test_a_token_refused_twice_is_a_refusal_for_good(sessions):
    with pytest.raises(KubernetesApiError, match="cluster prod: 401"):
        eks._call("prod", NOW, lambda s: (_ for _ in ()).throw(refusal(401, "Unauthorized")))


@pytest.mark.parametrize("status", [429, 500, 503])
def test_throttling_and_server_errors_are_worth_a_retry(sessions, status):
    with pytest.raises(KubernetesUnavailable):
        eks._call("prod", NOW, lambda s: (_ for _ in ()).throw(refusal(status)))


def test_forbidden_names_what_the_api_server_said(sessions):
    said = 'nodes "ip-10-0-1-17" is forbidden: User "updraft" cannot patch resource "nodes"'
    with pytest.raises(KubernetesApiError, match="cannot patch resource"):
        eks._call("prod", NOW, lambda s: (_ for _ in ()).throw(refusal(403, said)))


def test_a_budget_refusal_is_told_by_its_cause():
    error = refusal(429, "Cannot evict pod", ("The disruption budget web needs 2 healthy pods and has 2 currently",))
    assert eks._message(error) == "The disruption budget web needs 2 healthy pods and has 2 currently"


def evicting(answer: object) -> SimpleNamespace:
    def create(name: str, namespace: str, body: object, _preload_content: bool) -> object:
        if isinstance(answer, Exception):
            raise answer
        return answer

    return SimpleNamespace(core=SimpleNamespace(create_namespaced_pod_eviction=create))


def test_an_eviction_refused_inside_a_201_is_a_refusal():
    two = "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
    created = SimpleNamespace(data=json.dumps({"kind": "Status", "status": "Failure", "code": 500, "message": two}))
    with pytest.raises(eks._Refused, match="more than one PodDisruptionBudget"):
        eks._evict(evicting(created), "web-0", "shop", None)


def test_an_accepted_eviction_and_a_pod_already_gone_are_no_refusal():
    accepted = SimpleNamespace(data=json.dumps({"kind": "Status", "status": "Success", "code": 201}).encode())
    eks._evict(evicting(accepted), "web-0", "shop", None)
    eks._evict(evicting(refusal(404, "not found")), "web-0", "shop", None)
