"""The simulated fleet: hosts, and the SSM Run Command service they answer to.

Commands are carried out by running the real document scripts against the simulated hosts
(control_container.py), those of the document version the command names (its default when it names none).
The answers follow SSM's shapes and rules: parameters are checked against the document's allowedPattern,
an offline agent leaves the invocation Pending until it reconnects or delivery times out, and the plugin
output joins stdout and stderr the way the agent does.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import yaml

from sim.bottlerocket import Fault, Repository, SimHost
from sim.clock import VirtualClock
from sim.control_container import ControlContainer, ScriptResult

# The SSM agent's plugin output: stdout, this marker, stderr, 2,500 characters in all
# (amazon-ssm-agent, agent/framework/processor/executer/iohandler).
ERROR_MARKER = "\n----------ERROR-------\n"
LIST_OUTPUT_LIMIT = 2500
GET_OUTPUT_LIMIT = 24000  # GetCommandInvocation's StandardOutputContent


class SimulatedApiError(Exception):
    """An error the simulated service answers with (code, message), like AWS would."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class SimInvocation:
    instance_id: str
    result: ScriptResult | None = None  # None: not delivered yet
    started: float = 0.0
    ended: float = 0.0


@dataclass(frozen=True)
class StoredDocument:
    """One version of a document, as SSM's document store gives it to the fleet."""

    version: str  # its number
    content: dict


# SendCommand's DocumentVersion: `$DEFAULT` (or none), `$LATEST`, or a version number.
DocumentSource = Callable[[str, str | None], StoredDocument]


@dataclass
class SimCommand:
    command_id: str
    document_name: str
    commands: list[str]
    parameters: dict[str, str]
    sent_at: float
    timeout: int
    invocations: dict[str, SimInvocation] = field(default_factory=dict)
    document_version: str = ""  # the number of the version that ran


