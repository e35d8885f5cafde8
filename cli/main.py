"""`updraft`: the operator's command line. Commands only; the work is in the modules beside this one."""

from __future__ import annotations

import functools
import re
import sys
import time
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.live import Live

from cli import fleet, output, rollback, views
from cli.config import group_policy, load, now, rollout_request
from cli.deployment import Deployment, caller, find
from cli.errors import CliError, NotFound, Refused, UsageProblem
from cli.fleet_view import fleet_document
from cli.planning import make_plan, plan_document
from cli.records import Records, history_row
from cli.report_file import write_report
from updraft.adapters.aws import client
from updraft.adapters.control import GLOBAL, Controls
from updraft.config import GROUP_NAME, RolloutRequest
from updraft.errors import RolloutNotFound

app = typer.Typer(
    help="Staged, verified, self-rolling-back Bottlerocket updates for EC2 fleets.\n\n"
    "Permissions: plan, status, history, fleet, report and kill-switch status need the stack's viewer policy "
    "(<stack>-viewer); start, rollback, pause, resume, abort and kill-switch on/off its operator policy "
    "(<stack>-operator).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

Json = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout, nothing else.")]
Stack = Annotated[str, typer.Option("--stack", envvar="UPDRAFT_STACK", help="The deployed Updraft stack.")]
ConfigPath = Annotated[Path, typer.Option("--config", help="The cdk.json the stack was deployed from.")]
GroupArg = Annotated[str, typer.Argument(help="The fleet group (the value of its EC2 tag).")]
By = Annotated[str | None, typer.Option("--by", help="Who asks (default: your AWS identity, else $USER).")]


def handled(command: Callable[..., None]) -> Callable[..., None]:
    """Every failure ends as one line on stderr and an exit code, never a traceback."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except CliError as problem:
            output.error(str(problem))
            raise typer.Exit(problem.exit_code) from None
        except RolloutNotFound as problem:
            output.error(f"rollout not running: {problem}")
            raise typer.Exit(NotFound.exit_code) from None
        except ClientError as problem:
            details = problem.response["Error"]
            output.error(f"AWS {problem.operation_name}: {details.get('Code')}: {details.get('Message')}")
            raise typer.Exit(1) from None
        except BotoCoreError as problem:  # no credentials or region, endpoint unreachable
            output.error(f"AWS: {problem}")
            raise typer.Exit(1) from None

    return run


def show(data: Any, as_json: bool, view: Callable[[Any], Any]) -> None:
    if as_json:
        output.emit_json(data)
    else:
        output.console().print(view(data))


def _group_name(group: str) -> str:
    if not re.match(GROUP_NAME, group):
        raise UsageProblem(f"{group!r} is not a group name (lower-case letters, digits and dashes)")
    return group


@app.callback()
def main() -> None:
    """Updraft's command line."""


# -- plan and start -----------------------------------------------------------------------------------------
@app.command()
@handled
def plan(
    group: GroupArg,
    version: Annotated[str, typer.Argument(help="The Bottlerocket version to roll out, e.g. 1.26.1.")],
    config: ConfigPath = Path("cdk.json"),
    as_json: Json = False,
) -> None:
    """Dry run: which hosts a rollout would update, in which waves, which it would skip, how long it may take."""
    settings = load(config)
    policy = group_policy(settings, group)
    request = rollout_request(group=group, target_version=version)
    instances = fleet.running_instances(settings.tag_key, group)
    agents = fleet.agent_information(list(instances))
    planned = make_plan(policy, str(request.target_version), instances, agents, now())
    show(plan_document(planned), as_json, views.plan_view)


def _start(deployment: Deployment, request: RolloutRequest) -> dict[str, Any]:
    body = request.model_dump_json(exclude_none=True)
    started = client("stepfunctions").start_execution(stateMachineArn=deployment.state_machine_arn, input=body)
    arn = started["executionArn"]
    return {"execution_arn": arn, "rollout_id": arn.rsplit(":", 1)[-1], **request.model_dump(exclude_none=True)}


def _refuse_if_running(records: Records, group: str) -> None:
    running = records.running(group)
    if running:
        raise Refused(
            f"group {group!r} already has rollout {running['rollout_id']} running ({running.get('status')}): "
            "wait for it, or pause or abort it"
        )


def _warn_if_held(deployment: Deployment, group: str) -> None:
    switch = Controls(deployment.ledger_table).kill_switch_for(group)
    if switch:
        output.note(f"note: a kill switch holds {group} ({switch.get('reason', '')}): no wave starts until it is off")


@app.command()
@handled
def start(
    group: GroupArg,
    version: Annotated[str, typer.Argument(help="The Bottlerocket version to roll out, e.g. 1.26.1.")],
    requested_by: Annotated[str | None, typer.Option("--requested-by", help="Recorded with the rollout.")] = None,
    stack: Stack = "Updraft",
    config: ConfigPath = Path("cdk.json"),
    as_json: Json = False,
) -> None:
    """Start a rollout of GROUP to VERSION; prints the rollout id (the execution's name)."""
    group_policy(load(config), group)
    request = rollout_request(group=group, target_version=version, requested_by=requested_by or caller())
    deployment = find(stack)
    _refuse_if_running(Records(deployment), group)
    started = _start(deployment, request)
    _warn_if_held(deployment, group)
    show(started, as_json, lambda s: f"started rollout {s['rollout_id']}\nexecution {s['execution_arn']}")


# -- status and history -------------------------------------------------------------------------------------
def _group_rollout(records: Records, group: str) -> tuple[str, str | None]:
    """The group's rollout to show: the running one, else the last one with a note saying so."""
    running = records.running(group)
    if running:
        return running["rollout_id"], None
    last = records.history(group, 1)
    if not last:
        raise NotFound(f"group {group!r} has no rollout running and none in its history")
    return last[0]["rollout_id"], f"no rollout of {group} is running; the last one:"


def _frames(records: Records, rollout_id: str, interval: float) -> Iterator[dict[str, Any]]:
    """The rollout's status now, then again every `interval` seconds until it ends."""
    status = records.status(rollout_id)
    yield status
    while status["running"]:
        time.sleep(interval)
        status = records.status(rollout_id)
        yield status


@app.command()
@handled
def status(
    group: Annotated[str | None, typer.Argument(help="The group whose running (or last) rollout to show.")] = None,
    rollout: Annotated[str | None, typer.Option("--rollout", help="Show this rollout instead.")] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Refresh until the rollout ends.")] = False,
    interval: Annotated[float, typer.Option("--interval", min=0.1, help="Seconds between refreshes.")] = 5.0,
    stack: Stack = "Updraft",
    as_json: Json = False,
) -> None:
    """Progress of a rollout, wave by wave: the group's running one, else its last one."""
    if not group and not rollout:
        raise UsageProblem("name a GROUP or give --rollout ID")
    records = Records(find(stack))
    rollout_id, note = (rollout, None) if rollout else _group_rollout(records, str(group))
    if note and not as_json:
        output.console().print(note)
    frames = _frames(records, rollout_id, interval) if watch else iter([records.status(rollout_id)])
    if as_json:
        write = output.emit_json_line if watch else output.emit_json  # watching: one document per line
        for frame in frames:
            write(frame)
        return
    _render_frames(frames)


def _render_frames(frames: Iterator[dict[str, Any]]) -> None:
    first = next(frames)
    console = output.console()
    with Live(views.status_view(first), console=console, auto_refresh=False) as live:
        try:
            for frame in frames:
                live.update(views.status_view(frame), refresh=True)
        except KeyboardInterrupt:
            pass  # the rollout goes on; only the watching stops


@app.command()
@handled
def history(
    group: GroupArg,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100, help="How many rollouts.")] = 10,
    stack: Stack = "Updraft",
    as_json: Json = False,
) -> None:
    """The group's rollouts, newest first."""
    rows = [history_row(item) for item in Records(find(stack)).history(_group_name(group), limit)]
    show(rows, as_json, lambda r: views.history_table(group, r))


