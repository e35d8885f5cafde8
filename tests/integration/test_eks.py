"""EKS groups on the simulated cluster: each node is cordoned, its pods evicted through the Eviction API within
their PodDisruptionBudgets, the host updated, and the node uncordoned once Ready on the new version; nodes
someone else has a claim on are left alone, and no rollout ends with a node cordoned unless it says why.

The functions talk to the cluster's Kubernetes API over HTTPS with the real client, as their own IAM roles
(the stack's access entries, the shipped RBAC manifest); the cluster is the simulation's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sim.bottlerocket import Fault
from sim.world import World
from stacks import synthesize
from tests.integration.conftest import assert_all_final, assert_calls_granted, once, states
from updraft.adapters.control import Controls
from updraft.config import UpdraftConfig

pytestmark = pytest.mark.integration

OLD, NEW = "1.26.0", "1.26.1"
VARIANT = "aws-k8s-1.32"
CLUSTER = "prod-eks"
UNMAPPED = "other-eks"  # its owner maps the roles, and has not yet
ALARM = "shop-5xx"
BAKE_ALARM = "checkout-5xx"
BUDGET = {"canary": "1", "per_wave": "2", "total": "50%"}
DRAIN = {"cluster": CLUSTER, "drain_timeout_seconds": 600}
CONFIG = UpdraftConfig.model_validate(
    {
        "groups": [
            {"name": "nodes", "variant": VARIANT, "error_budget": BUDGET, "rollback_scope": "failed", "eks": DRAIN},
            {
                "name": "patient",
                "variant": VARIANT,
                "error_budget": BUDGET,
                "rollback_scope": "failed",
                "eks": DRAIN | {"pdb_blocked": "wait"},
                "alarms": {"names": [ALARM]},
            },
            {"name": "elsewhere", "variant": VARIANT, "eks": {"cluster": UNMAPPED, "access_entries": False}},
            {
                "name": "baked",
                "variant": VARIANT,
                "rollback_scope": "wave",
                "alarms": {"names": [BAKE_ALARM]},
                "bake_seconds": 600,
                "eks": DRAIN,
            },
        ]
    }
)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return synthesize(CONFIG)


@pytest.fixture(scope="module")
def deployment(template: dict[str, Any]) -> Iterator[World]:
    """The cluster exists before the stack: its access entries name it."""
    with World(template, variant=VARIANT, eks_clusters=[CLUSTER, UNMAPPED]) as deployed:
        yield deployed


def nodes_of(world: World, group: str, count: int, **launch: Any) -> tuple[list[str], dict[str, str]]:
    """`count` hosts of the group, joined to the cluster as nodes; their ids and node names."""
    ids = world.launch(group, count, **launch)
    return ids, world.join_eks(CLUSTER, ids)


def node(world: World, name: str, cluster: str = CLUSTER) -> dict[str, Any]:
    return world.eks(cluster).read_node(name)


def cordoned(world: World, name: str, cluster: str = CLUSTER) -> bool:
    return bool(node(world, name, cluster)["spec"].get("unschedulable"))


def os_image(world: World, name: str) -> str:
    return node(world, name)["status"]["nodeInfo"]["osImage"]


def history(record: dict[str, Any]) -> str:
    return " | ".join(f"{e['state']}: {e['note']}" for e in record["history"])


def guarded(world: World, name: str, app: str = "ledger") -> None:
    """Two replicas of `app` on the node, under a budget that wants both: every eviction is refused (429)."""
    cluster = world.eks(CLUSTER)
    cluster.deployment(app, 2, nodes=[name])
    cluster.budget(app, {"app": app}, min_available=2)


def draining(result: dict[str, Any]) -> bool:
    return bool((result.get("progress") or {}).get("states", {}).get("draining"))


# -- a drain around the update --------------------------------------------------------------------------------
def test_nodes_are_cordoned_drained_updated_and_uncordoned_once_ready_on_the_target(world, template):
    ids, names = nodes_of(world, "nodes", 3)
    cluster = world.eks(CLUSTER)
    daemons = cluster.daemon_set("aws-node")
    mirrors = [cluster.mirror_pod(name, "kube-proxy") for name in names.values()]
    cluster.deployment("web", 6, nodes=list(names.values()))
    cluster.budget("web", {"app": "web"}, max_unavailable=2)
    debug = cluster.bare_pod(names[ids[0]], "debug")

    execution = world.rollout("nodes", NEW)

    assert execution.status == "SUCCEEDED"
    records = world.host_records(execution.name)
    assert_all_final(records)
    assert set(states(records).values()) == {"updated"}
    assert set(world.versions().values()) == {NEW}
    for instance_id, name in names.items():
        assert not cordoned(world, name)
        assert cluster.node_ready(name) == "True"
        assert os_image(world, name) == f"Bottlerocket OS {NEW} ({VARIANT})"
        steps = history(records[instance_id])
        for seen in ("cordoning node", "drained, apply sent", "awaiting node", "Ready and uncordoned"):
            assert seen in steps, (seen, steps)
    web = [p for p in cluster.list_pods("default") if p["metadata"]["labels"].get("app") == "web"]
    assert len([p for p in web if cluster.ready("default", p["metadata"]["name"])]) == 6  # all back, elsewhere
    pods = {p["metadata"]["name"] for p in cluster.list_pods()}
    assert set(daemons) <= pods and set(mirrors) <= pods  # never evicted
    assert debug not in pods  # a bare pod is evicted, and nothing brings it back
    evictions = cluster.evictions_by_node()
    # The 6 web pods and the bare one, and the 2 web pods the canary's drain sent to the next wave's nodes.
    assert sum(counts["accepted"] for counts in evictions.values()) == 9
    assert_calls_granted(world, template)


def test_a_budget_that_never_allows_the_eviction_skips_the_host_uncordoned_and_untouched(world):
    ids, names = nodes_of(world, "nodes", 1)
    (name,) = names.values()
    cluster = world.eks(CLUSTER)
    guarded(world, name)

    execution = world.rollout("nodes", NEW)

    assert execution.status == "SUCCEEDED"
    record = world.host_records(execution.name)[ids[0]]
    assert record["state"] == "skipped"
    assert "drain did not finish within 600 s" in record["note"]
    assert "disruption budget ledger needs 2 healthy pods and has 2 currently" in record["note"]
    assert record["note"].endswith(f"nothing applied, node {name} uncordoned")
    assert world.versions()[ids[0]] == OLD
    assert not cordoned(world, name)
    assert len(cluster.pods_on(name)) == 2  # the budget kept both
    assert cluster.evictions_by_node()[name]["refused"] >= 3  # tried again, backing off


def test_with_wait_a_blocked_drain_is_waited_on_until_the_budget_allows_it(world):
    ids, names = nodes_of(world, "patient", 2)
    blocked, spare = names[ids[0]], names[ids[1]]
    cluster = world.eks(CLUSTER)
    guarded(world, blocked)
    world.alarm(ALARM)

    def scale_up(step_input: dict[str, Any], result: dict[str, Any]) -> None:
        cluster.scale("ledger", 3)  # the team adds a replica: the budget then allows one disruption

    late = once(lambda i, r: "past its 600 s deadline" in str(world.host_records(i["rollout"]["rollout_id"])), scale_up)
    world.after_step("check_hosts", late)

    execution = world.rollout("patient", NEW)

    assert execution.status == "SUCCEEDED"
    records = world.host_records(execution.name)
    assert states(records) == {ids[0]: "updated", ids[1]: "updated"}
    steps = history(records[ids[0]])
    assert "refused" in steps and "past its 600 s deadline, waiting (pdb_blocked: wait)" in steps
    assert not cordoned(world, blocked) and not cordoned(world, spare)
    assert set(world.versions().values()) == {NEW}


def test_a_pod_two_budgets_select_is_refused_as_the_api_server_refuses_it_and_its_node_skipped(world):
    ids, names = nodes_of(world, "nodes", 1)
    (name,) = names.values()
    cluster = world.eks(CLUSTER)
    cluster.deployment("web", 1, nodes=[name])
    cluster.budget("web", {"app": "web"}, max_unavailable=1)
    cluster.budget("web-too", {"app": "web"}, max_unavailable=1)  # the eviction subresource supports one

    execution = world.rollout("nodes", NEW)

    record = world.host_records(execution.name)[ids[0]]
    assert record["state"] == "skipped"
    assert "more than one PodDisruptionBudget" in record["note"]
    assert not cordoned(world, name) and world.versions()[ids[0]] == OLD


def test_a_do_not_disrupt_pod_is_never_evicted_and_its_node_is_skipped_at_the_deadline(world):
    ids, names = nodes_of(world, "nodes", 1)
    (name,) = names.values()
    cluster = world.eks(CLUSTER)
    job = cluster.bare_pod(name, "train", annotations={"karpenter.sh/do-not-disrupt": "true"})
    cluster.deployment("web", 1, nodes=[name])

    execution = world.rollout("nodes", NEW)

    record = world.host_records(execution.name)[ids[0]]
    assert record["state"] == "skipped"
    assert f"pods annotated karpenter.sh/do-not-disrupt: default/{job}" in record["note"]
    assert job in cluster.pods_on(name)
    assert not cordoned(world, name)
    assert world.versions()[ids[0]] == OLD


# -- nodes someone else has a claim on ----------------------------------------------------------------------------
def test_nodes_karpenter_disrupts_or_the_update_operator_owns_or_not_ready_are_left_alone(world):
    ids, names = nodes_of(world, "nodes", 4)
    disrupted, operated, down, free = (names[i] for i in ids)
    cluster = world.eks(CLUSTER)
    cluster.taint(disrupted, "karpenter.sh/disrupted")
    cluster.label(operated, "bottlerocket.aws/updater-interface-version", "2.0.0")
    cluster.cordon(down)  # someone's maintenance
    cluster.deployment("web", 4, nodes=list(names.values()))

    execution = world.rollout("nodes", NEW)

    records = world.host_records(execution.name)
    assert states(records) == {ids[0]: "skipped", ids[1]: "skipped", ids[2]: "skipped", ids[3]: "updated"}
    assert f"Karpenter is disrupting node {disrupted} (taint karpenter.sh/disrupted)" in records[ids[0]]["note"]
    assert "Bottlerocket update operator" in records[ids[1]]["note"]
    assert "already cordoned" in records[ids[2]]["note"]
    assert cordoned(world, down)  # left as its owner set it
    assert not cordoned(world, disrupted) and not cordoned(world, operated) and not cordoned(world, free)
    assert [world.versions()[i] for i in ids] == [OLD, OLD, OLD, NEW]
    assert sum(c["accepted"] for n, c in cluster.evictions_by_node().items() if n != free) == 0


# -- failures, halts, aborts, stops: nothing left cordoned unrecorded -----------------------------------------
def test_a_failed_host_is_rolled_back_then_uncordoned_once_ready_on_the_old_version(world):
    ids, names = nodes_of(world, "nodes", 3, faults={0: {Fault.BOOT_FALLBACK}})
    world.eks(CLUSTER).deployment("web", 3, nodes=list(names.values()))

    execution = world.rollout("nodes", NEW)

    records = world.host_records(execution.name)
    assert records[ids[0]]["state"] == "rolled-back"
    assert f"node {names[ids[0]]} Ready and uncordoned" in records[ids[0]]["note"]
    assert os_image(world, names[ids[0]]) == f"Bottlerocket OS {OLD} ({VARIANT})"
    assert not any(cordoned(world, name) for name in names.values())


def test_an_alarm_during_the_wave_lets_a_blocked_drain_go_uncordoned(world):
    ids, names = nodes_of(world, "patient", 1)
    (name,) = names.values()
    guarded(world, name)
    world.alarm(ALARM)
    world.after_step("check_hosts", once(lambda i, r: draining(r), lambda i, r: world.set_alarm(ALARM, "ALARM")))

    execution = world.rollout("patient", NEW)

    record = world.host_records(execution.name)[ids[0]]
    assert record["state"] == "skipped"
    assert f"not applied: alarm {ALARM} fired during wave 0" in record["note"]
    assert not cordoned(world, name)
    assert world.versions()[ids[0]] == OLD
    assert world.rollout_record(execution.name)["status"] != "succeeded"


def test_an_abort_mid_drain_uncordons_the_node_and_starts_nothing_more(world):
    _ids, names = nodes_of(world, "patient", 3)
    for index, name in enumerate(names.values()):  # every node blocked: whichever is the canary
        guarded(world, name, f"ledger-{index}")
    world.alarm(ALARM)
    controls = Controls(world.outputs["LedgerTableName"])

    def abort(step_input: dict[str, Any], _result: Any) -> None:
        controls.abort(step_input["rollout"]["rollout_id"], "wrong release", "bob", step_input["now"])

    world.after_step("check_hosts", once(lambda i, r: draining(r), abort))

    execution = world.rollout("patient", NEW)

    assert execution.status == "SUCCEEDED" and execution.output["outcome"] == "aborted"
    records = world.host_records(execution.name)
    assert set(states(records).values()) == {"skipped"}
    assert any("not applied: aborted by bob: wrong release" in r["note"] for r in records.values())
    assert not any(cordoned(world, name) for name in names.values())
    assert set(world.versions().values()) == {OLD}


def test_a_rollout_stopped_mid_drain_is_settled_with_its_node_uncordoned(world):
    ids, names = nodes_of(world, "patient", 1)
    (name,) = names.values()
    guarded(world, name)
    world.alarm(ALARM)
    stop: dict[str, str] = {}
    world.after_step("check_hosts", lambda i, r: stop.setdefault("rollout", i["rollout"]["rollout_id"]))
    arn = world.start({"group": "patient", "target_version": NEW})
    world.run_until(lambda: bool(stop), "the first look at the wave")
    assert cordoned(world, name)
    assert world.stop_while_sleeping(arn)

    assert world.wait(arn).status == "ABORTED"
    world.wait_all()
    record = world.host_records(stop["rollout"])[ids[0]]
    assert record["state"] == "skipped"
    assert record["note"].endswith("nothing applied, node uncordoned")
    assert not cordoned(world, name)
    assert world.lock_holder("patient") is None


def test_a_halt_drains_an_updated_node_before_its_rollback_and_uncordons_it_after(world):
    _, names = nodes_of(world, "baked", 3)
    cluster = world.eks(CLUSTER)
    world.alarm(BAKE_ALARM)
    canary: dict[str, str] = {}

    def pods_back_then_alarm(step_input: dict[str, Any], result: dict[str, Any]) -> None:
        records = world.host_records(step_input["rollout"]["rollout_id"])
        (updated,) = [i for i, r in records.items() if r["state"] == "updated"]
        canary.update(id=updated, node=names[updated])
        cluster.deployment("cart", 2, nodes=[names[updated]])  # the updated node took work again
        world.set_alarm(BAKE_ALARM, "ALARM", "5xx above 1%")

    baking = once(
        lambda i, r: i["wave"] == 0 and (r.get("progress") or {}).get("verdict") == "bake", pods_back_then_alarm
    )
    world.after_step("check_hosts", baking)

    execution = world.rollout("baked", NEW)

    assert world.rollout_record(execution.name)["status"] == "halted"
    record = world.host_records(execution.name)[canary["id"]]
    assert record["state"] == "rolled-back"
    steps = history(record)
    order = [
        steps.index(seen) for seen in ("cordoning node", "evicting 2 pods before the rollback", "drained, rolling back")
    ]
    assert order == sorted(order)
    assert f"node {canary['node']} Ready and uncordoned" in record["note"]
    assert not cordoned(world, canary["node"])
    assert world.versions()[canary["id"]] == OLD
    assert not any(
        pod.startswith("cart-") for pod in cluster.pods_on(canary["node"])
    )  # evicted, not killed by the reboot


# -- authentication ---------------------------------------------------------------------------------------------
def test_a_token_the_api_server_no_longer_accepts_is_renewed_and_the_rollout_goes_on(world):
    _ids, names = nodes_of(world, "nodes", 3)
    world.eks(CLUSTER).deployment("web", 3, nodes=list(names.values()))
    world.eks_endpoint(CLUSTER).token_lifetime_seconds = 120  # shorter than the 10 minutes a token is kept

    execution = world.rollout("nodes", NEW)

    assert execution.status == "SUCCEEDED"
    assert set(states(world.host_records(execution.name)).values()) == {"updated"}
    assert world.eks_endpoint(CLUSTER).refused_tokens > 0  # refused as expired, then renewed


def test_a_cluster_the_roles_are_not_mapped_into_fails_the_rollout_named_with_every_host_recorded(world):
    ids = world.launch("elsewhere", 2)
    names = world.join_eks(UNMAPPED, ids)

    execution = world.rollout("elsewhere", NEW)

    assert (execution.status, execution.error) == ("FAILED", "Updraft.RolloutFailed")
    failed = [e["taskFailedEventDetails"] for e in world.history(execution.arn) if e["type"] == "TaskFailed"]
    assert [d["error"] for d in failed] == ["KubernetesApiError"]  # refused for good: not retried
    rollout = world.rollout_record(execution.name)
    assert "KubernetesApiError" in rollout["error"] and f"cluster {UNMAPPED}: 401" in rollout["error"]
    records = world.host_records(execution.name)
    assert set(states(records).values()) == {"skipped"}
    assert all("not started: the rollout failed" in r["note"] for r in records.values())
    assert not any(cordoned(world, name, UNMAPPED) for name in names.values())
    assert set(world.versions().values()) == {OLD}
    assert world.lock_holder("elsewhere") is None
