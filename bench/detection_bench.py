"""What a release check costs: requests and bytes downloaded, cold, idle, and after a new release.

Runs the real verification (python-tuf) against a signed repository served on 127.0.0.1 with a
persisted trust store, as the detector does. Run: `.venv/bin/python bench/detection_bench.py`.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent.parent / "functions")]

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from sim.update_repository import UpdateRepository  # noqa: E402
from updraft.release import MemoryTrustStore, ScopedTrustStore, verify_repository  # noqa: E402

RELEASED = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def main() -> None:
    table = Table(title="release check against a local signed repository (python-tuf, persisted trust)")
    for column in ("check", "files downloaded", "bytes", "seconds"):
        table.add_column(column, justify="right" if column != "files downloaded" else "left")
    with tempfile.TemporaryDirectory() as scratch:
        repository = UpdateRepository(Path(scratch) / "updates", "aws-ecs-2")
        store = ScopedTrustStore(MemoryTrustStore(), "aws-ecs-2/x86_64")
        try:
            repository.release("1.26.0", RELEASED)
            for name, publish in (("cold (empty store)", None), ("idle", None), ("after a new release", "1.26.1")):
                if publish:
                    repository.release(publish, RELEASED)
                started = time.perf_counter()
                verified = verify_repository(
                    repository.metadata_base_url.format(variant="aws-ecs-2", arch="x86_64"),
                    repository.targets_base_url,
                    repository.trusted_root,
                    store,
                    work_dir=scratch,
                )
                files = ", ".join(d.url.rsplit("/", 1)[-1] for d in verified.downloads if d.http_status is None)
                table.add_row(name, files, str(verified.bytes_downloaded), f"{time.perf_counter() - started:.3f}")
        finally:
            repository.close()
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
