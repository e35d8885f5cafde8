"""How Bottlerocket's `apiclient` command line writes: its log lines, its JSON, its error chains.

Everything here is taken from bottlerocket-core-kit at commit a10182f9 (the files are named per item);
the host model (`sim/bottlerocket.py`) decides *what* happens, this module says it as apiclient does.

- Log lines go to stderr (`apiclient/src/main.rs`, `run`: `TermLogger::init(.., TerminalMode::Stderr,
  ColorChoice::Auto)`, default level Info), formatted by simplelog 0.12's default config as
  `HH:MM:SS [LEVEL] message` in UTC; no colour, as SSM's agent gives the script no terminal.
- Server data goes to stdout. `update check` prints the status as `{:#}` of a `serde_json::Value`
  (`main.rs`, `check`): pretty, keys sorted (Value's map is a BTreeMap; no crate of the workspace turns
  on serde_json's `preserve_order`). `get` prints `serde_json::to_string_pretty` of a Value (`main.rs`,
  `Subcommand::Get`): pretty, sorted. `raw` prints the body as the server sent it, plus a newline
  (`main.rs`, `Subcommand::Raw`); the API server serializes `/updates/status` with
  `serde_json::to_string` of thar-be-updates' `UpdateStatus` (`apiserver/src/server/mod.rs`,
  `impl_responder_for!`): compact, fields in declaration order (`thar-be-updates/src/status.rs`).
- An error ends the process with its Display chain on stderr and exit status 1 (`main.rs`, `main`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

# thar-be-updates/src/status.rs, `UpdateStatus` and the structs in it: the order serde writes their fields.
STATUS_FIELDS = (
    "update_state",
    "available_updates",
    "chosen_update",
    "active_partition",
    "staging_partition",
    "most_recent_command",
)
IMAGE_FIELDS = ("arch", "version", "variant")  # `UpdateImage`
STAGED_FIELDS = ("image", "next_to_boot")  # `StagedImage`
COMMAND_FIELDS = ("cmd_type", "cmd_status", "timestamp", "exit_status", "stderr")  # `CommandResult`


def pretty(value: object) -> str:
    """serde_json's pretty printer on a Value: two-space indent, `": "`, sorted keys, raw UTF-8; println adds
    the newline."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def compact(value: object) -> str:
    """serde_json::to_string: no spaces at all, keys in the order given."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False) + "\n"


def ordered_status(status: dict) -> dict:
    """The status with its fields (and its nested structs' fields) in thar-be-updates' declaration order."""

    def image(value: dict | None) -> dict | None:
        return None if value is None else {name: value[name] for name in IMAGE_FIELDS}

    def staged(value: dict | None) -> dict | None:
        return None if value is None else {"image": image(value["image"]), "next_to_boot": value["next_to_boot"]}

    command = status["most_recent_command"]
    return {
        "update_state": status["update_state"],
        "available_updates": status["available_updates"],
        "chosen_update": image(status["chosen_update"]),
        "active_partition": staged(status["active_partition"]),
        "staging_partition": staged(status["staging_partition"]),
        "most_recent_command": None if command is None else {name: command[name] for name in COMMAND_FIELDS},
    }


def rfc3339(moment: datetime) -> str:
    """chrono's serde form of a `DateTime<Utc>` (`to_rfc3339_opts(SecondsFormat::AutoSi, true)`): the
    fraction in 0, 3, 6 or 9 digits, as many as it needs, and `Z`."""
    nanos = moment.microsecond * 1000
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if nanos == 0:
        return base + "Z"
    digits = 3 if nanos % 1_000_000 == 0 else 6 if nanos % 1000 == 0 else 9
    return f"{base}.{nanos // 10 ** (9 - digits):0{digits}d}Z"


def rust_duration(seconds: Decimal) -> str:
    """Rust's `{:?}` of a `Duration`: `4.9s`, `594.5s`, `600s`."""
    text = format(seconds.normalize(), "f")
    return f"{text}s"


@dataclass
class Console:
    """One apiclient run's standard error, each log line stamped with the host's virtual time."""

    epoch: datetime
    lines: list[str] = field(default_factory=list)

    def log(self, at: float, message: str, level: str = "INFO") -> None:
        moment = self.epoch + timedelta(seconds=at)
        self.lines.append(f"{moment:%H:%M:%S} [{level}] {message}\n")

    def fail(self, message: str) -> None:
        """`main.rs`, `main`: `eprintln!("{}", e)`, then exit 1."""
        self.lines.append(message + "\n")

    @property
    def text(self) -> str:
        return "".join(self.lines)


@dataclass(frozen=True)
class WaitPolicy:
    """`apiclient/src/update.rs`, `WaitPolicy`: how often `wait_request` polls the status, how many times."""

    between: Decimal
    attempts: int

    @property
    def limit(self) -> Decimal:
        return self.between * self.attempts


# update.rs: `check`, `apply` (prepare, then activate) and `cancel` wait with these.
REFRESH_WAIT = WaitPolicy(Decimal("0.1"), 100)
PREPARE_WAIT = WaitPolicy(Decimal("0.5"), 1200)
ACTIVATE_WAIT = WaitPolicy(Decimal("0.1"), 50)
DEACTIVATE_WAIT = WaitPolicy(Decimal("0.1"), 50)
NOTIFY_EVERY = Decimal(5)  # update.rs, `wait_request`: "let the user know we're still waiting" this often


def waiting_lines(policy: WaitPolicy, seconds: float) -> list[tuple[float, str]]:
    """The "Still waiting" lines `wait_request` logs while an action of `seconds` runs, with their offsets.

    The loop (update.rs, `wait_request`) counts attempts from 1; before each sleep, from the second attempt
    on, it logs once `waited` reached NOTIFY_EVERY, then resets it; the status is read after each sleep.
    """
    lines, waited = [], Decimal(0)
    for attempt in range(1, policy.attempts):
        if attempt > 1 and waited >= NOTIFY_EVERY:
            waited = Decimal(0)
            left = policy.limit - attempt * policy.between
            message = f"Still waiting for updated status, will wait up to {rust_duration(left)} longer..."
            lines.append((float((attempt - 1) * policy.between), message))
        waited += policy.between
        if attempt * policy.between >= Decimal(str(seconds)):
            break
    return lines


def times_out(policy: WaitPolicy, seconds: float) -> bool:
    """`ensure!(attempt < wait.max_attempts, TimedOut)`: the last status read comes after attempts - 1 sleeps."""
    return Decimal(str(seconds)) > (policy.attempts - 1) * policy.between


def timed_out(policy: WaitPolicy, url: str) -> str:
    # update.rs, `Error::TimedOut`: `waited` is already `{:?}` of a Duration, so the unit appears twice.
    return f"Timed out after waiting {rust_duration(policy.limit)} seconds after POST to {url}, unsure of result"


def response_status(code: int, method: str, uri: str, body: str) -> str:
    """apiclient/src/lib.rs, `Error::ResponseStatus`: "Status {code} when {method}ing {uri}: {body}"."""
    return f"Status {code} when {method}ing {uri}: {body}"


# apiserver/src/server/error.rs: the bodies the API server answers with.
DISALLOWED = "Update action not allowed according to update state"
UNINITIALIZED = "Update status is uninitialized, refresh-updates to initialize it"
SHARE_LOCK = "Unable to obtain shared lock for reading update status: Resource temporarily unavailable (os error 11)"
LOCK_HELD = "Update lock held"
NO_CHOSEN_UPDATE = "Previously chosen Update no longer exists"
# update.rs, `Error::PrepareUpdate`: the wrapper every failed prepare gets.
PREPARE_HINT = (
    "Failed to prepare update.  This could mean that we don't have a list of updates yet or that an update is "
    "already applied.  Running 'apiclient update check' will help you find out.  You can cancel an applied "
    "('Ready') update with 'apiclient update cancel' if desired.  Detail: "
)
# main.rs, `mod error`: the outermost link of each subcommand's chain.
UPDATE_CHECK_FAILED = "Failed to check for updates: "
UPDATE_APPLY_FAILED = "Failed to apply update: "
UPDATE_CANCEL_FAILED = "Failed to cancel update: "
GET_FAILED = "Failed to get settings: "
SET_FAILED = "Failed to change settings: "
REBOOT_FAILED = "Failed to reboot: "


def request_failed(method: str, uri: str, reason: str) -> str:
    """`Failed {method} request to '{uri}': ...` (main.rs `Error::Request`, reboot.rs, set.rs, get.rs)."""
    return f"Failed {method} request to '{uri}': {reason}"


def command_request_failed(command: str, reason: str) -> str:
    """update.rs, `Error::Request`: the action's own POST was refused."""
    return f"Failed to make {command} request: {reason}"


def command_failed(command: str, status: str, stderr: str) -> str:
    """update.rs, `Error::Command`. `exit_status` is read with `response_field`, which only returns JSON
    strings: the number in the status never parses, so the message always shows -1."""
    return f"{command} attempt failed with status '{status}' (-1): {stderr}"


def initial_status_failed(code: int, reason: str, body: str) -> str:
    """update.rs, `Error::MissingStatus`: the status read before the action answered neither 2xx nor 404."""
    return f"Unable to check initial update status, got code '{code} {reason}': {body}"
