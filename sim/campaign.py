"""A fault campaign: hundreds of seeded, randomized rollouts of small simulated fleets, each with faults
drawn at random, and the pipeline's invariants checked after each one.

Faults: host faults (sim.bottlerocket.Fault), throttled SendCommand, Lambda service errors on a step
(before its handler runs, or after it ran with the response lost), instances terminated mid-rollout,
the execution's end event delivered twice or late (during the group's next rollout), a release
announcement delivered twice, concurrent starts of one group, an operator abort, a StopExecution, and
an alarm firing during a wave. Invariants (violations are expected to be 0):
- final: every host record ends in a final state;
- versions: an updated host runs the target, a rolled-back one its previous version, one that needs
  attention (rollback-failed, needs-attention) says why; a skipped host was never touched;
- recorded: every host the rollout sent an update to is in its ledger;
- budget: no host of a wave after the one that spent the error budget (or halted) was touched;
- lock: no group lock is held once every execution ended;
- stuck: every execution ends, within a bound of virtual time;
- events: a duplicate end event changes nothing in the ledger.

The command line is bench/fault_campaign.py; tests/campaign runs 20 seeds of it.
"""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")  # before jsii starts

import hashlib
import json
import random
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sim.aws.lambda_ import LambdaServiceError
from sim.bottlerocket import Fault
from sim.clock import EPOCH, SimulationStuck
from sim.update_repository import UpdateRepository
from sim.world import World
from stacks import synthesize
from updraft.adapters.control import Controls
from updraft.config import UpdraftConfig, allowed_failures
from updraft.domain.host_record import FINAL
from updraft.errors import RolloutNotFound

OLD, NEW = "1.26.0", "1.26.1"
ALARM = "workload-errors"
QUICK = {"apply_timeout_seconds": 600, "verify_timeout_seconds": 300}
# Each policy has its own variant, so that a release announcement starts only its group's rollout.
POLICIES: list[dict[str, Any]] = [
    {
        "name": "failed-scope",
        "variant": "aws-ecs-1",
        "rollback_scope": "failed",
        "error_budget": {"canary": "0", "per_wave": "1", "total": "50%"},
    },
    {
        "name": "wave-scope-gated",
        "variant": "aws-ecs-2",
        "rollback_scope": "wave",
        "error_budget": {"canary": "0", "per_wave": "1", "total": "25%"},
        "alarms": {"names": [ALARM]},
        "bake_seconds": 600,
    },
    {
        "name": "rollout-scope-strict",
        "variant": "aws-k8s-1.31",
        "rollback_scope": "rollout",
        "error_budget": {"canary": "0", "per_wave": "0", "total": "0"},
    },
    {
        "name": "tolerant-baked",
        "variant": "aws-k8s-1.32",
        "canary_size": 2,
        "rollback_scope": "wave",
        "error_budget": {"canary": "1", "per_wave": "50%", "total": "50%"},
        "bake_seconds": 300,
    },
    {
        "name": "rollout-scope-gated",
        "variant": "aws-dev",
        "rollback_scope": "rollout",
        "error_budget": {"canary": "0", "per_wave": "1", "total": "30%"},
        "alarms": {"names": [ALARM]},
        "bake_seconds": 900,
    },
]
HOST_FAULTS = [
    Fault.APPLY_FAILS,
    Fault.REBOOT_HANGS,
    Fault.BOOT_FALLBACK,
    Fault.AGENT_OFFLINE,
    Fault.WRONG_VERSION,
    Fault.IMPAIRED,
    Fault.GARBLED_OS,
    Fault.GARBLED_STATUS,
]
# Steps every rollout takes, and those only some take (a step never reached injects nothing).
STEPS = ["acquire_lock", "start_inventory", "plan_waves", "apply_wave", "check_hosts", "bake", "halt", "finish"]
ROLLOUT_STEPS = ["start_inventory", "plan_waves", "apply_wave", "check_hosts", "bake"]  # their input names the rollout
LAMBDA_CODES = ["ServiceException", "TooManyRequestsException"]
INVARIANTS = ["final", "versions", "recorded", "budget", "lock", "stuck", "events"]
VIRTUAL_BOUND = 24 * 3600  # seconds of virtual time every execution must end within


@dataclass(frozen=True)
class Trigger:
    step: str
    call: int  # the step's n-th call (over every execution of the run)


