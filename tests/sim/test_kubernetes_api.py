"""The simulated EKS clusters' Kubernetes API (sim/kubernetes_api.py, joined to moto by sim/aws/eks.py), through the
real `kubernetes` client and the token functions/updraft/adapters/eks_auth.py makes: TLS against the cluster's own
CA, aws-iam-authenticator's token checks on the virtual clock, access entries and RBAC, and the requests Updraft
makes (nodes, pods on a node, evictions)."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException
from moto import mock_aws

from sim.aws import cloudformation, eks, lambda_, sdk
from sim.bottlerocket import Repository, SimHost
from sim.clock import VirtualClock
from sim.fleet import Fleet
from sim.kubernetes import BUDGET_MESSAGE, MANY_BUDGETS, SimulatedCluster
from sim.kubernetes_api import Endpoint, KubernetesApiServer, Unauthenticated, authenticate
from updraft.adapters import eks_auth

ACCOUNT, REGION = "123456789012", "us-east-1"
VARIANT = "aws-k8s-1.32"
GROUP = "updraft-node-updaters"  # the group eks/rbac.yaml binds
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
    ],
}


@dataclass
class Api:
    clock: VirtualClock
    fleet: Fleet
    cluster: SimulatedCluster
    endpoint: Endpoint
    server: KubernetesApiServer
    nodes: list[str]

    def role(self, name: str, entry: bool = True, policy: dict | None = None) -> str:
        arn = boto3.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
        if policy is not None:
            document = json.dumps({"Version": "2012-10-17", **policy})
            boto3.client("iam").put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=document)
        if entry:
            eks.create_access_entry(ACCOUNT, REGION, self.cluster.name, arn, [GROUP])
        return arn

    @contextlib.contextmanager
    def signed_as(self, role_arn: str, session: str = "plan_waves") -> Iterator[None]:
        """Requests signed with a session of the role (the default session's credentials, as a function's)."""
        harness = boto3.DEFAULT_SESSION
        keys = boto3.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session)["Credentials"]
        boto3.setup_default_session(
            aws_access_key_id=keys["AccessKeyId"],
            aws_secret_access_key=keys["SecretAccessKey"],
            aws_session_token=keys["SessionToken"],
            region_name=REGION,
        )
        try:
            yield
        finally:
            boto3.DEFAULT_SESSION = harness

    def client(self, token: str, ca: str | None = "cluster") -> k8s.CoreV1Api:
        config = k8s.Configuration(
            host=self.endpoint.url, api_key={"authorization": token}, api_key_prefix={"authorization": "Bearer"}
        )
        config.ssl_ca_cert = str(self.endpoint.ca_file) if ca == "cluster" else ca
        config.retries = False
        return k8s.CoreV1Api(k8s.ApiClient(config))

    def updater(self, session: str = "plan_waves") -> k8s.CoreV1Api:
        """A client of the updater role (its access entry maps it to the RBAC manifest's group)."""
        with self.signed_as(self.role("updater"), session):
            return self.client(eks_auth.token(self.cluster.name, REGION))

    def host(self, index: int) -> SimHost:
        return self.fleet.hosts[self.cluster.nodes[self.nodes[index]].instance_id]


@pytest.fixture
def api() -> Iterator[Api]:
    environment = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}
    with mock.patch.dict(os.environ, environment), mock_aws(), contextlib.ExitStack() as stack:
        boto3.setup_default_session(region_name=REGION)
        clock = VirtualClock()
        for patcher in [*sdk.patches(clock), *eks.patches(), *cloudformation.patches()]:
            stack.enter_context(patcher)
        fleet = Fleet(clock, [Repository(VARIANT, "x86_64", ["1.26.0", "1.26.1"])], seed=5)
        ec2 = boto3.client("ec2")
        ids = [i["InstanceId"] for i in ec2.run_instances(ImageId="ami-12345678", MinCount=3, MaxCount=3)["Instances"]]
        for instance_id in ids:
            fleet.add_host(instance_id, "us-east-1a", VARIANT, "1.26.0")
        boto3.client("eks").create_cluster(
            name="prod", roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks", resourcesVpcConfig={}
        )
        cluster = SimulatedCluster("prod", fleet, clock)
        server = KubernetesApiServer(clock)
        stack.callback(server.close)
        stack.callback(eks.ACCESS_ENTRIES.clear)
        endpoint = server.serve(cluster, eks.signers(ACCOUNT), eks.entries(ACCOUNT, REGION, "prod"))
        eks.attach(ACCOUNT, REGION, endpoint)
        nodes = [cluster.join(instance_id) for instance_id in ids]
        clock.sleep(60)
        yield Api(clock, fleet, cluster, endpoint, server, nodes)