class Fleet:
    def __init__(self, clock: VirtualClock, repositories: list[Repository], seed: int = 7) -> None:
        self.clock = clock
        self.repositories = {repo.variant: repo for repo in repositories}
        self.seed = seed
        self.rng = random.Random(seed)
        self.hosts: dict[str, SimHost] = {}
        self.commands: dict[str, SimCommand] = {}
        self.calls: Counter[str] = Counter()  # AWS API calls the pipeline made, by name
        self.throttle_sends = 0  # the next N SendCommand calls are throttled
        self.document_source: DocumentSource | None = None
        self._cursor: dict[str, float] = {}
        self._limits: dict[str, float] = {}  # when a running `timeout` stops its command, per host
        self._lock = threading.RLock()
        self.container = ControlContainer(self._on_call)

    def close(self) -> None:
        self.container.close()

    def reset(self) -> None:
        """No host and no command, and the draws of a new fleet of this seed (a test's fresh account)."""
        with self._lock:
            self.hosts.clear()
            self.commands.clear()
            self._cursor.clear()
            self._limits.clear()
            self.calls.clear()
            self.throttle_sends = 0
            self.rng = random.Random(self.seed)

    # -- hosts --------------------------------------------------------------------------------------
    def add_host(
        self, instance_id: str, az: str, variant: str, version: str, faults: set[Fault] = frozenset()
    ) -> SimHost:
        host = SimHost(
            instance_id=instance_id,
            az=az,
            version=version,
            repo=self.repositories[variant],
            seed=self.rng.randrange(2048),
            faults=set(faults),
            rng=random.Random(self.rng.getrandbits(64)),
            epoch=self.clock.at(0),
        )
        self.hosts[instance_id] = host
        return host

    def _now(self) -> float:
        return self.clock.seconds

    # -- the control container's calls ---------------------------------------------------------------
    def _on_call(self, instance_id: str, argv: list[str]) -> tuple[int, str, str]:
        # No fleet lock here: the thread that delivers the command holds it while the script runs,
        # and a script only ever touches its own host.
        host = self.hosts[instance_id]
        at = self._cursor[instance_id]
        match argv:
            case ["apiclient", *rest]:
                reply = host.apiclient(rest, at)
                self._cursor[instance_id] = at + reply.seconds
                return reply.rc, reply.stdout, reply.stderr
            case ["sleep", seconds]:
                self._cursor[instance_id] = at + float(seconds)
                return 0, "", ""
            case ["boot-id"]:
                return 0, host.boot_id + "\n", ""
            case ["workload-health", *_]:
                reply = host.workload_health(at)
                self._cursor[instance_id] = at + reply.seconds
                return reply.rc, reply.stdout, reply.stderr
            case ["timeout-start", seconds]:
                self._limits[instance_id] = at + float(seconds)
                return 0, "", ""
            case ["timeout-end", rc]:
                return self._timeout_end(instance_id, int(rc)), "", ""
        return 127, "", f"simulated control container: {argv[0]}: command not found\n"

    def _timeout_end(self, instance_id: str, rc: int) -> int:
        """coreutils `timeout` in virtual time: a command still running at the limit is stopped there (124)."""
        limit = self._limits.pop(instance_id, float("inf"))
        if self._cursor[instance_id] > limit:
            self._cursor[instance_id] = limit
            return 124
        return rc

    # -- SSM Run Command ----------------------------------------------------------------------------
    def send_command(
        self,
        command_id: str,
        document_name: str,
        parameters: dict[str, list[str]],
        instance_ids: list[str],
        timeout: int,
        document_version: str | None = None,
    ) -> None:
        with self._lock:
            self.calls["ssm:SendCommand"] += 1
            if self.throttle_sends > 0:
                self.throttle_sends -= 1
                raise SimulatedApiError("ThrottlingException", "Rate exceeded")
            unknown = [i for i in instance_ids if i not in self.hosts]
            if unknown:
                raise SimulatedApiError("InvalidInstanceId", f"Instances {unknown} not in a valid state for account")
            stored = self._stored(document_name, document_version)
            commands, values = self._document(document_name, stored.content, parameters)
            command = SimCommand(command_id, document_name, commands, values, self._now(), timeout)
            command.document_version = stored.version
            command.invocations = {i: SimInvocation(i) for i in instance_ids}
            self.commands[command_id] = command
            now = self._now()
            self._deliver(command, [i for i in instance_ids if self.hosts[i].online(now)], now)

    def _stored(self, name: str, version: str | None) -> StoredDocument:
        if self.document_source is None:
            raise SimulatedApiError("InvalidDocument", "no documents are registered")
        return self.document_source(name, version)

    def _document(
        self, name: str, document: dict, parameters: dict[str, list[str]]
    ) -> tuple[list[str], dict[str, str]]:
        declared = document.get("parameters") or {}
        values: dict[str, str] = {}
        for key, spec in declared.items():
            given = parameters.get(key)
            value = given[0] if given else spec.get("default")
            if value is None:
                raise SimulatedApiError("InvalidParameters", f"parameter {key} is required")
            pattern = spec.get("allowedPattern")
            if pattern and not re.fullmatch(pattern, str(value)):
                raise SimulatedApiError("InvalidParameters", f"parameter {key}={value!r} fails {pattern}")
            values[key] = str(value)
        extra = set(parameters) - set(declared)
        if extra:
            raise SimulatedApiError("InvalidParameters", f"document {name} has no parameters {sorted(extra)}")
        step = document["mainSteps"][0]
        return list(step["inputs"]["runCommand"]), values

    def _deliver(self, command: SimCommand, instance_ids: list[str], at: float) -> None:
        if not instance_ids:
            return
        for instance_id in instance_ids:
            self._cursor[instance_id] = at
        results = self.container.run(command.commands, command.parameters, instance_ids)
        for instance_id, result in results.items():
            invocation = command.invocations[instance_id]
            invocation.result, invocation.started, invocation.ended = result, at, self._cursor[instance_id]

    def _status(self, command: SimCommand, invocation: SimInvocation, now: float) -> str:
        if invocation.result is None:
            host = self.hosts[invocation.instance_id]
            if host.online(now) and now < command.sent_at + command.timeout:
                self._deliver(command, [invocation.instance_id], now)
            elif now >= command.sent_at + command.timeout:
                return "DeliveryTimedOut"
            else:
                return "Pending"
        if now < invocation.ended:
            return "InProgress"
        return "Success" if invocation.result.rc == 0 else "Failed"

    def invocations(self, command_id: str) -> list[dict]:
        """ListCommandInvocations(Details=True) for one command, in the service's shape."""
        with self._lock:
            self.calls["ssm:ListCommandInvocations"] += 1
            command = self.commands.get(command_id)
            if command is None:
                raise SimulatedApiError("InvalidCommandId", f"{command_id} is not a valid command id")
            now = self._now()
            return [self._invocation_view(command, inv, now) for inv in command.invocations.values()]

    def _invocation_view(self, command: SimCommand, invocation: SimInvocation, now: float) -> dict:
        status = self._status(command, invocation, now)
        done = status in ("Success", "Failed")
        result = invocation.result
        output = plugin_output(result.stdout, result.stderr) if done and result else ""
        return {
            "CommandId": command.command_id,
            "InstanceId": invocation.instance_id,
            "DocumentName": command.document_name,
            "RequestedDateTime": self.clock.at(command.sent_at),
            "Status": status,
            "StatusDetails": status,
            "CommandPlugins": [
                {
                    "Name": "aws:runShellScript",
                    "Status": status,
                    "StatusDetails": status,
                    "ResponseCode": result.rc if done and result else -1,
                    "Output": output,
                }
            ],
            "_stdout": (result.stdout if done and result else "")[:GET_OUTPUT_LIMIT],
            "_stderr": (result.stderr if done and result else "")[:GET_OUTPUT_LIMIT],
        }

    # -- fleet presence and EC2 ---------------------------------------------------------------------
    def instance_information(self, instance_ids: list[str] | None) -> list[dict]:
        with self._lock:
            self.calls["ssm:DescribeInstanceInformation"] += 1
            now = self._now()
            ids = [i for i in (instance_ids or sorted(self.hosts)) if i in self.hosts]
            return [self._information(self.hosts[i], now) for i in ids]

    def _information(self, host: SimHost, now: float) -> dict:
        online = host.online(now)
        return {
            "InstanceId": host.instance_id,
            "PingStatus": "Online" if online else "ConnectionLost",
            "LastPingDateTime": self.clock.at(now if online else min(now, host.online_at)),
            "AgentVersion": "3.3.1142.0",
            "PlatformType": "Linux",
            "PlatformName": "Bottlerocket",
            "PlatformVersion": host.version,
            "ResourceType": "EC2Instance",
        }

    def instance_status(self, instance_id: str) -> str | None:
        with self._lock:
            host = self.hosts.get(instance_id)
            return host.instance_status(self._now()) if host else None

    def ec2_reboot(self, instance_ids: list[str]) -> None:
        with self._lock:
            self.calls["ec2:RebootInstances"] += 1
            for instance_id in instance_ids:
                if instance_id in self.hosts:
                    self.hosts[instance_id].ec2_reboot(self._now())


def plugin_output(stdout: str, stderr: str, capacity: int = LIST_OUTPUT_LIMIT) -> str:
    """The plugin Output the agent reports: stdout, then the error marker and stderr, cut to
    `capacity` the way the agent cuts it (the shorter stream is kept whole when it fits in half)."""
    marker = ERROR_MARKER if stderr else ""
    space = capacity - len(marker)
    if len(stdout) + len(stderr) < space:
        return stdout + marker + stderr
    cut_out, cut_err = "\n---Output truncated---", "\n---Error truncated----"
    if len(stdout) > space // 2 and len(stderr) > space // 2:
        half = (space - len(cut_out) - len(cut_err)) // 2
        return stdout[:half] + cut_out + marker + stderr[:half] + cut_err
    if len(stdout) <= space // 2:
        return stdout + marker + stderr[: space - len(cut_err) - len(stdout)] + cut_err
    return stdout[: space - len(cut_out) - len(stderr)] + cut_out + marker + stderr


def load_document(content: str) -> dict:
    """A document's content as stored by SSM (JSON or YAML text)."""
    try:
        return json.loads(content)
    except json.JSONDecodeError:
        return yaml.safe_load(content)
