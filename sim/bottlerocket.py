"""A simulated Bottlerocket host: A/B partitions, the update API's state machine, reboots, faults.

The model follows how Bottlerocket behaves (see the project's reference on updates), not what
Updraft expects: `apiclient` commands are interpreted against the host's own state, illegal
moves answer HTTP 409, the update status is lost on reboot (404 until a refresh), a new image
gets one boot try, and a version lock may point backwards (that is how a downgrade works).
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from enum import StrEnum

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


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Status {status} {message}")


@dataclass
class Reply:
    rc: int = 0
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.2  # how long the call takes on the host

    @classmethod
    def json(cls, value: object, seconds: float = 0.2) -> Reply:
        return cls(stdout=json.dumps(value) + "\n", seconds=seconds)


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
    status_present: bool = False  # lost on reboot: tmpfs
    most_recent: dict | None = None
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
        self.status_present = False
        self.update_state, self.chosen, self.most_recent = "Idle", None, None
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

    # -- the update API ---------------------------------------------------------------------------
    def _status(self) -> dict:
        image = {"arch": self.repo.arch, "variant": self.repo.variant}
        staging = None
        if self.staging:
            staging = {"image": {**image, "version": self.staging}, "next_to_boot": self.next_to_boot_staging}
        return {
            "update_state": self.update_state,
            "available_updates": self._available(),
            "chosen_update": {**image, "version": self.chosen} if self.chosen else None,
            "active_partition": {
                "image": {**image, "version": self.version},
                "next_to_boot": not self.next_to_boot_staging,
            },
            "staging_partition": staging,
            "most_recent_command": self.most_recent,
        }

    def _available(self) -> list[str]:
        return self.repo.offered()

    def _choose(self) -> str | None:
        offered = self._available()
        if self.version_lock != "latest":
            locked = self.version_lock.removeprefix("v")
            return locked if locked in offered and locked != self.version else None
        newer = [v for v in offered if version_key(v) > version_key(self.version)]
        return newer[0] if newer else None

    def _record(self, cmd: str, ok: bool, stderr: str = "") -> None:
        self.most_recent = {
            "cmd_type": cmd,
            "cmd_status": "Success" if ok else "Failed",
            "timestamp": f"boot-{self.boots}",
            "exit_status": 0 if ok else 1,
            "stderr": stderr,
        }

    def _refresh(self) -> None:
        self.status_present = True
        self.chosen = self._choose() if self.update_state in ("Idle", "Available") else self.chosen
        if self.update_state in ("Idle", "Available"):
            self.update_state = "Available" if self.chosen else "Idle"
        self._record("refresh", True)

    def _prepare(self) -> float:
        if self.update_state not in ("Available", "Staged"):
            raise ApiError(
                409, "when POSTing /actions/prepare-update: Update action not allowed according to update state"
            )
        if Fault.APPLY_FAILS in self.faults or self.repo.bad_releases.get(self.chosen or "") is Fault.APPLY_FAILS:
            self._record("prepare", False, "Failed to write image: No space left on device (os error 28)")
            raise ApiError(500, "Failed to prepare update: No space left on device (os error 28)")
        self.staging, self.next_to_boot_staging = self.chosen, False
        self.update_state = "Staged"
        self._record("prepare", True)
        return self.rng.uniform(30, 150)  # writing the image

    def _activate(self) -> None:
        if self.update_state != "Staged":
            raise ApiError(
                409, "when POSTing /actions/activate-update: Update action not allowed according to update state"
            )
        self.update_state, self.next_to_boot_staging = "Ready", True
        self._record("activate", True)

    def _cancel(self) -> None:
        if self.update_state != "Ready":
            raise ApiError(
                409, "when POSTing /actions/deactivate-update: Update action not allowed according to update state"
            )
        self.update_state, self.next_to_boot_staging = "Staged", False
        self._record("deactivate", True)

    def schedule_reboot(self, at: float) -> None:
        self.reboot_at = at if self.reboot_at is None else min(self.reboot_at, at)

    def apiclient(self, argv: list[str], at: float) -> Reply:
        """Interpret one `apiclient` command line at virtual time `at`."""
        self.sync(at)
        try:
            return self._dispatch(argv, at)
        except ApiError as error:
            return Reply(rc=1, stderr=f"{error}\n", seconds=1.0)

    def _dispatch(self, argv: list[str], at: float) -> Reply:
        match argv:
            case ["get", "os"]:
                return self._os()
            case ["get", key] if key.startswith("settings.updates"):
                return self._settings(key)
            case ["set", *assignments] if assignments:
                return self._set(assignments)
            case ["update", "check"]:
                self._refresh()
                return Reply.json(self._status(), seconds=self.rng.uniform(2, 8))
            case ["update", "apply", *flags] if set(flags) <= {"--check", "--reboot"}:
                return self._apply(flags, at)
            case ["update", "cancel"]:
                self._cancel()
                return Reply(seconds=1.0)
            case ["reboot"]:
                self.schedule_reboot(at + 1)
                return Reply()
            case ["raw", "-u", "/updates/status"]:
                if not self.status_present:
                    raise ApiError(404, "when GETting /updates/status: Not Found")
                if Fault.GARBLED_STATUS in self.faults:
                    return Reply(stdout=json.dumps(self._status())[:40] + "\n")
                return Reply.json(self._status())
        return Reply(rc=2, stderr=f"apiclient: unsupported command {' '.join(argv)!r}\n")

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
        if Fault.GARBLED_OS in self.faults:
            return Reply(stdout=json.dumps(os_info)[:25] + "\n")
        return Reply.json(os_info)

    def _settings(self, key: str) -> Reply:
        updates = {
            "metadata-base-url": f"https://updates.example/2020-07-07/{self.repo.variant}/{self.repo.arch}/",
            "targets-base-url": "https://updates.example/targets/",
            "seed": self.seed,
            "version-lock": self.version_lock,
            "ignore-waves": self.ignore_waves,
        }
        if key == "settings.updates":
            return Reply.json({"settings": {"updates": updates}})
        name = key.removeprefix("settings.updates.")
        if name not in updates:
            raise ApiError(404, f"when GETting /settings?keys={key}: Not Found")
        return Reply.json({"settings": {"updates": {name: updates[name]}}})

    def _set(self, assignments: list[str]) -> Reply:
        changes = dict(assignment.split("=", 1) for assignment in assignments if "=" in assignment)
        if len(changes) != len(assignments) or not set(changes) <= {"updates.version-lock", "updates.ignore-waves"}:
            raise ApiError(400, f"when PATCHing /settings: unsupported settings {assignments}")
        if "updates.version-lock" in changes:
            self.version_lock = changes["updates.version-lock"]
        if "updates.ignore-waves" in changes:
            self.ignore_waves = changes["updates.ignore-waves"] == "true"
        return Reply(seconds=0.5)

    def _apply(self, flags: list[str], at: float) -> Reply:
        seconds = 0.0
        if "--check" in flags:
            self._refresh()
            seconds += self.rng.uniform(2, 8)
            if self.update_state in ("Idle", "Ready"):
                return Reply(seconds=seconds)
        seconds += self._prepare()
        self._activate()
        if "--reboot" in flags:
            self.schedule_reboot(at + seconds + 1)
        return Reply(seconds=seconds + 1)

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
