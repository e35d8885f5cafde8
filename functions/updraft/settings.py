"""What a function learns from its environment, validated once per cold start."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache

from updraft.config import UpdraftConfig
from updraft.domain.host_record import Doc
from updraft.ports import Ports


@dataclass(frozen=True)
class Settings:
    config: UpdraftConfig
    ledger_table: str
    lock_table: str
    documents: dict[Doc, str]
    # The SHA-256 of each document's content as deployed (updraft.document_digest): nothing else is sent.
    digests: dict[Doc, str] = field(default_factory=dict)
    event_bus: str = ""  # release detection only
    trust_bucket: str = ""
    # The operator's root.json, deployed as an S3 object, and the SHA-512 synth checked it against.
    trusted_root_bucket: str = ""
    trusted_root_key: str = ""
    trusted_root_sha512: str = ""
    state_machine_arn: str = ""  # rollbacks started by an alarm
    # The ledger, locks, controls, releases, events and alarms the steps use; None: on AWS, the tables above.
    ports: Ports | None = field(default=None, compare=False)


def _settings_from(environ: dict[str, str]) -> Settings:
    return Settings(
        config=UpdraftConfig.from_env(environ["UPDRAFT_CONFIG"]),
        ledger_table=environ["LEDGER_TABLE"],
        lock_table=environ["LOCK_TABLE"],
        # The health document exists only when some group has a health command.
        documents={doc: environ[f"DOCUMENT_{doc.name}"] for doc in Doc if doc is not Doc.HEALTH}
        | {Doc.HEALTH: environ.get("DOCUMENT_HEALTH", "")},
        digests={doc: environ[f"DOCUMENT_{doc.name}_SHA256"] for doc in Doc if doc is not Doc.HEALTH}
        | {Doc.HEALTH: environ.get("DOCUMENT_HEALTH_SHA256", "")},
        event_bus=environ.get("EVENT_BUS", ""),
        trust_bucket=environ.get("TRUST_BUCKET", ""),
        trusted_root_bucket=environ.get("TRUSTED_ROOT_BUCKET", ""),
        trusted_root_key=environ.get("TRUSTED_ROOT_KEY", ""),
        trusted_root_sha512=environ.get("TRUSTED_ROOT_SHA512", ""),
        state_machine_arn=environ.get("STATE_MACHINE_ARN", ""),
    )


@cache
def _cached(key: tuple[tuple[str, str], ...]) -> Settings:
    return _settings_from(dict(key))


def settings() -> Settings:
    names = (
        "UPDRAFT_CONFIG",
        "LEDGER_TABLE",
        "LOCK_TABLE",
        *(f"DOCUMENT_{doc.name}" for doc in Doc),
        *(f"DOCUMENT_{doc.name}_SHA256" for doc in Doc),
        "EVENT_BUS",
        "TRUST_BUCKET",
        "TRUSTED_ROOT_BUCKET",
        "TRUSTED_ROOT_KEY",
        "TRUSTED_ROOT_SHA512",
        "STATE_MACHINE_ARN",
    )
    return _cached(tuple((name, os.environ.get(name, "")) for name in names))
