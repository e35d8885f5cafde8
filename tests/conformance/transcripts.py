"""What real `apiclient` prints, byte for byte, on a host of aws-ecs-2 x86_64 running 1.26.0 with 1.26.1 offered.

Written by hand from bottlerocket-core-kit a10182f9, not from the simulation:
- stderr: simplelog's `HH:MM:SS [INFO] message` lines (`apiclient/src/main.rs`, `run`: TermLogger on
  stderr, level Info), then the error's Display chain and exit 1 (`main.rs`, `main`).
- `update check` and `update apply --check`: the status as `{:#}` of a serde_json Value (`main.rs`, `check`):
  two-space pretty, keys sorted.
- `get`: `serde_json::to_string_pretty` of a Value (`main.rs`, `Subcommand::Get`): pretty, sorted.
- `raw -u /updates/status`: the server's body, `serde_json::to_string` of `UpdateStatus`
  (`apiserver/src/server/mod.rs`, `impl_responder_for!`; `thar-be-updates/src/status.rs`): compact, fields in
  declaration order; then a newline (`println!`).
- `set`, `update cancel`, `reboot`: nothing on stdout.
- Timestamps: chrono's RFC 3339 with as many fractional digits as needed (3, 6 or 9), `Z`.
Each transcript is (exit status, stdout, stderr).
"""

from __future__ import annotations

Transcript = tuple[int, str, str]

OS_1_26_0 = """{
  "os": {
    "arch": "x86_64",
    "build_id": "001aabcd",
    "pretty_name": "Bottlerocket OS 1.26.0 (aws-ecs-2)",
    "variant_id": "aws-ecs-2",
    "version_id": "1.26.0"
  }
}
"""
OS_1_26_1 = OS_1_26_0.replace("1.26.0", "1.26.1")

REFRESHING = "09:00:00 [INFO] Refreshing updates...\n"

# `update check` on a host where nothing is chosen: the running version is the newest.
CHECK_IDLE = """{
  "active_partition": {
    "image": {
      "arch": "x86_64",
      "variant": "aws-ecs-2",
      "version": "1.26.1"
    },
    "next_to_boot": true
  },
  "available_updates": [
    "1.26.1",
    "1.26.0",
    "1.25.0"
  ],
  "chosen_update": null,
  "most_recent_command": {
    "cmd_status": "Success",
    "cmd_type": "refresh",
    "exit_status": 0,
    "stderr": "",
    "timestamp": "2026-01-05T09:00:03.250Z"
  },
  "staging_partition": null,
  "update_state": "Idle"
}
"""

CHECK_AVAILABLE = """{
  "active_partition": {
    "image": {
      "arch": "x86_64",
      "variant": "aws-ecs-2",
      "version": "1.26.0"
    },
    "next_to_boot": true
  },
  "available_updates": [
    "1.26.1",
    "1.26.0",
    "1.25.0"
  ],
  "chosen_update": {
    "arch": "x86_64",
    "variant": "aws-ecs-2",
    "version": "1.26.1"
  },
  "most_recent_command": {
    "cmd_status": "Success",
    "cmd_type": "refresh",
    "exit_status": 0,
    "stderr": "",
    "timestamp": "2026-01-05T09:00:03.250Z"
  },
  "staging_partition": null,
  "update_state": "Available"
}
"""

# Staged: the image is written, the active set still boots next (a cancelled update looks like this).
CHECK_STAGED = """{
  "active_partition": {
    "image": {
      "arch": "x86_64",
      "variant": "aws-ecs-2",
      "version": "1.26.0"
    },
    "next_to_boot": true
  },
  "available_updates": [
    "1.26.1",
    "1.26.0",
    "1.25.0"
  ],
  "chosen_update": {
    "arch": "x86_64",
    "variant": "aws-ecs-2",
    "version": "1.26.1"
  },
  "most_recent_command": {
    "cmd_status": "Success",
    "cmd_type": "refresh",
    "exit_status": 0,
    "stderr": "",
    "timestamp": "2026-01-05T09:02:41.000917Z"
  },
  "staging_partition": {
    "image": {
      "arch": "x86_64",
      "variant": "aws-ecs-2",
      "version": "1.26.1"
    },
    "next_to_boot": false
  },
  "update_state": "Staged"
}
"""

CHECK_READY = (
    CHECK_STAGED.replace('"update_state": "Staged"', '"update_state": "Ready"')
    .replace('"next_to_boot": false', '"next_to_boot": "staging"')
    .replace('"next_to_boot": true', '"next_to_boot": false')
    .replace('"next_to_boot": "staging"', '"next_to_boot": true')
)

# A status whose partitions are unknown: both are `Option`s in status.rs and serialize as null.
CHECK_NULL_PARTITIONS = """{
  "active_partition": null,
  "available_updates": [],
  "chosen_update": null,
  "most_recent_command": null,
  "staging_partition": null,
  "update_state": "Idle"
}
"""