# -- the report ----------------------------------------------------------------------------------------------
@app.command()
@handled
def report(
    rollout: Annotated[str, typer.Argument(help="The rollout id (the execution's name; see `updraft history`).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write it.")] = Path("report.html"),
    png: Annotated[bool, typer.Option("--png", help="Write the timeline picture alone, as PNG.")] = False,
    width: Annotated[int, typer.Option("--width", min=600, max=8000, help="The PNG's width in pixels.")] = 1600,
    stack: Stack = "Updraft",
    as_json: Json = False,
) -> None:
    """One self-contained HTML page of a rollout: its timeline (hosts by wave and AZ against time, coloured by
    state, with waves, bakes, alarms and the halt marked), its summary and its failed hosts and why."""
    timeline = Records(find(stack)).timeline(rollout, now().isoformat())
    written = write_report(timeline, out, png, width)
    show(written, as_json, lambda w: f"wrote {w['path']} ({w['format']}, {w['hosts']} hosts{_size(w)})")


def _size(written: dict[str, Any]) -> str:
    return f", {written['width']}x{written['height']} px" if "width" in written else ""


@app.command("fleet")
@handled
def fleet_command(
    group: Annotated[str | None, typer.Argument(help="Only this group (default: every configured group).")] = None,
    stack: Stack = "Updraft",
    config: ConfigPath = Path("cdk.json"),
    as_json: Json = False,
) -> None:
    """The fleet at a glance, per group: hosts per version, the newest release and how many hosts are behind it,
    the running (or last) rollout and where each host stands, kill switch, next maintenance window."""
    settings = load(config)
    policies = [group_policy(settings, group)] if group else list(settings.groups)
    document = fleet_document(find(stack), settings.tag_key, policies, now())
    show(document, as_json, views.fleet_view)