def eviction(name: str) -> k8s.V1Eviction:
    return k8s.V1Eviction(metadata=k8s.V1ObjectMeta(name=name, namespace="default"))


def refusal(call) -> tuple[int, dict]:
    with pytest.raises(ApiException) as refused:
        call()
    return refused.value.status, json.loads(refused.value.body)


def pods_on(core: k8s.CoreV1Api, node: str) -> list[str]:
    return sorted(
        p.metadata.name for p in core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items
    )


# -- what DescribeCluster hands out, and TLS ----------------------------------------------------------------------
def test_describe_cluster_hands_out_the_simulated_endpoint_and_its_ca(api):
    described = boto3.client("eks").describe_cluster(name="prod")["cluster"]
    assert described["endpoint"] == api.endpoint.url and described["endpoint"].startswith("https://127.0.0.1:")
    assert base64.b64decode(described["certificateAuthority"]["data"]) == api.endpoint.ca_pem


def test_describe_cluster_is_refused_to_a_role_its_policies_do_not_allow(api):
    allowed = api.role(
        "reader", policy={"Statement": [{"Effect": "Allow", "Action": "eks:DescribeCluster", "Resource": "*"}]}
    )
    with api.signed_as(allowed):
        assert boto3.client("eks").describe_cluster(name="prod")["cluster"]["name"] == "prod"
    with api.signed_as(api.role("nobody")), pytest.raises(ClientError) as refused:
        boto3.client("eks").describe_cluster(name="prod")
    error = refused.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert f"eks:DescribeCluster on resource: arn:aws:eks:{REGION}:{ACCOUNT}:cluster/prod" in error["Message"]


def test_tls_is_verified_against_the_cluster_ca_and_no_other(api):
    core = api.updater()
    assert len(core.list_node().items) == 3
    token = core.api_client.configuration.api_key["authorization"]
    other = api.server.serve(SimulatedCluster("other", api.fleet, api.clock), eks.signers(ACCOUNT), lambda _: None)
    for ca in (None, str(other.ca_file)):  # the system's CAs, another cluster's CA
        with pytest.raises(ApiException) as failed:
            api.client(token, ca=ca).list_node()
        assert failed.value.status == 0 and "CERTIFICATE_VERIFY_FAILED" in failed.value.reason


# -- authentication ------------------------------------------------------------------------------------------------
def test_a_token_is_accepted_for_15_virtual_minutes_then_refused(api):
    core = api.updater()
    api.clock.sleep(15 * 60 - 1)
    assert core.list_node().items
    api.clock.sleep(2)
    status, body = refusal(core.list_node)
    assert (status, body["reason"], body["message"]) == (401, "Unauthorized", "Unauthorized")


def test_the_token_lifetime_is_settable(api):
    core = api.updater()
    api.endpoint.token_lifetime_seconds = 30
    api.clock.sleep(31)
    assert refusal(core.list_node)[0] == 401


def test_a_token_made_for_another_cluster_is_refused(api):
    with api.signed_as(api.role("updater")):
        token = eks_auth.token("staging", REGION)
    assert refusal(api.client(token).list_node)[0] == 401


def test_a_malformed_or_tampered_token_is_refused(api):
    with api.signed_as(api.role("updater")):
        token = eks_auth.token("prod", REGION)
    url = base64.urlsafe_b64decode(token.removeprefix("k8s-aws-v1.") + "==").decode()
    for bad in (
        token + "=",  # padded
        "k8s-aws-v2." + token.removeprefix("k8s-aws-v1."),
        "k8s-aws-v1."
        + base64.urlsafe_b64encode(url.replace("GetCallerIdentity", "AssumeRole").encode()).decode().rstrip("="),
        "k8s-aws-v1." + base64.urlsafe_b64encode(url.replace("sts.", "sts-evil.").encode()).decode().rstrip("="),
    ):
        assert refusal(api.client(bad).list_node)[0] == 401


