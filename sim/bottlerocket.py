"""A simulated Bottlerocket host: A/B partitions, the update API's state machine, reboots, faults.

The model follows how Bottlerocket behaves (see the project's reference on updates), not what
Updraft expects: `apiclient` commands are interpreted against the host's own state, illegal
moves answer HTTP 409, the update status is lost on reboot (404 until a refresh), a new image
gets one boot try, and a version lock may point backwards (that is how a downgrade works).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from sim.apiclient_cli import (
    ACTIVATE_WAIT,
    DEACTIVATE_WAIT,
    DISALLOWED,
    LOCK_HELD,
    NO_CHOSEN_UPDATE,
    PREPARE_HINT,
    PREPARE_WAIT,
    REFRESH_WAIT,
    SET_FAILED,
    SHARE_LOCK,
    UNINITIALIZED,
    UPDATE_APPLY_FAILED,
    UPDATE_CANCEL_FAILED,
    UPDATE_CHECK_FAILED,
    Console,
    WaitPolicy,
    command_failed,
    command_request_failed,
    compact,
    initial_status_failed,
    ordered_status,
    pretty,
    request_failed,
    response_status,
    rfc3339,
    timed_out,
    times_out,
    waiting_lines,
)
from sim.clock import EPOCH

INFINITY = float("inf")


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.removeprefix("v").split("."))


class Fault(StrEnum):
    APPLY_FAILS = "apply-fails"  # prepare fails: no space left on device
    REBOOT_HANGS = "reboot-hangs"  # the new image never finishes booting; an EC2 reboot falls back
    BOOT_FALLBACK = "boot-fallback"  # the new image fails its boot try; the boot loader falls back
    AGENT_OFFLINE = "agent-offline"  # after an update reboot the SSM agent stays disconnected
    WRONG_VERSION = "wrong-version"  # the host comes up on another version than the one staged
    IMPAIRED = "impaired"  # EC2 status checks impaired after booting the new image
    GARBLED_OS = "garbled-os"  # `apiclient get os` answers truncated JSON
    GARBLED_STATUS = "garbled-status"  # `apiclient raw -u /updates/status` answers truncated JSON
    # The workload, once the host runs another version than it was launched with:
    UNHEALTHY_WORKLOAD = "unhealthy-workload"  # its health check fails
    WORKLOAD_HANGS = "workload-hangs"  # its health check never answers
    ECS_AGENT_OFFLINE = "ecs-agent-offline"  # the ECS agent never connects to its cluster


@dataclass
class Repository:
    """What the update repository offers for one variant and arch."""

    variant: str
    arch: str
    versions: list[str]
    # Faults a release brings to every host that boots it: a bad release.
    bad_releases: dict[str, Fault] = field(default_factory=dict)

    def offered(self) -> list[str]:
        return sorted(self.versions, key=version_key, reverse=True)


# What updog's failed image write leaves in `most_recent_command.stderr` (illustrative wording).
DISK_FULL = "Failed to write image: No space left on device (os error 28)\n"
ACTIONS = ("refresh-updates", "prepare-update", "activate-update", "deactivate-update")


class ApiError(Exception):
    """An HTTP error answer of the API server, said as apiclient says it (`apiclient/src/lib.rs`)."""

    def __init__(self, code: int, method: str, uri: str, body: str) -> None:
        super().__init__(response_status(code, method, uri, body))
        self.code = code


class CliError(Exception):
    """apiclient ends with this message on stderr and exit status 1, after `seconds`."""

    def __init__(self, message: str, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds
        self.stdout = ""


@dataclass
class Reply:
    rc: int = 0
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.2  # how long the call takes on the host


@dataclass
class SimHost:
    instance_id: str
    az: str
    version: str  # the version of the image in the active partition
    repo: Repository
    seed: int
    faults: set[Fault] = field(default_factory=set)
    rng: random.Random = field(default_factory=random.Random)
    staging: str | None = None  # the image in the inactive partition set
    next_to_boot_staging: bool = False
    update_state: str = "Idle"
    chosen: str | None = None
    available: list[str] = field(default_factory=list)  # the last refresh's list
    status_staging: str | None = None  # the staging partition as the status of this boot knows it
    status_present: bool = False  # lost on reboot: tmpfs
    most_recent: dict | None = None
    busy_until: float = 0.0  # a forked thar-be-updates child holds the update lock until then
    _pending: tuple[str, float] | None = None
    epoch: datetime = EPOCH  # the wall-clock time of virtual second 0, for log lines and timestamps
    version_lock: str = "latest"
    ignore_waves: bool = False
    boot_id: str = ""
    online_at: float = 0.0  # when the SSM agent is connected (INFINITY: never)
    reboot_at: float | None = None
    hung: bool = False
    impaired: bool = False
    boots: int = 0
    boot_log: list[tuple[float, float]] = field(default_factory=list)  # (went down, agent back)
    launched_version: str = ""  # what the workload was deployed and proven on

    def __post_init__(self) -> None:
        self.boot_id = self._new_boot_id()
        self.launched_version = self.launched_version or self.version

    # -- time ---------------------------------------------------------------------------------
    def sync(self, now: float) -> None:
        """Bring the host up to `now`: a scheduled reboot happens."""
        self._finish_pending(now)
        if self.reboot_at is not None and self.reboot_at <= now:
            at, self.reboot_at = self.reboot_at, None
            self._boot(at, through_ec2=False)

    def online(self, now: float) -> bool:
        self.sync(now)
        return not self.hung and self.online_at <= now

    def ec2_reboot(self, now: float) -> None:
        """RebootInstances from outside: the only way out of a hung boot."""
        self.sync(now)
        self.reboot_at = None
        self._boot(now, through_ec2=True)

    def instance_status(self, now: float) -> str:
        self.sync(now)
        if self.impaired:
            return "impaired"
        return "ok" if self.online_at <= now or self.hung else "initializing"

    # -- boot -----------------------------------------------------------------------------------
    def _new_boot_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128)))

    def _boot_seconds(self) -> float:
        return self.rng.uniform(45, 120)

    def _boot(self, at: float, through_ec2: bool) -> None:
        self.boots += 1
        self.boot_id = self._new_boot_id()
        # The status lives on tmpfs (status.rs, UPDATE_STATUS_FILE under /run): a boot starts without one.
        self.status_present, self.available, self.status_staging = False, [], None
        self.update_state, self.chosen, self.most_recent = "Idle", None, None
        self.busy_until, self._pending = 0.0, None
        self.impaired = False
        online_after = self._boot_seconds()
        self._boot_image(at, through_ec2, online_after)
        self.boot_log.append((at, self.online_at))

    def _boot_image(self, at: float, through_ec2: bool, online_after: float) -> None:
        if self.hung or not self.next_to_boot_staging:
            # A hung boot of a new image has used its one try: the boot loader falls back.
            self.hung = False
            self.next_to_boot_staging = False
            self.online_at = at + online_after
            return
        image = self.staging
        fault = self._boot_fault(image)
        self.next_to_boot_staging = False
        if fault is Fault.REBOOT_HANGS:
            self.hung, self.online_at = True, INFINITY
            return
        if fault is Fault.BOOT_FALLBACK:
            self.online_at = at + 2 * online_after  # the failed try, then the old image
            return
        self.staging, self.version = self.version, self._booted_version(image, fault)
        self.impaired = fault is Fault.IMPAIRED
        self.online_at = INFINITY if fault is Fault.AGENT_OFFLINE and not through_ec2 else at + online_after

    def _boot_fault(self, image: str | None) -> Fault | None:
        release_fault = self.repo.bad_releases.get(image or "")
        boot_faults = {
            Fault.REBOOT_HANGS,
            Fault.BOOT_FALLBACK,
            Fault.AGENT_OFFLINE,
            Fault.WRONG_VERSION,
            Fault.IMPAIRED,
        }
        if release_fault in boot_faults:
            return release_fault
        # A host's own boot fault strikes once: the first time it boots a new image.
        host_fault = next(iter(sorted(self.faults & boot_faults)), None)
        self.faults.discard(host_fault)
        return host_fault

    def _booted_version(self, image: str | None, fault: Fault | None) -> str:
        if fault is not Fault.WRONG_VERSION:
            return image or self.version
        others = [v for v in self.repo.offered() if v not in (image, self.version)]
        return others[0] if others else self.version

    # -- the update API server (apiserver + thar-be-updates) ------------------------------------------
    # bottlerocket-core-kit a10182f9: `apiserver/src/server/mod.rs` routes the actions to thar-be-updates,
    # which checks the move against the state machine (`thar-be-updates/src/main.rs`, `drive_state_machine`;
    # refused: exit status -> HTTP 409), then forks and returns at once (204): the work goes on in the
    # child, which holds the update lock (status reads answer 423) and records its result in
    # `most_recent_command`, whether it succeeded or not, leaving the state as it was on failure.
    def _status(self) -> dict:
        image = {"arch": self.repo.arch, "variant": self.repo.variant}
        return {
            "update_state": self.update_state,
            "available_updates": self.available,
            "chosen_update": {**image, "version": self.chosen} if self.chosen else None,
            # status.rs, `update_active_partition_info`: set when the status is initialized in this boot.
            "active_partition": {
                "image": {**image, "version": self.version},
                "next_to_boot": not self.next_to_boot_staging,
            },
            # status.rs, `set_staging_partition_image_info`: only a prepare of this boot sets it.
            "staging_partition": (
                {"image": {**image, "version": self.status_staging}, "next_to_boot": self.next_to_boot_staging}
                if self.status_staging
                else None
            ),
            "most_recent_command": self.most_recent,
        }

    def _choose(self) -> str | None:
        """status.rs, `update_available_updates`: with a lock, exactly that version (if offered and not the
        running one); with "latest", the newest above the running version."""
        offered = self.repo.offered()
        if self.version_lock != "latest":
            locked = self.version_lock.removeprefix("v")
            return locked if locked in offered and locked != self.version else None
        newer = [v for v in offered if version_key(v) > version_key(self.version)]
        return newer[0] if newer else None

    def _record(self, cmd: str, ok: bool, at: float, stderr: str = "") -> None:
        # status.rs, `set_recent_command_info`: updog's exit status and its stderr, stamped `Utc::now()`.
        self.most_recent = {
            "cmd_type": cmd,
            "cmd_status": "Success" if ok else "Failed",
            "timestamp": rfc3339(self.epoch + timedelta(seconds=at)),
            "exit_status": 0 if ok else 1,
            "stderr": stderr,
        }

    def _start(self, action: str, at: float) -> float:
        """POST /actions/<action>: refuse a disallowed move, else start it; how long its child works."""
        if self.busy_until > at:
            raise ApiError(423, "POST", f"/actions/{action}", LOCK_HELD)
        self.status_present = True  # thar-be-updates initializes the status file before anything else
        moves = {
            "refresh-updates": ("Idle", "Available", "Staged", "Ready"),
            "prepare-update": ("Available", "Staged"),
            "activate-update": ("Staged",),
            "deactivate-update": ("Ready",),
        }
        if self.update_state not in moves[action]:
            raise ApiError(409, "POST", f"/actions/{action}", DISALLOWED)
        if action == "prepare-update" and not self.chosen:
            raise ApiError(404, "POST", f"/actions/{action}", NO_CHOSEN_UPDATE)
        seconds = {
            "refresh-updates": lambda: self.rng.uniform(2, 8),
            "prepare-update": lambda: self.rng.uniform(30, 150),  # downloading and writing the image
            "activate-update": lambda: 0.3,
            "deactivate-update": lambda: 0.3,
        }[action]()
        done = at + seconds
        self.busy_until = done
        self._pending = (action, done)
        return seconds

    def _finish_pending(self, now: float) -> None:
        """The forked child's work, done by `now`: its effect and its record."""
        if self._pending is None or self._pending[1] > now:
            return
        action, done = self._pending
        self._pending = None
        match action:
            case "refresh-updates":
                self.available = self.repo.offered()
                if self.update_state in ("Idle", "Available"):
                    self.chosen = self._choose()
                    self.update_state = "Available" if self.chosen else "Idle"
                self._record("refresh", True, done)
            case "prepare-update":
                if self._prepare_fails():
                    self._record("prepare", False, done, DISK_FULL)
                    return
                self.staging, self.status_staging, self.next_to_boot_staging = self.chosen, self.chosen, False
                self.update_state = "Staged"
                self._record("prepare", True, done)
            case "activate-update":
                self.update_state, self.next_to_boot_staging = "Ready", True
                self._record("activate", True, done)
            case "deactivate-update":
                self.update_state, self.next_to_boot_staging = "Staged", False
                self._record("deactivate", True, done)

    def _prepare_fails(self) -> bool:
        return Fault.APPLY_FAILS in self.faults or self.repo.bad_releases.get(self.chosen or "") is Fault.APPLY_FAILS

    def read_status(self, at: float) -> dict:
        """GET /updates/status: 423 while a child holds the lock, 404 before the first action of this boot."""
        self.sync(at)
        if self.busy_until > at:
            raise ApiError(423, "GET", "/updates/status", SHARE_LOCK)
        if not self.status_present:
            raise ApiError(404, "GET", "/updates/status", UNINITIALIZED)
        return self._status()

    def schedule_reboot(self, at: float) -> None:
        self.reboot_at = at if self.reboot_at is None else min(self.reboot_at, at)

    def apiclient(self, argv: list[str], at: float) -> Reply:
        """Run one `apiclient` command line at virtual time `at`, as the CLI would (`sim/apiclient_cli.py`)."""
        self.sync(at)
        console = Console(self.epoch)
        try:
            reply = self._dispatch(argv, at, console)
        except CliError as error:
            console.fail(str(error))
            return Reply(rc=1, stdout=error.stdout, stderr=console.text, seconds=error.seconds)
        reply.stderr = console.text + reply.stderr
        return reply

    def _dispatch(self, argv: list[str], at: float, console: Console) -> Reply:
        match argv:
            case ["get", "os"]:
                return self._os()
            case ["get", key] if key.startswith("settings.updates"):
                return self._settings(key)
            case ["set", *assignments] if assignments:
                return self._set(assignments)
            case ["update", "check"]:
                status, seconds = self._check(at, console)
                return Reply(stdout=pretty(status), seconds=seconds)
            case ["update", "apply", *flags] if set(flags) <= {"--check", "--reboot"}:
                return self._apply(flags, at, console)
            case ["update", "cancel"]:
                console.log(at, "Canceling update...")
                return Reply(seconds=self._wait("deactivate-update", at, DEACTIVATE_WAIT, UPDATE_CANCEL_FAILED))
            case ["reboot"]:
                self.schedule_reboot(at + 1)
                console.log(at, "Rebooting, goodbye...")
                return Reply()
            case ["raw", *rest]:
                return self._raw(rest, at)
        # main.rs, `usage`: an unknown subcommand prints the usage text and exits 2.
        return Reply(rc=2, stderr=f"Unknown subcommand '{' '.join(argv)}'\n")

    def _check(self, at: float, console: Console) -> tuple[dict, float]:
        """update.rs, `check`: refresh, wait for it, return the status it read."""
        console.log(at, "Refreshing updates...")
        seconds = self._wait("refresh-updates", at, REFRESH_WAIT, UPDATE_CHECK_FAILED, console)
        return self._status(), seconds

    def _wait(
        self, action: str, at: float, policy: WaitPolicy, outer: str, console: Console | None = None, inner: str = ""
    ) -> float:
        """update.rs, `wait_request`: read the status, POST the action, poll until its record changes."""
        command = action.split("-")[0]  # its `cmd_type`: refresh, prepare, activate, deactivate
        if self.busy_until > at:
            reason = initial_status_failed(423, "Locked", SHARE_LOCK)
            raise CliError(outer + inner + reason, 0.1)
        try:
            seconds = self._start(action, at)
        except ApiError as error:
            raise CliError(outer + inner + command_request_failed(command, str(error)), 0.1) from None
        if times_out(policy, seconds):
            raise CliError(outer + inner + timed_out(policy, f"/actions/{action}"), float(policy.limit))
        for offset, line in waiting_lines(policy, seconds):
            if console is not None:
                console.log(at + offset, line)
        self._finish_pending(at + seconds)
        self.busy_until = 0.0  # the child is done: the caller goes on from `at + seconds`
        record = self.most_recent or {}
        if record.get("cmd_status") != "Success":
            failed = command_failed(command, record.get("cmd_status", "missing"), record.get("stderr") or "")
            raise CliError(outer + inner + failed, seconds)
        return seconds

    def _apply(self, flags: list[str], at: float, console: Console) -> Reply:
        """main.rs, `UpdateSubcommand::Apply`: with --check, refresh first and stop when Idle or Ready."""
        seconds, stdout = 0.0, ""
        if "--check" in flags:
            status, seconds = self._check(at, console)
            stdout = pretty(status)
            if status["update_state"] == "Idle":
                console.log(at + seconds, "No updates available.")
                return Reply(stdout=stdout, seconds=seconds)
            if status["update_state"] == "Ready":
                console.log(at + seconds, "Update already applied; reboot for it to take effect, or request a cancel.")
                return Reply(stdout=stdout, seconds=seconds)
        console.log(at + seconds, "Downloading and applying update to disk...")
        try:
            seconds += self._wait(
                "prepare-update", at + seconds, PREPARE_WAIT, UPDATE_APPLY_FAILED, console, PREPARE_HINT
            )
        except CliError as error:
            error.seconds += seconds
            error.stdout = stdout
            raise
        console.log(at + seconds, "Setting the update active so it will apply on the next reboot...")
        seconds += self._wait("activate-update", at + seconds, ACTIVATE_WAIT, UPDATE_APPLY_FAILED, console)
        if "--reboot" in flags:
            self.schedule_reboot(at + seconds + 1)
            console.log(at + seconds, "Rebooting, goodbye...")
        else:
            console.log(at + seconds, "Update has been applied and will take effect on next reboot.")
        return Reply(stdout=stdout, seconds=seconds + 0.1)

    def _raw(self, args: list[str], at: float) -> Reply:
        """`apiclient raw -u URI [-m METHOD]`: the request as is. A POST to an action returns once it started."""
        options = dict(zip(args[::2], args[1::2], strict=False))
        uri, method = options.get("-u", options.get("--uri", "")), options.get("-m", options.get("--method", "GET"))
        try:
            if method == "GET" and uri == "/updates/status":
                status = self.read_status(at)
                return Reply(stdout=self._garbled(compact(ordered_status(status)), Fault.GARBLED_STATUS))
            if method == "POST" and uri.startswith("/actions/") and uri.removeprefix("/actions/") in ACTIONS:
                self._start(uri.removeprefix("/actions/"), at)
                return Reply(seconds=0.1)  # 204, no body: `raw` prints nothing
        except ApiError as error:
            raise CliError(request_failed(method, uri, str(error)), 0.1) from None
        raise CliError(request_failed(method, uri, response_status(404, method, uri, "Not Found")), 0.1)

    def _garbled(self, text: str, fault: Fault) -> str:
        return text[: len(text) // 3] + "\n" if fault in self.faults else text

    def _os(self) -> Reply:
        os_info = {
            "os": {
                "arch": self.repo.arch,
                "build_id": f"{version_key(self.version)[1]:04x}abcd",
                "pretty_name": f"Bottlerocket OS {self.version} ({self.repo.variant})",
                "variant_id": self.repo.variant,
                "version_id": self.version,
            }
        }
        return Reply(stdout=self._garbled(pretty(os_info), Fault.GARBLED_OS))

    def _settings(self, key: str) -> Reply:
        updates = {
            "metadata-base-url": f"https://updates.example/2020-07-07/{self.repo.variant}/{self.repo.arch}/",
            "targets-base-url": "https://updates.example/targets/",
            "seed": self.seed,
            "version-lock": self.version_lock,
            "ignore-waves": self.ignore_waves,
        }
        if key == "settings.updates":
            return Reply(stdout=pretty({"settings": {"updates": updates}}))
        name = key.removeprefix("settings.updates.")
        if name not in updates:
            # get.rs, `get_prefixes`: a prefix that matches nothing answers an empty object.
            return Reply(stdout=pretty({}))
        return Reply(stdout=pretty({"settings": {"updates": {name: updates[name]}}}))

    def _set(self, assignments: list[str]) -> Reply:
        changes = dict(assignment.split("=", 1) for assignment in assignments if "=" in assignment)
        uri = "/settings/keypair?tx=apiclient-set-0000"
        if len(changes) != len(assignments) or not set(changes) <= {"updates.version-lock", "updates.ignore-waves"}:
            refused = response_status(400, "PATCH", uri, "Json deserialize error")
            raise CliError(SET_FAILED + request_failed("PATCH", uri, refused), 0.2)
        if "updates.version-lock" in changes:
            self.version_lock = changes["updates.version-lock"]
        if "updates.ignore-waves" in changes:
            self.ignore_waves = changes["updates.ignore-waves"] == "true"
        return Reply(seconds=0.5)  # set prints nothing (main.rs, `Subcommand::Set`)

    # -- the workload ------------------------------------------------------------------------------
    def _workload_fault(self, fault: Fault) -> bool:
        """A workload fault shows once the host runs another version than it was launched with, or when
        the release it runs brings it."""
        own = fault in self.faults and self.version != self.launched_version
        return own or self.repo.bad_releases.get(self.version) is fault

    def ecs_agent_connected(self, now: float) -> bool:
        """The ECS agent starts with the host and connects once it is up."""
        return self.online(now) and not self._workload_fault(Fault.ECS_AGENT_OFFLINE)

    def workload_health(self, at: float) -> Reply:
        """What a health command run on the host reports about its workload."""
        self.sync(at)
        if self._workload_fault(Fault.WORKLOAD_HANGS):
            return Reply(rc=0, stdout="checking workload\n", seconds=86_400.0)
        if self._workload_fault(Fault.UNHEALTHY_WORKLOAD):
            return Reply(rc=1, stdout="checking workload\n", stderr="app: 2 of 3 containers unhealthy\n", seconds=3.0)
        return Reply(stdout=f"workload healthy on {self.version}\n", seconds=self.rng.uniform(1, 4))