# -- requests on a running rollout ----------------------------------------------------------------------------
def _request(group: str, stack: str, by: str | None, act: Callable[[Controls, str, str, str], None]) -> dict:
    deployment = find(stack)
    rollout_id = Records(deployment).running_id(_group_name(group))
    who = by or caller()
    act(Controls(deployment.ledger_table), rollout_id, who, now().isoformat())
    return {"group": group, "rollout_id": rollout_id, "by": who}


@app.command()
@handled
def pause(
    group: GroupArg,
    reason: Annotated[str, typer.Option("--reason", help="Why, recorded with the rollout.")] = "paused by an operator",
    by: By = None,
    stack: Stack = "Updraft",
    as_json: Json = False,
) -> None:
    """Start no new wave of the group's running rollout until it is resumed (the current wave finishes)."""
    done = _request(group, stack, by, lambda c, rid, who, at: c.pause(rid, reason, who, at))
    show({**done, "paused": True, "reason": reason}, as_json, lambda d: f"paused rollout {d['rollout_id']}")


@app.command()
@handled
def resume(group: GroupArg, by: By = None, stack: Stack = "Updraft", as_json: Json = False) -> None:
    """Let the group's paused rollout start its next wave."""
    done = _request(group, stack, by, lambda c, rid, who, at: c.resume(rid, who, at))
    show({**done, "paused": False}, as_json, lambda d: f"resumed rollout {d['rollout_id']}")


@app.command()
@handled
def abort(
    group: GroupArg,
    reason: Annotated[str, typer.Option("--reason", help="Why, recorded with the rollout.")] = "aborted by an operator",
    by: By = None,
    stack: Stack = "Updraft",
    as_json: Json = False,
) -> None:
    """Ask the group's running rollout to stop: it starts no more waves and ends aborted."""
    done = _request(group, stack, by, lambda c, rid, who, at: c.abort(rid, reason, who, at))
    show({**done, "abort_requested": True, "reason": reason}, as_json, lambda d: f"abort requested: {d['rollout_id']}")


# -- kill switches ----------------------------------------------------------------------------------------------
class SwitchAction(StrEnum):
    ON = "on"
    OFF = "off"
    STATUS = "status"


def _engaged(controls: Controls) -> list[dict[str, Any]]:
    switches = [s for s in controls.switches() if s.get("engaged")]
    return [
        {"scope": "all groups" if s["sk"] == GLOBAL else s["sk"].removeprefix("GROUP#"), **_switch_fields(s)}
        for s in switches
    ]


def _switch_fields(switch: dict[str, Any]) -> dict[str, Any]:
    return {key: switch[key] for key in ("reason", "by", "at") if key in switch}