RAW_READY = (
    '{"update_state":"Ready","available_updates":["1.26.1","1.26.0","1.25.0"],'
    '"chosen_update":{"arch":"x86_64","version":"1.26.1","variant":"aws-ecs-2"},'
    '"active_partition":{"image":{"arch":"x86_64","version":"1.26.0","variant":"aws-ecs-2"},"next_to_boot":false},'
    '"staging_partition":{"image":{"arch":"x86_64","version":"1.26.1","variant":"aws-ecs-2"},"next_to_boot":true},'
    '"most_recent_command":{"cmd_type":"activate","cmd_status":"Success","timestamp":"2026-01-05T09:02:41.3Z",'
    '"exit_status":0,"stderr":""}}\n'
)
RAW_IDLE = (
    '{"update_state":"Idle","available_updates":["1.26.1","1.26.0","1.25.0"],"chosen_update":null,'
    '"active_partition":{"image":{"arch":"x86_64","version":"1.26.1","variant":"aws-ecs-2"},"next_to_boot":true},'
    '"staging_partition":null,"most_recent_command":{"cmd_type":"refresh","cmd_status":"Success",'
    '"timestamp":"2026-01-05T09:00:03.250Z","exit_status":0,"stderr":""}}\n'
)
RAW_NULL_PARTITIONS = (
    '{"update_state":"Idle","available_updates":[],"chosen_update":null,"active_partition":null,'
    '"staging_partition":null,"most_recent_command":null}\n'
)
RAW_READY_PREVIOUS = RAW_READY.replace("1.26.1", "X").replace("1.26.0", "1.26.1").replace("X", "1.26.0")

# apiclient/src/update.rs: `apply` logs these; `wait_request` adds "Still waiting" every 5 s of a long prepare.
APPLY_LOG = (
    REFRESHING + "09:00:03 [INFO] Downloading and applying update to disk...\n"
    "09:00:08 [INFO] Still waiting for updated status, will wait up to 594.5s longer...\n"
    "09:00:13 [INFO] Still waiting for updated status, will wait up to 589.5s longer...\n"
    "09:00:41 [INFO] Setting the update active so it will apply on the next reboot...\n"
    "09:00:41 [INFO] Update has been applied and will take effect on next reboot.\n"
)

LOCK = """{
  "settings": {
    "updates": {
      "version-lock": "1.26.1"
    }
  }
}
"""

NOT_FOUND = (
    "Failed GET request to '/updates/status': Status 404 when GETing /updates/status: "
    "Update status is uninitialized, refresh-updates to initialize it\n"
)
PREPARE_FAILED = (
    REFRESHING + "09:00:03 [INFO] Downloading and applying update to disk...\n"
    "Failed to apply update: Failed to prepare update.  This could mean that we don't have a list of updates "
    "yet or that an update is already applied.  Running 'apiclient update check' will help you find out.  You "
    "can cancel an applied ('Ready') update with 'apiclient update cancel' if desired.  Detail: prepare attempt "
    "failed with status 'Failed' (-1): Failed to write image: No space left on device (os error 28)\n\n"
)


def host(os: str, check: str, raw: Transcript, apply: Transcript | None = None) -> dict[str, Transcript]:
    """The answers of one host, by command line."""
    return {
        "get os": (0, os, ""),
        "update check": (0, check, REFRESHING),
        "raw -u /updates/status": raw,
        "get settings.updates.version-lock": (0, LOCK, ""),
        "set": (0, "", ""),
        "update apply --check": apply or (0, check, REFRESHING + "09:00:03 [INFO] No updates available.\n"),
        "update cancel": (0, "", "09:00:05 [INFO] Canceling update...\n"),
        "reboot": (0, "", "09:00:06 [INFO] Rebooting, goodbye...\n"),
    }


HOSTS: dict[str, dict[str, Transcript]] = {
    # Freshly booted: no status until the first refresh (status.rs: it lives under /run).
    "fresh-boot": host(OS_1_26_0, CHECK_AVAILABLE, (1, "", NOT_FOUND)),
    "idle": host(OS_1_26_1, CHECK_IDLE, (0, RAW_IDLE, "")),
    "available": host(OS_1_26_0, CHECK_AVAILABLE, (0, RAW_READY, ""), (0, CHECK_AVAILABLE, APPLY_LOG)),
    "staged": host(OS_1_26_0, CHECK_STAGED, (0, RAW_READY, ""), (0, CHECK_STAGED, APPLY_LOG)),
    "ready": host(
        OS_1_26_0,
        CHECK_READY,
        (0, RAW_READY, ""),
        (
            0,
            CHECK_READY,
            REFRESHING + "09:00:03 [INFO] Update already applied; reboot for it to take effect, or request a cancel.\n",
        ),
    ),
    "null-partitions": host(OS_1_26_1, CHECK_NULL_PARTITIONS, (0, RAW_NULL_PARTITIONS, "")),
    # An answer cut short (a full disk, a killed process): not JSON.
    "garbled-os": {**host(OS_1_26_0, CHECK_AVAILABLE, (0, RAW_READY, "")), "get os": (0, OS_1_26_0[:40], "")},
    "prepare-fails": host(OS_1_26_0, CHECK_AVAILABLE, (0, RAW_READY, ""), (1, CHECK_AVAILABLE, PREPARE_FAILED)),
    # Back on 1.26.1 after the update, rolling back to 1.26.0: the apply stages the previous version.
    "updated": host(OS_1_26_1, CHECK_IDLE, (0, RAW_READY_PREVIOUS, ""), (0, CHECK_AVAILABLE, APPLY_LOG)),
}