@dataclass
class Scenario:
    seed: int
    policy: str
    hosts: int
    host_faults: dict[int, Fault] = field(default_factory=dict)
    throttled_sends: int = 0
    lambda_errors: list[tuple[Trigger, str, int]] = field(default_factory=list)  # (where, code, times in a row)
    lost_responses: list[Trigger] = field(default_factory=list)  # the handler ran; its response was lost
    start: str = "direct"  # direct | concurrent | announced-twice
    terminations: list[tuple[Trigger, int]] = field(default_factory=list)  # (when, host index)
    abort: Trigger | None = None
    stop: Trigger | None = None
    alarm: Trigger | None = None
    end_event: str | None = None  # twice | late


def draw(seed: int) -> Scenario:
    """The run's fleet, policy and faults, from its seed alone."""
    rng = random.Random(seed)
    policy = rng.choice(POLICIES)
    scenario = Scenario(seed=seed, policy=policy["name"], hosts=rng.randint(3, 12))

    def trigger(steps: list[str] = ROLLOUT_STEPS) -> Trigger:
        step = rng.choice(steps)
        return Trigger(step, rng.randint(1, 6) if step == "check_hosts" else rng.randint(1, 2))

    for index in rng.sample(range(scenario.hosts), k=rng.choice([0, 0, 1, 1, 2, 3])):
        scenario.host_faults[index] = rng.choice(HOST_FAULTS)
    if rng.random() < 0.2:
        scenario.throttled_sends = rng.randint(1, 3)
    for _ in range(rng.choice([0, 0, 1, 2])):
        times = rng.choice([1, 1, 1, 2, 3, 5])  # 5 in a row outlasts the Retry's 4 attempts
        scenario.lambda_errors.append((trigger(STEPS), rng.choice(LAMBDA_CODES), times))
    if rng.random() < 0.2:
        scenario.lost_responses.append(trigger(STEPS))
    scenario.start = rng.choices(["direct", "concurrent", "announced-twice"], weights=[6, 2, 2])[0]
    if rng.random() < 0.25:
        scenario.terminations.append((trigger(), rng.randrange(scenario.hosts)))
    if rng.random() < 0.12:
        scenario.abort = trigger(["apply_wave", "check_hosts", "bake"])
    elif rng.random() < 0.12:
        scenario.stop = trigger(["apply_wave", "check_hosts", "bake"])
    if policy.get("alarms") and rng.random() < 0.3:
        scenario.alarm = trigger(["apply_wave", "check_hosts"])
    if rng.random() < 0.3:
        scenario.end_event = rng.choice(["twice", "late"])
    return scenario


@dataclass
class RunResult:
    seed: int
    faults: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    host_states: Counter[str] = field(default_factory=Counter)
    violations: list[tuple[str, str]] = field(default_factory=list)  # (invariant, what)


def config(trusted_root_file: str) -> UpdraftConfig:
    detection = {
        "metadata_base_url": "https://updates.example/2020-07-07/{variant}/{arch}/",
        "targets_base_url": "https://updates.example/targets/",
        "trusted_root_file": trusted_root_file,
        "trusted_root_sha512": hashlib.sha512(Path(trusted_root_file).read_bytes()).hexdigest(),
    }
    groups = [{**QUICK, **policy} for policy in POLICIES]
    return UpdraftConfig.model_validate({"groups": groups, "detection": detection})


def campaign_template() -> dict[str, Any]:
    """The template of the campaign's groups (release detection on, so that announcements start rollouts)."""
    with tempfile.TemporaryDirectory() as scratch:
        repository = UpdateRepository(Path(scratch) / "updates", "aws-ecs-2")
        try:
            root = Path(scratch) / "root.json"
            root.write_bytes(repository.trusted_root)
            return synthesize(config(str(root)))
        finally:
            repository.close()


