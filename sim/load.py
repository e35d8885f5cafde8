"""A bounded CPU hog: one busy process per core, for checking that a simulation's outcome does not depend on
how loaded the machine is (bench/load_compare.py, tests/sim/test_determinism.py)."""

from __future__ import annotations

import os
import subprocess
import sys

SPIN = "import time\nend = time.monotonic() + {limit}\nwhile time.monotonic() < end:\n    pass\n"


class Hog:
    """Use as a context manager: every core is busy inside the block, for at most `limit` seconds."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> Hog:
        code = SPIN.format(limit=self.limit)
        self.processes = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(os.cpu_count() or 1)]
        return self

    def __exit__(self, *exc: object) -> None:
        for process in self.processes:
            process.kill()
            process.wait()