def test_a_role_without_an_access_entry_is_unauthorized(api):
    """aws-iam-authenticator denies the TokenReview of an unmapped principal: the API server answers 401."""
    with api.signed_as(api.role("stranger", entry=False)):
        core = api.client(eks_auth.token("prod", REGION))
    assert refusal(core.list_node)[0] == 401


# -- authorization ---------------------------------------------------------------------------------------------------
def test_a_verb_the_rbac_manifest_does_not_grant_is_forbidden(api):
    api.cluster.deployment("web", 1, nodes=api.nodes[:1])
    (pod,) = [p for p in api.cluster.pods_on(api.nodes[0]) if p.startswith("web-")]
    core = api.updater()
    status, body = refusal(lambda: core.delete_namespaced_pod(pod, "default"))
    user = f"arn:aws:sts::{ACCOUNT}:assumed-role/updater/plan_waves"  # EKS's default username, session named
    expected = (
        f'pods "{pod}" is forbidden: User "{user}" cannot delete resource "pods" in API group "" in the namespace '
        '"default"'
    )
    assert (status, body["reason"], body["message"]) == (403, "Forbidden", expected)
    status, body = refusal(lambda: core.read_node(api.nodes[0]))
    assert body["message"].endswith('cannot get resource "nodes" in API group "" at the cluster scope')


# -- what Updraft does through the API ---------------------------------------------------------------------------------
def test_cordon_and_uncordon_patch_the_node(api):
    core = api.updater()
    cordoned = core.patch_node(api.nodes[0], {"spec": {"unschedulable": True}})
    assert cordoned.spec.unschedulable is True
    assert [(t.key, t.effect) for t in cordoned.spec.taints] == [("node.kubernetes.io/unschedulable", "NoSchedule")]
    assert core.patch_node(api.nodes[0], {"spec": {"unschedulable": None}}).spec.unschedulable is None
    listed = {n.metadata.name: n for n in core.list_node().items}
    assert listed[api.nodes[0]].spec.taints is None
    assert listed[api.nodes[0]].spec.provider_id == f"aws:///us-east-1a/{api.cluster.nodes[api.nodes[0]].instance_id}"


def test_pods_on_a_node_are_listed_by_field_selector_in_pages(api):
    api.cluster.deployment("web", 3, nodes=[api.nodes[0]])
    api.cluster.daemon_set("kube-proxy")
    core = api.updater()
    first = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={api.nodes[0]}", limit=3)
    assert len(first.items) == 3 and first.metadata._continue
    api.cluster.deployment("late", 1, nodes=[api.nodes[0]])  # the next page reads the first page's snapshot
    rest = core.list_pod_for_all_namespaces(
        field_selector=f"spec.nodeName={api.nodes[0]}", limit=3, _continue=first.metadata._continue
    )
    names = [p.metadata.name for p in [*first.items, *rest.items]]
    assert rest.metadata._continue is None and len(names) == 4
    assert [p.spec.node_name for p in rest.items] == [api.nodes[0]]
    assert sorted(names) == sorted(n for n in api.cluster.pods_on(api.nodes[0]) if not n.startswith("late-"))