# -- one run ------------------------------------------------------------------------------------------
class Run:
    """One scenario on a fresh simulated region: start, inject, wait, check."""

    def __init__(self, world: World, scenario: Scenario, policy: dict[str, Any]) -> None:
        self.world, self.scenario, self.policy = world, scenario, policy
        self.group = policy["name"]
        self.result = RunResult(scenario.seed)
        self.ids: list[str] = []
        self.before: dict[str, dict[str, tuple[str, bool]]] = {}  # rollout id -> hosts when its inventory began
        self.after: dict[str, dict[str, tuple[str, bool]]] = {}  # rollout id -> hosts when it finished
        self.stop_requested: str | None = None
        self.stopped = False
        self.first: str | None = None  # the first execution's arn, for a late end event
        self._calls: Counter[tuple[str, Trigger]] = Counter()

    # -- hooks ----------------------------------------------------------------------------------------
    def at(self, trigger: Trigger, kind: str, action: Callable[[dict[str, Any], Any], bool | None]) -> None:
        """Run `action` once, when `trigger.step` returns for the `trigger.call`-th time; count the fault
        when the action says it acted (None counts as yes)."""

        def hook(step_input: dict[str, Any], result: Any) -> None:
            self._calls[(kind, trigger)] += 1
            if self._calls[(kind, trigger)] == trigger.call and action(step_input, result) is not False:
                self.result.faults[kind] += 1

        self.world.after_step(trigger.step, hook)

    def _snapshots(self) -> None:
        def before(step_input: dict[str, Any], _: Any) -> None:
            self.before.setdefault(step_input["rollout"]["rollout_id"], self.world.host_snapshot())

        def after(rollout_id: str) -> None:
            self.after.setdefault(rollout_id, self.world.host_snapshot())

        self.world.after_step("start_inventory", before)
        self.world.after_step("finish", lambda i, _: after(i["rollout"]["rollout_id"]))
        self.world.after_step("on_execution_end", lambda i, _: after(i["detail"]["name"]))

    def _inject(self) -> None:
        s, world = self.scenario, self.world
        world.fleet.throttle_sends = s.throttled_sends
        self.result.faults["throttled-send"] += s.throttled_sends
        for trigger, code, times in s.lambda_errors:
            world.fail_lambda(trigger.step, code, on_call=trigger.call, times=times)
        for trigger in s.lost_responses:
            self.at(trigger, "lambda-response-lost", self._lose_response(trigger.step, self.result.faults))
        for trigger, index in s.terminations:
            self.at(trigger, "terminated", lambda i, r, index=index: world.terminate(self.ids[index]))
        if s.abort:
            self.at(s.abort, "abort", self._abort)
        if s.stop:
            self.at(s.stop, "stop", self._request_stop)
        if s.alarm:
            self.at(s.alarm, "alarm", lambda i, r: world.set_alarm(ALARM, "ALARM"))

    @staticmethod
    def _lose_response(step: str, counts: Counter[str]) -> Callable[[dict[str, Any], Any], None]:
        def lose(step_input: dict[str, Any], result: Any) -> None:
            counts["lambda-response-lost"] += 1  # here: the raise skips the hook's own count
            raise LambdaServiceError("SdkClientException", step)

        return lose

    def _abort(self, step_input: dict[str, Any], _: Any) -> bool:
        try:
            Controls(self.world.outputs["LedgerTableName"]).abort(
                step_input["rollout"]["rollout_id"], "campaign abort", "campaign", step_input["now"]
            )
        except RolloutNotFound:
            return False
        return True

    def _request_stop(self, step_input: dict[str, Any], _: Any) -> None:
        # The driver, looking after this turn and before time moves, stops the execution at its next wait.
        self.stop_requested = step_input["rollout"]["rollout_id"]

    # -- driving ----------------------------------------------------------------------------------------
    def start(self) -> None:
        s, world = self.scenario, self.world
        if s.start == "direct":
            self.first = world.start({"group": self.group, "target_version": NEW})
        elif s.start == "concurrent":  # started one after the other, all in flight at once
            self.result.faults["concurrent-start"] += 1
            for _ in range(random.Random(s.seed).randint(2, 3)):
                world.start({"group": self.group, "target_version": NEW})
        else:
            self.result.faults["release-announced-twice"] += 1
            for _ in range(2):
                world.announce_release(NEW, EPOCH.isoformat())

    def drive(self) -> bool:
        """Let the world run until every execution ended, stopping one when asked; False if some did not
        end within the virtual bound."""
        while True:
            if not self.world.run_until(
                lambda: self._stop_due() or not self.world.clock.parked(), "every execution to end", VIRTUAL_BOUND
            ):
                return False
            if not self._stop_due():
                return True
            self.stopped = True
            self.world.stop_while_sleeping(self.arn_of(self.stop_requested or ""))

    def _stop_due(self) -> bool:
        return bool(self.stop_requested) and not self.stopped

    def running(self) -> list[dict[str, Any]]:
        arn = self.world.outputs["RolloutStateMachineArn"]
        return self.world.sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]

    def arn_of(self, name: str) -> str:
        machine = self.world.outputs["RolloutStateMachineArn"]
        return f"{machine.replace(':stateMachine:', ':execution:')}:{name}"

    def executions(self) -> list[dict[str, Any]]:
        arn = self.world.outputs["RolloutStateMachineArn"]
        return sorted(self.world.sfn.list_executions(stateMachineArn=arn)["executions"], key=lambda e: e["startDate"])

    def late_end_event(self) -> None:
        """The group's next rollout (an operator's retry); the first execution's end event arrives during it."""
        first = self.executions()[0]["executionArn"]

        def deliver(step_input: dict[str, Any], _: Any) -> None:
            if step_input["wave"] == 0:
                self.world.redeliver_status_change(first)
                self.result.faults["end-event-late"] += 1

        self.world.after_step("apply_wave", deliver)
        self.world.start({"group": self.group, "target_version": NEW})

    def execute(self) -> RunResult:
        world, s = self.world, self.scenario
        if self.policy.get("alarms"):
            world.alarm(ALARM)
        faults = {index: {fault} for index, fault in s.host_faults.items()}
        self.ids = world.launch(self.group, s.hosts, version=OLD, faults=faults)
        self.result.faults.update(f"host:{fault}" for fault in s.host_faults.values())
        self._snapshots()
        self._inject()
        try:
            self.start()
            ended = self.drive()
            if ended and s.end_event == "late":
                self.late_end_event()
                ended = self.drive()
        except SimulationStuck as stuck:
            self.violate("stuck", str(stuck))
            return self.result
        self.result.faults.update(f"lambda:{code}" for _, code in world.lambda_errors_raised())
        if not ended:
            self.violate("stuck", f"executions still running after {VIRTUAL_BOUND / 3600:.0f} h: {len(self.running())}")
            return self.result
        if s.end_event == "twice":
            self.duplicate_end_events()
        self.check()
        return self.result

    def duplicate_end_events(self) -> None:
        before = self.ledger_view()
        for execution in self.executions():
            self.world.redeliver_status_change(execution["executionArn"])  # settled in this turn
            self.result.faults["end-event-twice"] += 1
        if self.ledger_view() != before:
            self.violate("events", "a duplicate end event changed the ledger")

    def ledger_view(self) -> dict[str, Any]:
        view = {}
        for execution in self.executions():
            name = execution["name"]
            records = self.world.host_records(name)
            meta = self.world.rollout_record(name)
            view[name] = (meta.get("status"), {i: (r["state"], r.get("failure")) for i, r in records.items()})
        return view

    # -- invariants ---------------------------------------------------------------------------------------
    def violate(self, invariant: str, what: str) -> None:
        self.result.violations.append((invariant, what))

    def check(self) -> None:
        for execution in self.executions():
            meta = self.world.rollout_record(execution["name"])
            self.result.outcomes[meta.get("status", "not-started")] += 1
            if meta:
                self.check_rollout(execution["name"], meta)
        if self.world.lock_holder(self.group) is not None:
            self.violate("lock", f"{self.group} still held by {self.world.lock_holder(self.group)}")

    def check_rollout(self, name: str, meta: dict[str, Any]) -> None:
        records = self.world.host_records(name)
        self.result.host_states.update(r["state"] for r in records.values())
        touched = self.applied_during(meta)
        before = self.before.get(name, {})
        after = self.after.get(name) or self.world.host_snapshot()
        for instance_id in sorted(touched - set(records)):
            self.violate("recorded", f"{name}: {instance_id} was sent an update and is not in the ledger")
        # A host another rollout left mid-update (needs-attention) may still change version on its own: that
        # rollout's command goes on after its execution ended, so the change is not this rollout's doing.
        in_flight = {
            instance_id
            for other in self.executions()
            if other["name"] != name
            for instance_id, record in self.world.host_records(other["name"]).items()
            if record["state"] == "needs-attention"
        }
        for instance_id, record in records.items():
            unexplained = {k: v for k, v in before.items() if k not in in_flight}
            self.check_host(name, instance_id, record, instance_id in touched, unexplained, after)
        self.check_budget(name, meta, records, touched)

    def check_host(
        self,
        name: str,
        instance_id: str,
        record: dict[str, Any],
        touched: bool,
        before: dict[str, tuple[str, bool]],
        after: dict[str, tuple[str, bool]],
    ) -> None:
        state, where = record["state"], f"{name}: {instance_id}"
        version = after[instance_id][0]
        if state not in FINAL:
            self.violate("final", f"{where} left {state}")
        elif state == "updated" and version != record["target_version"]:
            self.violate("versions", f"{where} updated but runs {version}")
        elif state == "rolled-back" and version != record["previous_version"]:
            self.violate("versions", f"{where} rolled back but runs {version}, not {record['previous_version']}")
        elif state in ("rollback-failed", "needs-attention") and not (record.get("failure") or record.get("note")):
            self.violate("versions", f"{where} {state} without a reason")
        elif state == "skipped" and (touched or (instance_id in before and before[instance_id][0] != version)):
            self.violate("versions", f"{where} skipped but touched ({before.get(instance_id)} -> {version})")

    def check_budget(self, name: str, meta: dict[str, Any], records: dict[str, Any], touched: set[str]) -> None:
        """No host of a wave after the one that spent the budget, or that a halt verdict ended, was touched."""
        policy = UpdraftConfig.model_validate({"groups": [self.policy]}).group(self.group)
        waves: dict[int, list[dict[str, Any]]] = {}
        for record in records.values():
            if "wave" in record:
                waves.setdefault(int(record["wave"]), []).append(record)
        verdicts = {int(k): v.get("verdict") for k, v in json.loads(meta.get("wave_results", "{}")).items()}
        planned, total, last = sum(len(w) for w in waves.values()), 0, None
        for wave in sorted(waves):
            failures = sum(1 for r in waves[wave] if r.get("failure"))
            total += failures
            budget = policy.error_budget.canary if wave == 0 else policy.error_budget.per_wave
            spent = failures > allowed_failures(budget, len(waves[wave])) or total > allowed_failures(
                policy.error_budget.total, planned
            )
            if spent or verdicts.get(wave) == "halt":
                last = wave
                break
        if last is None:
            return
        late = sorted(r["instance_id"] for w in waves if w > last for r in waves[w] if r["instance_id"] in touched)
        if late:
            self.violate("budget", f"{name}: wave {last} spent the budget, yet later hosts {late} were updated")

    def applied_during(self, meta: dict[str, Any]) -> set[str]:
        """The hosts sent the apply document while this rollout ran."""
        start = _seconds(meta.get("started_at"), 0.0)
        end = _seconds(meta.get("finished_at"), float("inf"))
        document = self.world.outputs["ApplyDocumentName"]
        return {
            instance_id
            for command in list(self.world.fleet.commands.values())
            if command.document_name.endswith(document) and start <= command.sent_at <= end
            for instance_id in command.invocations
        }