@app.command("kill-switch")
@handled
def kill_switch(
    action: Annotated[SwitchAction, typer.Argument(help="on, off, or status.")],
    group: Annotated[str | None, typer.Option("--group", help="Only this group (default: every group).")] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why, shown to whoever looks.")] = "engaged by an operator",
    by: By = None,
    stack: Stack = "Updraft",
    as_json: Json = False,
) -> None:
    """Hold every wave of one group, or of all groups, from starting (running waves finish)."""
    controls = Controls(find(stack).ledger_table)
    scope = _group_name(group) if group else None
    if action is SwitchAction.ON:
        controls.engage(scope, reason, by or caller(), now().isoformat())
    elif action is SwitchAction.OFF:
        controls.release(scope)
    result = {"action": str(action), "scope": scope or "all groups", "engaged": _engaged(controls)}
    show(result, as_json, lambda r: views.switches_table(r["engaged"]))


# -- rollback -----------------------------------------------------------------------------------------------
def _rollback_target(records: Records, group: str, rollout: str | None) -> dict[str, Any]:
    if rollout:
        return records.rollout(rollout)
    target = rollback.latest_succeeded(records.history(group, 50))
    if target is None:
        raise NotFound(f"group {group!r} has no succeeded rollout to roll back")
    return target


@app.command("rollback")
@handled
def rollback_command(
    group: GroupArg,
    rollout: Annotated[
        str | None, typer.Option("--rollout", help="The rollout to undo (default: the last one).")
    ] = None,
    requested_by: Annotated[str | None, typer.Option("--requested-by", help="Recorded with the rollback.")] = None,
    stack: Stack = "Updraft",
    config: ConfigPath = Path("cdk.json"),
    as_json: Json = False,
) -> None:
    """Take every host a succeeded rollout updated back to the version it ran before, within the rollback window."""
    policy = group_policy(load(config), group)
    deployment = find(stack)
    records = Records(deployment)
    _refuse_if_running(records, group)
    target = _rollback_target(records, group, rollout)
    why_not = rollback.refusal(target, group, policy.rollback_window_hours, now())
    if why_not:
        raise Refused(why_not)
    request = rollout_request(group=group, rollback_of=target["rollout_id"], requested_by=requested_by or caller())
    started = _start(deployment, request)
    show(started, as_json, lambda s: f"started rollback {s['rollout_id']} of {s['rollback_of']}")


# -- the simulation -------------------------------------------------------------------------------------------
@app.command()
def simulate(
    hosts: int = typer.Option(30, min=1, help="Hosts per group in the simulated fleet."),
    seed: int = typer.Option(7, help="The simulation's seed."),
    config: Annotated[Path | None, typer.Option("--config", help="The cdk.json to simulate.")] = None,
) -> None:
    """Run the real pipeline for a cdk.json against a simulated fleet (no AWS account needed)."""
    try:
        run = _simulation()
    except CliError as problem:
        output.error(str(problem))
        raise typer.Exit(problem.exit_code) from None
    raise typer.Exit(run(hosts, seed, config) if config else run(hosts, seed))


# The checkout this command line runs from, when it is installed editable (`make setup`): sim/ and stacks/
# are not part of the installed package.
CHECKOUT = Path(__file__).resolve().parent.parent


def _simulation() -> Callable[..., int]:
    """The simulation's entry point. It lives in the project checkout (sim/, stacks/) and needs the dev
    dependencies (the CDK, moto): imported only here, so every other command runs without them."""
    if not (CHECKOUT / "sim" / "demo.py").is_file():
        raise CliError(
            "updraft simulate needs the project checkout (sim/, stacks/) and its dev dependencies: "
            "run it from a clone of the repository after `make setup` (`.venv/bin/updraft simulate`, or `make demo`)"
        )
    for path in (CHECKOUT / "functions", CHECKOUT):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    try:
        from sim.demo import run
    except ModuleNotFoundError as missing:
        raise CliError(
            f"updraft simulate needs the dev dependencies, and {missing.name} is not installed: "
            f"run `make setup` in {CHECKOUT} and use its .venv/bin/updraft"
        ) from None
    return run