def test_an_eviction_is_accepted_refused_by_the_budget_then_accepted_once_the_replacement_is_ready(api):
    api.cluster.deployment("web", 3, nodes=api.nodes)
    api.cluster.budget("web", {"app": "web"}, min_available=2)
    core = api.updater()
    core.patch_node(api.nodes[0], {"spec": {"unschedulable": True}})
    first, second, _ = (api.cluster.pod_of(node, "web") for node in api.nodes)
    accepted = core.create_namespaced_pod_eviction(first, "default", eviction(first))
    assert (accepted.kind, accepted.api_version) == ("Status", "v1")
    status, body = refusal(lambda: core.create_namespaced_pod_eviction(second, "default", eviction(second)))
    assert (status, body["reason"], body["message"]) == (429, "TooManyRequests", BUDGET_MESSAGE)
    assert body["details"]["causes"] == [
        {"reason": "DisruptionBudget", "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}
    ]
    api.clock.sleep(15)  # the replacement, on another schedulable node, is Ready
    core.create_namespaced_pod_eviction(second, "default", eviction(second))
    api.clock.sleep(30)
    assert [p for p in pods_on(core, api.nodes[0]) if p.startswith("web-")] == []
    assert sum(len([p for p in pods_on(core, node) if p.startswith("web-")]) for node in api.nodes[1:]) == 3


def test_a_pod_of_two_budgets_is_refused_with_a_failure_status_the_client_does_not_raise(api):
    """eviction.go returns the 500 Status as the created object: the API server answers HTTP 201 with it
    (handlers/create.go), so the Python client returns it instead of raising."""
    api.cluster.deployment("web", 2, nodes=api.nodes[:2])
    api.cluster.budget("one", {"app": "web"}, min_available=1)
    api.cluster.budget("two", {"app": "web"}, max_unavailable=1)
    (pod,) = [p for p in api.cluster.pods_on(api.nodes[0]) if p.startswith("web-")]
    core = api.updater()
    raw = core.create_namespaced_pod_eviction(pod, "default", eviction(pod), _preload_content=False)
    answer = json.loads(raw.data)
    assert (raw.status, answer["status"], answer["code"], answer["message"]) == (201, "Failure", 500, MANY_BUDGETS)


def test_a_replacement_lands_on_another_schedulable_node_and_daemon_set_pods_stay(api):
    api.cluster.deployment("web", 1, nodes=api.nodes[:1])
    api.cluster.daemon_set("kube-proxy")
    api.cluster.cordon(api.nodes[1])
    api.cluster.taint(api.nodes[2], "karpenter.sh/disrupted")  # nowhere for the replacement to go...
    core = api.updater()
    core.patch_node(api.nodes[0], {"spec": {"unschedulable": True}})
    (web,) = [p for p in pods_on(core, api.nodes[0]) if p.startswith("web-")]
    core.create_namespaced_pod_eviction(web, "default", eviction(web))
    pending = [p for p in core.list_namespaced_pod("default").items if p.spec.node_name is None]
    assert [p.status.phase for p in pending] == ["Pending"]
    core.patch_node(api.nodes[1], {"spec": {"unschedulable": None}})  # ... until a node is uncordoned
    assert [p for p in pods_on(core, api.nodes[1]) if p.startswith("web-")] == [pending[0].metadata.name]
    proxy = api.cluster.pod_of(api.nodes[0], "kube-proxy")
    core.create_namespaced_pod_eviction(proxy, "kube-system", k8s.V1Eviction(metadata=k8s.V1ObjectMeta(name=proxy)))
    api.clock.sleep(30)
    (again,) = [p for p in pods_on(core, api.nodes[0]) if p.startswith("kube-proxy-")]
    assert again != proxy  # the DaemonSet made it again on its own (cordoned) node


def test_a_node_is_not_ready_while_its_host_reboots_and_ready_on_its_new_image_after(api):
    core = api.updater()
    host = api.host(0)
    host.staging, host.next_to_boot_staging = "1.26.1", True
    api.fleet.ec2_reboot([host.instance_id])
    _, back = host.boot_log[-1]

    def node() -> k8s.V1Node:
        (found,) = [n for n in core.list_node().items if n.metadata.name == api.nodes[0]]
        return found

    def ready() -> str:
        return next(c.status for c in node().status.conditions if c.type == "Ready")

    api.clock.sleep(api.cluster.node_monitor_grace_seconds)
    assert ready() == "Unknown" and node().status.node_info.os_image == "Bottlerocket OS 1.26.0 (aws-k8s-1.32)"
    api.clock.sleep(back - api.clock.seconds)
    assert ready() == "False"
    api.clock.sleep(api.cluster.kubelet_ready_seconds)
    assert ready() == "True" and node().status.node_info.os_image == "Bottlerocket OS 1.26.1 (aws-k8s-1.32)"


def test_requests_are_counted_by_verb_and_resource(api):
    api.cluster.deployment("web", 1, nodes=api.nodes[:1])
    core = api.updater()
    core.list_node()
    core.patch_node(api.nodes[0], {"spec": {"unschedulable": True}})
    (web,) = pods_on(core, api.nodes[0])
    core.create_namespaced_pod_eviction(web, "default", eviction(web))
    assert api.cluster.api_requests == {
        ("list", "nodes"): 1,
        ("patch", "nodes"): 1,
        ("list", "pods"): 1,
        ("create", "pods/eviction"): 1,
    }
    assert api.cluster.evictions_by_node() == {api.nodes[0]: {"accepted": 1, "refused": 0}}


# -- access entries, as CloudFormation creates them --------------------------------------------------------------
def entry_stack(name: str, cluster: str, groups: list[str]) -> dict:
    cloud = boto3.client("cloudformation")
    resource = {"ClusterName": cluster, "PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/r", "KubernetesGroups": groups}
    template = {
        "Resources": {"Entry": {"Type": "AWS::EKS::AccessEntry", "Properties": resource | {"Type": "STANDARD"}}}
    }
    try:
        cloud.create_stack(StackName=name, TemplateBody=json.dumps(template))
    except ClientError as error:
        return {"StackStatus": "REFUSED", "StackStatusReason": str(error)}
    return cloud.describe_stacks(StackName=name)["Stacks"][0]


def test_an_access_entry_resource_maps_its_principal_and_is_refused_as_eks_refuses_it(api):
    assert entry_stack("good", "prod", [GROUP])["StackStatus"] == "CREATE_COMPLETE"
    assert eks.entries(ACCOUNT, REGION, "prod")(f"arn:aws:iam::{ACCOUNT}:role/r").kubernetes_groups == (GROUP,)
    with pytest.raises(Exception, match="cannot start with system:"):
        eks.create_access_entry(ACCOUNT, REGION, "prod", f"arn:aws:iam::{ACCOUNT}:role/s", ["system:masters"])
    with pytest.raises(Exception, match=r"No cluster found for name: nowhere\."):
        eks.create_access_entry(ACCOUNT, REGION, "nowhere", f"arn:aws:iam::{ACCOUNT}:role/s", [GROUP])
    refused = entry_stack("twice", "prod", [GROUP])
    assert refused["StackStatus"] == "REFUSED"
    assert "The specified access entry resource is already in use on this cluster." in refused["StackStatusReason"]


# -- who signs, and when ---------------------------------------------------------------------------------------------
def whoami(event: dict, context: object) -> dict:
    """A Lambda handler: who its requests are signed as, and an EKS token of its own."""
    return {"arn": boto3.client("sts").get_caller_identity()["Arn"], "token": eks_auth.token("prod", REGION)}


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "")
    return buffer.getvalue()


