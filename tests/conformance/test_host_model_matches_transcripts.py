"""The simulated host prints what real apiclient prints (the transcripts), but for the clock's readings."""

from __future__ import annotations

import itertools
import random
import re

from sim.bottlerocket import Fault, Repository, SimHost
from tests.conformance import transcripts as real

TIMES = re.compile(r'"timestamp": ?"[^"]+"|^\d\d:\d\d:\d\d ', re.MULTILINE)


def same_but_times(text: str) -> str:
    without_waiting = "".join(line for line in text.splitlines(keepends=True) if "Still waiting" not in line)
    return TIMES.sub("<time>", without_waiting)


def host(version: str = "1.26.0", faults: set[Fault] = frozenset()) -> SimHost:
    repo = Repository("aws-ecs-2", "x86_64", ["1.25.0", "1.26.0", "1.26.1"])
    return SimHost("i-0001", "us-east-1a", version, repo, seed=5, faults=set(faults), rng=random.Random(1))


def says(host: SimHost, line: str, at: float = 0.0) -> tuple[int, str, str]:
    reply = host.apiclient(line.split(), at)
    return reply.rc, same_but_times(reply.stdout), same_but_times(reply.stderr)


def expected(transcript: tuple[int, str, str]) -> tuple[int, str, str]:
    rc, out, err = transcript
    return rc, same_but_times(out), same_but_times(err)


def test_get_os_and_the_version_lock() -> None:
    simulated = host()
    assert says(simulated, "get os") == expected(real.HOSTS["available"]["get os"])
    simulated.apiclient(["set", "updates.version-lock=1.26.1", "updates.ignore-waves=true"], 0)
    assert says(simulated, "get settings.updates.version-lock") == (0, same_but_times(real.LOCK), "")


def test_a_fresh_boot_has_no_status_until_a_check() -> None:
    simulated = host()
    assert says(simulated, "raw -u /updates/status") == expected(real.HOSTS["fresh-boot"]["raw -u /updates/status"])
    assert says(simulated, "update check") == expected(real.HOSTS["available"]["update check"])


def test_check_on_the_newest_version_is_idle() -> None:
    simulated = host("1.26.1")
    assert says(simulated, "update check") == expected(real.HOSTS["idle"]["update check"])
    assert says(simulated, "raw -u /updates/status", at=30) == expected(real.HOSTS["idle"]["raw -u /updates/status"])


def test_apply_logs_and_leaves_the_compact_ready_status() -> None:
    simulated = host()
    assert says(simulated, "update apply --check") == expected(real.HOSTS["available"]["update apply --check"])
    assert says(simulated, "raw -u /updates/status", at=600) == (0, same_but_times(real.RAW_READY), "")


def test_apply_on_a_ready_host_says_it_is_already_applied() -> None:
    simulated = host()
    simulated.apiclient(["update", "apply", "--check"], 0)
    rc, out, err = says(simulated, "update apply --check", at=600)
    assert (rc, err) == (0, same_but_times(real.HOSTS["ready"]["update apply --check"][2]))
    assert '"update_state": "Ready"' in out


def test_a_failed_prepare_answers_with_its_record() -> None:
    simulated = host(faults={Fault.APPLY_FAILS})
    assert says(simulated, "update apply --check") == expected(real.HOSTS["prepare-fails"]["update apply --check"])


def test_a_raw_post_returns_before_the_work_is_done() -> None:
    # thar-be-updates forks and answers at once; its child holds the update lock until it is done.
    simulated = host()
    assert simulated.apiclient(["raw", "-m", "POST", "-u", "/actions/refresh-updates"], 0).rc == 0
    busy = simulated.apiclient(["raw", "-u", "/updates/status"], 0.5)
    assert busy.rc == 1 and "Status 423 when GETing /updates/status: Unable to obtain shared lock" in busy.stderr
    done = simulated.apiclient(["raw", "-u", "/updates/status"], 30)
    assert done.rc == 0 and '"update_state":"Available"' in done.stdout


def test_a_long_prepare_says_it_is_still_waiting_every_five_seconds() -> None:
    simulated = host()
    reply = simulated.apiclient(["update", "apply", "--check"], 0)
    prepare = reply.stderr.split("Downloading and applying update to disk...")[1]
    waiting = [line for line in prepare.splitlines() if "Still waiting" in line]
    lefts = [float(re.search(r"up to ([\d.]+)s", line).group(1)) for line in waiting]
    assert lefts and lefts[0] == 594.5
    assert all(round(a - b, 1) == 5.0 for a, b in itertools.pairwise(lefts))
    assert 1 < len(waiting) < reply.seconds / 5