def _seconds(stamp: str | None, default: float) -> float:
    return (datetime.fromisoformat(stamp) - EPOCH).total_seconds() if stamp else default


def run_one(template: dict[str, Any], seed: int) -> RunResult:
    scenario = draw(seed)
    policy = next(p for p in POLICIES if p["name"] == scenario.policy)
    with World(template, variant=policy["variant"], seed=seed, lambda_log_level="CRITICAL") as world:
        return Run(world, scenario, policy).execute()


# -- the campaign ---------------------------------------------------------------------------------------
@dataclass
class Totals:
    runs: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    host_states: Counter[str] = field(default_factory=Counter)
    violations: Counter[str] = field(default_factory=Counter)
    failing_seeds: dict[int, list[tuple[str, str]]] = field(default_factory=dict)

    def add(self, result: RunResult) -> None:
        self.runs += 1
        self.faults.update(result.faults)
        self.outcomes.update(result.outcomes)
        self.host_states.update(result.host_states)
        self.violations.update(invariant for invariant, _ in result.violations)
        if result.violations:
            self.failing_seeds[result.seed] = result.violations


def campaign(
    seeds: list[int], on_result: Callable[[RunResult], None] | None = None, template: dict[str, Any] | None = None
) -> Totals:
    template = template or campaign_template()
    totals = Totals()
    for seed in seeds:
        result = run_one(template, seed)
        totals.add(result)
        if on_result:
            on_result(result)
    return totals