def test_a_running_function_signs_as_its_execution_roles_session_at_virtual_time(api):
    role = api.role("whoami-role")
    with contextlib.ExitStack() as stack:
        for patcher in lambda_.patches(api.clock, {}):
            stack.enter_context(patcher)
        functions = boto3.client("lambda")
        functions.create_function(
            FunctionName="whoami",
            Runtime="python3.12",
            Role=role,
            Handler=f"{__name__}.whoami",
            Code={"ZipFile": _zip()},
        )
        answer = json.loads(functions.invoke(FunctionName="whoami")["Payload"].read())
        again = json.loads(functions.invoke(FunctionName="whoami")["Payload"].read())
    assert answer["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/whoami-role/whoami"
    assert again["arn"] == answer["arn"]  # one session per function
    assert boto3.client("sts").get_caller_identity()["Arn"] != answer["arn"]  # the harness signs as itself
    url = base64.urlsafe_b64decode(answer["token"].removeprefix("k8s-aws-v1.") + "==").decode()
    assert f"X-Amz-Date={api.clock.now():%Y%m%dT%H%M%SZ}" in url  # signed at virtual time
    assert len(api.client(answer["token"]).list_node().items) == 3


def test_a_token_signed_more_than_15_minutes_ahead_is_not_yet_current(api):
    with api.signed_as(api.role("updater")):
        token = eks_auth.token("prod", REGION)
    check = (token, "prod", api.clock.now() - timedelta(minutes=16), 900, eks.signers(ACCOUNT))
    with pytest.raises(Unauthenticated, match="not yet current"):
        authenticate(*check, eks.entries(ACCOUNT, REGION, "prod"))
    user = authenticate(token, "prod", api.clock.now(), 900, eks.signers(ACCOUNT), eks.entries(ACCOUNT, REGION, "prod"))
    assert user.groups == (GROUP, "system:authenticated")
